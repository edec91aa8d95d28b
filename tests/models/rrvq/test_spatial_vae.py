"""Spatial-VAE (RRVQ Table 1, App. B): the RRVQ-VAE hierarchy with Gaussian latents. Forward/backward,
the Gaussian KLs against closed forms, sampling, saving, and what it does not have (a code rate)."""

import tfvq  # noqa: F401  (first: sets up TensorFlow before anything else imports it)

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.layers.gaussian import GaussianLatent
from tfvq.models.rrvq import SpatialVAE

SHAPE = (8, 8, 1)
SEED = [3, 4]


def tiny(**kw):
    cfg = dict(image_shape=SHAPE, latent_sizes=[4, 2, 1], latent_dim=4, channels=8, seed=0)
    cfg.update(kw)
    return SpatialVAE(**cfg)


def images(n=3, seed=0):
    v = np.random.default_rng(seed).integers(0, 256, size=(n,) + SHAPE)
    return (v / 255.0).astype(np.float32)


def np_gaussian_kl(mq, lq, mp, lp):
    """KL(N(mq, e^{2 lq}) || N(mp, e^{2 lp})) per dimension, float64 (Kingma & Welling 2014, App. B)."""
    mq, lq, mp, lp = (np.asarray(a, np.float64) for a in (mq, lq, mp, lp))
    return lp - lq + (np.exp(2 * lq) + (mq - mp) ** 2) / (2 * np.exp(2 * lp)) - 0.5


@pytest.fixture(scope="module")
def plain():
    """A tiny model the tests below only read."""
    return tiny()


def test_layers_are_gaussian_and_the_networks_emit_mean_and_log_scale():
    model = tiny(top_prior="learned")
    assert all(isinstance(q, GaussianLatent) for q in model.latents)
    assert not any("codebook" in v.path or "log_variances" in v.path for v in model.variables)
    for l in range(3):  # qladder / qstrap / pstrap end in 2 * latent_dim channels; pladder takes latent_dim
        assert model.qladder[l].blocks[-1].g.shape == (8,)
        assert model.pstrap[l].blocks[-1].g.shape == (8,) and model.qstrap[l].blocks[-1].g.shape == (8,)
        assert model.pladder[l].blocks[0].v.shape == (3, 3, 4, 8)
    assert tiny(top_prior="standard_normal").top_prior == "uniform"


@pytest.mark.parametrize("top_prior", ["uniform", "learned"])
def test_train_loss_is_finite_and_reaches_every_trainable_variable(top_prior):
    model = tiny(top_prior=top_prior, free_bits=0.0)
    x = tf.constant(images())
    with tf.GradientTape() as tape:
        out = model.train_loss(x, seed=SEED)
    grads = tape.gradient(out["loss"], model.trainable_variables)
    for key, value in out.items():
        assert value.shape == () and np.isfinite(float(value)), key
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    zero = [v.path for v, g in zip(model.trainable_variables, grads) if g is not None and not np.any(g.numpy())]
    assert not missing and not zero, (missing, zero)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    np.testing.assert_allclose(float(out["loss"]), float(out["bpd"]), rtol=1e-6)  # no free bits: exact -ELBO


def test_bits_per_dim_is_the_negative_elbo_over_d_ln2(plain):
    x = images(4)
    out = plain.elbo(x, seed=SEED)
    np.testing.assert_allclose(plain.bits_per_dim(x, seed=SEED).numpy(),
                               -out["elbo"].numpy() / (64 * math.log(2.0)), rtol=1e-6)
    np.testing.assert_allclose(out["elbo"].numpy(),
                               out["log_likelihood"].numpy() - out["kl"].numpy().sum(axis=1), rtol=1e-6)
    assert out["kl"].shape == (4, 3) and np.all(out["kl"].numpy() > 0)


