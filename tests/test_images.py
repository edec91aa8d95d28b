"""The one image normaliser (`tfvq.images`): each bad input raises a clear error, good inputs round-trip,
and the models, the codec, data loading and the TFLite export all check images with it."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq import images as tfvq_images
from tfvq.codec import CodecError
from tfvq.codec import images as codec_images
from tfvq.data import sources
from tfvq.export import tflite
from tfvq.models.pixels import to_float_images

SHAPE = (8, 8, 1)
GOOD_U8 = np.arange(2 * 64, dtype=np.uint8).reshape((2,) + SHAPE)

BAD = {  # name: (images, error, message)
    "rank": (np.zeros(SHAPE, np.float32), ValueError, r"must be \[N, 8, 8, 1\] .*got shape \[8, 8, 1\]"),
    "size": (np.zeros((2, 6, 8, 1), np.uint8), ValueError, r"got shape \[2, 6, 8, 1\]\. Resize or crop"),
    "channels": (np.zeros((2, 8, 8, 3), np.uint8), ValueError, r"with 1 channel.*got shape \[2, 8, 8, 3\]"),
    "dtype": (np.zeros((2,) + SHAPE, np.int32), TypeError, r"uint8 \(0\.\.255\) or float \(0\.\.1\), got dtype int32"),
    "bool": (np.zeros((2,) + SHAPE, bool), TypeError, "got dtype bool"),
    "strings": (np.full((2,) + SHAPE, "a"), TypeError, "got dtype str"),
    "range": (np.full((2,) + SHAPE, 1.5, np.float32), ValueError, r"values in \[0, 1\], got values in \[1\.5, 1\.5\]"),
    "negative": (np.full((2,) + SHAPE, -0.5), ValueError, r"got values in \[-0\.5, -0\.5\].*pass 8-bit|Pass 8-bit"),
    "nan": (np.full((2,) + SHAPE, np.nan, np.float32), ValueError, "NaN or infinite"),
    "inf": (np.where(np.eye(8)[None, :, :, None] > 0, np.inf, 0.5).repeat(2, 0), ValueError,
            r"got values in \[0\.5, 0\.5\] and NaN or infinite"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_each_bad_input_raises_a_clear_error(case):
    images, error, match = BAD[case]
    with pytest.raises(error, match=match):
        tfvq_images.fixed_size_batch(images, SHAPE)


def test_empty_images_and_wrong_channels_of_any_size_are_refused():
    with pytest.raises(ValueError, match=r"images: expected images \[H, W, 1\] or \[N, H, W, 1\] of any size "
                                         r"with 1 channel, got shape \[1, 0, 8, 1\]"):
        tfvq_images.any_size_batch(np.zeros((1, 0, 8, 1), np.uint8), 1)
    with pytest.raises(ValueError, match=r"got shape \[5, 5, 3\]"):
        tfvq_images.any_size_batch(np.zeros((5, 5, 3), np.uint8), 1)
    with pytest.raises(ValueError, match=r"\[N, H, W, C\] of any size with 1, 2, 3 or 4 channels"):
        tfvq_images.any_size_batch(np.zeros((2, 5, 5, 5), np.uint8), (1, 2, 3, 4), single=False)
    with pytest.raises(TypeError, match="lossless file codes 8-bit pixels exactly, so pass uint8"):
        tfvq_images.any_size_batch(np.zeros((5, 5, 1), np.float32), 1, exact=True)
    with pytest.raises(ValueError, match="must be an array"):
        tfvq_images.fixed_size_batch([[1, 2], [3]], SHAPE)


def test_uint8_and_float_round_trips():
    kept = tfvq_images.fixed_size_batch(GOOD_U8, SHAPE)
    assert kept.dtype == np.uint8 and kept is GOOD_U8
    floats = tfvq_images.as_float32(GOOD_U8)
    assert floats.dtype == np.float32 and floats.min() >= 0 and floats.max() <= 1
    np.testing.assert_array_equal(tfvq_images.as_uint8(tfvq_images.fixed_size_batch(floats, SHAPE)), GOOD_U8)
    one = tfvq_images.any_size_batch(GOOD_U8[0], 1)
    assert one.shape == (1,) + SHAPE and one.dtype == np.uint8
    assert tfvq_images.fixed_size_batch(np.zeros((0,) + SHAPE, np.float64), SHAPE).shape == (0,) + SHAPE
    x, was_uint8 = tfvq_images.tensor_images(GOOD_U8, SHAPE)
    assert was_uint8 and x.dtype == tf.float32
    np.testing.assert_array_equal(x.numpy(), floats)
    y, was_uint8 = tfvq_images.tensor_images(tf.constant(floats, tf.bfloat16), SHAPE)
    assert not was_uint8 and y.dtype == tf.float32


def test_a_traced_model_input_gets_assertion_ops():
    fn = tf.function(lambda x: tfvq_images.tensor_images(x, SHAPE)[0],
                     input_signature=[tf.TensorSpec((None,) + SHAPE, tf.float32)])
    np.testing.assert_array_equal(fn(tf.fill((1,) + SHAPE, 0.25)).numpy(), np.full((1,) + SHAPE, 0.25))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"values in \[0, 1\]"):
        fn(tf.fill((1,) + SHAPE, 2.0))
    with pytest.raises(tf.errors.InvalidArgumentError, match="must be finite"):
        fn(tf.fill((1,) + SHAPE, np.nan))


def _message(fn, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as info:
        fn(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("case", ["dtype", "range", "nan", "size", "rank"])
def test_the_models_the_codec_and_the_export_give_the_same_message_for_the_same_bad_input(case):
    images, error, _ = BAD[case]
    want = _message(tfvq_images.fixed_size_batch, images, SHAPE)
    model = _message(to_float_images, images, SHAPE)
    export = _message(tflite._float_images, images, SHAPE, "images")  # pylint: disable=protected-access
    assert type(model) is type(export) is error
    assert str(model) == str(export) == str(want)
    if case != "rank":  # the codec takes one image [H, W, C] as a batch of one
        codec = _message(codec_images.as_batch, images, SHAPE)
        assert isinstance(codec, CodecError) and str(codec).startswith(str(want).split(". ")[0])


@pytest.mark.parametrize("case", ["dtype", "range", "nan", "channels"])
def test_the_codec_any_size_check_and_data_loading_give_the_normaliser_message(case, tmp_path):
    images, _, _ = BAD[case]
    want = _message(tfvq_images.any_size_batch, images, 1)
    codec = _message(codec_images.any_size_batch, images, 1)
    assert isinstance(codec, CodecError) and str(codec).split(". ")[0] == str(want).split(". ")[0]
    path = tmp_path / "bad.npy"
    np.save(path, np.repeat(images, 10, 0) if case != "channels" else np.zeros((20, 8, 8, 5), np.uint8))
    name = str(path)
    data = _message(sources.array_images, path, "train")
    if case == "channels":
        expected = _message(tfvq_images.check_any_size, (18, 8, 8, 5), (1, 2, 3, 4), name, single=False)
        assert str(data).split(", got")[0] == str(expected).split(", got")[0]
    else:
        expected = _message(tfvq_images.fixed_size_batch, images, SHAPE, name)
        assert isinstance(data, ValueError) and str(data) == str(expected)


def test_dtype_kinds_of_numpy_tensorflow_and_named_dtypes():
    for dtype in (np.uint8, "uint8", tf.uint8):
        assert tfvq_images.dtype_kind(dtype) == "uint8"
    for dtype in (np.float16, "float64", tf.float32, tf.bfloat16, "bfloat16"):
        assert tfvq_images.dtype_kind(dtype) == "float"
    for dtype in (np.int32, "int8", tf.int64, tf.string, bool, "not a dtype"):
        assert tfvq_images.dtype_kind(dtype) is None


def test_floats_become_the_nearest_8_bit_pixel():
    floats = np.array([0.0, 0.1 / 255, 0.6 / 255, 0.5, 254.4 / 255, 1.0])
    np.testing.assert_array_equal(tfvq_images.as_uint8(floats), [0, 0, 1, 128, 254, 255])
    np.testing.assert_array_equal(tfvq_images.as_float32(np.array([0, 51, 255], np.uint8)),
                                  np.float32([0.0, 0.2, 1.0]))
