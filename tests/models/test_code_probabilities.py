"""The contract's probabilities of codes and pixels: `code_logits`, `top_code_logits`, `pixel_likelihood`,
`code_stride`, `with_image_shape`, checked against the models' own sampling and decoding paths."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq.losses.likelihoods import discretized_logistic_log_prob
from tfvq.models import HQA, RRVQVAE, VQVAE


@pytest.fixture(scope="module")
def hqa():
    return HQA((16, 16, 1), [dict(num_codes=8, code_dim=4, encoder_hidden=4, decoder_hidden=4)] * 3)


@pytest.fixture(scope="module")
def rrvq():
    return RRVQVAE((8, 8, 1), latent_sizes=(4, 2, 1), num_codes=6, code_dim=4, channels=8, seed=1)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(3, 16, 16, 1)).astype(np.uint8)


def test_hqa_code_logits_are_the_quantizer_distribution_of_the_predicted_z_e(hqa, images):
    codes = hqa.encode(images, 3)
    logits = hqa.code_logits(codes, 3).numpy()
    assert logits.shape == (3, 4, 4, 8)
    np.testing.assert_allclose(np.exp(logits).sum(-1), 1.0, atol=1e-5)
    # NumPy oracle: HQA eq. 3 on layer 3's decoder output.
    top = hqa.hqa_layers[2]
    z = top.decode_continuous(top.quantizer.lookup(codes)).numpy().reshape(-1, 4)
    book = hqa.hqa_layers[1].quantizer.codebook.numpy()
    d = -((z[:, None, :] - book[None]) ** 2).sum(-1)
    want = d - np.log(np.exp(d - d.max(-1, keepdims=True)).sum(-1, keepdims=True)) - d.max(-1, keepdims=True)
    np.testing.assert_allclose(logits.reshape(-1, 8), want, atol=1e-4)
    # Its argmax is what a deterministic decode takes for layer 2 (HQA Algorithm 3).
    q = hqa.hqa_layers[1].quantizer(top.decode_continuous(top.quantizer.lookup(codes)), training=False,
                                    stochastic=False)["codes"].numpy()
    np.testing.assert_array_equal(logits.argmax(-1), q)


def test_a_layer_without_a_layer_below_has_no_code_logits(hqa, images):
    with pytest.raises(ValueError, match="no codes below"):
        hqa.code_logits(hqa.encode(images, 1), 1)
    assert hqa.top_code_logits(2) is None and hqa.pixel_likelihood(hqa.encode(images, 3), 3) is None
    vq = VQVAE((16, 16, 1), num_downsamples=2, encoder_hidden=4, decoder_hidden=4, num_codes=8, code_dim=4)
    with pytest.raises(ValueError, match="no codes below"):
        vq.code_logits(vq.encode(images), 1)
    assert vq.top_code_logits(1) is None and vq.code_stride() == 4


def test_rrvq_code_logits_are_the_prior_the_decoder_samples(rrvq):
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


def test_rrvq_pixel_likelihood_gives_the_models_log_likelihood(rrvq):
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


def test_hqa_codes_any_multiple_of_its_stride_with_the_same_weights(hqa):
    assert [hqa.code_stride(l) for l in (1, 2, 3)] == [2, 4, 8] and hqa.code_stride() == 8
    big = hqa.with_image_shape((32, 24, 1))
    assert big.code_layout().grids == ((16, 12), (8, 6), (4, 3))
    x = np.random.default_rng(3).integers(0, 256, size=(1, 32, 24, 1)).astype(np.uint8)
    # Fully convolutional: the top-left 16x16 block's layer-1 codes away from the border equal the small model's.
    small = hqa.encode(x[:, :16, :16], 1).numpy()
    np.testing.assert_array_equal(big.encode(x, 1).numpy()[:, :6, :6], small[:, :6, :6])
    with pytest.raises(ValueError, match="multiples of the model's stride 8"):
        hqa.with_image_shape((20, 16, 1))
    assert hqa.with_image_shape((16, 16, 1)) is hqa
    for a, b in zip(big.weights, hqa.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