def test_top_kl_under_the_standard_normal_prior_is_the_closed_form_gaussian_kl(deterministic_features):
    model = tiny(top_prior="uniform")
    final = model.qladder[-1].blocks[-1]
    final.g.assign(final.g * 50.0)  # move q well away from N(0, I)
    x = images(3)
    params = model.qladder[-1](deterministic_features(model, x)[-1]).numpy()
    mean, log_scale = params[..., :4], np.maximum(params[..., 4:], -7.0)
    want = np_gaussian_kl(mean, log_scale, 0.0, 0.0).sum(axis=(1, 2, 3))
    got = model.elbo(x, seed=SEED)["kl"].numpy()[:, -1]
    assert want.min() > 0.1
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_kl_under_a_learned_prior_is_the_gaussian_kl_to_pstrap_and_vanishes_when_q_equals_p(deterministic_features):
    model = tiny(top_prior="learned")
    x = images(3)
    # The top layer (L = 3, above it the learnt d_4): q = qladder(d^_3) + qstrap(d_4), p = pstrap(d_4).
    d_top = tf.tile(model.top, [3, 1, 1, 1])
    q = (model.qladder[-1](deterministic_features(model, x)[-1]) + model.qstrap[-1](d_top)).numpy()
    p = model.pstrap[-1](d_top).numpy()
    clamp = lambda a: np.maximum(a, -7.0)  # noqa: E731
    want = np_gaussian_kl(q[..., :4], clamp(q[..., 4:]), p[..., :4], clamp(p[..., 4:])).sum(axis=(1, 2, 3))
    before = model.elbo(x, seed=SEED)["kl"].numpy()
    np.testing.assert_allclose(before[:, -1], want, rtol=1e-4)
    # qladder_2 -> 0 and qstrap_2 := pstrap_2: layer 2's q equals its p, whatever z_3 is.
    final = model.qladder[1].blocks[-1]
    final.g.assign(tf.zeros_like(final.g))
    final.bias.assign(tf.zeros_like(final.bias))
    for a, b in zip(model.qstrap[1].weights, model.pstrap[1].weights):
        a.assign(b)
    after = model.elbo(x, seed=SEED)["kl"].numpy()
    np.testing.assert_allclose(after[:, 1], 0.0, atol=1e-5)
    np.testing.assert_allclose(after[:, 2], before[:, 2], rtol=1e-6)
    assert before[:, 1].min() > 1e-3 and after[:, 0].min() > 1e-3


def test_a_spatial_vae_has_no_code_layout_and_no_temperature(plain):
    assert plain.code_layout() is None
    assert not hasattr(plain, "set_temperature") and not hasattr(plain, "encode")


@pytest.mark.parametrize("top_prior", ["uniform", "learned"])
def test_samples_are_uint8_images_reproducible_with_a_seed(top_prior):
    model = tiny(top_prior=top_prior)
    a = model.sample(3, seed=[1, 2])
    assert a.dtype == tf.uint8 and tuple(a.shape) == (3,) + SHAPE
    np.testing.assert_array_equal(a.numpy(), model.sample(3, seed=[1, 2]).numpy())
    assert not np.array_equal(a.numpy(), model.sample(3, seed=[1, 3]).numpy())
    b = model.sample(2, seed=[1, 2], pixels="sample")
    assert b.dtype == tf.uint8 and tuple(b.shape) == (2,) + SHAPE
    with pytest.raises(ValueError):
        model.sample(0)


def test_keras_file_round_trip_and_config(tmp_path):
    model = tiny(top_prior="learned", latent_dim=3, min_log_scale=-5.0, free_bits=0.1)
    rng = np.random.default_rng(1)
    for v in model.trainable_variables:  # away from the seeded init, so that a reload must read the weights
        v.assign(v + 0.05 * rng.standard_normal(v.shape).astype(np.float32))
    config = model.get_config()
    assert {"num_codes", "code_dim", "prior", "covariance", "initial_temperature"}.isdisjoint(config)
    assert config["latent_dim"] == 3 and config["min_log_scale"] == -5.0 and config["top_prior"] == "learned"
    clone = SpatialVAE.from_config(config)
    assert type(clone) is SpatialVAE and clone.get_config() == config
    path = str(tmp_path / "spatial.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is SpatialVAE and loaded.get_config() == config
    x = images(2)
    np.testing.assert_array_equal(loaded.bits_per_dim(x, seed=SEED).numpy(), model.bits_per_dim(x, seed=SEED).numpy())
    np.testing.assert_array_equal(loaded.sample(4, seed=[7, 8]).numpy(), model.sample(4, seed=[7, 8]).numpy())
    assert all(isinstance(q, GaussianLatent) for q in loaded.latents)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 8, 8, 3), np.float32), r"\[N, 8, 8, 1\]"),
    (np.full((2, 8, 8, 1), 2.0, np.float32), r"\[0, 1\]"),
])
def test_bad_images_raise_a_helpful_value_error(plain, bad, match):
    for method in (plain.elbo, plain.bits_per_dim, plain.train_loss):
        with pytest.raises(ValueError, match=match):
            method(bad)


@pytest.mark.parametrize("kwargs,match", [
    (dict(latent_sizes=[3]), "divide"),
    (dict(latent_sizes=[2, 4]), "halve"),
    (dict(top_prior="gaussian"), "top_prior"),
    (dict(free_bits=-1.0), "free_bits"),
    (dict(latent_dim=0), "latent_dim"),
])
def test_invalid_constructor_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_spatial_vae_is_a_sibling_of_rrvq_not_a_subclass_refusing_codes():
    from tfvq.models import RRVQVAE, CodeModel, HierarchicalVAE

    model = SpatialVAE((8, 8, 1), [4, 2], latent_dim=2, channels=8, seed=0)
    assert isinstance(model, HierarchicalVAE)
    assert not isinstance(model, (RRVQVAE, CodeModel))
    assert model.code_layout() is None
