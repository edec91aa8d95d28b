"""HQA model: shapes and rates, Algorithm 3 decoding, the probabilities of codes, any image size, input checks,
serialisation, and Table 3's switches."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvq import zoo
from tfvq.layers import StochasticVectorQuantizer
from tfvq.models.hqa import HQA

RNG = np.random.default_rng(0)


def tiny(num_layers=3, **layer_kw):
    cfg = dict(num_codes=8, code_dim=4, encoder_hidden=8, decoder_hidden=8, **layer_kw)
    return HQA((16, 16, 1), [cfg] * num_layers)


def images(n=3, shape=(16, 16, 1)):
    return RNG.uniform(size=(n,) + shape).astype(np.float32)


def test_code_shapes_and_bits_follow_the_paper_tables():
    mnist = zoo.build("hqa_mnist")
    assert [mnist.code_shape(l) for l in range(1, 6)] == [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert [mnist.bits(l) for l in range(1, 6)] == [2048, 512, 128, 32, 8]  # K = 256: 8 bits a code
    celeba = zoo.build("hqa_celeba64")
    assert [celeba.code_shape(l) for l in range(1, 8)] == [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    assert celeba.bits(4) == 576  # HQA Table 1: "9 bit 8x8 latent space", 98,304 -> 576 bits
    assert celeba.bits(5) == 144  # HQA Table 6: 4x4, 144 bits


def test_encode_decode_reconstruct_shapes_and_dtypes():
    model = tiny()
    x = images()
    for layer in (1, 2, 3):
        codes = model.encode(x, layer)
        assert codes.dtype == tf.int32 and tuple(codes.shape) == (3,) + model.code_shape(layer)
        out = model.decode(codes, layer, seed=1)
        assert out.shape == x.shape and out.dtype == tf.float32
        assert float(tf.reduce_min(out)) >= 0.0 and float(tf.reduce_max(out)) <= 1.0
        assert model.reconstruct(x, layer, stochastic=False).shape == x.shape


def test_decode_requantises_at_every_lower_layer_as_algorithm_3():
    model = tiny(num_layers=2)
    codes = model.encode(images(), 2)
    bottom, top = model.hqa_layers
    z_e1 = top.decode_continuous(top.quantizer.lookup(codes))
    codes1 = bottom.quantizer(z_e1, training=False, stochastic=False)["codes"]
    want = bottom.decode_continuous(bottom.quantizer.lookup(codes1))
    np.testing.assert_allclose(model.decode(codes, 2, stochastic=False).numpy(), want.numpy(), atol=1e-6)


def test_stochastic_decodes_repeat_with_a_seed_and_vary_without_one():
    model = tiny(num_layers=2)
    for l in model.hqa_layers:  # flatten q so that samples differ visibly
        l.quantizer.codebook.assign(l.quantizer.codebook * 0.01)
    codes = model.encode(images(8), 2)
    a = model.decode(codes, 2, stochastic=True, seed=7).numpy()
    b = model.decode(codes, 2, stochastic=True, seed=7).numpy()
    c = model.decode(codes, 2, stochastic=True, seed=8).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(a, model.decode(codes, 2, stochastic=True, seed=(7, 0)).numpy())  # int s == (s, 0)


def test_interpolation_returns_steps_images_and_its_ends_decode_the_originals():
    model = tiny(num_layers=2)
    x = images(2)
    out = model.interpolate(x[0], x[1], layer=2, steps=5)
    assert out.shape == (5, 16, 16, 1)
    ends = model.reconstruct(x, 2, stochastic=False).numpy()
    np.testing.assert_allclose(out.numpy()[[0, -1]], ends, atol=1e-6)


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((2, 16, 16, 3), np.float32), r"\[N, 16, 16, 1\]"),
        (np.zeros((2, 8, 8, 1), np.float32), r"\[N, 16, 16, 1\]"),
        (np.zeros((16, 16, 1), np.float32), r"\[N, 16, 16, 1\]"),
        (np.full((2, 16, 16, 1), 255.0, np.float32), r"values in \[0, 1\]"),
        (np.full((2, 16, 16, 1), -0.5, np.float32), r"values in \[0, 1\]"),
    ],
)
def test_a_bad_image_raises_value_error_saying_what_was_expected(bad, match):
    model = tiny(num_layers=1)
    with pytest.raises(ValueError, match=match):
        model.encode(bad, 1)
    with pytest.raises(ValueError, match=match):
        model.reconstruct(bad, 1)


def test_bad_codes_and_layers_raise_value_errors():
    model = tiny(num_layers=2)
    with pytest.raises(ValueError, match=r"in \[0, 7\]"):
        model.decode(np.full((1, 4, 4), 8, np.int32), 2)
    with pytest.raises(ValueError, match=r"\[batch, 4, 4\]"):
        model.decode(np.zeros((1, 8, 8), np.int32), 2)
    with pytest.raises(TypeError, match="integers"):
        model.decode(np.zeros((1, 4, 4), np.float32), 2)
    with pytest.raises(ValueError, match=r"1\.\.2"):
        model.encode(images(), 3)
    with pytest.raises(ValueError, match=r"1\.\.2"):
        model.bits(0)


def test_layer_loss_gradients_reach_only_that_layer():
    model = tiny(num_layers=3)
    x = images()
    with tf.GradientTape() as tape:
        loss = model.layer_loss(x, 2, seed=tf.constant([1, 2]))["loss"]
    grads = tape.gradient(loss, model.trainable_variables)
    own = {id(v) for v in model.layer_variables(2)}
    for v, g in zip(model.trainable_variables, grads):
        if id(v) in own:
            assert g is not None, v.path
        else:
            assert g is None, f"{v.path} of another layer received a gradient"


def test_keras_file_round_trip_gives_equal_reconstructions_and_codes(tmp_path):
    model = tiny(num_layers=2)
    x = images()
    model.layer_loss(x, 2)  # moves layer 2's running normalisation statistics
    path = tmp_path / "hqa.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(model.encode(x, 2).numpy(), loaded.encode(x, 2).numpy())
    np.testing.assert_allclose(model(x).numpy(), loaded(x).numpy(), atol=1e-6)
    np.testing.assert_allclose(model.decode(model.encode(x, 2), 2, stochastic=True, seed=3).numpy(),
                               loaded.decode(loaded.encode(x, 2), 2, stochastic=True, seed=3).numpy(), atol=1e-6)


def test_keras_fit_needs_a_stage_for_a_greedy_model_and_then_trains_only_it():
    model = tiny(num_layers=2)
    x = images(16)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    with pytest.raises(ValueError, match="trains in 2 stages .*fit_stage"):
        model.fit(x, batch_size=8, epochs=1, verbose=0)
    model = tiny(num_layers=2)
    model.fit_stage = 1  # layer 2 (0-based stages)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    before = [np.array(v) for v in model.hqa_layers[0].weights]
    model.fit(x, batch_size=8, epochs=1, verbose=0)
    assert all(np.array_equal(a, np.array(b)) for a, b in zip(before, model.hqa_layers[0].weights))


def test_kmeans_plus_plus_seeds_the_codebook_with_distinct_points_of_the_layers_z_e():
    model = tiny(num_layers=2)
    recipe = {"steps": (2,), "codebook_init": "kmeans++"}
    stage = model.training_stages(recipe)[1]  # layer 2
    x = images(8)
    stage.setup(x)
    codebook = model.quantizer(2).codebook.numpy()
    z_e = model.encode_continuous(x, 2).numpy().reshape(-1, codebook.shape[1])
    # Every code is one of the data points (k-means++ picks seeds among them), and no two codes coincide.
    distances = ((codebook[:, None] - z_e[None]) ** 2).sum(-1)
    np.testing.assert_allclose(distances.min(axis=1), 0.0, atol=1e-6)
    assert len(np.unique(codebook.round(6), axis=0)) == len(codebook)
    with pytest.raises(ValueError, match="codebook_init must be one of"):
        model.training_stages({"steps": (2,), "codebook_init": "zeros"})
    assert model.training_stages({"steps": (2,)})[0].setup is None  # the paper's random codebooks by default


def test_keep_codes_retires_all_but_the_most_used_codes_when_the_resets_end():
    model = HQA((16, 16, 1), [dict(num_codes=12, code_dim=4, encoder_hidden=8, decoder_hidden=8)] * 2)
    x = images(6)
    stages = model.training_stages({"steps": (8, 4), "reset_fraction": 0.5, "keep_codes": (3, None)})
    assert list(stages[0].at_steps) == [4] and stages[1].at_steps == {}  # ceil(0.5 * 8); layer 2 keeps all
    quantizer = model.quantizer(1)
    z_e = model.encode_continuous(x, 1).numpy().reshape(-1, 4)
    before = quantizer.codebook.numpy()
    usage = np.bincount(model.encode(x, 1).numpy().ravel(), minlength=12)
    stages[0].at_steps[4](x)
    after = quantizer.codebook.numpy()
    kept = np.sort(np.argsort(-usage, kind="stable")[:3])
    np.testing.assert_array_equal(after[kept], before[kept])
    retired = np.setdiff1d(np.arange(12), kept)
    assert (after[retired] == after[retired[0]]).all()  # one far point
    # The data now goes to kept codes only, by argmin and by the relaxed sample alike.
    assert set(np.unique(model.encode(x, 1).numpy())) <= set(kept)
    sampled = quantizer(tf.constant(z_e), training=True, seed=tf.constant([1, 2]))["codes"].numpy()
    assert set(np.unique(sampled)) <= set(kept)
    assert model.training_stages({"steps": (8,), "keep_codes": 12})[0].at_steps == {}  # K codes: keeps all
    with pytest.raises(ValueError, match="keep_codes must be at least 1"):
        model.training_stages({"steps": (8,), "keep_codes": 0})


# ------------------------------------------------------------------- probabilities of codes, any image size
@pytest.fixture(scope="module")
def narrow():
    """Three layers of 8 codes with networks 4 wide."""
    return HQA((16, 16, 1), [dict(num_codes=8, code_dim=4, encoder_hidden=4, decoder_hidden=4)] * 3)


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).integers(0, 256, size=(3, 16, 16, 1)).astype(np.uint8)


def test_hqa_code_logits_are_the_quantizer_distribution_of_the_predicted_z_e(narrow, pixels):
    hqa = narrow
    codes = hqa.encode(pixels, 3)
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


def test_a_layer_without_a_layer_below_has_no_code_logits(narrow, pixels):
    hqa = narrow
    with pytest.raises(ValueError, match="no codes below"):
        hqa.code_logits(hqa.encode(pixels, 1), 1)
    assert hqa.top_code_logits(2) is None and hqa.pixel_likelihood(hqa.encode(pixels, 3), 3) is None


def test_hqa_codes_any_multiple_of_its_stride_with_the_same_weights(narrow):
    hqa = narrow
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


# ------------------------------------------------------------------ HQA Table 3's switches (the ablated systems)
def _np_log_softmax(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def _nearest(z, codebook):
    flat = z.reshape(-1, codebook.shape[1])
    return ((flat[:, None, :] - codebook[None]) ** 2).sum(-1).argmin(-1).reshape(z.shape[:-1])


def test_a_hams_layer_reconstructs_the_codes_below_under_a_cross_entropy():
    """HQA §2.2, App. C.2: layer 2's decoder gives logits over layer 1's K codes and its loss is the
    cross-entropy against layer 1's nearest codes of the input (a "vq" layer: deterministic posterior)."""
    model = HQA((16, 16, 1), [dict(num_codes=8, code_dim=4, encoder_hidden=8, decoder_hidden=8, commitment_cost=0.02),
                              dict(num_codes=6, code_dim=4, encoder_hidden=8, decoder_hidden=8, commitment_cost=0.02)],
                quantizer="vq", target="codes", probabilistic_loss=False)
    x = images(2)
    bottom, top = model.hqa_layers
    z1 = model.encode_continuous(x, 1).numpy()
    want_codes = _nearest(z1, bottom.quantizer.codebook.numpy())
    np.testing.assert_array_equal(model.encode(x, 1).numpy(), want_codes)
    terms = model.layer_loss(x, 2, training=False)
    # The same forward pass by hand: layer 2's decoder output on its nearest codes.
    z2 = top.encode_continuous(z1).numpy()
    codes2 = _nearest(z2, top.quantizer.codebook.numpy())
    logits = top.decode_continuous(top.quantizer.lookup(codes2)).numpy()
    assert logits.shape == (2, 8, 8, 8)  # layer 1's grid, layer 1's K
    log_q = _np_log_softmax(logits.astype(np.float64))
    want_ce = -np.take_along_axis(log_q, want_codes[..., None], axis=-1).mean()
    np.testing.assert_allclose(float(terms["cross_entropy"]), want_ce, rtol=1e-5)
    assert "mse" not in terms
    # The commitment term of a "vq" layer (HQA eq. 2 with an EMA codebook): beta * mean ||z_e - e_k||^2.
    e = top.quantizer.codebook.numpy()[codes2]
    np.testing.assert_allclose(float(terms["loss"]), want_ce + 0.02 * np.mean((z2 - e) ** 2), rtol=1e-5)
    # Decoding goes down through the most probable code of those logits, and code_logits are their log-softmax.
    below = np.argmax(logits, axis=-1)
    want = bottom.decode_continuous(bottom.quantizer.lookup(below)).numpy()
    np.testing.assert_allclose(model.decode(codes2, 2).numpy(), want, atol=1e-6)
    np.testing.assert_allclose(model.code_logits(codes2, 2).numpy(), log_q, atol=1e-5)


