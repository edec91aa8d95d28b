"""BinarySphericalQuantizer against a NumPy oracle of Zhao et al. 2024 (BSQ): projection, sign, 1/sqrt(d) codes,
the per-bit factorised entropies (eq. 8 for the codebook entropy) and the straight-through gradient."""

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import BinarySphericalQuantizer
from tfvq.layers.precision import precision_scope

RNG = np.random.default_rng(31)


def h2(p):
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def np_bsq(v, entropy_weight=0.1, commitment_cost=0.0, gamma=1.0, temperature=1.0, codebook="factorized"):
    """BSQ in float64 from its definition: u = v/|v|, q = sign(u)/sqrt(d); the soft assignment
    q(c|u) ∝ exp(tau c.u), tau = 2d/T, over the explicit codebook {-1, +1}^d / sqrt(d)."""
    d = v.shape[-1]
    u = v / np.linalg.norm(v, axis=-1, keepdims=True)
    q = np.where(u > 0, 1.0, -1.0) / np.sqrt(d)
    codes = ((u > 0) * 2 ** np.arange(d)).sum(-1)
    flat, qf = u.reshape(-1, d), q.reshape(-1, d)
    corners = np.array(list(itertools.product([-1.0, 1.0], repeat=d)))[:, ::-1] / np.sqrt(d)
    logits = (2 * d / temperature) * flat @ corners.T
    soft = np.exp(logits - logits.max(-1, keepdims=True))
    soft /= soft.sum(-1, keepdims=True)
    per_sample = -(soft * np.log(soft)).sum(-1).mean()  # the exact entropy of q(c|u): the factorisation's sum
    # p(c_i > 0 | u): the marginal of the explicit softmax, which the factorisation says is a sigmoid.
    marginals = np.stack([soft[:, corners[:, i] > 0].sum(-1) for i in range(d)], -1)
    if codebook == "factorized":
        codebook_entropy = h2(marginals.mean(0)).sum()  # eq. 8
    else:
        mean = soft.mean(0)
        codebook_entropy = -(mean * np.log(mean)).sum()
    commitment = ((flat - qf) ** 2).sum(-1).mean()
    loss = commitment_cost * commitment + entropy_weight * (per_sample - gamma * codebook_entropy)
    return q, codes, marginals, dict(loss=loss, commitment=commitment, entropy=per_sample,
                                     codebook_entropy=codebook_entropy)


