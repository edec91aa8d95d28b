"""The base of the quantizers without a codebook variable (`tfvq.layers.implicit.ImplicitCodebookQuantizer`): the
input check at build and at call, inputs cast to the compute dtype, and nothing stored."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import FiniteScalarQuantizer, LookupFreeQuantizer
from tfvq.layers.implicit import ImplicitCodebookQuantizer


class Sign(ImplicitCodebookQuantizer):
    """The smallest implicit quantizer: the sign of each of `code_dim` channels."""

    def __init__(self, code_dim, **kwargs):
        super().__init__(**kwargs)
        self.code_dim = code_dim
        self.num_codes = 2**code_dim

    def call(self, inputs):
        return tf.where(self.checked_inputs(inputs) > 0, 1.0, -1.0)


def test_fsq_and_lfq_share_it_and_store_no_codebook():
    for layer in (FiniteScalarQuantizer((5, 3)), LookupFreeQuantizer(3)):
        assert isinstance(layer, ImplicitCodebookQuantizer)
        layer.build((None, layer.code_dim))
        assert layer.weights == [] and layer.built


def test_a_wrong_last_dimension_is_refused_at_build_saying_what_to_do():
    layer = Sign(3, name="sign")
    with pytest.raises(ValueError) as info:
        layer.build((None, 4))
    assert str(info.value) == ("Sign 'sign' expects inputs whose last dimension is code_dim=3, got last dimension 4. "
                               "Project the inputs to 3 channels first (e.g. a 1x1 convolution).")
    assert not layer.built
    layer.build((None, None))  # unknown: checked when called
    assert layer.built
    with pytest.raises(ValueError, match=r"code_dim=3, got last dimension 2\."):
        layer(tf.zeros([5, 2]))
    with pytest.raises(ValueError, match=r"len\(levels\)=2 \(levels=\(5, 3\)\), got last dimension 4"):
        FiniteScalarQuantizer((5, 3)).build((None, 4))  # a subclass names code_dim its own way


def test_inputs_are_checked_and_cast_to_the_compute_dtype():
    x = np.array([[0.5, -0.25, 0.0]], np.float64)
    z = Sign(3).checked_inputs(x)
    assert z.dtype == tf.float32
    np.testing.assert_array_equal(z.numpy(), x)
    assert Sign(3, dtype="mixed_bfloat16").checked_inputs(x).dtype == tf.bfloat16
    np.testing.assert_array_equal(Sign(3)(x).numpy(), [[1.0, -1.0, -1.0]])
    with pytest.raises(TypeError, match=r"^Sign 'ints' expects floating-point inputs, got dtype int32\. Cast them"):
        Sign(3, name="ints").checked_inputs(np.zeros((1, 3), np.int32))
    with pytest.raises(ValueError, match=r"expects inputs of shape \[\.\.\., 3\], got a scalar"):
        Sign(3).checked_inputs(1.0)
