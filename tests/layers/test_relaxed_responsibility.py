"""RRVQ's `RelaxedResponsibilityQuantizer` (`tfvq.layers.relaxed_responsibility`) against NumPy: the
Gaussian-mixture responsibilities of RRVQ eq. 6-7, the KL of eq. 5 and the entropy bound of App. D."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers import RelaxedResponsibilityQuantizer

RNG = np.random.default_rng(1)


@pytest.mark.parametrize("cov,shape", [("diagonal", (8, 4)), ("isotropic", (8, 1)), ("unit", None)])
def test_rrvq_variance_codebook_shapes(cov, shape, built):
    layer = built(RelaxedResponsibilityQuantizer(8, 4, covariance=cov))
    if shape is None:
        assert layer.log_variances is None
    else:
        assert tuple(layer.log_variances.shape) == shape


def test_rrvq_responsibilities_match_gaussian_mixture_eq6_for_random_means_and_variances(built):
    layer = built(RelaxedResponsibilityQuantizer(9, 5, dtype="float64"), 5)
    mu = RNG.normal(size=(9, 5))
    log_var = RNG.uniform(-1.5, 1.5, size=(9, 5))
    layer.codebook.assign(mu)
    layer.log_variances.assign(log_var)
    e = RNG.normal(size=(3, 4, 5))
    var = np.exp(log_var)
    dens = np.exp(-0.5 * ((e[..., None, :] - mu) ** 2 / var).sum(-1)) / np.sqrt((2 * np.pi) ** 5 * var.prod(-1))
    want = np.log(dens / dens.sum(-1, keepdims=True))
    np.testing.assert_allclose(layer.log_responsibilities(e).numpy(), want, rtol=1e-9, atol=1e-9)
    out = layer(e, training=False, stochastic=False)
    np.testing.assert_allclose(out["log_probs"].numpy(), want, rtol=1e-9, atol=1e-9)


def test_rrvq_kl_is_zero_when_q_and_p_embeddings_coincide_and_matches_analytic_kl(built):
    layer = built(RelaxedResponsibilityQuantizer(6, 3, seed=2))
    layer.log_variances.assign(RNG.uniform(-1, 1, size=(6, 3)))
    eq = tf.constant(RNG.normal(size=(2, 5, 3)), tf.float32)
    ep = tf.constant(RNG.normal(size=(2, 5, 3)), tf.float32)
    same = layer(eq, training=True, prior=eq)
    np.testing.assert_allclose(same["kl"].numpy(), 0.0, atol=1e-5)
    out = layer(eq, training=True, prior=ep)
    lq, lp = layer.log_responsibilities(eq).numpy(), layer.log_responsibilities(ep).numpy()
    np.testing.assert_allclose(out["kl"].numpy(), (np.exp(lq) * (lq - lp)).sum(-1), rtol=1e-4, atol=1e-6)
    assert out["loss"].numpy() == pytest.approx(out["kl"].numpy().mean(), rel=1e-5)
    # Without a prior: KL to the uniform categorical, log K - H[q].
    uni = layer(eq, training=True)
    np.testing.assert_allclose(uni["kl"].numpy(), math.log(6) + (np.exp(lq) * lq).sum(-1), rtol=1e-4, atol=1e-6)
    # Direct-Cat: p given as logits.
    direct = layer(eq, training=True, prior_logits=tf.constant(lp))
    np.testing.assert_allclose(direct["kl"].numpy(), out["kl"].numpy(), rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        layer(eq, prior=ep, prior_logits=tf.constant(lp))


def worst_case_codebook(k, d_e, d, delta):
    """RRVQ App. D arrangement: one code at distance d from the embedding (the
    origin) and K-1 codes at distance d + delta along the same line."""
    codebook = np.zeros((k, d_e))
    codebook[0, 0] = d
    codebook[1:, 0] = d + delta
    return codebook


def closed_form_d5(k, d, delta):
    """RRVQ eq. D.3-D.5 evaluated exactly."""
    a, b = -0.5 * d**2, -0.5 * (d + delta) ** 2
    log_z = np.logaddexp(a, np.log(k - 1) + b)
    p1, pk = np.exp(a - log_z), np.exp(b - log_z)
    return -p1 * (a - log_z) - (k - 1) * pk * (b - log_z)


def d17(k, d, delta):
    g = 0.5 * (delta**2 + 2 * delta * d)
    return (k - 1) * np.exp(-g) * (1 + g)


def test_rrvq_worst_case_entropy_equals_app_d_closed_form_and_approaches_d17(built):
    k, d_e, delta = 256, 32, 1.0
    layer = built(RelaxedResponsibilityQuantizer(k, d_e, covariance="unit", dtype="float64"), d_e)
    origin = np.zeros((1, d_e))
    rel_errors = []
    for d in (0.5, 2.0, 5.0, 10.0, 20.0):
        layer.codebook.assign(worst_case_codebook(k, d_e, d, delta))
        h = layer(origin, training=False, stochastic=False)["entropy"].numpy()
        assert h == pytest.approx(closed_form_d5(k, d, delta), rel=1e-7)
        if d >= 5.0:
            rel_errors.append(abs(h - d17(k, d, delta)) / h)
    # The first-order form D.17 becomes exact as d grows (App. D.3: ~1e-6 and better).
    assert rel_errors[0] > rel_errors[1] > rel_errors[2]
    assert rel_errors[-1] < 1e-6