def test_forward_projects_takes_signs_and_scales_codes_onto_the_sphere():
    bsq = BinarySphericalQuantizer(5)
    v = RNG.normal(size=(3, 4, 5)).astype(np.float32) * 7.0
    out = bsq(v)
    q, codes, _, _ = np_bsq(v.astype(np.float64))
    np.testing.assert_allclose(out["quantized"].numpy(), q, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(out["codes"].numpy(), codes)
    np.testing.assert_allclose(np.linalg.norm(out["quantized"].numpy(), axis=-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(bsq.lookup(out["codes"]).numpy(), out["quantized"].numpy())
    np.testing.assert_array_equal(bsq.nearest_codes(v).numpy(), codes)
    assert bsq.num_codes == 32 and bsq.weights == []


@pytest.mark.parametrize("codebook", ["factorized", "exact"])
@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_losses_match_the_explicit_soft_assignment_over_all_codes(codebook, temperature):
    v = RNG.normal(size=(40, 4)).astype(np.float32)
    bsq = BinarySphericalQuantizer(4, entropy_weight=0.3, commitment_cost=0.5, diversity_gamma=0.7,
                                   temperature=temperature, codebook_entropy=codebook)
    out = bsq(v)
    _, _, marginals, want = np_bsq(v.astype(np.float64), 0.3, 0.5, 0.7, temperature, codebook)
    for key, value in want.items():
        assert out[key].numpy() == pytest.approx(value, rel=1e-4, abs=1e-6), key
    # The factorisation: each bit's marginal of the explicit softmax is sigmoid(4 sqrt(d) u_i / T).
    u = v.astype(np.float64) / np.linalg.norm(v.astype(np.float64), axis=-1, keepdims=True)
    np.testing.assert_allclose(marginals, 1 / (1 + np.exp(-4 * 2 * u / temperature)), rtol=1e-9)


def test_factorised_codebook_entropy_bounds_the_exact_one_from_above():
    v = np.concatenate([RNG.normal(size=(30, 6)) + 2.0, RNG.normal(size=(30, 6)) - 2.0]).astype(np.float32)
    a = BinarySphericalQuantizer(6)(v)["codebook_entropy"].numpy()
    b = BinarySphericalQuantizer(6, codebook_entropy="exact")(v)["codebook_entropy"].numpy()
    assert a > b + 0.5  # correlated bits: their marginals look balanced, the joint does not


def test_gradient_is_straight_through_to_the_projection():
    bsq = BinarySphericalQuantizer(4)
    v = tf.Variable(RNG.normal(size=(6, 4)).astype(np.float32))
    w = RNG.normal(size=(6, 4)).astype(np.float32)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(bsq(v)["quantized"] * w)
    vn = v.numpy().astype(np.float64)
    norm = np.linalg.norm(vn, axis=-1, keepdims=True)
    u = vn / norm
    want = (w - (w * u).sum(-1, keepdims=True) * u) / norm  # d(w.u)/dv = (I - u u^T) w / |v|
    np.testing.assert_allclose(tape.gradient(y, v).numpy(), want, rtol=1e-5, atol=1e-7)


def test_mixed_bfloat16_codes_equal_float32_codes_away_from_zero():
    v = RNG.normal(size=(16, 6))
    v = (np.sign(v) * (np.abs(v) + 0.1)).astype(np.float32)
    with precision_scope("mixed_bfloat16"):
        mixed = BinarySphericalQuantizer(6)
    a, b = mixed(v), BinarySphericalQuantizer(6)(v)
    assert a["quantized"].dtype == tf.bfloat16 and a["loss"].dtype == tf.float32
    np.testing.assert_array_equal(a["codes"].numpy(), b["codes"].numpy())
    np.testing.assert_array_equal(a["quantized"].numpy(), tf.cast(b["quantized"], tf.bfloat16).numpy())
    assert a["loss"].numpy() == pytest.approx(b["loss"].numpy(), rel=2e-2, abs=1e-3)


def test_bad_arguments_raise_errors_naming_what_was_expected():
    with pytest.raises(ValueError, match="code_dim must be an integer"):
        BinarySphericalQuantizer(31)
    with pytest.raises(ValueError, match="codebook_entropy must be one of"):
        BinarySphericalQuantizer(4, codebook_entropy="approx")
    with pytest.raises(ValueError, match="code_dim=4"):
        BinarySphericalQuantizer(4)(tf.zeros([2, 3]))


def test_config_keras_file_and_a_tiny_fit(keras_round_trip, fit_through):
    bsq = BinarySphericalQuantizer(6, entropy_weight=0.2, temperature=2.0, name="bsq")
    assert BinarySphericalQuantizer.from_config(bsq.get_config()).get_config() == bsq.get_config()
    inputs = keras.Input((5,))
    out = bsq(keras.layers.Dense(6)(inputs))
    keras_round_trip(keras.Model(inputs, out), bsq, RNG.normal(size=(4, 5)).astype(np.float32))
    history = fit_through(BinarySphericalQuantizer(6), 6, RNG.normal(size=(128, 5)).astype(np.float32))
    assert np.all(np.isfinite(history)) and history[-1] < history[0]


def test_mirrored_codebook_entropy_is_that_of_the_global_batch(mirrored_strategy, on_replicas):
    halves = [(RNG.normal(size=(6, 4)) + 0.8).astype(np.float32), (RNG.normal(size=(6, 4)) - 0.8).astype(np.float32)]
    with mirrored_strategy.scope():
        bsq = BinarySphericalQuantizer(4)
    got = on_replicas(lambda z: bsq(z, training=True)["codebook_entropy"], halves)
    want = np_bsq(np.concatenate(halves).astype(np.float64))[3]["codebook_entropy"]
    assert got == pytest.approx([want, want], rel=1e-5)
