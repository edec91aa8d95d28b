"""RRVQ-VAE (RRVQ §3, App. C, Table G.1): its KLs against NumPy oracles, forward/backward over the ablation
switches, the temperature schedule, codes and their probabilities, saving and input checks.

Every model here is tiny (`tiny`, conftest.py); what the backbone does for every latent layer (the ELBO, free
bits, sampling) is tested in test_hierarchical_vae.py, the paper-sized configurations in test_presets.py."""

import tfvq  # noqa: F401  (first: sets up TensorFlow before anything else imports it)

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.losses.likelihoods import discretized_logistic_log_prob
from tfvq.models.rrvq import RRVQVAE

SHAPE = (8, 8, 1)
SIZES = [4, 2, 1]
SEED = [3, 4]


def signature(model):
    """{variable path without the model's own name: shape}, seed-generator states left out."""
    return {v.path.split("/", 1)[1]: tuple(v.shape) for v in model.variables if "seed_generator" not in v.path}


# ------------------------------------------------------------------------------- forward and backward
# Every pair of switch values occurs once (a 2^3 orthogonal array, 4 runs instead of 8).
@pytest.mark.parametrize("prior,covariance,top_prior", [
    ("embedding", "diagonal", "uniform"), ("embedding", "unit", "learned"),
    ("direct", "diagonal", "learned"), ("direct", "unit", "uniform"),
])
def test_train_loss_is_finite_and_reaches_every_trainable_variable(tiny, images, prior, covariance, top_prior):
    # free_bits=0: at initialisation every layer's KL is below the default floor, which would (rightly)
    # cut the KL's gradient and leave pstrap without one.
    model = tiny(prior=prior, covariance=covariance, top_prior=top_prior, free_bits=0.0)
    x = tf.constant(images())
    with tf.GradientTape() as tape:
        out = model.train_loss(x, seed=SEED)
    grads = tape.gradient(out["loss"], model.trainable_variables)
    assert set(out) == {"loss", "bpd", "recon_bpd", "kl_bpd"}
    for key, value in out.items():
        assert value.shape == () and np.isfinite(float(value)), key
    np.testing.assert_allclose(float(out["bpd"]), float(out["recon_bpd"] + out["kl_bpd"]), rtol=1e-6)
    missing = [v.path for v, g in zip(model.trainable_variables, grads) if g is None]
    assert not missing, missing
    assert all(np.all(np.isfinite(g.numpy())) for g in grads)
    zero = [v.path for v, g in zip(model.trainable_variables, grads) if not np.any(g.numpy())]
    assert not zero, zero


# ----------------------------------------------------------------------------------- ELBO and oracles




@pytest.mark.parametrize("layer", [0, 1, 2])
def test_kl_of_a_layer_vanishes_when_q_and_p_embeddings_coincide(tiny, images, layer):
    model = tiny(top_prior="learned")
    x = images(3)
    before = model.elbo(x, seed=SEED)["kl"].numpy()
    assert before[:, layer].min() > 1e-5
    # qladder_l -> 0 and qstrap_l := pstrap_l, so e_q,l = qstrap_l(d) = pstrap_l(d) = e_p,l.
    final = model.qladder[layer].blocks[-1]
    final.g.assign(tf.zeros_like(final.g))
    final.bias.assign(tf.zeros_like(final.bias))
    for a, b in zip(model.qstrap[layer].weights, model.pstrap[layer].weights):
        assert a.path.split("/")[-1] == b.path.split("/")[-1] and a.shape == b.shape
        a.assign(b)
    after = model.elbo(x, seed=SEED)["kl"].numpy()
    np.testing.assert_allclose(after[:, layer], 0.0, atol=1e-5)
    # Layers above are untouched; layers below still carry a KL.
    np.testing.assert_allclose(after[:, layer + 1:], before[:, layer + 1:], rtol=1e-6)
    assert np.all(after[:, :layer] > 1e-5)