def test_a_gumbel_hams_layer_learns_a_sample_of_the_posterior_below():
    """HAMs + GS: the cross-entropy's targets are samples of layer 1's q (HQA §5.2.2), so with a flat q they
    differ from the most probable codes, and the same seed gives the same loss."""
    model = tiny(num_layers=2, quantizer="gumbel", target="codes", probabilistic_loss=False)
    model.hqa_layers[0].quantizer.codebook.assign(model.hqa_layers[0].quantizer.codebook * 1e-3)  # q nearly flat
    x = images(4)
    a = float(model.layer_loss(x, 2, seed=5)["cross_entropy"])
    b = float(model.layer_loss(x, 2, seed=5)["cross_entropy"])
    c = float(model.layer_loss(x, 2, seed=6)["cross_entropy"])
    assert a == b and a != c


def test_the_vq_switch_learns_its_codebook_by_ema_and_has_a_one_hot_posterior():
    model = tiny(num_layers=1, quantizer="vq", probabilistic_loss=False)
    quantizer = model.hqa_layers[0].quantizer
    # HAMs: no codebook gradients, an EMA (App. C.2)
    assert all(v is not quantizer.codebook for v in model.layer_variables(1))
    before = quantizer.codebook.numpy().copy()
    terms = model.layer_loss(images(4), 1, training=True)
    assert float(terms["entropy"]) == 0.0  # HQA App. B.4, eq. 19
    assert not np.allclose(before, quantizer.codebook.numpy())
    x = images(2)
    np.testing.assert_array_equal(model.encode(x, 1, stochastic=True, seed=1).numpy(), model.encode(x, 1).numpy())


