"""HQA's `StochasticVectorQuantizer` and the relaxed core it shares with RRVQ's quantizer
(`tfvq.layers.stochastic_vq`), checked against NumPy and HQA eq. 3-4."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import RelaxedResponsibilityQuantizer, StochasticVectorQuantizer

RNG = np.random.default_rng(1)


def test_stochastic_log_probs_follow_hqa_eq3_with_distance_scale(built):
    for scale in (1.0, 0.5):
        svq = built(StochasticVectorQuantizer(7, 3, distance_scale=scale))
        z = RNG.normal(size=(9, 3)).astype(np.float32)
        e = svq.codebook.numpy()
        logits = -scale * ((z[:, None] - e[None]) ** 2).sum(-1)
        want = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        out = svq(z, training=False, stochastic=False)
        np.testing.assert_allclose(out["log_probs"].numpy(), want, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(out["codes"].numpy(), logits.argmax(-1))
        q = np.exp(want)
        d = ((z[:, None] - e[None]) ** 2).sum(-1)
        assert out["entropy"].numpy() == pytest.approx(-(q * want).sum(-1).mean(), rel=1e-4)
        assert out["commitment"].numpy() == pytest.approx((q * d).sum(-1).mean(), rel=1e-4)
        loss = 1e-3 * (q * d).sum(-1).mean() + 1e-3 * (q * want).sum(-1).mean()
        assert out["loss"].numpy() == pytest.approx(loss, rel=1e-4)


def test_relaxed_sample_gradients_reach_input_and_codebook(built):
    svq = built(StochasticVectorQuantizer(8, 4, temperature=0.5, seed=0))
    z = tf.Variable(RNG.normal(size=(10, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        out = svq(z, training=True)
        y = tf.reduce_sum(out["quantized"] ** 2) + out["loss"]
    gz, ge = tape.gradient(y, [z, svq.codebook])
    for g in (gz, ge):
        assert g is not None and np.isfinite(g.numpy()).all() and np.abs(g.numpy()).sum() > 0


def test_low_temperature_relaxed_sample_is_near_one_hot(built):
    z = tf.constant(RNG.normal(size=(400, 4)).astype(np.float32))

    def fraction_near_a_code(temperature):
        svq = built(StochasticVectorQuantizer(8, 4, temperature=temperature, seed=0, code_reset=False))
        out = svq(z, training=True)
        sampled_row = svq.codebook.numpy()[out["codes"].numpy()]
        return np.mean(np.abs(out["quantized"].numpy() - sampled_row).max(-1) < 1e-2)

    assert fraction_near_a_code(0.01) > 0.95
    assert fraction_near_a_code(1.0) < 0.5


@pytest.mark.parametrize("kind", [StochasticVectorQuantizer, RelaxedResponsibilityQuantizer])
def test_nothing_is_inf_or_nan_at_temperature_001_with_far_codes(kind, built):
    layer = built(kind(8, 4, temperature=0.01, seed=0))
    layer.codebook.assign(RNG.normal(size=(8, 4)) * 1e4)
    z = tf.Variable(RNG.normal(size=(16, 4)).astype(np.float32))
    with tf.GradientTape() as tape:
        out = layer(z, training=True)
        y = tf.reduce_sum(out["quantized"]) + out["loss"] + out["entropy"] + out["commitment"]
    grads = tape.gradient(y, [z, layer.codebook])
    for value in list(out.values()) + grads:
        assert np.isfinite(np.asarray(value)).all()


def test_stochastic_decode_samples_codes_at_eq3_frequencies_and_seed_reproduces(built):
    svq = built(StochasticVectorQuantizer(3, 2, distance_scale=0.5, seed=0))
    svq.codebook.assign([[0.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
    z = np.zeros((20000, 2), np.float32)
    out = svq(z, training=False, stochastic=True, seed=tf.constant([1, 2]))
    freq = np.bincount(out["codes"].numpy(), minlength=3) / len(z)
    logits = -0.5 * np.array([0.0, 1.0, 2.25])
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(freq, p, atol=0.015)
    again = svq(z, training=False, stochastic=True, seed=tf.constant([1, 2]))
    np.testing.assert_array_equal(out["codes"].numpy(), again["codes"].numpy())


def test_temperature_is_a_non_trainable_variable_a_schedule_can_set(built):
    svq = built(StochasticVectorQuantizer(4, 2, temperature=0.66))
    assert all(w is not svq.temperature for w in svq.trainable_weights)
    assert svq.temperature.numpy() == pytest.approx(0.66)
    svq.temperature.assign(0.01)
    assert svq.temperature.numpy() == pytest.approx(0.01)
    with pytest.raises(ValueError, match="temperature"):
        StochasticVectorQuantizer(4, 2, temperature=0.0)


def test_code_bias_moves_the_most_probable_code_to_argmax_of_log_q_plus_the_bias(built):
    """Entropy-constrained VQ's choice: argmax_k log q(k) + b_k (NumPy), q itself unchanged."""
    svq = built(StochasticVectorQuantizer(6, 3, distance_scale=0.7))
    x = RNG.normal(size=(40, 3)).astype(np.float32)
    bias = RNG.normal(scale=2.0, size=6).astype(np.float32)
    plain = svq(x, training=False, stochastic=False)
    biased = svq(x, training=False, stochastic=False, code_bias=bias)
    log_q = plain["log_probs"].numpy()
    np.testing.assert_array_equal(biased["codes"].numpy(), np.argmax(log_q + bias, axis=-1))
    assert not np.array_equal(biased["codes"].numpy(), plain["codes"].numpy())  # the bias moved some codes
    np.testing.assert_allclose(biased["log_probs"].numpy(), log_q, atol=1e-6)
    np.testing.assert_allclose(biased["quantized"].numpy(), svq.codebook.numpy()[biased["codes"].numpy()],
                               atol=1e-6)
    with pytest.raises(ValueError, match="training=False and stochastic=False"):
        svq(x, training=False, stochastic=True, code_bias=bias)
    with pytest.raises(ValueError, match="vector of 6 floats"):
        svq(x, training=False, stochastic=False, code_bias=bias[:5])