def test_top_kl_under_a_uniform_prior_is_log_k_minus_the_entropy_of_q(deterministic_features, tiny, images):
    model = tiny(top_prior="uniform")
    final = model.qladder[-1].blocks[-1]
    final.g.assign(final.g * 300.0)  # a peaked q, so that the KL is far from 0
    x = images(3)
    e_q = model.qladder[-1](deterministic_features(model, x)[-1])
    log_q = model.latents[-1].log_responsibilities(e_q).numpy().astype(np.float64)
    entropy = -(np.exp(log_q) * log_q).sum(axis=-1)  # [B, 1, 1]
    want = (math.log(8) - entropy).sum(axis=(1, 2))
    got = model.elbo(x, seed=SEED)["kl"].numpy()[:, -1]
    assert want.min() > 0.05
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------ ablation switches
def test_direct_prior_changes_only_the_width_of_the_pstrap_output_convolutions(tiny):
    kw = dict(latent_sizes=[4, 2, 2], top_prior="learned", num_codes=[8, 6, 5], code_dim=4)
    embed, direct = signature(tiny(prior="embedding", **kw)), signature(tiny(prior="direct", **kw))
    assert set(embed) == set(direct)
    changed = {k for k in embed if embed[k] != direct[k]}
    finals = {f"pstrap_{l}/pstrap_{l}_conv/{w}" for l in (1, 2, 3) for w in ("v", "g", "bias")}
    assert changed == finals
    for l, k in zip((1, 2, 3), (8, 6, 5)):
        assert embed[f"pstrap_{l}/pstrap_{l}_conv/g"] == (4,) and direct[f"pstrap_{l}/pstrap_{l}_conv/g"] == (k,)
    # pstrap_1 upsamples (a transposed convolution, output channels on axis 2); pstrap_2, 3 do not.
    assert direct["pstrap_1/pstrap_1_conv/v"] == (3, 3, 8, 8)
    assert direct["pstrap_2/pstrap_2_conv/v"] == (3, 3, 8, 6) and direct["pstrap_3/pstrap_3_conv/v"] == (3, 3, 8, 5)
    assert embed["pstrap_1/pstrap_1_conv/v"] == (3, 3, 4, 8) and embed["pstrap_2/pstrap_2_conv/v"] == (3, 3, 8, 4)


def test_covariance_switch_adds_or_removes_exactly_the_log_variances(tiny):
    diagonal, unit, iso = (signature(tiny(covariance=c)) for c in ("diagonal", "unit", "isotropic"))
    log_vars = {f"latent_{l}/log_variances" for l in (1, 2, 3)}
    assert set(diagonal) - set(unit) == log_vars and set(unit) <= set(diagonal)
    assert all(unit[k] == diagonal[k] for k in unit)
    assert all(diagonal[k] == (8, 4) for k in log_vars) and all(iso[k] == (8, 1) for k in log_vars)
    model = tiny(covariance="unit")
    assert all(q.log_variances is None for q in model.latents)
    assert not any("log_variances" in v.path for v in model.variables)


def test_learned_top_prior_adds_d_top_and_the_top_layers_straps(tiny):
    uniform, learned = signature(tiny(top_prior="uniform")), signature(tiny(top_prior="learned"))
    assert set(uniform) <= set(learned) and all(learned[k] == uniform[k] for k in uniform)
    added = set(learned) - set(uniform)
    assert "d_top" in added and learned["d_top"] == (1, 1, 1, 8)
    assert added - {"d_top"} == {f"{s}_3/{s}_3_conv/{w}" for s in ("qstrap", "pstrap") for w in ("v", "g", "bias")}
    assert learned["pstrap_3/pstrap_3_conv/v"] == (3, 3, 8, 4)  # same 1x1 grid as d_top: no upsampling


# ----------------------------------------------------------------------------------- temperature schedule
def test_set_temperature_anneals_exponentially_then_holds(tiny):
    model = tiny(initial_temperature=2.0, final_temperature=0.5, anneal_fraction=0.5)
    total = 100
    for step, want in [(0, 2.0), (25, 1.0), (10, 2.0 * 0.25 ** 0.2), (40, 2.0 * 0.25 ** 0.8),
                       (50, 0.5), (80, 0.5), (100, 0.5), (0, 2.0)]:
        tau = model.set_temperature(step, total)
        np.testing.assert_allclose(float(tau), want, rtol=1e-5)
        for q in model.latents:
            np.testing.assert_allclose(float(q.temperature), want, rtol=1e-5)


