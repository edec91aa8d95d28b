"""TFLite decoders (`tfvq.export.tflite_decoders`) of every family with discrete codes agree with the Keras model.

One tiny model per family (HQA with HQA's and HAMs' switches, the VQ-VAE, RRVQ-VAE with a learnt top prior, the
FSQ / LFQ / RVQ / VQ autoencoders), converted once per family. The float32 file answers what the codec asks
(`tfvq.codec.lite_model.LiteModel`) as the model does, to the last bits float arithmetic in another order
leaves:

* images: within `IMAGE_TOL` of the model's float decode (a few ulps), and uint8 pixels within one grey level;
* code log-probabilities and the pixel likelihood: within the margins `tfvq.codec.entropy` escapes
  (`LOG_MARGIN`, `LOC_MARGIN`, `SCALE_MARGIN`), so they round to the same integer tables, and the same tables
  they give;
* the top prior: the model's own values.

A fully convolutional family's bundle takes any size (`any_size`): at other sizes its encoders give the codes
and its decoders the images of the Keras model built for that size (`with_image_shape`).
"""

import os

import numpy as np
import pytest

from tfvq import cli, decoder_bundle, models, zoo
from tfvq.codec import entropy
from tfvq.codec.lite_model import LiteModel, NotServed, find_decoder
from tfvq.export import tflite_decoders

IMAGE_TOL = 1e-6
"""Images in [0, 1]: TFLite's kernels (XNNPACK) and TensorFlow's (oneDNN / Eigen) add the same float32 products
in other orders. Measured on these models: at most 1.8e-7 (three float32 ulps near 1; LFQ), 1.2e-7 for the
others. The bound is that and some room for other CPUs' kernels (16 ulps); a code that a re-quantising decoder
(HQA Algorithm 3) took on the other side of a near tie would move an image by far more."""
FLOAT16_TOL = 1e-3
"""float16 weights (10-bit mantissas, relative error up to 2^-11 per weight): measured at most 1.6e-4 (LFQ),
1.2e-4 (RRVQ-VAE)."""

