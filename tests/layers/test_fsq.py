"""FiniteScalarQuantizer against a NumPy oracle of Mentzer et al. 2023, §3.1 / App. A.1."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import FiniteScalarQuantizer
from tfvq.layers.precision import precision_scope

RNG = np.random.default_rng(7)


def np_fsq(z, levels, eps=1e-3):
    """The paper's bound, round and normalisation, and the mixed-radix code (float64)."""
    lv = np.asarray(levels)
    half_l = (lv - 1) * (1 - eps) / 2
    offset = np.where(lv % 2 == 0, 0.5, 0.0)
    ratio = offset / half_l
    shift = np.where(ratio < 1, np.arctanh(np.where(ratio < 1, ratio, 0.0)), 0.0)  # L = 2: no shift
    bounded = np.tanh(z + shift) * half_l - offset
    rounded = np.round(bounded)  # half to even, like tf.round
    quantized = rounded / (lv // 2)
    digits = (rounded + lv // 2).astype(np.int64)
    basis = np.cumprod([1] + list(lv[:-1]))
    return bounded, quantized, (digits * basis).sum(-1), shift, half_l


def level_centre_inputs(levels, eps=1e-3):
    """One input per grid point: z whose bounded value is each level (pulled 0.2 inside the outer ones).

    Returns `[prod(levels), d]` inputs and their `[prod(levels), d]` digits (channel 0 fastest)."""
    lv = np.asarray(levels)
    half_l = (lv - 1) * (1 - eps) / 2
    offset = np.where(lv % 2 == 0, 0.5, 0.0)
    _, _, _, shift, _ = np_fsq(np.zeros(len(levels)), levels, eps)
    digits = np.array([d[::-1] for d in itertools.product(*[range(n) for n in levels[::-1]])])
    target = digits - lv // 2
    target = np.clip(target, -half_l - offset + 0.2, half_l - offset - 0.2)
    z = np.arctanh((target + offset) / half_l) - shift
    return z.astype(np.float32), digits


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (2, 3, 4, 7)])
def test_forward_matches_numpy_oracle_of_bound_round_and_normalise(levels):
    fsq = FiniteScalarQuantizer(levels)
    z = (RNG.normal(size=(2, 5, len(levels))) * 1.5).astype(np.float32)
    out = fsq(z)
    _, want_q, want_codes, _, _ = np_fsq(z.astype(np.float64), levels)
    np.testing.assert_allclose(out["quantized"].numpy(), want_q, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(out["codes"].numpy(), want_codes)
    assert out["codes"].dtype == tf.int32 and out["codes"].shape == (2, 5)
    assert np.abs(out["quantized"].numpy()).max() <= 1.0
    assert out["loss"].numpy() == 0.0 and fsq.num_codes == int(np.prod(levels))
    assert fsq.weights == []  # the codebook is implicit


def test_every_grid_point_has_its_own_code_in_mixed_radix_order():
    levels = (2, 3, 4)
    fsq = FiniteScalarQuantizer(levels)
    z, digits = level_centre_inputs(levels)
    out = fsq(z)
    np.testing.assert_array_equal(out["codes"].numpy(), np.arange(24))  # channel 0 is the least significant digit
    np.testing.assert_array_equal(fsq.codes_to_levels(out["codes"]).numpy(), digits)
    want = (digits - np.array(levels) // 2) / (np.array(levels) // 2)
    np.testing.assert_array_equal(out["quantized"].numpy(), want.astype(np.float32))
    # The grid of the paper: L = 4 gives -1, -0.5, 0, 0.5; L = 3 gives -1, 0, 1; L = 2 gives -1, 0.
    assert sorted(set(out["quantized"].numpy()[:, 2])) == [-1.0, -0.5, 0.0, 0.5]
    assert sorted(set(out["quantized"].numpy()[:, 1])) == [-1.0, 0.0, 1.0]
    assert sorted(set(out["quantized"].numpy()[:, 0])) == [-1.0, 0.0]


def test_zero_input_lands_on_the_central_level_and_shift_uses_atanh():
    fsq = FiniteScalarQuantizer((8, 5, 6, 3))
    np.testing.assert_allclose(fsq.bound(tf.zeros([1, 4])).numpy(), 0.0, atol=1e-6)
    _, _, _, shift, half_l = np_fsq(np.zeros(4), (8, 5, 6, 3))
    np.testing.assert_allclose(shift, [np.arctanh(0.5 / half_l[0]), 0.0, np.arctanh(0.5 / half_l[2]), 0.0])


def test_lookup_returns_quantized_exactly_and_digits_round_trip():
    fsq = FiniteScalarQuantizer((8, 5, 5, 5))
    out = fsq(RNG.normal(size=(6, 3, 4)).astype(np.float32) * 2)
    np.testing.assert_array_equal(fsq.lookup(out["codes"]).numpy(), out["quantized"].numpy())
    codes = tf.range(fsq.num_codes)
    digits = fsq.codes_to_levels(codes).numpy()
    want = np.stack([codes.numpy() % 8, codes.numpy() // 8 % 5, codes.numpy() // 40 % 5, codes.numpy() // 200], -1)
    np.testing.assert_array_equal(digits, want)
    np.testing.assert_array_equal(fsq.levels_to_codes(digits).numpy(), codes.numpy())
    with pytest.raises(TypeError, match="integers"):
        fsq.lookup(tf.constant([0.5]))
    with pytest.raises(ValueError, match=r"\[\.\.\., 4\]"):
        fsq.levels_to_codes(tf.zeros([2, 3], tf.int32))


def test_gradient_passes_straight_through_the_rounding_of_the_bound():
    levels = (8, 5, 2)
    fsq = FiniteScalarQuantizer(levels)
    z = tf.Variable(RNG.normal(size=(7, 3)).astype(np.float32))
    w = RNG.normal(size=(7, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(fsq(z)["quantized"] * w)
    _, _, _, shift, half_l = np_fsq(np.zeros(3), levels)
    # d quantized / dz = d bounded / dz / (L // 2) = half_l (1 - tanh^2(z + shift)) / (L // 2)
    want = w * half_l * (1 - np.tanh(z.numpy() + shift) ** 2) / (np.array(levels) // 2)
    np.testing.assert_allclose(tape.gradient(y, z).numpy(), want, rtol=1e-5, atol=1e-7)


def test_perplexity_is_that_of_the_batch_code_usage():
    fsq = FiniteScalarQuantizer((3, 3))
    z, _ = level_centre_inputs((3, 3))
    batch = z[[0, 0, 0, 1, 4, 4]]
    p = np.array([3, 1, 2]) / 6
    assert fsq(batch)["perplexity"].numpy() == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-5)


def test_empty_batch_and_tf_function_match_eager():
    fsq = FiniteScalarQuantizer((8, 5, 5, 5))
    out = fsq(tf.zeros([0, 4]))
    assert out["quantized"].shape == (0, 4) and out["codes"].shape == (0,)
    assert out["perplexity"].numpy() == pytest.approx(1.0)
    z = tf.constant(RNG.normal(size=(5, 4)), tf.float32)
    graph = tf.function(lambda x: fsq(x))(z)
    np.testing.assert_array_equal(graph["codes"].numpy(), fsq(z)["codes"].numpy())
    np.testing.assert_array_equal(graph["quantized"].numpy(), fsq(z)["quantized"].numpy())


def test_bad_arguments_raise_errors_naming_what_was_expected():
    for levels, match in [((8, 1, 5), "integer >= 2"), ((), "at least one"), ((2.5, 3), "integer >= 2"),
                          ((2**16, 2**16), "int32"), (7, "sequence")]:
        with pytest.raises(ValueError, match=match):
            FiniteScalarQuantizer(levels)
    with pytest.raises(ValueError, match="eps"):
        FiniteScalarQuantizer((5, 5), eps=1.0)
    fsq = FiniteScalarQuantizer((8, 5, 5, 5))
    with pytest.raises(ValueError, match=r"len\(levels\)=4"):
        fsq(tf.zeros([2, 3]))
    with pytest.raises(TypeError, match="floating-point"):
        fsq(tf.zeros([2, 4], tf.int32))


def test_config_and_keras_file_round_trip_give_identical_outputs(keras_round_trip):
    fsq = FiniteScalarQuantizer((7, 5, 4), eps=2e-3)
    clone = FiniteScalarQuantizer.from_config(fsq.get_config())
    assert clone.levels == (7, 5, 4) and clone.eps == 2e-3
    inputs = keras.Input((3, 3))
    out = fsq(inputs)
    model = keras.Model(inputs, {"quantized": out["quantized"], "codes": out["codes"]})
    keras_round_trip(model, fsq, RNG.normal(size=(2, 3, 3)).astype(np.float32))


def test_nearest_codes_are_the_forward_codes_without_touching_the_layers_state(nearest_codes_are_forward_codes):
    nearest_codes_are_forward_codes(FiniteScalarQuantizer(levels=(8, 5, 3)), 3)


def test_mixed_bfloat16_keeps_index_maths_in_float32():
    levels = (8, 5, 5, 5)
    with precision_scope("mixed_bfloat16"):
        mixed = FiniteScalarQuantizer(levels)
    full = FiniteScalarQuantizer(levels)
    # Well-separated inputs (the grid's level centres): the same codes.
    z, _ = level_centre_inputs(levels)
    out = mixed(z)
    assert out["quantized"].dtype == tf.bfloat16 and out["codes"].dtype == tf.int32
    np.testing.assert_array_equal(out["codes"].numpy(), full(z)["codes"].numpy())
    np.testing.assert_array_equal(mixed.lookup(out["codes"]).numpy(), out["quantized"].numpy())
    # Any bfloat16-representable input: bit-identical codes, since bound and round run in float32.
    zb = tf.cast(tf.cast(RNG.normal(size=(64, 4)) * 2, tf.bfloat16), tf.float32)
    np.testing.assert_array_equal(mixed(zb)["codes"].numpy(), full(zb)["codes"].numpy())


def test_tiny_autoencoder_fit_reduces_the_loss():
    keras.utils.set_random_seed(0)
    x = np.tanh(RNG.normal(size=(128, 3)) @ RNG.normal(size=(3, 8))).astype(np.float32)
    inputs = keras.Input((8,))
    codes_in = keras.layers.Dense(3)(inputs)
    quantized = FiniteScalarQuantizer((8, 8, 8))(codes_in)["quantized"]
    model = keras.Model(inputs, keras.layers.Dense(8)(quantized))
    model.compile(keras.optimizers.Adam(0.03), "mse")
    history = model.fit(x, x, epochs=15, batch_size=32, verbose=0).history["loss"]
    assert history[-1] < 0.4 * history[0]
