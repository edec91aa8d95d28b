"""`tfvq.codec.compress` with TFLite encoders (`tfvq.codec.lite_encoding`).

The bundled models with TFLite decoders ship their encoders too. On real digits (`mnist10k_raw("test")`) a file
written through TFLite is the file TensorFlow writes wherever the two encoders give the same codes, with every
coder; both backends decode every TFLite-written file (its CRC holds); no TensorFlow is imported; what the
encoders cannot encode takes TensorFlow, said once.
"""

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfvq import codec, zoo
from tfvq.codec import coding, decoding, files, lite_encoding
from tfvq.codec.errors import CodecError
from tfvq.codec.lite_model import BUNDLED_WEIGHTS, LiteModel, NotServed
from tfvq.data.embedded import mnist10k_raw
from tfvq.data.tfds_datasets import resize_bilinear

SHIPPED = ("hqa_mnist", "rrvq_mnist", "hqa_digits", "rrvq_digits")
"""The bundled models that ship TFLite encoders (at least these)."""
CODERS = ("fixed", "static", "context", "progressive", "auto")
IMAGE_TOL = 1e-4
"""Images in [0, 1] the TFLite decoders give from the Keras model's codes at other sizes where the decode chooses
no code (float32 products added in another order): measured at 64x96, 96x64 and 128x160 on 120 digits each, at
most 5.4e-5 (`vqvae_mnist`, five upsamplings; 9.7e-6 at its own size), 7.5e-7 for the others."""
NEAR_TIES = {("hqa_digits", 1): 1, ("hqa_mnist", 1): 1}
"""(model, layer): the codes of each of the tests' mosaics of six digits (2x3 and 3x2) where the TFLite encoders
take the other code of a near tie, as measured; no other code differs (docs/deployment.md measures 120 digits per
size)."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
    """The first 12 real test digits, uint8 [12, 28, 28, 1]."""
    return mnist10k_raw("test")[0][:12, ..., None]


@pytest.fixture(autouse=True)
def fresh_notes(monkeypatch):
    """Every test starts with nothing said yet about encoding with TensorFlow."""
    monkeypatch.setattr(decoding, "_SAID", set())


def test_resize_bilinear_gives_tensorflows_pixels():
    for split in ("train", "test"):
        d = mnist10k_raw(split)[0][..., None]
        np.testing.assert_array_equal(lite_encoding.resize_bilinear(d, 32, 32), np.asarray(resize_bilinear(d, 32, 32)))
    rng = np.random.default_rng(0)
    for h, w, height, width in ((17, 40, 32, 32), (50, 30, 32, 32), (5, 7, 64, 9), (1, 3, 4, 4)):
        x = rng.integers(0, 256, (8, h, w, 3), dtype=np.uint8)
        np.testing.assert_array_equal(lite_encoding.resize_bilinear(x, height, width),
                                      np.asarray(resize_bilinear(x, height, width)))


def test_the_bundled_models_ship_encoders():
    for name in SHIPPED:
        manifest, reason = lite_encoding.find_encoder(name)
        assert manifest is not None, reason
        model, digest = files.load_model(name)
        prior = files.load_prior(name, model, digest)
        lite = LiteModel(manifest)
        assert lite.has_encoders() and lite.native_size == files.native_size(name)
        bias = prior.code_bias()
        held = manifest.get("encoder_bias")
        assert (held is None) == (bias is None), f"{name}: `tfvq export --model={name} --format=decoders` again"
        if bias is not None:
            assert {int(j): np.asarray(b, np.float32).tolist() for j, b in held.items()} == \
                {j: b.tolist() for j, b in bias.items()}
    assert files.native_size("hqa_mnist") == (28, 28)


@pytest.mark.parametrize("name", ["hqa_mnist", "rrvq_mnist"])
def test_the_encoders_give_tensorflows_codes(name, digits):
    model, digest = files.load_model(name)
    lite = LiteModel(lite_encoding.find_encoder(name)[0])
    x = digits if tuple(model.image_shape[:2]) == (28, 28) else lite_encoding.resize_bilinear(digits, 32, 32)
    for layer in range(1, model.code_layout().num_layers + 1):
        want, got = model.encode(x, layer), lite.encode(x, layer)
        want, got = (w if isinstance(w, list) else [w] for w in (want, got))
        for w, g in zip(want, got):
            assert g.dtype == np.int32 and g.shape == tuple(w.shape)
            assert (g == np.asarray(w)).mean() >= 0.99, (name, layer)
    bias = files.load_prior(name, model, digest).code_bias()
    if bias is not None:
        want, got = model.encode_biased(x, bias, 1), lite.encode_biased(x, bias, 1)
        assert np.mean([(g == np.asarray(w)).mean() for w, g in zip(want, got)]) >= 0.99
        with pytest.raises(NotServed, match="rate weights"):
            lite.encode_biased(x, {l: b + 0.5 for l, b in bias.items()}, 1)


@pytest.mark.parametrize("name", ["hqa_digits", "hqa_mnist", "vqvae_mnist", "fsq_digits", "rvq_digits",
                                  "rfsq_mnist"])
def test_the_encoders_give_tensorflows_codes_at_other_sizes(name, digits):
    """The any-size bundle's encoders at 64x96 and 96x64 against the Keras model built for that size
    (`with_image_shape`): the same codes but for the near ties measured (`NEAR_TIES`), and decodes of those codes
    within float tolerance (`IMAGE_TOL`), or, where HQA's decode chooses the most probable codes below the layer
    (Algorithm 3) and a near tie can go the other way, within a grey level (measured: 7.4e-4)."""
    model, _ = files.load_model(name)
    lite = LiteModel(lite_encoding.find_encoder(name)[0])
    d32 = lite_encoding.resize_bilinear(digits, 32, 32)
    for rows, cols in ((2, 3), (3, 2)):
        x = _mosaic(d32, rows, cols)
        shape = (32 * rows, 32 * cols, 1)
        sized, view = model.with_image_shape(shape), lite.with_image_shape(shape)
        for layer in range(1, model.code_layout().num_layers + 1):
            want, got = sized.encode(x, layer), view.encode(x, layer)
            want, got = (w if isinstance(w, list) else [w] for w in (want, got))
            for w, g in zip(want, got):
                assert g.dtype == np.int32 and g.shape == tuple(w.shape)
                assert (g != np.asarray(w)).sum() <= NEAR_TIES.get((name, layer), 0), (name, layer)
            if layer > 1 and name.startswith("hqa"):
                pixels = np.asarray(sized.decode(want, layer, dtype="uint8")).astype(int)
                assert np.abs(view.decode(want, layer, dtype="uint8") - pixels).max() <= 1, (name, layer)
            else:
                images = np.asarray(sized.decode(want, layer))
                assert np.abs(view.decode(want, layer) - images).max() <= IMAGE_TOL, (name, layer)


@pytest.mark.parametrize("name, layer, lossless", [("hqa_mnist", 2, False), ("rrvq_mnist", None, False),
                                                   ("rrvq_mnist", None, True)])
def test_tflite_files_decode_as_tensorflows_where_the_codes_agree(name, layer, lossless, digits):
    """Where the encoders agree, a file of codes under tables that do not depend on the float model (fixed,
    static, context) is the same bytes; a file with model-coded layers or pixels may escape other positions (each
    side escapes those within the entropy coder's margin of a rounding boundary in its own probabilities) and
    decodes to the same images. Every file written through TFLite decodes through TensorFlow (its CRC holds)."""
    model, digest = files.load_model(name)
    bias = files.load_prior(name, model, digest).code_bias()
    lite = LiteModel(lite_encoding.find_encoder(name)[0])
    layout = model.code_layout()
    chain = set(range(layout.default_layer if layer is None else layer, layout.num_layers + 1))
    agreed = 0
    for i in range(len(digits)):
        x = digits[i:i + 1]
        coded = x if tuple(model.image_shape[:2]) == (28, 28) else lite_encoding.resize_bilinear(x, 32, 32)
        want, got = (coding.encode_layers(m, coded, chain, bias) for m in (model, lite))
        agree = all(np.array_equal(want[l], got[l]) for l in chain)
        agreed += agree
        for coder in CODERS if not lossless else ("auto", "static"):
            via_lite = codec.compress(x, name, layer=layer, coder=coder, lossless=lossless, backend="tflite")
            via_tf = codec.compress(x, name, layer=layer, coder=coder, lossless=lossless, backend="tensorflow")
            images = codec.decompress(via_lite, backend="tensorflow")
            assert images.shape == x.shape
            if agree:
                np.testing.assert_array_equal(images, codec.decompress(via_tf, backend="tensorflow"))
                if coder in ("fixed", "static", "context") and not lossless:  # no float probabilities
                    assert via_lite == via_tf, (i, coder)
            if lossless:
                np.testing.assert_array_equal(images, x)
                np.testing.assert_array_equal(codec.decompress(via_lite, backend="tflite"), x)
    assert agreed >= len(digits) - 1


def _mosaic(digits, rows, cols):
    """`rows` x `cols` of the uint8 digits [N, h, w, 1] side by side: uint8 [1, rows h, cols w, 1]."""
    _, h, w, c = digits.shape
    return digits[: rows * cols].reshape(rows, cols, h, w, c).transpose(0, 2, 1, 3, 4).reshape(1, rows * h, cols * w, c)


OTHER_SIZES = {"mosaic": (2, 3), "big": (12, 12)}
"""Digit mosaics (rows, columns of 32x32 digits) the tests code at other sizes: 64x96, and 384x384, which the
codec codes in row bands (more than `tfvq.codec.bands.BAND_PIXELS` pixels)."""
CLI_CASES = (("fsq_digits", ()), ("hqa_digits", ("--layer=3", "--coder=context")))
"""Fully convolutional models, and the options of their files of other sizes in the fresh-process test."""


def test_compress_and_decompress_import_no_tensorflow(tmp_path):
    """A digit of every bundled model with decoders, and digit mosaics of other sizes (`OTHER_SIZES`) of fully
    convolutional ones (`CLI_CASES`), with `tfvq compress` and `tfvq decompress` in a fresh process: no TensorFlow
    loaded; the mosaics' files are the ones TensorFlow writes (their codes agree: `test_the_encoders_give_
    tensorflows_codes_at_other_sizes`), and decode to TensorFlow's images within a grey level."""
    from PIL import Image

    from tfvq.codec.images import load_image

    Image.fromarray(mnist10k_raw("test")[0][0]).save(tmp_path / "one.png")
    d32 = lite_encoding.resize_bilinear(mnist10k_raw("test")[0][:144, ..., None], 32, 32)
    for stem, (rows, cols) in OTHER_SIZES.items():
        Image.fromarray(_mosaic(d32, rows, cols)[0, ..., 0]).save(tmp_path / f"{stem}.png")
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        from tfvq import cli, codec
        from tfvq.codec.images import load_image
        folder = {str(tmp_path)!r}
        for name in {SHIPPED!r}:
            assert cli.main(["compress", folder + "/one.png", "--model=" + name, "-o", folder + "/" + name + ".tfvq",
                             "--backend=tflite"]) == 0
            assert cli.main(["decompress", folder + "/" + name + ".tfvq", "-o", folder + "/" + name + ".png"]) == 0
        for name, options in {CLI_CASES!r}:
            for stem in {sorted(OTHER_SIZES)!r}:
                out = folder + "/" + stem + "_" + name
                assert cli.main(["compress", folder + "/" + stem + ".png", "--model=" + name, *options, "-o",
                                 out + ".tfvq", "--backend=tflite"]) == 0
                assert cli.main(["decompress", out + ".tfvq", "-o", out + ".png", "--backend=tflite"]) == 0
        x = load_image(folder + "/one.png", 1)
        for coder in ("auto", "progressive", "context", "static", "fixed"):
            codec.decompress(codec.compress(x, "hqa_mnist", layer=1, coder=coder))
        assert (codec.decompress(codec.compress(x, "rrvq_mnist", lossless=True)) == x).all()
        print("tensorflow" in sys.modules)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "False", proc.stdout
    assert "TensorFlow" not in proc.stderr and "XNNPACK" not in proc.stderr, proc.stderr
    for name, options in CLI_CASES:
        kwargs = {k.lstrip("-"): int(v) if v.isdigit() else v for k, v in (o.split("=") for o in options)}
        for stem in OTHER_SIZES:
            x = load_image(tmp_path / f"{stem}.png", 1)[None]
            data = (tmp_path / f"{stem}_{name}.tfvq").read_bytes()
            assert data == files.compress(x, name, **kwargs), (name, stem)
            want = codec.decompress(data, backend="tensorflow").astype(int)
            got = load_image(tmp_path / f"{stem}_{name}.png", 1)[None]
            assert got.shape == want.shape == x.shape and np.abs(got - want).max() <= 1, (name, stem)


def test_weights_without_encoders_take_tensorflow_said_once(tmp_path, capsys, digits):
    weights = tmp_path / "hqa_mnist.weights.h5"
    shutil.copyfile(os.path.join(BUNDLED_WEIGHTS, "hqa_mnist.weights.h5"), weights)
    for suffix in (".prior.json", ".context.npz"):
        shutil.copyfile(os.path.join(BUNDLED_WEIGHTS, f"hqa_mnist{suffix}"), tmp_path / f"hqa_mnist{suffix}")
    x = digits[:1]
    with pytest.raises(CodecError, match="Cannot compress with TFLite alone: these weights of 'hqa_mnist' have no "
                                         "TFLite encoder"):
        codec.compress(x, "hqa_mnist", weights=str(weights), backend="tflite")
    first = codec.compress(x, "hqa_mnist", layer=3, weights=str(weights))
    second = codec.compress(x, "hqa_mnist", layer=3, weights=str(weights))
    err = capsys.readouterr().err
    assert err.count("tfvq: encoding with TensorFlow: these weights of 'hqa_mnist' have no TFLite encoder.") == 1
    assert first == second == files.compress(x, "hqa_mnist", layer=3, weights=str(weights))


def _old_bundle(name, folder):
    """The weights file of a copy in `folder` of `name`'s bundled weights, priors and bundle, its manifest as written
    before fully convolutional models' networks were converted at any size (no `any_size`)."""
    from tfvq import decoder_bundle

    for suffix in (".weights.h5", ".prior.json", ".context.npz"):
        if os.path.isfile(os.path.join(BUNDLED_WEIGHTS, name + suffix)):
            shutil.copyfile(os.path.join(BUNDLED_WEIGHTS, name + suffix), folder / (name + suffix))
    bundle = os.path.dirname(lite_encoding.find_encoder(name)[0]["path"])
    copy = folder / os.path.basename(bundle)
    shutil.copytree(bundle, copy)
    manifest = decoder_bundle.read_manifest(copy)
    decoder_bundle.write_manifest(str(copy), {k: v for k, v in manifest.items()
                                              if k not in ("format", "path", "any_size")})
    return str(folder / f"{name}.weights.h5")


def test_images_of_other_sizes_take_the_any_size_encoders_and_old_bundles_tensorflow(capsys, tmp_path):
    x = _mosaic(mnist10k_raw("test")[0][:2, ..., None], 1, 2)  # 28x56: hqa_digits codes it whole, padded to 32x64
    data = codec.compress(x, "hqa_digits", layer=3, coder="context", backend="tflite")
    assert capsys.readouterr().err == ""
    assert data == files.compress(x, "hqa_digits", layer=3, coder="context")
    weights = _old_bundle("hqa_digits", tmp_path)
    with pytest.raises(CodecError, match="take 32x32 images, not 32x64"):
        codec.compress(x, "hqa_digits", layer=3, weights=weights, backend="tflite")
    assert codec.compress(x, "hqa_digits", layer=3, coder="context", weights=weights) == data
    assert "tfvq: encoding with TensorFlow: the TFLite encoders of 'hqa_digits' cannot encode these images" in \
        capsys.readouterr().err
    assert codec.decompress(data).shape == x.shape


def test_bad_arguments_fail_before_anything_loads():
    x = np.zeros((1, 28, 28, 1), np.uint8)
    with pytest.raises(ValueError, match="backend must be one of auto, tflite, tensorflow"):
        codec.compress(x, "hqa_mnist", backend="gpu")
    with pytest.raises(ValueError, match="coder must be one of"):
        codec.compress(x, "hqa_mnist", coder="best")
    with pytest.raises(CodecError, match=r"'hqa_mnist' has code layers 1..5 .* got layer=7"):
        codec.compress(x, "hqa_mnist", layer=7, backend="tflite")
    with pytest.raises(CodecError, match="of any size with 1 channel, got shape \[1, 28, 28, 3\]"):
        codec.compress(np.zeros((1, 28, 28, 3), np.uint8), "hqa_mnist", backend="tflite")
    assert lite_encoding.RESIZE_CHOICES == files.RESIZE_CHOICES


def test_the_cached_bundle_gains_encoders(tmp_path):
    """A bundle written before encoders existed gets them from `cache_decoders` (what `tfvq export` runs), and
    then compresses a model folder without TensorFlow's encoder."""
    from tfvq.export import tflite_decoders

    folder = tmp_path / "digits_run"
    model = zoo.load("vq_digits", weights="bundled")
    zoo.save(model, str(folder), metadata={"zoo_name": "vq_digits"})
    model = zoo.load(str(folder))
    cached = tflite_decoders.cache_decoders(model, "vq_digits")
    assert lite_encoding.find_encoder(str(folder))[0] is None
    with tflite_decoders.EncoderConversion(model) as encoders:
        assert tflite_decoders.cache_decoders(model, "vq_digits", encoders=encoders) == cached
    manifest, _ = lite_encoding.find_encoder(str(folder))
    assert manifest is not None and manifest["encoder_signatures"] == ["encode_layer_1"]
    x = lite_encoding.resize_bilinear(mnist10k_raw("test")[0][:4, ..., None], 32, 32)
    for coder in ("auto", "static", "fixed"):
        assert codec.compress(x, str(folder), coder=coder, backend="tflite") == \
            codec.compress(x, str(folder), coder=coder, backend="tensorflow")


def test_info_reads_the_header_alone(old_files):
    """`tfvq info` loads no model: no TensorFlow, Keras, LiteRT or zoo in the process."""
    script = textwrap.dedent(f"""
        import sys
        from tfvq import cli
        assert cli.main(["info", {str(old_files / "hqa_mnist_layer2_v4_28x28.tfvq")!r}]) == 0
        print(sorted(m for m in ("tensorflow", "keras", "ai_edge_litert", "tfvq.zoo", "tfvq.codec.lite_model")
                     if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "[]" and "model hqa_mnist" in lines[0] and "layers 2..5" in lines[0], proc.stdout
