"""Mixed precision (`tfvq.layers.precision`): the precisions taken, the dtype policy of a block of model building,
and which dtypes are widened to float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers.precision import (
    PRECISIONS,
    check_precision,
    is_low_precision,
    logits_dtype,
    precision_scope,
    to_float32,
)


def test_the_precisions_are_keras_policies_and_others_are_refused_with_the_choices():
    for precision in PRECISIONS:
        assert check_precision(precision) == precision == keras.DTypePolicy(precision).name
    with pytest.raises(ValueError, match=r"^precision must be one of float32, mixed_bfloat16, mixed_float16, "
                                         r"got 'bfloat16'\. mixed_bfloat16 suits CPUs"):
        check_precision("bfloat16")


@pytest.mark.parametrize("precision,compute", [("float32", "float32"), ("mixed_bfloat16", "bfloat16"),
                                               ("mixed_float16", "float16")])
def test_layers_built_in_the_scope_keep_its_policy_and_the_previous_policy_comes_back(precision, compute):
    assert keras.config.dtype_policy().name == "float32"
    with precision_scope(precision):
        assert keras.config.dtype_policy().name == precision
        layer = keras.layers.Dense(2)
    assert keras.config.dtype_policy().name == "float32"
    y = layer(np.ones((1, 3), np.float32))
    assert y.dtype == compute and layer.kernel.dtype == "float32"


def test_the_previous_policy_comes_back_after_an_error_and_a_bad_precision_changes_nothing():
    with pytest.raises(RuntimeError, match="inside"):
        with precision_scope("mixed_bfloat16"):
            raise RuntimeError("inside")
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(ValueError, match="precision must be one of"):
        with precision_scope("half"):
            pass
    assert keras.config.dtype_policy().name == "float32"
    with precision_scope("mixed_float16"):  # nested: each block restores the one around it
        with precision_scope("mixed_bfloat16"):
            assert keras.config.dtype_policy().name == "mixed_bfloat16"
        assert keras.config.dtype_policy().name == "mixed_float16"
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("dtype,low,logits", [(tf.bfloat16, True, tf.float32), ("float16", True, tf.float32),
                                              (tf.float32, False, tf.float32), ("float64", False, tf.float64)])
def test_16_bit_floats_are_widened_to_float32_and_wider_ones_kept(dtype, low, logits):
    assert is_low_precision(dtype) is low and logits_dtype(dtype) == logits
    x = tf.constant([0.5, -2.0], dtype)
    y = to_float32(x)
    assert y.dtype == (tf.float32 if low else x.dtype)
    np.testing.assert_array_equal(y.numpy().astype(np.float64), [0.5, -2.0])


def test_to_float32_takes_arrays_and_lists():
    assert to_float32([1.0, 2.0]).dtype == tf.float32
    assert to_float32(np.array([1.0], np.float16)).dtype == tf.float32
    assert to_float32(np.array([1.0], np.float64)).dtype == tf.float64
