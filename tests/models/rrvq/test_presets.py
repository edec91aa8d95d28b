"""The RRVQ presets (`tfvq.models.rrvq.presets`): the paper's L = 32 and L = 5 configurations (RRVQ §4, App. C,
App. F) build with the published latent shapes, codebook sizes and code rate; the rVQ-VAE baseline (eq. 2,
App. B); their recipes; the bundled weights model their test split.

`zoo.info(name)` builds its model; each entry is built once per module and the built model is kept
(captured from `registry.build`), so the paper-sized models are checked without building them twice."""

import tfvq  # noqa: F401  (first: sets up TensorFlow before anything else imports it)

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvq import data, zoo
from tfvq.zoo import registry


def blocks_of_8(side):
    """RRVQ §4: 4 blocks of 8 layers, the number of latents quartered (side halved) every block."""
    return [(side >> b, side >> b) for b in range(4) for _ in range(8)]


L5 = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]


@pytest.fixture(scope="module")
def described():
    """name -> (info dict, the model `info` built), each entry built at most once.

    An entry whose family and config equal those of an entry already built (SVHN and CIFAR-10 "have
    identical specification", RRVQ §4; asserted in a test below) is described with that model rather
    than a second, identical build of a 32-layer network: `info` only reads the model."""
    cache = {}

    def get(name):
        if name not in cache:
            built = []
            original = registry.build

            def capture(n):
                entry = zoo.get(n)
                for other, (_, model) in cache.items():
                    twin = zoo.get(other)
                    if twin.family == entry.family and dict(twin.config) == dict(entry.config):
                        built.append(model)
                        return model
                built.append(original(n))
                return built[-1]

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(registry, "build", capture)
                info = zoo.info(name)
            assert len(built) == 1
            cache[name] = (info, built[0])
        return cache[name]

    return get


def check_rate_and_parameters(info, model, shapes, num_codes, code_dim):
    assert info["family"] == "rrvq_vae" and info["paper"] and info["table"]
    assert info["num_latent_layers"] == len(shapes)
    assert [tuple(s) for s in info["latent_shapes"]] == shapes
    assert info["num_codes"] == num_codes and info["code_dim"] == code_dim
    # App. F's fixed-rate code: every latent position sends ceil(log2 K_l) bits.
    assert info["code_bits"] == sum(h * w * math.ceil(math.log2(k)) for (h, w), k in zip(shapes, num_codes))
    assert info["parameters"] > 0
    assert info["parameters"] == sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    for q, k in zip(model.latents, num_codes):
        assert tuple(q.codebook.shape) == (k, code_dim)
        assert q.covariance == "diagonal" and tuple(q.log_variances.shape) == (k, code_dim)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rrvq_cifar10", "rrvq_svhn"])
def test_l32_cifar10_and_svhn_have_8_layers_each_of_16x16_8x8_4x4_2x2(described, name):
    info, model = described(name)
    shapes = blocks_of_8(16)
    assert shapes[::8] == [(16, 16), (8, 8), (4, 4), (2, 2)]
    check_rate_and_parameters(info, model, shapes, [256] * 32, 32)
    assert info["code_bits"] == 8 * 8 * (256 + 64 + 16 + 4)
    assert model.image_shape == (32, 32, 3) and model.channels == 256 and info["config"]["channels"] == 256
    # App. C: 256-channel backbone, one ResNet block per step, single-convolution ladders and straps.
    assert all(len(e.blocks) == 1 and e.blocks[0].conv1.v.shape[-1] == 256 for e in model.enc)
    assert all(len(n.blocks) == 1 for n in model.qladder + model.pladder)
    # App. C, Fig. C.3: the top block's prior comes from a learnt d_33 on the 2x2 grid.
    assert model.top_prior == "learned" and tuple(model.top.shape) == (1, 2, 2, 256)
    assert all(s is not None for s in model.pstrap) and all(s is not None for s in model.qstrap)


@pytest.mark.slow
def test_l32_celeba64_has_8_layers_each_of_32x32_16x16_8x8_4x4(described):
    info, model = described("rrvq_celeba64")
    check_rate_and_parameters(info, model, blocks_of_8(32), [256] * 32, 32)
    assert model.image_shape == (64, 64, 3) and tuple(model.top.shape) == (1, 4, 4, 256)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rrvq_cifar10_l5", "rrvq_svhn_l5"])