TINY = {
    "hqa": lambda: models.HQA((8, 8, 1), [dict(num_codes=8, code_dim=4, encoder_hidden=4, decoder_hidden=4)] * 2),
    "hams": lambda: models.HQA((8, 8, 1), [dict(num_codes=8, code_dim=4, encoder_hidden=4, decoder_hidden=4)] * 2,
                               quantizer="vq", target="codes", probabilistic_loss=False),
    "vqvae": lambda: models.VQVAE((8, 8, 1), num_downsamples=2, encoder_hidden=4, decoder_hidden=4, num_codes=8,
                                  code_dim=4),
    "rrvq": lambda: models.RRVQVAE((8, 8, 1), latent_sizes=(4, 2), num_codes=8, code_dim=4, channels=8,
                                   top_prior="learned", seed=1),
    "fsq": lambda: models.FSQAutoencoder((8, 8, 1), levels=(3, 3), encoder_hidden=4, decoder_hidden=4),
    "lfq": lambda: models.LFQAutoencoder((8, 8, 1), code_dim=3, encoder_hidden=4, decoder_hidden=4),
    "rvq": lambda: models.RVQAutoencoder((8, 8, 1), num_quantizers=2, num_codes=4, code_dim=4, encoder_hidden=4,
                                         decoder_hidden=4, seed=1),
    "vq": lambda: models.VQAutoencoder((8, 8, 1), num_codes=8, code_dim=4, encoder_hidden=4, decoder_hidden=4,
                                       seed=1),
}
"""Each family's tiny model (8x8 images, a few codes)."""
PROBABILITIES = {"hqa": ("code_logits",), "hams": ("code_logits",), "rrvq": ("code_logits", "pixel_likelihood")}
"""The signatures besides `decode` each family has (the others give no code or pixel probabilities)."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """`converted(family)`: (model, its float32 and float16 LiteModels), converted once per family."""
    done = {}

    def get(family):
        if family not in done:
            model = TINY[family]()
            folder = tmp_path_factory.mktemp(family)
            with tflite_decoders.DecoderConversion(model) as conversion:
                manifest = conversion.write(str(folder), family, ("float32", "float16"))
            done[family] = (model, LiteModel(manifest), LiteModel(manifest, "float16"))
        return done[family]

    return get


def _codes(layout, layer, count=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, layout.num_codes[j - 1], (count, *layout.grids[j - 1])).astype(np.int32)
            for j in layout.layers_sent(layer)]


@pytest.mark.parametrize("family", sorted(TINY))
def test_the_float32_decoders_answer_as_the_model(converted, family):
    model, lite, _ = converted(family)
    layout = model.code_layout()
    assert lite.code_layout() == layout and lite.image_shape == tuple(model.image_shape)
    assert [lite.code_stride(l) for l in range(1, layout.num_layers + 1)] == \
        [model.code_stride(l) for l in range(1, layout.num_layers + 1)]
    kinds = {name.rsplit("_layer_", 1)[0] for name in lite.manifest["signatures"]}
    assert kinds == {"decode", *PROBABILITIES.get(family, ())}
    for layer in range(1, layout.num_layers + 1):
        codes = _codes(layout, layer, seed=layer)
        want = np.asarray(model.decode(codes, layer))
        got = lite.decode(codes, layer)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.abs(got - want).max() <= IMAGE_TOL
        pixels = np.abs(lite.decode(codes, layer, dtype="uint8").astype(int)
                        - np.asarray(model.decode(codes, layer, dtype="uint8")).astype(int))
        assert pixels.max() <= 1
        if layer > 1:
            want = model.code_logits(codes, layer)
            got = lite.code_logits(codes, layer)
            assert (got is None) == (want is None) == ("code_logits" not in kinds)
            if want is not None:
                want = np.asarray(want)
                kept = want > -entropy.LOG_STEP * (entropy.LOG_LEVELS + 1)  # what gets a weight at all
                assert np.abs(got - want)[kept].max() < entropy.LOG_MARGIN
                (t_want, a_want), (t_got, _) = entropy.quantise_log_probs(want), entropy.quantise_log_probs(got)
                np.testing.assert_array_equal(t_got[~a_want], t_want[~a_want])
        want = model.pixel_likelihood(codes, layer)
        got = lite.pixel_likelihood(codes, layer)
        assert (got is None) == (want is None)
        if want is not None:
            assert np.abs(got[0] - np.asarray(want[0])).max() < entropy.LOC_MARGIN
            assert np.abs(got[1] - np.asarray(want[1])).max() < entropy.SCALE_MARGIN
    want = model.top_code_logits(2)
    got = lite.top_code_logits(2)
    assert (got is None) == (want is None)
    if want is not None:
        np.testing.assert_array_equal(got, np.asarray(want))


@pytest.mark.parametrize("family", ["hqa", "rrvq", "fsq", "rvq"])
def test_the_float16_decoders_are_close(converted, family):
    """(Their files are half the size for real models, docs/deployment.md; these tiny ones have weights too small
    to convert.)"""
    model, _, half = converted(family)
    codes = _codes(model.code_layout(), 1)
    assert np.abs(half.decode(codes, 1) - np.asarray(model.decode(codes, 1))).max() <= FLOAT16_TOL


def test_a_decoder_refuses_what_it_cannot_decode(converted):
    model, lite, _ = converted("rrvq")
    with pytest.raises(ValueError, match=r"codes must be in \[0, 7\]"):
        lite.decode([np.full((1, 4, 4), 8, np.int32), np.zeros((1, 2, 2), np.int32)], 1)
    with pytest.raises(ValueError, match="Expected the codes of layers"):
        lite.decode(_codes(model.code_layout(), 2), 1)
    with pytest.raises(ValueError, match="Layer 1 is the finest"):
        lite.code_logits(_codes(model.code_layout(), 1), 1)
    assert lite.decodes_stochastically(2) and not lite.decodes_stochastically(1)
    assert lite.with_image_shape((8, 8, 1)) is lite and not lite.any_size  # RRVQ-VAE: its own size only
    with pytest.raises(NotServed, match="take 8x8 images, not 16x8"):
        lite.with_image_shape((16, 8, 1))
    _, fsq_lite, _ = converted("fsq")
    assert fsq_lite.with_image_shape((8, 8, 1)) is fsq_lite
    for bad in ((9, 8, 1), (8, 0, 1), (8, 8, 3), (8, 8)):
        with pytest.raises(ValueError, match=r"Expected an image shape \(H, W, 1\) with H and W positive multiples of "
                                             r"the model's stride 2, got"):
            fsq_lite.with_image_shape(bad)
    old = LiteModel({k: v for k, v in fsq_lite.manifest.items() if k != "any_size"})  # written before `any_size`
    assert not old.any_size and old.with_image_shape((8, 8, 1)) is old
    with pytest.raises(NotServed, match="take 8x8 images, not 16x8"):
        old.with_image_shape((16, 8, 1))
    codes = _codes(fsq_lite.code_layout(), 1)
    np.testing.assert_array_equal(old.decode(codes), fsq_lite.decode(codes))


def test_export_writes_the_decoders_and_caches_them_beside_the_weights(tmp_path, capsys):
    folder = tmp_path / "tiny_vq"
    zoo.save(TINY["vq"](), str(folder), metadata={"zoo_name": "tiny_vq"})
    assert cli.main(["export", f"--model={folder}", f"--out={tmp_path / 'out'}", "--format=decoders"]) == 0
    out = capsys.readouterr().out
    manifest = decoder_bundle.read_manifest(tmp_path / "out" / "tflite" / "tiny_vq_decoder.json")
    assert sorted(manifest["files"]) == ["float16", "float32"]
    cached = find_decoder("tiny_vq", str(folder))
    assert cached is not None and f"TFLite encoders and decoders for tfvq compress and decompress: {folder}" in out
    assert cached["encoder_signatures"] == ["encode_layer_1"] and cached["native_size"] is None
    x = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    np.testing.assert_array_equal(LiteModel(cached).encode(x, 1), np.asarray(zoo.load(str(folder)).encode(x, 1)))
    assert cached["weights_hash"] == manifest["weights_hash"] == zoo.weights_hash(zoo.load(str(folder))).hex()
    assert find_decoder("another_model", str(folder)) is None
    # Other weights in the same place never meet the old decoders: they are named by the weights file's digest.
    zoo.save(TINY["vq"](), str(folder), metadata={"zoo_name": "tiny_vq"})
    assert find_decoder("tiny_vq", str(folder)) is None
    new = tflite_decoders.cache_decoders(zoo.load(str(folder)), "tiny_vq")  # ... and their own replace them
    assert find_decoder("tiny_vq", str(folder))["path"].startswith(new)
    assert [p.name for p in folder.glob("model.decoders-*")] == [os.path.basename(new)]
    manifest = decoder_bundle.read_manifest(new)
    assert manifest["any_size"] is True
    # A bundle converted at the model's own size only (before `any_size`) is converted again.
    decoder_bundle.write_manifest(new, {k: v for k, v in manifest.items() if k not in ("format", "path", "any_size")})
    assert tflite_decoders.cache_decoders(zoo.load(str(folder)), "tiny_vq") == new
    assert decoder_bundle.read_manifest(new)["any_size"] is True


OTHER_SIZES = ((16, 24, 1), (24, 8, 1))
"""Image sizes other than the tiny models' 8x8 (multiples of every family's top stride, 4 or 2)."""


@pytest.mark.parametrize("family", ["hqa", "hams", "vqvae", "fsq", "lfq", "rvq", "vq"])
def test_a_fully_convolutional_bundle_codes_other_sizes_as_the_model(converted, family):
    """One bundle at any size: the encoders give the codes of the Keras model built for that size
    (`with_image_shape`), every one of them (measured on these models: no near tie among 3 random images of each
    size), and the decoders its images and code log-probabilities within the tolerances of its own size."""
    model, lite, _ = converted(family)
    assert lite.any_size and lite.manifest["any_size"] is True
    with tflite_decoders.EncoderConversion(model) as encoders:
        keys = encoders.write(os.path.dirname(lite.manifest["path"]), prefix=f"{family}_any_")
    lite = LiteModel({**lite.manifest, **keys})
    for shape in OTHER_SIZES:
        sized, view = model.with_image_shape(shape), lite.with_image_shape(shape)
        assert view.image_shape == shape and lite.image_shape == (8, 8, 1)
        layout = sized.code_layout()
        assert view.code_layout() == layout != lite.code_layout()
        x = np.random.default_rng(shape[0]).integers(0, 256, (3, *shape), dtype=np.uint8)
        for layer in range(1, layout.num_layers + 1):
            want, got = sized.encode(x, layer), view.encode(x, layer)
            want, got = (c if isinstance(c, (list, tuple)) else [c] for c in (want, got))
            for j, w, g in zip(layout.layers_sent(layer), want, got):
                assert g.dtype == np.int32 and g.shape == (3, *layout.grids[j - 1])
                np.testing.assert_array_equal(g, np.asarray(w))
            codes = _codes(layout, layer, seed=layer)
            assert np.abs(view.decode(codes, layer) - np.asarray(sized.decode(codes, layer))).max() <= IMAGE_TOL
            if layer > 1 and family in PROBABILITIES:
                want = np.asarray(sized.code_logits(codes, layer))
                kept = want > -entropy.LOG_STEP * (entropy.LOG_LEVELS + 1)
                assert np.abs(view.code_logits(codes, layer) - want)[kept].max() < entropy.LOG_MARGIN
        with pytest.raises(ValueError, match=r"images must be \[batch, " + ", ".join(map(str, shape))):
            view.encode(np.zeros((1, 8, 8, 1), np.uint8), 1)
        with pytest.raises(ValueError, match="codes must have shape"):
            view.decode(_codes(lite.code_layout(), 1), 1)
    np.testing.assert_array_equal(lite.encode(x[:, :8, :8], 1), np.asarray(model.encode(x[:, :8, :8], 1)))
    upsampling = [l for l in model._flatten_layers() if type(l).__name__ == "UpSampling2D"]
    assert upsampling and not any("call" in vars(l) for l in upsampling)  # the conversion left the model as it was


def test_a_tiled_models_batches_of_16_take_one_invoke_and_give_what_one_image_gives(converted):
    """A model of fixed image size (an RRVQ-VAE, whose large images are many tiles) has every signature at a
    batch of 16 as well: 20 images take one batched invoke and 4 single ones, the same function of each image
    (to float rounding) as the model and as one image per invoke; a fully convolutional model's have batch 1."""
    model, lite, _ = converted("rrvq")
    assert lite.manifest["batch"] == decoder_bundle.BATCH == 16 and converted("fsq")[1].manifest.get("batch") is None
    assert {"decode_layer_1_batch_16", "code_logits_layer_2_batch_16"} <= set(lite.manifest["signatures"])
    single = LiteModel({k: v for k, v in lite.manifest.items() if k != "batch"})  # as a bundle before `batch`
    calls = []
    runner = lite._runner
    lite._runner = lambda which, name: (calls.append(name), runner(which, name))[1]
    try:
        codes = _codes(model.code_layout(), 1, count=20, seed=5)
        got = lite.decode(codes, 1)
    finally:
        del lite._runner
    assert calls == ["decode_layer_1_batch_16"] + ["decode_layer_1"] * 4
    assert np.abs(got - single.decode(codes, 1)).max() <= 1e-6
    assert np.abs(got - np.asarray(model.decode(codes, 1))).max() <= IMAGE_TOL
    above = codes[1:]
    got, want = lite.code_logits(above, 2), np.asarray(model.code_logits(above, 2))
    assert np.abs(got - single.code_logits(above, 2)).max() < entropy.LOG_MARGIN
    kept = want > -entropy.LOG_STEP * (entropy.LOG_LEVELS + 1)
    assert np.abs(got - want)[kept].max() < entropy.LOG_MARGIN