# ------------------------------------------------------------------------------------------- saving
def test_keras_file_round_trip_keeps_config_weights_bits_and_samples(tiny, images, tmp_path):
    model = tiny(top_prior="learned", num_codes=[8, 6, 4])
    rng = np.random.default_rng(1)
    for v in model.trainable_variables:  # move away from the seeded init: a reload must read the weights
        v.assign(v + 0.05 * rng.standard_normal(v.shape).astype(np.float32))
    model.set_temperature(30, 100)
    x = images(3)
    path = str(tmp_path / "rrvq.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is RRVQVAE
    assert loaded.get_config() == model.get_config()
    for a, b in zip(model.weights, loaded.weights):
        if "seed_generator" not in a.path:
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(loaded.bits_per_dim(x, seed=SEED).numpy(), model.bits_per_dim(x, seed=SEED).numpy())
    np.testing.assert_array_equal(loaded.sample(4, seed=[7, 8]).numpy(), model.sample(4, seed=[7, 8]).numpy())


def test_get_config_from_config_rebuilds_the_same_model(tiny, images):
    model = tiny(prior="direct", covariance="isotropic", top_prior="learned", num_codes=[8, 6, 4], free_bits=0.2,
                 initial_temperature=1.5, final_temperature=0.3, anneal_fraction=0.25, latent_sizes=[(4, 4), 2, 2])
    config = model.get_config()
    assert config["latent_sizes"] == [[4, 4], [2, 2], [2, 2]] and config["num_codes"] == [8, 6, 4]
    clone = RRVQVAE.from_config(config)
    assert clone.get_config() == config and signature(clone) == signature(model)
    # seeded: the clone starts from the same weights and gives the same numbers.
    x = images(2)
    np.testing.assert_allclose(clone.bits_per_dim(x, seed=SEED).numpy(), model.bits_per_dim(x, seed=SEED).numpy())


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("method", ["elbo", "bits_per_dim", "encode", "reconstruct", "train_loss"])
@pytest.mark.parametrize("bad,match", [
    (np.zeros((2, 8, 8, 3), np.float32), r"\[N, 8, 8, 1\]"),
    (np.zeros((2, 16, 16, 1), np.float32), r"\[N, 8, 8, 1\]"),
    (np.zeros((8, 8, 1), np.float32), r"\[N, 8, 8, 1\]"),
    (np.full((2, 8, 8, 1), 255.0, np.float32), r"\[0, 1\]"),
    (np.full((2, 8, 8, 1), -0.5, np.float32), r"\[0, 1\]"),
])
def test_bad_images_raise_a_helpful_value_error(plain, method, bad, match):
    model = plain
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(bad)
    with pytest.raises(ValueError, match=match):
        getattr(model, method)(tf.constant(bad))


@pytest.mark.parametrize("kwargs,match", [
    (dict(prior="softmax"), "prior"),
    (dict(covariance="full"), "covariance"),
    (dict(num_codes=[8, 8]), "num_codes"),
    (dict(initial_temperature=0.5, final_temperature=1.0), "temperature"),
])
def test_invalid_constructor_arguments_raise(tiny, kwargs, match):
    with pytest.raises(ValueError, match=match):
        tiny(**kwargs)


def test_decode_of_encoded_codes_equals_reconstruct_and_checks_codes(images, plain):
    x = images(n=4, seed=7)
    codes = plain.encode(x)
    assert [tuple(c.shape) for c in codes] == [(4, s, s) for s in SIZES]
    assert all(c.dtype == tf.int32 for c in codes)
    np.testing.assert_allclose(plain.decode(codes).numpy(), plain.reconstruct(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"codes of layers 1\.\.3 \(3 tensors"):
        plain.decode(codes[:2])
    with pytest.raises(ValueError, match=r"in \[0, 7\]"):
        plain.decode([codes[0] + 8] + codes[1:])
    with pytest.raises(TypeError, match="integers"):
        plain.decode([tf.cast(c, tf.float32) for c in codes])
    with pytest.raises(ValueError, match="shape"):
        plain.decode([codes[1]] + codes[1:])


def test_encode_biased_chooses_each_layer_by_log_q_plus_bias_top_down(images, plain):
    """A zero bias gives `encode`'s codes; a bias that favours one top code sends it everywhere, and the layers
    below are q's modes given it (as `encode` of a model whose top q picks it); HQA-style models offer none."""
    x = images(4)
    plain_codes = [c.numpy() for c in plain.encode(x)]
    zero = {l: np.zeros(8, np.float32) for l in (1, 2, 3)}
    np.testing.assert_array_equal(np.concatenate([c.numpy().ravel() for c in plain.encode_biased(x, zero)]),
                                  np.concatenate([c.ravel() for c in plain_codes]))
    top = np.full(8, -1e3, np.float32)
    top[5] = 0.0
    biased = [c.numpy() for c in plain.encode_biased(x, {3: top})]
    assert (biased[2] == 5).all()
    # Layers 1-2 given top code 5: q's mode under the ladder pass with z_3 = code 5's embedding.
    seeds = plain._layer_seeds(0)
    _, _, _, outs = plain._inference(tf.constant(x), False, seeds[0], stochastic=False,
                                     code_bias={3: top, 2: np.zeros(8, np.float32)})
    np.testing.assert_array_equal(biased[1], outs[1]["codes"].numpy())
    # a bias at layer 2 only leaves layer 3 alone, and moves layer 2 where the bias outweighs q
    two = [c.numpy() for c in plain.encode_biased(x, {2: top}, layer=2)]
    np.testing.assert_array_equal(two[1], plain_codes[2])
    assert (two[0] == 5).all()
    with pytest.raises(ValueError, match="code_bias of layer 3 must be 8 finite floats"):
        plain.encode_biased(x, {3: np.zeros(7)})
    with pytest.raises(ValueError):
        plain.encode_biased(x, {4: np.zeros(8)})


# ------------------------------------------------------------------- probabilities of codes and pixels
@pytest.fixture(scope="module")
def six_codes(tiny):
    """A tiny RRVQ-VAE of K = 6 codes per layer."""
    return tiny(num_codes=6, seed=1)


def test_rrvq_code_logits_are_the_prior_the_decoder_samples(six_codes):
    rrvq = six_codes
    rng = np.random.default_rng(1)
    codes = [rng.integers(0, 6, size=(2,) + g).astype(np.int32) for g in ((2, 2), (1, 1))]
    logits = rrvq.code_logits(codes, 2).numpy()
    assert logits.shape == (2, 4, 4, 6)
    np.testing.assert_allclose(np.exp(logits).sum(-1), 1.0, atol=1e-5)
    # The deterministic decode from layer 2 takes the prior's mode at layer 1: decoding those codes at
    # layer 1 gives the same image.
    mode = logits.argmax(-1).astype(np.int32)
    np.testing.assert_allclose(rrvq.decode(codes, 2).numpy(), rrvq.decode([mode] + codes, 1).numpy(), atol=1e-6)
    top = rrvq.top_code_logits(2).numpy()
    np.testing.assert_allclose(top, np.full((2, 1, 1, 6), -np.log(6)), atol=1e-6)  # uniform top prior


def test_rrvq_pixel_likelihood_gives_the_models_log_likelihood(six_codes):
    rrvq = six_codes
    x = np.random.default_rng(2).integers(0, 256, size=(2, 8, 8, 1)).astype(np.uint8)
    codes = rrvq.encode(x)
    loc, log_scale = rrvq.pixel_likelihood(codes)
    np.testing.assert_allclose(np.clip(loc.numpy(), 0, 1), rrvq.decode(codes).numpy(), atol=1e-6)
    # The model's own reconstruction log-likelihood with the deterministic codes (RRVQ eq. 5's first term).
    lp = discretized_logistic_log_prob(x.astype(np.int32), loc, log_scale).numpy()
    assert lp.shape == (2, 8, 8, 1) and np.isfinite(lp).all() and (lp <= 0).all()
    assert rrvq.code_stride() is None
    with pytest.raises(ValueError, match="not fully convolutional"):
        rrvq.with_image_shape((16, 16, 1))
