"""The hierarchical VAE backbone (RRVQ §3, App. C; IAF's ResNet VAE): its passes on the latent grids, the ELBO
(RRVQ eq. 5) against a NumPy discretised logistic, free bits, sampling (RRVQ eq. 3) and `fit`, on a tiny RRVQ-VAE
(`tiny`, conftest.py); what a latent layer adds is tested in test_rrvq_vae.py and test_spatial_vae.py."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

SHAPE = (8, 8, 1)
SEED = [3, 4]


def np_discretized_logistic(v, loc, log_scale):
    """log P(v) per sub-pixel, NumPy float64: the bin [v/256, (v+1)/256) of Kingma et al. 2016, with the
    PixelCNN++ edge bins (0 takes the mass below, 255 the mass above)."""
    v, loc, scale = v.astype(np.float64), loc.astype(np.float64), np.exp(log_scale.astype(np.float64))
    cdf = lambda t: 1.0 / (1.0 + np.exp(-t))  # noqa: E731
    lo, hi = cdf((v / 256.0 - loc) / scale), cdf(((v + 1.0) / 256.0 - loc) / scale)
    p = np.where(v == 0, hi, np.where(v == 255, 1.0 - lo, hi - lo))
    return np.log(p)


def test_the_passes_run_on_the_latent_grids_and_layers_below_from_layer_come_from_the_prior(tiny, images):
    model = tiny(latent_sizes=[4, 4, 2, 1])  # a grid kept (4x4 twice), then halved twice
    assert model.latent_shapes == [(4, 4), (4, 4), (2, 2), (1, 1)] and model.num_latent_layers == 4
    x = tf.constant(images(2))
    loc, log_scale, kl, outs = model._inference(x, False, SEED)
    assert loc.shape == log_scale.shape == x.shape and kl.shape == (2, 4)
    assert [tuple(o["quantized"].shape) for o in outs] == [(2, 4, 4, 4), (2, 4, 4, 4), (2, 2, 2, 4), (2, 1, 1, 4)]
    # From layer 3: layers 1-2 are the prior's (no posterior, no KL), layers 3-4 the image's.
    _, _, kl, outs = model._inference(x, False, SEED, stochastic=False, from_layer=3)
    assert outs[:2] == [None, None] and outs[2] is not None and outs[3] is not None
    np.testing.assert_array_equal(kl.numpy()[:, :2], 0.0)
    assert np.all(kl.numpy()[:, 2:] >= 0) and np.any(kl.numpy()[:, 2:] > 0)
    with pytest.raises(ValueError, match=r"layer must be an integer in 1\.\.4"):
        model.reconstruct(x, layer=5)


def test_bits_per_dim_is_the_negative_elbo_over_d_ln2_and_the_elbo_adds_up(tiny, images):
    model = tiny(top_prior="learned")
    x = images(4)
    out = model.elbo(x, seed=SEED)
    assert out["elbo"].shape == (4,) and out["log_likelihood"].shape == (4,) and out["kl"].shape == (4, 3)
    want = -out["elbo"].numpy() / (8 * 8 * 1 * math.log(2.0))
    np.testing.assert_allclose(model.bits_per_dim(x, seed=SEED).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(
        out["elbo"].numpy(), out["log_likelihood"].numpy() - out["kl"].numpy().sum(axis=1), rtol=1e-6)
    assert np.all(out["kl"].numpy() >= -1e-6)
    assert np.all(out["kl"].numpy() > 0)  # learned top prior: every layer has a KL against a p it does not equal
    # call() is the deterministic reconstruction, as in every family (predict gives images).
    np.testing.assert_array_equal(model(x).numpy(), model.reconstruct(x).numpy())


def test_log_likelihood_matches_a_numpy_discretised_logistic(tiny, images):
    model = tiny()
    # Sharpen and shift the likelihood so that bins far from loc matter and log_scale is not constant.
    last = model.head.blocks[-1]
    last.g.assign(last.g * 4.0)
    x = images(3)
    loc, log_scale, kl, _ = model._inference(tf.constant(x), False, SEED)
    assert loc.shape == x.shape and log_scale.shape == x.shape
    assert float(tf.reduce_min(log_scale)) >= -7.0
    assert float(tf.math.reduce_std(log_scale)) > 0.01
    v = np.round(x * 255.0).astype(np.int64)
    assert v.min() == 0 and v.max() == 255  # the edge bins are exercised
    want = np_discretized_logistic(v, loc.numpy(), log_scale.numpy()).sum(axis=(1, 2, 3))
    out = model.elbo(x, seed=SEED)
    np.testing.assert_allclose(out["log_likelihood"].numpy(), want, rtol=1e-5)
    np.testing.assert_allclose(out["kl"].numpy(), kl.numpy(), rtol=1e-6)


def test_free_bits_floor_each_layers_batch_mean_kl_and_cut_the_gradient_below_the_floor(tiny, images):
    model = tiny()
    x = tf.constant(images(4))
    kl = model.elbo(x, seed=SEED, training=True)["kl"].numpy().astype(np.float64)  # relaxed samples
    positions = np.array([16.0, 4.0, 1.0])
    per_position = kl.mean(axis=0) / positions
    order = np.argsort(per_position)
    lam = float(np.sqrt(per_position[order[0]] * per_position[order[1]]))  # only the lowest layer is floored
    floored = model.__class__.from_config({**model.get_config(), "free_bits": lam})
    floored.set_weights(model.get_weights())

    captured = {}
    inference = floored._inference

    def spy(*args, **kwargs):
        out = inference(*args, **kwargs)
        captured["kl"] = out[2]
        return out

    floored._inference = spy
    with tf.GradientTape() as tape:
        out = floored.train_loss(x, seed=SEED)
    scale = 8 * 8 * 1 * math.log(2.0)
    kl_term = (float(out["loss"]) - float(out["recon_bpd"])) * scale
    want = np.maximum(kl.mean(axis=0), lam * positions).sum()
    np.testing.assert_allclose(kl_term, want, rtol=1e-4)
    np.testing.assert_allclose(captured["kl"].numpy(), kl, rtol=1e-5, atol=1e-7)  # same seed, same KLs
    np.testing.assert_allclose(float(out["kl_bpd"]) * scale, kl.mean(axis=0).sum(), rtol=1e-4)
    # d loss / d KL_bl: 0 for the floored layer, 1 / (B D ln 2) for the others.
    grad = tape.gradient(out["loss"], captured["kl"]).numpy()
    expected = np.full(kl.shape, 1.0 / (4 * scale))
    expected[:, order[0]] = 0.0
    np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=0)

    # lambda = 0: the training loss is the exact -ELBO.
    plain = model.from_config({**model.get_config(), "free_bits": 0.0})
    plain.set_weights(model.get_weights())
    out = plain.train_loss(x, seed=SEED)
    np.testing.assert_allclose(float(out["loss"]), float(out["bpd"]), rtol=1e-6)


@pytest.mark.parametrize("top_prior,pixels", [("uniform", "mean"), ("learned", "sample")])
def test_samples_are_uint8_images_reproducible_with_a_seed(tiny, top_prior, pixels):
    model = tiny(top_prior=top_prior)
    a = model.sample(5, seed=[1, 2], pixels=pixels)
    assert a.dtype == tf.uint8 and tuple(a.shape) == (5,) + SHAPE
    np.testing.assert_array_equal(a.numpy(), model.sample(5, seed=[1, 2], pixels=pixels).numpy())
    assert not np.array_equal(a.numpy(), model.sample(5, seed=[1, 3], pixels=pixels).numpy())
    assert len(np.unique(a.numpy())) > 1


def test_pixel_sampling_adds_logistic_noise_around_the_mean(plain):
    model = plain
    mean = model.sample(64, seed=[5, 6]).numpy().astype(np.float64)
    drawn = model.sample(64, seed=[5, 6], pixels="sample").numpy().astype(np.float64)
    assert not np.array_equal(mean, drawn)
    # Same latents (same seed); log_scale starts near -2 so the logistic sd is ~ 255 * e^-2 * pi / sqrt(3).
    assert abs((drawn - mean).mean()) < 10.0 and 20.0 < (drawn - mean).std() < 120.0


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0), "positive"), (dict(n=-2), "positive"), (dict(n=2, pixels="median"), "pixels"),
])
def test_bad_sample_arguments_raise(plain, kwargs, match):
    with pytest.raises(ValueError, match=match):
        plain.sample(**kwargs)


def test_keras_fit_lowers_the_bits_per_dim_and_evaluate_reports_them(tiny, images):
    model = tiny(free_bits=0.0)
    x = images(n=64, seed=5)
    before = float(np.mean(model.bits_per_dim(x, seed=SEED)))
    model.compile(optimizer=keras.optimizers.Adamax(5e-3))
    history = model.fit(x, batch_size=16, epochs=4, verbose=0)
    assert set(history.history) >= {"loss", "bpd", "recon_bpd", "kl_bpd"}
    after = model.evaluate(x, batch_size=16, verbose=0, return_dict=True)["bpd"]
    assert np.isfinite(after) and after < before - 0.1


@pytest.mark.parametrize("kwargs,match", [
    (dict(latent_sizes=[3]), "divide"),
    (dict(image_shape=(12, 12, 1), latent_sizes=[4]), "power of two"),
    (dict(latent_sizes=[(4, 2)]), "divide"),
    (dict(latent_sizes=[2, 4]), "keep their size or halve"),
    (dict(latent_sizes=[4, 1]), "keep their size or halve"),
    (dict(latent_sizes=[]), "at least one"),
    (dict(image_shape=(8, 8)), "image_shape"),
    (dict(top_prior="gaussian"), "top_prior"),
    (dict(free_bits=-0.1), "free_bits"),
])
def test_invalid_backbone_arguments_raise(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)
