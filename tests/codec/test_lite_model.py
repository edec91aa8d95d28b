"""`tfvq.codec.decompress` with TFLite decoders (`tfvq.codec.lite_model`, `tfvq.codec.decoding`).

Files are made as always (the Keras model encodes) and decoded by the decoders the bundled models ship, on
real digits (`tfvq.data.embedded.mnist10k_raw("test")`): the same codes as TensorFlow's decode, the exact
pixels of a lossless file, lossy images within a grey level, and no TensorFlow in the process. What the
decoders cannot decode takes TensorFlow, said once on stderr.
"""

import glob
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfvq import codec, decoder_bundle, zoo
from tfvq.codec import coding, container, decoding, files
from tfvq.codec.lite_model import BUNDLED_WEIGHTS, LiteModel, find_decoder, load_priors
from tfvq.data.embedded import mnist10k_raw

SHIPPED = ("hqa_mnist", "rrvq_mnist", "hqa_digits", "rrvq_digits")
"""The bundled models that ship TFLite decoders (at least these)."""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits():
    """The first 24 real test digits, uint8 [24, 28, 28, 1]."""
    return mnist10k_raw("test")[0][:24, ..., None]


@pytest.fixture(autouse=True)
def fresh_notes(monkeypatch):
    """Every test starts with nothing said yet about decoding with TensorFlow."""
    monkeypatch.setattr(decoding, "_SAID", set())


def test_the_bundled_models_ship_current_decoders():
    for name in SHIPPED:
        assert find_decoder(name) is not None, name
    for path in glob.glob(os.path.join(BUNDLED_WEIGHTS, "*.decoders-*")):
        manifest = decoder_bundle.read_manifest(path)
        assert find_decoder(manifest["model"])["path"] == manifest["path"], (
            f"{path} is the decoders of other weights: `tfvq export --model={manifest['model']} --out=OUT_DIR "
            "--format=decoders` writes the current ones (and removes these)")
        assert manifest["weights_hash"] == zoo.weights_hash(zoo.load(manifest["model"], weights="bundled")).hex()
        # a model of fixed image size (tiles of a large image) has its signatures at a batch of 16 as well
        assert manifest.get("batch") == (None if manifest["code_strides"] else 16), path


def _codes_both_ways(data, name):
    """The codes {layer: [count, h, w]} a file decodes to through the Keras model and through the TFLite one."""
    f = container.parse(data)
    model, digest = files.load_model(name)
    via_tf, _, _ = coding.compact_codes(f, model, digest, lambda: files.load_prior(name, model, digest))
    lite = LiteModel(find_decoder(name))
    via_lite, _, _ = coding.compact_codes(f, lite, lite.weights_hash, lambda: load_priors(lite))
    return via_tf, via_lite


@pytest.mark.parametrize("name,options", [
    ("hqa_mnist", {}), ("hqa_digits", dict(coder="progressive", layer=1)), ("rrvq_mnist", {}),
    ("rrvq_digits", dict(coder="progressive"))])
def test_lossy_files_give_tensorflows_codes_and_images_within_a_grey_level(digits, name, options):
    """The stored codes are TensorFlow's; images made from them alone (every layer the decode needs is in the file,
    no resizing back) are within a grey level. Where the decode takes the most probable code of layers below
    the stored ones (HQA Algorithm 3's re-quantisation, RRVQ's prior mode) a near tie can go the other way,
    and a resized image (`hqa_mnist`: 32x32 back to 28x28) spreads a grey level: few pixels differ more
    (all 2004 test digits, docs/deployment.md)."""
    data = codec.compress(digits, name, **options)
    via_tf, via_lite = _codes_both_ways(data, name)
    assert sorted(via_tf) == sorted(via_lite)
    for layer in via_tf:
        np.testing.assert_array_equal(via_lite[layer], via_tf[layer])
    header = codec.read_header(data)
    for layer in [None] + ([3, 5] if options.get("coder") == "progressive" else []):
        want = codec.decompress(data, layer=layer, backend="tensorflow").astype(int)
        got = codec.decompress(data, layer=layer, backend="tflite")
        assert got.shape == want.shape == digits.shape and got.dtype == np.uint8
        off = np.abs(got.astype(int) - want)
        stop = header.first_layer if layer is None else layer
        if stop == 1 and not header.resized:  # nothing chosen below the file's codes, nothing resized
            assert off.max() <= 1
        else:
            assert np.mean(off > 1) < 0.01 and np.mean(off) < 0.1


