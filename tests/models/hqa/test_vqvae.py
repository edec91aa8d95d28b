"""The VQ-VAE baseline of HQA Table 3 / Table 14."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq.models.hqa import VQVAE


def test_vqvae_trains_end_to_end_and_round_trips_codes():
    model = VQVAE((16, 16, 1), num_downsamples=2, encoder_hidden=8, decoder_hidden=8, num_codes=8, code_dim=4)
    x = np.random.default_rng(0).uniform(size=(4, 16, 16, 1)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = model.layer_loss(x)["loss"]
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)  # encoder, codebook and decoder all learn
    codes = model.encode(x)
    assert codes.shape == (4, 4, 4) and codes.dtype == tf.int32
    np.testing.assert_allclose(model.decode(codes).numpy(), model(x).numpy(), atol=1e-6)
    with pytest.raises(ValueError, match=r"1\.\.1"):
        model.encode(x, layer=2)


def test_keras_fit_trains_the_single_stage_and_evaluate_reports_its_loss():
    model = VQVAE((16, 16, 1), num_downsamples=2, encoder_hidden=8, decoder_hidden=8, num_codes=8, code_dim=4)
    x = np.random.default_rng(0).uniform(size=(32, 16, 16, 1)).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = model.evaluate(x, batch_size=16, verbose=0, return_dict=True)["loss"]
    history = model.fit(x, batch_size=16, epochs=5, verbose=0)
    assert set(history.history) >= {"loss", "mse", "perplexity"}
    after = model.evaluate(x, batch_size=16, verbose=0, return_dict=True)["loss"]
    assert np.isfinite(after) and after < before


def test_kmeans_plus_plus_seeds_the_vqvae_codebook_from_the_encoders_z_e():
    """`VQVAERecipe(codebook_init="kmeans++")` starts the codebook at distinct points of the encoder's output
    (as HQA's stages); the default keeps the paper's random codebook."""
    model = VQVAE((16, 16, 1), num_downsamples=2, encoder_hidden=8, decoder_hidden=8, num_codes=8, code_dim=4)
    x = np.random.default_rng(0).uniform(size=(4, 16, 16, 1)).astype(np.float32)
    (stage,) = model.training_stages({"steps": (2,), "codebook_init": "kmeans++"})
    stage.setup(x)
    codebook = model.vq.codebook.numpy()
    z_e = model.encoder(x).numpy().reshape(-1, 4)
    distances = ((codebook[:, None] - z_e[None]) ** 2).sum(-1)
    np.testing.assert_allclose(distances.min(axis=1), 0.0, atol=1e-6)
    assert len(np.unique(codebook.round(6), axis=0)) == len(codebook)
    assert model.training_stages({"steps": (2,)})[0].setup is None
    with pytest.raises(ValueError, match="codebook_init must be one of"):
        model.training_stages({"steps": (2,), "codebook_init": "zeros"})


def test_a_model_without_q_offers_no_biased_encoding():
    model = VQVAE((16, 16, 1), num_downsamples=2, encoder_hidden=8, decoder_hidden=8, num_codes=8, code_dim=4)
    x = np.zeros((1, 16, 16, 1), np.float32)
    assert model.encode_biased(x, {1: np.zeros(8)}) is None
    with pytest.raises(ValueError, match="must be 8 finite floats"):
        model.encode_biased(x, {1: np.zeros(3)})


def test_the_one_layer_has_no_code_logits_no_top_prior_and_a_stride_of_its_downsamples():
    vq = VQVAE((16, 16, 1), num_downsamples=2, encoder_hidden=4, decoder_hidden=4, num_codes=8, code_dim=4)
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 16, 16, 1)).astype(np.uint8)
    with pytest.raises(ValueError, match="no codes below"):
        vq.code_logits(vq.encode(pixels), 1)
    assert vq.top_code_logits(1) is None and vq.code_stride() == 4


def test_a_linear_output_trains_on_unclipped_pixels_and_decodes_clipped():
    """`output_activation="linear"`: the MSE of training reads the last conv as it is (its gradient never vanishes,
    as a saturated sigmoid's does), decoding clips to [0, 1]."""
    model = VQVAE((8, 8, 1), num_downsamples=1, encoder_hidden=4, decoder_hidden=4, num_codes=4, code_dim=2,
                  output_activation="linear")
    last = model.decoder.layers[-1]
    last.bias.assign([2.0])  # every pixel predicted above 1
    x = np.zeros((2, 8, 8, 1), np.float32)
    out = model.vq(model.encoder(x), training=False)["quantized"]
    raw = model.decoder(out).numpy()
    assert raw.min() > 1.0
    np.testing.assert_allclose(model.layer_loss(x, training=False)["mse"].numpy(), np.mean(raw ** 2), rtol=1e-5)
    np.testing.assert_array_equal(model.decode(model.encode(x)).numpy(), np.ones_like(raw))
    with tf.GradientTape() as tape:
        loss = model.layer_loss(x, training=False)["mse"]
    np.testing.assert_allclose(tape.gradient(loss, last.bias).numpy(), [2 * raw.mean()], rtol=1e-5)


def test_a_saturated_sigmoid_output_passes_no_gradient_and_a_linear_one_does():
    """Why the experiments' VQ-VAEs predict pixels linearly: pre-activations far below 0 (a "dead start") leave a
    sigmoid output's MSE without a gradient."""
    grads = {}
    for activation in ("sigmoid", "linear"):
        model = VQVAE((8, 8, 1), num_downsamples=1, encoder_hidden=4, decoder_hidden=4, num_codes=4, code_dim=2,
                      output_activation=activation)
        model.decoder.layers[-1].bias.assign([-40.0])
        x = np.full((2, 8, 8, 1), 0.5, np.float32)
        with tf.GradientTape() as tape:
            loss = model.layer_loss(x, training=False)["mse"]
        grads[activation] = float(tf.abs(tape.gradient(loss, model.decoder.layers[-1].bias)[0]))
    assert grads["sigmoid"] < 1e-15 and grads["linear"] > 1.0


def test_the_output_activation_and_expiry_are_kept_in_the_config_and_checked():
    model = VQVAE((8, 8, 1), num_downsamples=1, encoder_hidden=4, decoder_hidden=4, num_codes=4, code_dim=2,
                  output_activation="linear", expire_codes_below=0.5)
    assert model.vq.expire_codes_below == 0.5 and model.vq.resets_codes
    clone = VQVAE.from_config(model.get_config())
    assert (clone.output_activation, clone.expire_codes_below) == ("linear", 0.5)
    plain = VQVAE((8, 8, 1), num_downsamples=1, encoder_hidden=4, decoder_hidden=4, num_codes=4, code_dim=2)
    assert "output_activation" not in plain.get_config() and "expire_codes_below" not in plain.get_config()
    assert plain.decoder.layers[-1].activation is keras.activations.sigmoid
    with pytest.raises(ValueError, match="output_activation must be 'sigmoid' or 'linear', got 'relu'"):
        VQVAE((8, 8, 1), num_downsamples=1, output_activation="relu")
