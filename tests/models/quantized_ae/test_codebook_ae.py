"""The autoencoders of learned codebooks (`tfvq.models.quantized_ae.codebook_ae`): residual VQ's depths as rates
(SoundStream §3.3, Algorithm 1: k-means codebooks, quantizer dropout), a file at each depth, VQ's codebook by
k-means, and their argument and code checks."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec, zoo
from tfvq.models.quantized_ae import RVQAutoencoder, VQAutoencoder

Q = 4  # rvq_digits' stages


@pytest.fixture(scope="module")
def trained_rvq(digits):
    """rvq_digits after k-means codebooks (SoundStream §3.3) and 150 steps of its loss on 64 digits, with the
    residual errors `fit_codebooks` reported."""
    keras.utils.set_random_seed(0)
    model = zoo.build("rvq_digits")
    (stage,) = model.training_stages(steps=150)
    residuals = model.fit_codebooks(digits)
    optimizer = keras.optimizers.Adam(5e-3)
    variables = stage.variables()

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = stage.loss(batch, tf.constant([0, 0], tf.int32))["loss"]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

    rng = np.random.default_rng(0)
    for _ in range(stage.steps):
        step(tf.constant(digits[rng.integers(0, len(digits), 16)]))
    return model, residuals


def test_rvq_error_falls_with_depth(trained_rvq, digits):
    model, residuals = trained_rvq
    # k-means on the residuals (SoundStream §3.3): each stage removes part of what the stages before it left
    assert all(b < 0.7 * a for a, b in zip(residuals, residuals[1:])), residuals
    # after training with quantizer dropout every depth decodes, and more stages give a finer image
    mse = [float(np.mean((model.reconstruct(digits, l).numpy() - digits) ** 2)) for l in range(1, Q + 1)]
    assert all(finer <= 1.02 * coarser for finer, coarser in zip(mse, mse[1:])), mse
    assert mse[0] < 0.85 * mse[-1] and mse[-1] < 0.5 * float(np.var(digits)), mse
    report = model.report(digits)
    assert [row[:2] for row in report["table"][1]] == [[l, model.bits(l)] for l in range(1, Q + 1)]
    assert report["metrics"]["layers"]["1"]["mse"] == pytest.approx(mse[0], rel=1e-5)
    assert all(m["codes_used"] > 4 for m in report["metrics"]["layers"].values())  # expiry keeps codes in use
    rows = model.previews(digits[:4])["reconstructions"]
    assert len(rows) == Q + 1 and all(r.shape == (4, 32, 32, 1) for r in rows)


def test_the_rvq_config_and_a_keras_file_round_trip(trained_rvq, digits, tmp_path):
    model, _ = trained_rvq
    again = RVQAutoencoder.from_config(model.get_config())
    assert again.get_config() == model.get_config() and again.code_layout() == model.code_layout()
    path = str(tmp_path / "rvq.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is RVQAutoencoder and loaded.get_config() == model.get_config()
    for layer in (1, Q):
        for a, b in zip(tf.nest.flatten(loaded.encode(digits, layer)), tf.nest.flatten(model.encode(digits, layer))):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(loaded.reconstruct(digits, layer).numpy(),
                                      model.reconstruct(digits, layer).numpy())


def test_a_file_of_each_rvq_depth_decodes_to_the_models_reconstruction(trained_rvq, digits, tmp_path):
    model, _ = trained_rvq
    weights = str(tmp_path / "rvq.weights.h5")
    model.save_weights(weights)
    pixels = np.round(digits[:4] * 255).astype(np.uint8)
    blobs = {}
    for layer in range(1, Q + 1):
        blobs[layer] = blob = codec.compress(pixels, "rvq_digits", layer=layer, weights=weights)
        assert codec.read_header(blob).layers == tuple(range(layer, Q + 1))
        np.testing.assert_array_equal(codec.decompress(blob, weights=weights), model.reconstruct(pixels, layer).numpy())
    sizes = [len(blobs[layer]) for layer in range(1, Q + 1)]
    assert all(a > b for a, b in zip(sizes, sizes[1:])), sizes  # a higher layer: fewer stages, a smaller file
    # a file of layer 1 also decodes at a coarser layer it holds
    np.testing.assert_array_equal(codec.decompress(blobs[1], weights=weights, layer=3),
                                  model.reconstruct(pixels, 3).numpy())


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_vq_codebook_is_k_means_of_the_encoder_outputs(digits, distance):
    model = VQAutoencoder((32, 32, 1), num_codes=16, code_dim=4, distance=distance)
    (error,) = model.fit_codebooks(digits[:8], iterations=5)  # 2048 vectors: all of them, no subset
    z = model.encoder(digits[:8]).numpy().reshape(-1, 4).astype(np.float64)
    if distance == "cosine":
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)  # as the layer: a zero vector stays 0
    codebook = model.vq.codebook.numpy().astype(np.float64)
    nearest = np.argmin(((z[:, None] - codebook[None]) ** 2).sum(-1), axis=1)
    assert error == pytest.approx(np.mean(((z - codebook[nearest]) ** 2).sum(-1)), rel=1e-4)
    used = np.unique(nearest)
    assert len(used) > 8
    # a Lloyd step moved each used code to the mean of its points, to which they are still assigned
    for k in used:
        assert np.linalg.norm(codebook[k] - z[nearest == k].mean(0)) < 0.5 * np.sqrt(error)
    # the layer's own search agrees with the NumPy nearest code (cosine: of normalised vectors)
    if distance == "cosine":  # as the layer: a zero code (seeded at a blank patch) stays 0
        search = codebook / np.maximum(np.linalg.norm(codebook, axis=1, keepdims=True), 1e-12)
    else:
        search = codebook
    want = np.argmin(((z[:, None] - search[None]) ** 2).sum(-1), axis=1)
    got = model.encode(digits[:8]).numpy().ravel()
    ink = np.linalg.norm(z, axis=1) > 1e-6  # blank patches encode to 0, equally far from every unit code (a tie)
    assert ink.sum() > 200 and np.mean(got[ink] == want[ink]) > 0.999


def test_bad_arguments_and_codes_raise_clear_errors(digits):
    with pytest.raises(ValueError, match="num_quantizers must be a positive integer"):
        RVQAutoencoder((32, 32, 1), num_quantizers=0)
    with pytest.raises(ValueError, match="num_codes must be at least 2"):
        RVQAutoencoder((32, 32, 1), num_codes=1)
    with pytest.raises(ValueError, match="num_codes must be at least 2"):
        VQAutoencoder((32, 32, 1), num_codes=1)
    with pytest.raises(ValueError, match="distance must be one of"):
        VQAutoencoder((32, 32, 1), distance="manhattan")
    rvq = RVQAutoencoder((8, 8, 1), num_quantizers=3, num_codes=4, code_dim=2, encoder_hidden=4, decoder_hidden=4)
    x = digits[:2, ::4, ::4]
    codes = rvq.encode(x, 2)
    with pytest.raises(ValueError, match=r"Expected the codes of layers 2\.\.3"):
        rvq.decode(codes[:1], 2)
    with pytest.raises(ValueError, match=r"in \[0, 3\]"):
        rvq.decode([codes[0] + 4, codes[1]], 2)
    with pytest.raises(ValueError, match=r"layer must be an integer in 1\.\.3"):
        rvq.encode(x, 4)
    with pytest.raises(ValueError, match="finest layer"):
        rvq.code_logits(rvq.encode(x, 1), 1)
    assert rvq.code_logits(codes, 2) is None  # no distribution: the codec codes it under static priors
    with pytest.raises(ValueError, match="iterations must be >= 0"):
        rvq.fit_codebooks(x, iterations=-1)