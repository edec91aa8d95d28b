"""HQA layer 1's autoencoder with FSQ (Mentzer et al. 2023), LFQ (MAGVIT-v2), VQ (rotation trick, cosine codes) and
residual VQ (SoundStream, Zeghidour et al. 2021): codes and rates per layer, the contract's round trips, RVQ's
depths as rates, the codec at every depth."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec, data, zoo
from tfvq.models import FSQAutoencoder, LFQAutoencoder, QuantizedAutoencoder, RVQAutoencoder, VQAutoencoder, \
    VQVAERecipe, quantized_autoencoder

Q = 4  # rvq_digits' stages


@pytest.fixture(scope="module")
def digits():
    return data.load_numpy("digits", "train", limit=64)


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


def test_the_entries_codes_and_rates_come_from_the_layout(digits):
    x = digits[:2]
    fsq = zoo.build("fsq_digits")
    assert isinstance(fsq, FSQAutoencoder) and fsq.levels == (8, 5, 5, 5)
    layout = fsq.code_layout()
    assert (layout.grids, layout.num_codes, layout.default_layer, layout.cumulative) == (((16, 16),), (1000,), 1,
                                                                                        False)
    assert fsq.bits() == 16 * 16 * 10 == 2560
    codes = fsq.encode(x)
    assert codes.dtype == tf.int32 and codes.shape == (2, 16, 16)
    assert 0 <= int(tf.reduce_min(codes)) and int(tf.reduce_max(codes)) < 1000
    assert fsq.decode(codes).shape == x.shape

    for name, cls, num_codes in (("lfq_digits", LFQAutoencoder, 1024), ("vq_digits", VQAutoencoder, 1024)):
        model = zoo.build(name)
        assert type(model) is cls and model.code_layout().num_codes == (num_codes,)
        assert model.bits() == fsq.bits() == 2560  # FSQ's rate: 10 bits per position
        codes = model.encode(x)
        assert codes.dtype == tf.int32 and codes.shape == (2, 16, 16)
        assert 0 <= int(tf.reduce_min(codes)) and int(tf.reduce_max(codes)) < num_codes
    assert zoo.build("vq_digits").vq.rotation_trick

    rvq = zoo.build("rvq_digits")
    layout = rvq.code_layout()
    assert layout.cumulative and layout.default_layer == 1 and layout.grids == ((16, 16),) * Q
    assert layout.num_codes == (32,) * Q
    # Layer l carries stages 1..Q-l+1: the bits fall with l, 5 bits per position per stage.
    assert [rvq.bits(l) for l in range(1, Q + 1)] == [256 * 5 * (Q - l + 1) for l in range(1, Q + 1)]
    assert [rvq.bits(l) for l in range(1, Q + 1)] == [5120, 3840, 2560, 1280]
    assert rvq.bits(3) == fsq.bits()  # two stages of 32 codes: FSQ's rate
    assert zoo.info("rvq_digits")["stages_per_layer"] == {1: 4, 2: 3, 3: 2, 4: 1}
    every = rvq.encode(x, 1)
    assert len(every) == Q and all(c.dtype == tf.int32 and c.shape == (2, 16, 16) for c in every)
    stages = every[::-1]  # layer Q (stage 1) last
    for layer in range(2, Q + 1):
        codes = tf.nest.flatten(rvq.encode(x, layer))
        assert len(codes) == len(layout.layers_sent(layer)) == Q - layer + 1
        # a lower rate sends a prefix of the stages: the residual chain does not depend on the stages after it
        for got, want in zip(codes[::-1], stages):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert not isinstance(rvq.encode(x, Q), list)  # one layer sent: one tensor


def test_decode_of_encode_is_the_reconstruction_and_tflite_encoders_give_the_same_codes(digits):
    x = digits[:3]
    models = [zoo.build(name) for name in ("fsq_digits", "lfq_digits", "vq_digits", "rvq_digits")]
    cosine = zoo.build("vq_digits", distance="cosine")
    cosine.fit_codebooks(digits[:8])
    for model in models[:3] + [cosine] + models[3:]:
        layout = model.code_layout()
        np.testing.assert_array_equal(model.decode(model.encode(x)).numpy(), model(x).numpy())
        for layer in range(1, layout.num_layers + 1):
            codes = model.encode(x, layer)
            np.testing.assert_array_equal(model.decode(codes, layer).numpy(), model.reconstruct(x, layer).numpy())
            lite = model.tflite_encoder(layer)(tf.constant(x))
            names = ["codes"] if len(layout.layers_sent(layer)) == 1 else [
                f"codes_layer_{l}" for l in layout.layers_sent(layer)]
            assert sorted(lite) == sorted(names)
            for name, c in zip(names, tf.nest.flatten(codes)):
                np.testing.assert_array_equal(lite[name].numpy(), c.numpy())
        assert model.decode(model.encode(x), dtype="uint8").dtype == tf.uint8
        assert model.code_stride() == 2 and model.top_code_logits(2) is None
        endpoints = {n: e.name for e in model.serving_endpoints() for n in (e.name, *e.aliases)}
        assert not any(n.startswith("decode_seeded") for n in endpoints)  # nothing to sample
    assert {"encode_layer_1", "decode_layer_4", "reconstruct_layer_2"} <= set(endpoints)
    # the unsuffixed signatures are the default layer's: every stage
    assert (endpoints["encode"], endpoints["serving_default"]) == ("encode_layer_1", "reconstruct_layer_1")


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


def test_the_config_and_a_keras_file_round_trip(trained_rvq, digits, tmp_path):
    model, _ = trained_rvq
    fsq = zoo.build("fsq_digits")
    for m in (model, fsq):
        again = type(m).from_config(m.get_config())
        assert again.get_config() == m.get_config() and again.code_layout() == m.code_layout()
    path = str(tmp_path / "rvq.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is RVQAutoencoder and loaded.get_config() == model.get_config()
    for layer in (1, Q):
        for a, b in zip(tf.nest.flatten(loaded.encode(digits, layer)), tf.nest.flatten(model.encode(digits, layer))):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(loaded.reconstruct(digits, layer).numpy(),
                                      model.reconstruct(digits, layer).numpy())
    assert zoo.recipe("rvq_digits") == zoo.recipe("fsq_digits") == VQVAERecipe(batch_size=64, steps=(3000,),
                                                                                learning_rate=2e-3)
    assert isinstance(quantized_autoencoder((8, 8, 1), "rvq", num_quantizers=2), RVQAutoencoder)
    assert isinstance(quantized_autoencoder((8, 8, 1)), FSQAutoencoder) and issubclass(FSQAutoencoder,
                                                                                        QuantizedAutoencoder)
    assert isinstance(quantized_autoencoder((8, 8, 1), "lfq", code_dim=3), LFQAutoencoder)
    assert isinstance(quantized_autoencoder((8, 8, 1), "vq", num_codes=4), VQAutoencoder)


@pytest.mark.parametrize("name,config", [("lfq_digits", {}), ("vq_digits", {}), ("vq_digits", {"distance": "cosine",
                                                                                              "ema": True})])
def test_single_layer_families_round_trip_their_config_and_a_keras_file(name, config, digits, tmp_path):
    model = zoo.build(name, **config)
    if isinstance(model, VQAutoencoder):
        model.fit_codebooks(digits[:8])
    again = type(model).from_config(model.get_config())
    assert again.get_config() == model.get_config() and again.code_layout() == model.code_layout()
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.encode(digits).numpy(), model.encode(digits).numpy())
    np.testing.assert_array_equal(loaded.reconstruct(digits).numpy(), model.reconstruct(digits).numpy())


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


def test_bad_arguments_raise_clear_errors(digits):
    with pytest.raises(ValueError, match="H and W must be even"):
        FSQAutoencoder((31, 32, 1))
    with pytest.raises(ValueError, match=r"image_shape must be \(H, W, C\)"):
        RVQAutoencoder((32, 32))
    with pytest.raises(ValueError, match="levels"):
        FSQAutoencoder((32, 32, 1), levels=(8, 1))
    with pytest.raises(ValueError, match="num_quantizers must be a positive integer"):
        RVQAutoencoder((32, 32, 1), num_quantizers=0)
    with pytest.raises(ValueError, match="num_codes must be at least 2"):
        RVQAutoencoder((32, 32, 1), num_codes=1)
    with pytest.raises(ValueError, match="encoder_hidden must be a positive integer"):
        FSQAutoencoder((32, 32, 1), encoder_hidden=2.5)
    with pytest.raises(ValueError, match="quantizer must be one of 'fsq', 'lfq', 'rvq', 'vq'"):
        quantized_autoencoder((32, 32, 1), "pq")
    with pytest.raises(ValueError, match="num_codes must be at least 2"):
        VQAutoencoder((32, 32, 1), num_codes=1)
    with pytest.raises(ValueError, match=r"code_dim must be an integer in \[1, 30\]"):
        LFQAutoencoder((32, 32, 1), code_dim=31)
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


def test_bundled_weights_explain_the_test_digits_and_rvq_files_shrink_with_depth():
    test = data.load_numpy("digits", "test", limit=64)
    blank = float(np.mean((test - test.mean()) ** 2))  # the mean-pixel predictor
    fsq = zoo.load("fsq_digits", weights="bundled")
    assert float(np.mean((fsq.reconstruct(test).numpy() - test) ** 2)) < 0.05 * blank
    rvq = zoo.load("rvq_digits", weights="bundled")
    mse = [float(np.mean((rvq.reconstruct(test, l).numpy() - test) ** 2)) for l in range(1, Q + 1)]
    assert mse[Q - 1] < 0.05 * blank and mse[0] <= mse[Q - 1]  # every depth decodes; the deepest is no worse
    pixels = np.round(test[:4] * 255).astype(np.uint8)
    sizes = [len(codec.compress(pixels, "rvq_digits", layer=l)) for l in range(1, Q + 1)]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == Q  # with their static priors
    for name in ("lfq_digits", "vq_digits"):
        model = zoo.load(name, weights="bundled")
        assert float(np.mean((model.reconstruct(test).numpy() - test) ** 2)) < 0.05 * blank, name
        blob = codec.compress(pixels, name)
        np.testing.assert_array_equal(codec.decompress(blob), model.reconstruct(pixels).numpy())
