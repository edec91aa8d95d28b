"""`ResidualQuantizer` over FSQ, LFQ, BSQ and VQ stages against a NumPy oracle of the scaled residual chain."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import (
    BinarySphericalQuantizer,
    FiniteScalarQuantizer,
    LookupFreeQuantizer,
    ResidualQuantizer,
    ResidualVectorQuantizer,
    SimVectorQuantizer,
    VectorQuantizer,
)
from tfvq.layers.precision import precision_scope

RNG = np.random.default_rng(29)
BSQ_GAIN = 1.0 / math.sqrt(1.0 - 2.0 / math.pi)


# ------------------------------------------------------------------ oracles
def fsq_target(z, levels, eps=1e-3):
    """FSQ's bounded value bound(z) / (L // 2) (Mentzer et al. App. A.1), float64."""
    lv = np.asarray(levels)
    half_l = (lv - 1) * (1 - eps) / 2
    offset = np.where(lv % 2 == 0, 0.5, 0.0)
    ratio = offset / half_l
    shift = np.where(ratio < 1, np.arctanh(np.where(ratio < 1, ratio, 0.0)), 0.0)
    return (np.tanh(z + shift) * half_l - offset) / (lv // 2)


def fsq_stage(levels):
    """A stage's code values of a (scaled) target: round it on the grid, clipped to the outer levels."""
    lv = np.asarray(levels)

    def stage(x):
        digits = np.clip(np.round(x * (lv // 2)), -(lv // 2), (lv - 1) // 2)
        return digits / (lv // 2), ((digits + lv // 2) * np.cumprod([1] + list(lv[:-1]))).sum(-1)

    return stage


def sign_stage(scale):
    def stage(x):
        positive = x > 0
        return np.where(positive, scale, -scale), (positive * 2 ** np.arange(x.shape[-1])).sum(-1)

    return stage


def np_residual(target, stage, gain, depth):
    """The chain: r_0 = t, stage i codes g^i r_i to v_i, r_{i+1} = r_i - v_i / g^i. Returns the sums after
    each depth and the codes `[N, depth]`."""
    residual, total, sums, codes = target.copy(), np.zeros_like(target), [], []
    for i in range(depth):
        values, c = stage(residual * gain**i)
        total = total + values / gain**i
        residual = residual - values / gain**i
        sums.append(total.copy())
        codes.append(c)
    return sums, np.stack(codes, -1)


def errors(sums, target):
    return [float(((s - target) ** 2).sum(-1).mean()) for s in sums]


# ------------------------------------------------------ the chain, per kind
@pytest.mark.parametrize("levels, fall", [((5, 5, 5), 15.0), ((7, 4, 3), 5.0)])
def test_residual_fsq_matches_the_oracle_and_its_error_falls_by_about_g_squared_per_stage(levels, fall):
    rfsq = ResidualQuantizer(FiniteScalarQuantizer(levels), 4)
    assert rfsq.stages[0].residual_gain == tuple(float(2 * ((n - 1) // 2) + 1) for n in levels)
    z = RNG.uniform(-1.5, 1.5, size=(500, 3)).astype(np.float32)
    target = fsq_target(z.astype(np.float64), levels)
    gain = np.asarray(rfsq.stages[0].residual_gain)
    sums, codes = np_residual(target, fsq_stage(levels), gain, 4)
    out = rfsq(z)
    np.testing.assert_array_equal(out["codes"].numpy(), codes)
    np.testing.assert_allclose(out["quantized"].numpy(), sums[-1], atol=1e-6)
    got = [float(((rfsq(z, num_quantizers=k)["quantized"].numpy() - target) ** 2).sum(-1).mean()) for k in (1, 2, 3, 4)]
    np.testing.assert_allclose(got, errors(sums, target), rtol=1e-3, atol=1e-12)
    # The squared error falls by about g^2 per stage (25 for L = 5; 9 where L = 3 and 4 bound it).
    assert all(a > fall * b for a, b in zip(got, got[1:])), got


def test_residual_lfq_is_successive_approximation_halving_the_error_bound_per_stage():
    rlfq = ResidualQuantizer(LookupFreeQuantizer(4), 5)
    z = RNG.uniform(-2.0, 2.0, size=(400, 4)).astype(np.float32)
    sums, codes = np_residual(z.astype(np.float64), sign_stage(1.0), 2.0, 5)
    out = rlfq(z)
    np.testing.assert_array_equal(out["codes"].numpy(), codes)
    np.testing.assert_allclose(out["quantized"].numpy(), sums[-1], atol=1e-6)
    for k, total in enumerate(sums, start=1):
        assert np.abs(total - z).max() <= 2.0 ** (1 - k) + 1e-6  # |error| <= 2^(1-k) on [-2, 2]
    err = errors(sums, z)
    assert all(a > 3.0 * b for a, b in zip(err, err[1:])), err


def test_residual_bsq_approaches_the_unit_vector_and_its_error_falls_with_depth():
    rbsq = ResidualQuantizer(BinarySphericalQuantizer(8), 5)
    z = RNG.normal(size=(600, 8)).astype(np.float32)
    u = z / np.linalg.norm(z, axis=-1, keepdims=True)
    sums, codes = np_residual(u.astype(np.float64), sign_stage(1 / math.sqrt(8)), BSQ_GAIN, 5)
    out = rbsq(z * 3.0)  # the input's scale does not matter: BSQ projects it
    np.testing.assert_array_equal(out["codes"].numpy(), codes)
    np.testing.assert_allclose(out["quantized"].numpy(), sums[-1], atol=1e-5)
    err = errors(sums, u)
    assert err[0] > 0.3 and all(a > 2.0 * b for a, b in zip(err, err[1:])), err  # measured: x2.7 to x3.4


# ------------------------------------------------------------- the contract
@pytest.mark.parametrize(
    "inner, width",
    [(FiniteScalarQuantizer((5, 4, 3)), 3), (LookupFreeQuantizer(3), 3), (BinarySphericalQuantizer(4), 4),
     (VectorQuantizer(6, 3, seed=1), 3), (SimVectorQuantizer(6, 3, seed=1), 3)],
    ids=["fsq", "lfq", "bsq", "vq", "simvq"],
)
def test_one_stage_is_the_quantizer_itself_and_lookup_and_nearest_codes_agree_with_the_call(
        inner, width, built):
    rq = built(ResidualQuantizer(inner, 3, seed=2))
    alone = built(type(inner).from_config(rq.stages[0].get_config()))
    for a, b in zip(alone.weights, rq.stages[0].weights):
        a.assign(b)
    z = tf.Variable(RNG.normal(size=(4, 5, width)).astype(np.float32))
    w = RNG.normal(size=(4, 5, width)).astype(np.float32)
    with tf.GradientTape(persistent=True) as tape:
        one, plain = rq(z, num_quantizers=1), alone(z)
        y_one, y_plain = tf.reduce_sum(one["quantized"] * w), tf.reduce_sum(plain["quantized"] * w)
    np.testing.assert_array_equal(one["codes"].numpy()[..., 0], plain["codes"].numpy())
    # (VQ's own output is z + sg[q - z], q up to rounding; the stack's is the code vector exactly.)
    np.testing.assert_allclose(one["quantized"].numpy(), plain["quantized"].numpy(), rtol=0, atol=1e-6)
    plain_gradient = tape.gradient(y_plain, z).numpy()
    np.testing.assert_allclose(tape.gradient(y_one, z).numpy(), plain_gradient, rtol=1e-6)
    for k in (1, 2, 3):
        out = rq(z, num_quantizers=k)
        assert out["codes"].shape == (4, 5, k) and out["perplexities"].shape == (k,)
        np.testing.assert_array_equal(rq.lookup(out["codes"]).numpy(), out["quantized"].numpy())
        np.testing.assert_array_equal(rq.nearest_codes(z, num_quantizers=k).numpy(), out["codes"].numpy())
    # The output's gradient is stage 0's at any depth.
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(rq(z)["quantized"] * w)
    np.testing.assert_allclose(tape.gradient(y, z).numpy(), plain_gradient, rtol=1e-6)
    assert rq.code_slots == 3 and rq.num_groups == 1 and rq.num_codes == inner.num_codes


def test_vq_stages_give_what_residual_vector_quantizer_gives():
    old = ResidualVectorQuantizer(3, 8, 4, commitment_cost=0.3, ema=True, seed=4)
    new = ResidualQuantizer(VectorQuantizer(8, 4, commitment_cost=0.3, ema=True, seed=4), 3)
    z = RNG.normal(size=(32, 4)).astype(np.float32)
    for _ in range(2):
        a, b = old(z, training=True), new(z, training=True)
        for key in ("quantized", "codes", "loss", "perplexities"):
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)
    assert [s.seed for s in new.stages] == [4, 5, 6]


def test_quantizer_dropout_over_lfq_stages_skips_stages_per_example():
    rq = ResidualQuantizer(LookupFreeQuantizer(3), 3, dropout=True, seed=5)
    z = RNG.uniform(-2, 2, size=(40, 4, 3)).astype(np.float32)
    out = rq(z, training=True)
    used = out["codes"].numpy() >= 0
    depth = used.sum(-1)
    assert (depth == depth[:, :1]).all() and set(depth[:, 0]) == {1, 2, 3}
    assert (used[..., 1:] <= used[..., :-1]).all()
    np.testing.assert_array_equal(rq.lookup(out["codes"]).numpy(), out["quantized"].numpy())
    sums, _ = np_residual(z.reshape(-1, 3).astype(np.float64), sign_stage(1.0), 2.0, 3)
    want = np.choose(depth.reshape(-1)[:, None] - 1, sums)  # each row's sum at its own depth
    np.testing.assert_allclose(out["quantized"].numpy().reshape(-1, 3), want, atol=1e-6)


def test_bad_arguments_raise_errors_naming_what_was_expected():
    with pytest.raises(ValueError, match="num_quantizers must be an integer >= 1"):
        ResidualQuantizer(LookupFreeQuantizer(3), 0)
    with pytest.raises(ValueError, match="GroupedQuantizer"):
        ResidualQuantizer(ResidualQuantizer(LookupFreeQuantizer(3), 2), 2)
    with pytest.raises(ValueError, match="gain must be None or a number > 0"):
        ResidualQuantizer(LookupFreeQuantizer(3), 2, gain=0.0)
    rq = ResidualQuantizer(FiniteScalarQuantizer((5, 5)), 2)
    with pytest.raises(ValueError, match="code_dim=2"):
        rq(tf.zeros([3, 4]))
    with pytest.raises(ValueError, match=r"num_quantizers must be a Python int in \[1, 2\]"):
        rq(tf.zeros([3, 2]), num_quantizers=3)
    with pytest.raises(ValueError, match="k \\* 1 slots"):
        rq.lookup(tf.zeros([3, 3], tf.int32))


def test_config_and_keras_file_round_trip_keep_the_inner_quantizer_and_the_gain(keras_round_trip):
    rq = ResidualQuantizer(FiniteScalarQuantizer((5, 3)), 3, dropout=True, gain=4.0, seed=6, name="rfsq")
    config = rq.get_config()
    assert config["quantizer"]["class_name"] == "FiniteScalarQuantizer" and config["gain"] == 4.0
    assert ResidualQuantizer.from_config(config).get_config() == config
    inputs = keras.Input((3, 2))
    model = keras.Model(inputs, rq(inputs))
    keras_round_trip(model, rq, RNG.normal(size=(2, 3, 2)).astype(np.float32))
    vq = ResidualQuantizer(VectorQuantizer(6, 2, distance="cosine", seed=3), 2, name="rvq_cosine")
    model = keras.Model(inputs, vq(inputs))
    keras_round_trip(model, vq, RNG.normal(size=(2, 3, 2)).astype(np.float32))


def test_a_tiny_model_fits_through_a_residual_fsq(fit_through):
    x = RNG.uniform(-1, 1, size=(256, 6)).astype(np.float32)
    history = fit_through(ResidualQuantizer(FiniteScalarQuantizer((5, 5, 5)), 3), 3, x, epochs=6, learning_rate=0.02)
    assert np.all(np.isfinite(history)) and history[-1] < 0.7 * history[0]


def test_mixed_bfloat16_codes_equal_float32_codes_on_inputs_at_cell_centres(built):
    # Targets built from random digits sit at the centres of every stage's cells (margin: half a step).
    levels, depth = (5, 5, 5), 3
    digits = RNG.integers(-2, 3, size=(30, depth, 3))
    target = sum(digits[:, i] / 2 / 5.0**i for i in range(depth))
    half_l = 2 * (1 - 1e-3)
    z = np.arctanh(np.clip(target, -0.99, 0.99) * 2 / half_l)
    z = tf.cast(tf.cast(z, tf.bfloat16), tf.float32).numpy()  # the same inputs under both policies
    with precision_scope("mixed_bfloat16"):
        mixed = built(ResidualQuantizer(FiniteScalarQuantizer(levels), depth))
    full = built(ResidualQuantizer(FiniteScalarQuantizer(levels), depth))
    a, b = mixed(z), full(z)
    assert a["quantized"].dtype == tf.bfloat16 and a["codes"].dtype == tf.int32
    np.testing.assert_array_equal(a["codes"].numpy(), b["codes"].numpy())
    np.testing.assert_array_equal(mixed.lookup(a["codes"]).numpy(), a["quantized"].numpy())


def test_mirrored_stage_perplexities_are_those_of_the_global_batch(mirrored_strategy, on_replicas):
    halves = [RNG.uniform(-1, 0, size=(8, 2)).astype(np.float32), RNG.uniform(0, 1, size=(8, 2)).astype(np.float32)]
    with mirrored_strategy.scope():
        rq = ResidualQuantizer(FiniteScalarQuantizer((5, 5)), 2)
    got = on_replicas(lambda z: rq(z, training=True)["perplexities"], halves)
    want = rq(np.concatenate(halves))["perplexities"].numpy()
    for g in got:
        np.testing.assert_allclose(g, want, rtol=1e-5)