def test_l5_cifar10_and_svhn_have_the_app_f_layout(described, name):
    info, model = described(name)
    check_rate_and_parameters(info, model, L5, [256] * 5, 128)
    # App. C, L = 5: 4 ResNet blocks between latents and in every ladder/strap; uniform prior on the 1x1 top.
    assert all(len(e.blocks) == 4 for e in model.enc + model.dec)
    assert all(len(n.blocks) == 5 for n in model.qladder + model.pladder)  # 4 blocks and a convolution
    assert model.top_prior == "uniform" and model.top is None and model.pstrap[-1] is None
    assert model.code_bits() == 8 * (256 + 64 + 16 + 4 + 1)


@pytest.mark.slow
def test_l5_celeba64_tapers_k_and_sends_2275_bits(described):
    info, model = described("rrvq_celeba64_l5")
    check_rate_and_parameters(info, model, L5, [128, 64, 32, 16, 8], 32)
    assert info["code_bits"] == 2275  # RRVQ App. F: 64x64 images into 2275 bits, CR 98304 / 2275 ~ 43
    assert round(64 * 64 * 3 * 8 / info["code_bits"]) == 43
    assert model.image_shape == (64, 64, 3)


def test_the_paper_sized_entries_share_one_configuration_per_depth():
    # CIFAR-10 and SVHN "have identical specification" (RRVQ §4): the configs differ in nothing.
    assert zoo.get("rrvq_cifar10").config == zoo.get("rrvq_svhn").config
    assert zoo.get("rrvq_cifar10_l5").config == zoo.get("rrvq_svhn_l5").config
    assert {"rrvq_cifar10", "rrvq_svhn", "rrvq_celeba64", "rrvq_cifar10_l5", "rrvq_svhn_l5",
            "rrvq_celeba64_l5", "rvqvae_cifar10"} <= set(zoo.list_models("r*vq*"))


def test_rvqvae_baseline_is_one_16x16_layer_with_unit_covariance_and_uniform_prior(described):
    info, model = described("rvqvae_cifar10")
    assert info["num_latent_layers"] == 1 and [tuple(s) for s in info["latent_shapes"]] == [(16, 16)]
    assert info["num_codes"] == [16] and info["code_dim"] == 16 and info["code_bits"] == 16 * 16 * 4
    assert info["parameters"] == sum(int(np.prod(v.shape)) for v in model.trainable_variables) > 0
    (q,) = model.latents
    assert q.covariance == "unit" and q.log_variances is None
    assert not any("log_variances" in v.path for v in model.variables)
    assert model.top_prior == "uniform" and model.top is None
    assert model.qstrap == [None] and model.pstrap == [None]
    # With no prior network the single layer's KL is against the uniform categorical: log K - H[q] <= log K.
    x = np.random.default_rng(0).uniform(size=(1, 32, 32, 3)).astype(np.float32)
    kl = model.elbo(x, seed=[1, 2])["kl"].numpy()
    assert kl.shape == (1, 1) and 0.0 <= kl[0, 0] <= 16 * 16 * math.log(16)


@pytest.mark.parametrize("name, dataset, fresh_above, trained_below", [
    ("rrvq_swatches", "swatches", 4.0, 1.0),
    ("rrvq_digits", "digits", 4.0, 3.8),
])
def test_bundled_rrvq_weights_model_their_test_split(name, dataset, fresh_above, trained_below):
    if registry.bundled_weights_path(name) is None:
        pytest.fail(f"{name} declares bundled weights but tfvq/zoo/weights/ has none: run its weights_command")
    x = data.load_numpy(dataset, "test", limit=64)
    fresh = float(np.mean(zoo.load(name).bits_per_dim(x, seed=[0, 1])))
    trained = zoo.load(name, weights="bundled")
    bpd = float(np.mean(trained.bits_per_dim(x, seed=[0, 1])))
    assert fresh > fresh_above and bpd < trained_below
    samples = trained.sample(8, seed=[2, 3])
    assert samples.dtype == tf.uint8 and tuple(samples.shape) == (8,) + trained.image_shape


def test_the_pinned_recipes_of_the_entries_stay():
    rrvq = zoo.recipe("rrvq_digits")
    assert (rrvq.steps, rrvq.eval_every, rrvq.eval_examples, rrvq.plateau_patience, rrvq.clip_norm) == (
        (3000,), 100, 297, 5, 200.0)
    assert zoo.recipe("rrvq_celeba64").steps == (160 * 2544,) and zoo.recipe("rrvq_celeba64").eval_every == 2544
