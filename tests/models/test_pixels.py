"""Images in and out of a model (`tfvq.models.pixels`): uint8 pixels of float images, and images given back as they
came."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.models.pixels import like_input, output_is_uint8, to_float_images, to_uint8


def test_to_uint8_rounds_255_times_the_clipped_image():
    x = np.array([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 0.2, 254.6 / 255, 1.0, 3.0], np.float32)
    np.testing.assert_array_equal(to_uint8(x).numpy(), [0, 0, 0, 1, 51, 255, 255, 255])
    assert to_uint8(tf.constant(x, tf.bfloat16)).dtype == tf.uint8


def test_like_input_gives_uint8_to_uint8_callers_and_clipped_float32_to_the_others():
    x = tf.constant([[-0.25, 0.5], [1.0, 1.5]], tf.float64)
    assert like_input(x, True).dtype == tf.uint8
    np.testing.assert_array_equal(like_input(x, True).numpy(), [[0, 128], [255, 255]])
    assert like_input(x, False).dtype == tf.float32
    np.testing.assert_array_equal(like_input(x, False).numpy(), [[0.0, 0.5], [1.0, 1.0]])


def test_uint8_images_enter_as_pixels_over_255_and_say_so():
    pixels = np.array([0, 51, 255], np.uint8).reshape(1, 1, 3, 1)
    x, was_uint8 = to_float_images(pixels, (1, 3, 1))
    assert was_uint8 and x.dtype == tf.float32
    np.testing.assert_allclose(x.numpy().ravel(), [0.0, 0.2, 1.0])
    _, was_uint8 = to_float_images(pixels / 255.0, (1, 3, 1))
    assert not was_uint8


@pytest.mark.parametrize("dtype,uint8", [("uint8", True), (tf.uint8, True), (np.uint8, True), ("float32", False),
                                         (tf.float32, False)])
def test_output_dtype_names_uint8_or_float32(dtype, uint8):
    assert output_is_uint8(dtype) is uint8


@pytest.mark.parametrize("dtype", ["float64", tf.int32, "pixels", None])
def test_another_output_dtype_raises_naming_both_choices(dtype):
    with pytest.raises(ValueError, match="dtype must be 'float32' .* or 'uint8'"):
        output_is_uint8(dtype)
