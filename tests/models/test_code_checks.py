"""The checks of codes, layers and code biases against a code layout (`tfvq.models.code_checks`)."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.code_layout import CodeLayout
from tfvq.models.code_checks import below_layer, check_codes, checked_code_bias

# HQA-like: each layer decodes alone (Algorithm 3); RRVQ-like: a file of layer l carries layers l..L (eq. 3).
ALONE = CodeLayout(((4, 4), (2, 2), (1, 1)), (256, 5, 1), default_layer=3, cumulative=False)
CUMULATIVE = CodeLayout(((4, 4), (2, 2), (1, 1)), (256, 5, 1), default_layer=1, cumulative=True)


def test_code_logits_need_a_layer_below():
    assert below_layer(ALONE, 2) == 2
    with pytest.raises(ValueError, match="Layer 1 is the finest layer"):
        below_layer(ALONE, 1)


def test_checked_codes_are_int32_tensors_one_per_layer_sent():
    one = check_codes(np.zeros((2, 2, 2), np.int64), ALONE, 2)  # a single layer may come as a tensor
    assert len(one) == 1 and one[0].dtype == tf.int32
    codes = [np.full((2, 4, 4), 255), np.full((2, 2, 2), 4), np.zeros((2, 1, 1), np.int32)]
    assert [c.shape.as_list() for c in check_codes(codes, CUMULATIVE, 1)] == [[2, 4, 4], [2, 2, 2], [2, 1, 1]]


@pytest.mark.parametrize("codes,layer,error,match", [
    ([np.zeros((1, 2, 2), np.int32)], 1, ValueError, r"codes of layers 1\.\.3 \(3 tensors, layer 1 first\), got 1"),
    ([np.zeros((1, 2, 2), np.int32)] * 3, 2, ValueError, r"codes of layers 2\.\.3 \(2 tensors"),
    ([np.zeros((1, 2, 3), np.int32), np.zeros((1, 1, 1), np.int32)], 2, ValueError, r"shape \[batch, 2, 2\]"),
    ([np.full((1, 2, 2), 5, np.int32), np.zeros((1, 1, 1), np.int32)], 2, ValueError, r"in \[0, 4\], got .* \[5, 5\]"),
    ([np.full((1, 2, 2), -1, np.int32), np.zeros((1, 1, 1), np.int32)], 2, ValueError, r"in \[0, 4\]"),
    ([np.zeros((1, 2, 2), np.float32), np.zeros((1, 1, 1), np.int32)], 2, TypeError, "integers"),
    ([np.zeros((1, 2, 2), np.int32), np.zeros((2, 1, 1), np.int32)], 2, ValueError, "same batch size"),
])
def test_bad_codes_raise_saying_what_was_expected(codes, layer, error, match):
    with pytest.raises(error, match=match):
        check_codes(codes, CUMULATIVE, layer)


def test_a_code_bias_is_one_finite_float_per_code_of_a_layer():
    bias = checked_code_bias({2: [0, 1, 2, 3, 4]}, ALONE)
    assert list(bias) == [2] and bias[2].dtype == np.float32
    with pytest.raises(TypeError, match="code_bias must be a dict"):
        checked_code_bias([0.0] * 5, ALONE)
    with pytest.raises(ValueError, match="code_bias of layer 2 must be 5 finite floats"):
        checked_code_bias({2: [0.0] * 4}, ALONE)
    with pytest.raises(ValueError, match="5 finite floats"):
        checked_code_bias({2: [0.0, 0.0, np.inf, 0.0, 0.0]}, ALONE)
    with pytest.raises(ValueError, match="layer must be an integer"):
        checked_code_bias({4: [0.0]}, ALONE)