@pytest.mark.parametrize("name,options", [("hqa_digits", dict(coder="progressive", layer=1)),
                                          ("hqa_mnist", dict(coder="progressive", layer=2)), ("fsq_digits", {})])
def test_files_of_another_size_give_tensorflows_codes_and_images_within_a_grey_level(digits, name, options):
    """A 56x84 mosaic of six digits, coded whole by a fully convolutional model (padded to a multiple of its stride:
    64x96 for HQA): its model-coded layers decode through the any-size bundle to TensorFlow's codes, and the images
    of the file's finest layer are within a grey level."""
    mosaic = digits[:6].reshape(2, 3, 28, 28, 1).transpose(0, 2, 1, 3, 4).reshape(1, 56, 84, 1)
    data = codec.compress(mosaic, name, resize="off", **options)
    via_tf, via_lite = _codes_both_ways(data, name)
    assert sorted(via_tf) == sorted(via_lite)
    model = files.load_model(name)[0]
    top = model.code_stride()
    for layer in via_tf:
        stride = model.code_stride(layer)
        assert via_tf[layer].shape[1:] == (-(-56 // top) * top // stride, -(-84 // top) * top // stride)
        np.testing.assert_array_equal(via_lite[layer], via_tf[layer])
    want = codec.decompress(data, backend="tensorflow").astype(int)
    got = codec.decompress(data, backend="tflite")
    assert got.shape == want.shape == mosaic.shape and np.abs(got.astype(int) - want).max() <= 1


@pytest.mark.parametrize("name", ["rrvq_mnist", "rrvq_digits"])
def test_lossless_files_of_real_digits_give_their_pixels(digits, name):
    data = codec.compress(digits, name, lossless=True)
    np.testing.assert_array_equal(codec.decompress(data, backend="tflite"), digits)


def test_decompress_in_a_fresh_process_imports_no_tensorflow(digits, tmp_path):
    lossy, lossless = codec.compress(digits[:1], "hqa_mnist"), codec.compress(digits[:1], "rrvq_mnist", lossless=True)
    (tmp_path / "lossy.tfvq").write_bytes(lossy)
    (tmp_path / "lossless.tfvq").write_bytes(lossless)
    np.save(tmp_path / "lossy.npy", codec.decompress(lossy, backend="tflite"))
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from PIL import Image
        from tfvq import cli, codec
        assert cli.main(["decompress", "lossy.tfvq", "lossless.tfvq"]) == 0
        np.testing.assert_array_equal(codec.decompress(open("lossy.tfvq", "rb").read()), np.load("lossy.npy"))
        np.testing.assert_array_equal(np.asarray(Image.open("lossless.png")), np.load("digit.npy"))
        print("tensorflow" in sys.modules, "keras" in sys.modules)
    """)
    np.save(tmp_path / "digit.npy", digits[0, ..., 0])
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["False", "False"], done.stdout
    assert "TensorFlow" not in done.stderr and "INFO" not in done.stderr, done.stderr


def test_weights_without_decoders_take_tensorflow_and_say_so_once(digits, capsys, tmp_path):
    weights = str(tmp_path / "fsq_digits.weights.h5")  # a copy of the bundled weights: no bundle beside it
    shutil.copyfile(os.path.join(BUNDLED_WEIGHTS, "fsq_digits.weights.h5"), weights)
    data = codec.compress(digits[:2], "fsq_digits", coder="fixed", weights=weights, backend="tensorflow")
    want = codec.decompress(data, backend="tensorflow", weights=weights)
    for _ in range(2):
        np.testing.assert_array_equal(codec.decompress(data, weights=weights), want)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tfvq: decoding with TensorFlow: these weights of 'fsq_digits' have no TFLite decoder."]
    with pytest.raises(codec.CodecError, match="Cannot decode with TFLite alone: these weights of 'fsq_digits'"):
        codec.decompress(data, backend="tflite", weights=weights)


def _old_bundle(name, folder):
    """A copy in `folder` of `name`'s bundled weights, priors and bundle, its manifest as written before fully
    convolutional models' networks were converted at any size (no `any_size`)."""
    for suffix in (".weights.h5", ".prior.json", ".context.npz"):
        if os.path.isfile(os.path.join(BUNDLED_WEIGHTS, name + suffix)):
            shutil.copyfile(os.path.join(BUNDLED_WEIGHTS, name + suffix), folder / (name + suffix))
    bundle = os.path.dirname(find_decoder(name)["path"])
    copy = folder / os.path.basename(bundle)
    shutil.copytree(bundle, copy)
    manifest = decoder_bundle.read_manifest(copy)
    decoder_bundle.write_manifest(str(copy), {k: v for k, v in manifest.items()
                                              if k not in ("format", "path", "any_size")})
    return str(copy)


def test_what_the_decoders_cannot_decode_takes_tensorflow(digits, capsys, tmp_path):
    data = codec.compress(digits[:2], "hqa_digits", layer=3)
    np.testing.assert_array_equal(codec.decompress(data, seed=4), codec.decompress(data, seed=4, backend="tensorflow"))
    assert "a seeded decode at layer 3 samples" in capsys.readouterr().err
    wide = np.concatenate([digits[:1]] * 2, axis=2)  # 28x56: hqa_digits codes it whole, padded to 32x64
    data = codec.compress(wide, "hqa_digits", resize="off", layer=1)
    want = codec.decompress(data, backend="tensorflow")
    old = _old_bundle("hqa_digits", tmp_path)  # a bundle of before `any_size` decodes its own size only
    np.testing.assert_array_equal(codec.decompress(data, decoder=old), want)
    assert "take 32x32 images, not 32x64" in capsys.readouterr().err
    with pytest.raises(codec.CodecError, match="take 32x32 images, not 32x64"):
        codec.decompress(data, decoder=old, backend="tflite")
    got = codec.decompress(data, backend="tflite")  # the shipped bundle takes any size
    assert got.shape == want.shape == wide.shape and np.abs(got.astype(int) - want).max() <= 1
    assert capsys.readouterr().err == ""
    data = codec.compress(digits[:2], "rrvq_mnist")  # every layer stored: a seed samples nothing
    np.testing.assert_array_equal(codec.decompress(data, seed=4), codec.decompress(data, backend="tflite"))
    assert capsys.readouterr().err == ""


def test_a_named_manifest_decodes_its_models_files_only(digits):
    data = codec.compress(digits[:1], "hqa_mnist")
    folder = os.path.dirname(find_decoder("hqa_mnist")["path"])
    np.testing.assert_array_equal(codec.decompress(data, decoder=folder, backend="tflite"),
                                  codec.decompress(data, backend="tflite"))
    with pytest.raises(codec.CodecError, match="but the decoders .* decode 'rrvq_mnist'"):
        codec.decompress(data, decoder=os.path.dirname(find_decoder("rrvq_mnist")["path"]))
    with pytest.raises(ValueError, match="seed must be None"):
        codec.decompress(data, seed="x")
    with pytest.raises(ValueError, match="backend must be one of"):
        codec.decompress(data, backend="gpu")


def test_probabilities_beyond_the_margins_take_tensorflow(digits, capsys, monkeypatch):
    """Kernels whose pixel likelihood left the entropy coder's margins would decode other pixels: the file's CRC
    says so, and TensorFlow (the encoder's arithmetic) decodes it."""
    data = codec.compress(digits[:2], "rrvq_mnist", lossless=True)
    exact = LiteModel.pixel_likelihood
    monkeypatch.setattr(LiteModel, "pixel_likelihood",
                        lambda self, codes, layer=None: tuple(v + 0.01 for v in exact(self, codes, layer)))
    np.testing.assert_array_equal(codec.decompress(data), digits[:2])
    assert "probabilities do not give this file's codes (its CRC-32 differs)" in capsys.readouterr().err
    with pytest.raises(codec.CodecError, match="CRC-32"):
        codec.decompress(data, backend="tflite")
