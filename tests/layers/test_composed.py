"""The base of quantizers made of quantizers (`tfvq.layers.composed`): the forward pass with its code vectors
(`quantize_rows`), the inner quantizer taken as a layer or a saved config, its copies, and the code layout's
checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import FiniteScalarQuantizer, GroupedQuantizer, LookupFreeQuantizer, ResidualQuantizer, VectorQuantizer
from tfvq.layers.composed import ComposedQuantizer, quantize_rows

RNG = np.random.default_rng(11)


def test_rows_of_an_implicit_quantizer_are_the_code_vectors_of_its_codes():
    x = tf.constant(RNG.normal(size=(6, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        out, rows = quantize_rows(LookupFreeQuantizer(3), x)
    np.testing.assert_array_equal(rows.numpy(), np.where(x.numpy() > 0, 1.0, -1.0))  # MAGVIT-v2 eq. 2
    np.testing.assert_array_equal(out["quantized"].numpy(), rows.numpy())
    assert tape.gradient(rows, x) is None  # no straight-through path in the rows


def test_rows_of_a_codebook_quantizer_come_from_its_own_pass():
    vq = VectorQuantizer(5, 2, seed=1)
    vq.build((None, 2))
    book = vq.codebook.numpy().astype(np.float64)
    x = RNG.normal(size=(7, 2)).astype(np.float32)
    out, rows = quantize_rows(vq, x)
    nearest = ((x[:, None].astype(np.float64) - book[None]) ** 2).sum(-1).argmin(-1)
    np.testing.assert_array_equal(out["codes"].numpy(), nearest)
    np.testing.assert_allclose(rows.numpy(), book[nearest], rtol=0, atol=1e-7)


def test_the_inner_quantizer_is_a_layer_or_its_saved_config():
    fsq = FiniteScalarQuantizer((5, 3))
    from_layer = ResidualQuantizer(fsq, 2, name="rq")
    from_config = ResidualQuantizer(keras.saving.serialize_keras_object(fsq), 2, name="rq")
    assert from_config.get_config() == from_layer.get_config()
    assert [type(s) for s in from_config.stages] == [FiniteScalarQuantizer] * 2
    assert isinstance(from_layer, ComposedQuantizer) and isinstance(GroupedQuantizer(fsq, 2), ComposedQuantizer)


@pytest.mark.parametrize("make", [lambda q: ResidualQuantizer(q, 2), lambda q: GroupedQuantizer(q, 2)])
@pytest.mark.parametrize("inner", [keras.layers.Dense(3), keras.saving.serialize_keras_object(keras.layers.Dense(3)),
                                   "vq"])
def test_anything_else_is_refused_naming_the_quantizers_taken(make, inner):
    with pytest.raises(TypeError, match=r"^quantizer must be a tfvq quantizer layer with code vectors "
                                        r"\(VectorQuantizer, .*ResidualQuantizer\), got "):
        make(inner)


def test_copies_are_named_in_the_composed_layers_policy_with_their_seeds_moved():
    rq = ResidualQuantizer(VectorQuantizer(4, 2, seed=None), 3, dtype="mixed_bfloat16", name="rvq")
    assert [s.name for s in rq.stages] == ["stage_0", "stage_1", "stage_2"]
    assert [s.dtype_policy.name for s in rq.stages] == ["mixed_bfloat16"] * 3
    assert [s.seed for s in rq.stages] == [None] * 3  # no seed stays no seed
    assert [s.seed for s in ResidualQuantizer(VectorQuantizer(4, 2, seed=7), 3).stages] == [7, 8, 9]


def test_lookup_is_in_the_compute_dtype_and_code_vectors_in_the_work_dtype():
    rq = ResidualQuantizer(FiniteScalarQuantizer((5, 5)), 2, dtype="mixed_bfloat16")
    rq.build((None, 2))
    codes = tf.constant([[0, 24], [12, 12]])
    vectors, looked_up = rq.code_vectors(codes), rq.lookup(codes)
    assert vectors.dtype == tf.float32 and looked_up.dtype == tf.bfloat16
    # Stage 0's code 0 is (-1, -1), stage 1's code 24 is (1, 1) over the gain of 5 levels: -1 + 1/5.
    np.testing.assert_allclose(vectors.numpy(), [[-0.8, -0.8], [0.0, 0.0]], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(looked_up.numpy(), tf.cast(vectors, tf.bfloat16).numpy())


def test_the_code_layout_is_stages_times_groups_slots_and_other_codes_are_refused():
    grq = GroupedQuantizer(ResidualQuantizer(LookupFreeQuantizer(2), 3), 2)
    grq.build((None, 4))
    assert (grq.num_stages, grq.num_groups, grq.code_slots) == (3, 2, 6)
    assert grq.lookup(tf.zeros([5, 4], tf.int32)).shape == (5, 4)  # a prefix of 2 stages
    with pytest.raises(TypeError, match="^codes must be integers, got dtype float32"):
        grq.lookup(tf.zeros([5, 4]))
    for slots in (5, 8):
        message = (r"^codes must have a known trailing axis of k \* 2 slots for k in 1\.\.3 stages "
                   rf"\(shape \[\.\.\., k \* 2\], stage-major\), got shape \(5, {slots}\)")
        with pytest.raises(ValueError, match=message):
            grq.lookup(tf.zeros([5, slots], tf.int32))


def test_a_wrong_last_dimension_is_refused_at_build():
    with pytest.raises(ValueError, match=r"^ResidualQuantizer 'rq' expects inputs whose last dimension is code_dim=2, "
                                         r"got last dimension 3\."):
        ResidualQuantizer(FiniteScalarQuantizer((5, 5)), 2, name="rq").build((None, 3))