def test_without_the_probabilistic_loss_the_gumbel_layer_pays_the_vqvae_terms_at_its_sample():
    """HQA App. B.4: with probabilistic_loss=False the regulariser is eq. 2 at the sampled code."""
    layer = StochasticVectorQuantizer(5, 3, commitment_cost=0.3, probabilistic_loss=False, seed=0)
    z = RNG.normal(size=(4, 2, 3)).astype(np.float32)
    out = layer(z, training=True, seed=tf.constant([1, 2]))
    e = layer.codebook.numpy()[out["codes"].numpy()]
    want = np.mean((z - e) ** 2) * (1.0 + 0.3)  # the codebook term and beta times the commitment term, equal values
    np.testing.assert_allclose(float(out["loss"]), want, rtol=1e-5)
    with_prob = StochasticVectorQuantizer(5, 3, commitment_cost=0.3, entropy_cost=0.1, seed=0)
    out = with_prob(z, training=False, stochastic=False)
    np.testing.assert_allclose(float(out["loss"]), 0.3 * float(out["commitment"]) - 0.1 * float(out["entropy"]),
                               rtol=1e-6)


def test_the_switches_are_checked_and_survive_a_keras_file(tmp_path):
    with pytest.raises(ValueError, match="quantizer must be one of"):
        tiny(quantizer="ema")
    with pytest.raises(ValueError, match="target must be one of"):
        tiny(target="pixels")
    with pytest.raises(ValueError, match="needs quantizer='gumbel'"):
        tiny(quantizer="vq")  # probabilistic_loss defaults to True
    model = HQA((16, 16, 1), [dict(num_codes=8, code_dim=4, encoder_hidden=8, decoder_hidden=8)] * 2,
                quantizer="vq", target="codes", probabilistic_loss=False)
    x = images(2)
    model.layer_loss(x, 2)
    model.save(tmp_path / "hams.keras")
    loaded = keras.saving.load_model(tmp_path / "hams.keras")
    assert loaded.switches == {"quantizer": "vq", "target": "codes", "probabilistic_loss": False}
    np.testing.assert_array_equal(model.encode(x, 2).numpy(), loaded.encode(x, 2).numpy())
    np.testing.assert_allclose(model.reconstruct(x, 2).numpy(), loaded.reconstruct(x, 2).numpy(), atol=1e-6)