@pytest.mark.parametrize("family", ["hqa", "rrvq", "fsq", "rvq"])
def test_the_encoders_give_the_models_codes(converted, family):
    model, lite, _ = converted(family)
    layout = model.code_layout()
    x = np.random.default_rng(1).integers(0, 256, (20, *model.image_shape), dtype=np.uint8)  # a batch of 16, 4 more
    bias = {layout.num_layers: np.linspace(-2.0, 0.0, layout.num_codes[-1], dtype=np.float32)}
    with tflite_decoders.EncoderConversion(model, bias) as encoders:
        keys = encoders.write(os.path.dirname(lite.manifest["path"]), prefix=f"{family}_")
    with_encoders = LiteModel({**lite.manifest, **keys})
    assert with_encoders.has_encoders()
    biased = model.encode_biased(x, bias, 1) is not None
    assert (keys["encoder_bias"] is not None) == biased == (family == "rrvq")
    for layer in range(1, layout.num_layers + 1):
        want, got = model.encode(x, layer), with_encoders.encode(x, layer)
        want, got = (c if isinstance(c, (list, tuple)) else [c] for c in (want, got))
        assert len(want) == len(got) == len(layout.layers_sent(layer))
        for w, g in zip(want, got):
            assert g.dtype == np.int32
            np.testing.assert_array_equal(g, np.asarray(w))
        if biased:
            for w, g in zip(model.encode_biased(x, bias, layer), with_encoders.encode_biased(x, bias, layer)):
                np.testing.assert_array_equal(g, np.asarray(w))
    with pytest.raises(ValueError, match=r"images must be \[batch, 8, 8, 1\]"):
        with_encoders.encode(np.zeros((1, 8, 9, 1), np.uint8), 1)
    with pytest.raises(Exception, match="stochastic encode"):
        with_encoders.encode(x, 1, stochastic=True)
    assert not lite.has_encoders()
