"""Files of format versions 1, 2, 3 and 4 still decode to exactly the images they decoded to then.

The fixtures in data/ (see data/README.md) are hqa_digits files of layers 1, 3 and 5
(version byte 1) and an rrvq_digits file of every layer (version byte 0x81), and the
version 2 and 3 files of the last codec that wrote them, and version 4 files written before the
RESIZED flag (a 28x28 real digit then coded padded), two test digits each, with the uint8 images
the codec of the time decoded them to.
"""

import subprocess
import sys

import numpy as np
import pytest

from tfvq import codec
from tfvq import cli
from tfvq.codec import container
from tfvq.codec.errors import CodecError

HQA = [("hqa_digits_layer1_v1", 1), ("hqa_digits_layer3_v1", 3), ("hqa_digits_layer5_v1", 5)]
HQA_WEIGHTS = "hqa_digits_2026_11.weights.h5"
"""The hqa_digits weights the HQA files were made with (the bundled ones of that time; a file names its weights
by their hash, and decodes only with them)."""


def _weights(old_files, model):
    return str(old_files / HQA_WEIGHTS) if model == "hqa_digits" else None


RRVQ = "rrvq_digits_all_layers_v0x81"
KEPT = [  # (stem, version byte, model, layers, image size), data/README.md "Files of format versions 2, 3 and 4"
    ("hqa_digits_layer2_v2", 2, "hqa_digits", (2,), (32, 32)),
    ("rrvq_digits_layer2_v2", 2, "rrvq_digits", (2, 3, 4, 5), (32, 32)),
    ("hqa_digits_layer1_v3_auto", 3, "hqa_digits", (1, 2, 3, 4, 5), (32, 32)),
    ("hqa_digits_layer1_v3_context", 3, "hqa_digits", (1, 2, 3, 4, 5), (32, 32)),
    ("hqa_digits_layer3_v3_progressive", 3, "hqa_digits", (3, 4, 5), (32, 32)),
    ("hqa_digits_layer5_v3_static", 3, "hqa_digits", (5,), (32, 32)),
    ("rrvq_digits_layer1_v3_auto", 3, "rrvq_digits", (1, 2, 3, 4, 5), (32, 32)),
    ("rrvq_digits_layer1_v3_lossless", 3, "rrvq_digits", (1, 2, 3, 4, 5), (32, 32)),
    ("hqa_digits_layer1_v3_27x30", 3, "hqa_digits", (1, 2, 3, 4, 5), (27, 30)),
    ("rrvq_digits_layer1_v3_27x30", 3, "rrvq_digits", (1, 2, 3, 4, 5), (27, 30)),
    ("hqa_digits_layer1_v4_27x30", 4, "hqa_digits", (1, 2, 3, 4, 5), (27, 30)),
    ("hqa_mnist_layer2_v4_28x28", 4, "hqa_mnist", (2, 3, 4, 5), (28, 28)),
]


def _load(old_files, stem):
    return (old_files / f"{stem}.tfvq").read_bytes(), np.load(old_files / f"{stem}.npy")


@pytest.mark.parametrize("stem,layer", HQA)
def test_old_hqa_files_decode_to_the_same_images_with_and_without_a_seed(old_files, stem, layer):
    data, images = _load(old_files, stem)
    header = codec.read_header(data)
    assert (header.version_byte, header.model, header.layers, header.count) == (1, "hqa_digits", (layer,), 2)
    weights = _weights(old_files, "hqa_digits")
    decoded = codec.decompress(data, weights=weights)
    assert decoded.dtype == np.uint8 and decoded.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(decoded, images)
    np.testing.assert_array_equal(codec.decompress(data, seed=7, weights=weights),
                                  np.load(old_files / f"{stem}_seed7.npy"))


def test_old_rrvq_all_layers_file_decodes_to_the_same_images(old_files):
    data, images = _load(old_files, RRVQ)
    header = codec.read_header(data)
    assert (header.version_byte, header.model, header.layers, header.count) == (0x81, "rrvq_digits", (1, 2, 3, 4, 5), 2)
    np.testing.assert_array_equal(codec.decompress(data), images)
    # Every layer is stored: a seed has nothing to sample (the old codec refused one).
    np.testing.assert_array_equal(codec.decompress(data, seed=7), images)


@pytest.mark.parametrize("stem,layer", HQA + [(RRVQ, None)])
def test_the_same_digits_compress_to_the_same_codes_in_version_4(old_files, two_digits, stem, layer, decoded_codes):
    data, _ = _load(old_files, stem)
    old = codec.read_header(data)
    weights = _weights(old_files, old.model)
    model, weights_hash = codec.load_model(old.model, weights)
    # The old file holds the codes the model of its weights gives the digits today.
    assert old.weights_hash == weights_hash
    want = model.encode(two_digits, layer)
    want = [np.asarray(c) for c in (want if isinstance(want, (list, tuple)) else [want])]
    assert len(old.codes) == len(want)
    for a, b in zip(old.codes, want):
        np.testing.assert_array_equal(a, b)
    # A version 4 file of the same digits, made with the same weights, holds those codes and decodes to their images.
    new = codec.compress(two_digits, old.model, layer, coder="fixed", weights=weights)
    header = codec.read_header(new)
    assert header.version == 4 and header.layers == old.layers and header.images == 2
    assert header.tag == container.file_digest(old.weights_hash)[:container.TAG_BYTES]
    decoded = decoded_codes(new, weights)
    for l, b in zip(old.layers, old.codes):
        np.testing.assert_array_equal(decoded[l], b)
    at = old.first_layer
    np.testing.assert_array_equal(codec.decompress(new, weights=weights),
                                  model.decode(model.encode(two_digits, layer), at, dtype="uint8").numpy())


@pytest.mark.parametrize("stem,version,model,layers,size", KEPT)
def test_kept_version_2_3_and_4_files_decode_to_the_same_images(old_files, stem, version, model, layers, size):
    data, images = _load(old_files, stem)
    header = codec.read_header(data)
    assert (header.version, header.version_byte, header.model, header.layers) == (version, version, model, layers)
    assert (header.images, header.image_size or (32, 32)) == (2, size)  # the same kind of header, any version
    decoded = codec.decompress(data)
    assert decoded.dtype == np.uint8 and decoded.shape == (2,) + size + (1,)
    np.testing.assert_array_equal(decoded, images)
    seed7 = old_files / f"{stem}_seed7.npy"
    if seed7.exists():
        np.testing.assert_array_equal(codec.decompress(data, seed=7), np.load(seed7))
    else:  # the lossless file: its exact pixels, whatever the seed
        assert stem.endswith("lossless")
        np.testing.assert_array_equal(codec.decompress(data, seed=7), images)


def test_every_kept_file_is_in_the_table(old_files):
    kept = {p.stem for p in old_files.glob("*.tfvq") if any(f"_v{v}" in p.stem for v in (2, 3, 4))}
    assert kept == {stem for stem, *_ in KEPT}


@pytest.mark.parametrize("stem,layer", HQA)
def test_a_file_whose_weights_are_gone_is_refused(old_files, stem, layer):
    data, _ = _load(old_files, stem)
    # The hqa_digits weights these were made with are no longer the bundled ones: without them, no image.
    with pytest.raises(CodecError, match="made with other weights of 'hqa_digits'.*--weights=PATH"):
        codec.decompress(data)
    with pytest.raises(CodecError, match="made with other weights of 'hqa_digits'.*--weights=PATH"):
        codec.decompress(data, seed=7)


def test_a_kept_file_is_refused_with_the_old_weights(old_files):
    # The other way round: a version 2 (and 3) file of today's bundled weights, given the old weights.
    for stem in ("hqa_digits_layer2_v2", "hqa_digits_layer5_v3_static"):
        data, _ = _load(old_files, stem)
        with pytest.raises(CodecError, match="made with other weights of 'hqa_digits'"):
            codec.decompress(data, weights=old_files / HQA_WEIGHTS)


def test_info_describes_an_old_file(old_files, capsys):
    assert cli.main(["info", str(old_files / f"{RRVQ}.tfvq")]) == 0
    out = capsys.readouterr().out
    assert ".tfvq version 1, model rrvq_digits" in out
    assert "layers 1..5, 2 image(s) of codes 16x16 K=32, 8x8 K=32, 4x4 K=32, 2x2 K=32, 1x1 K=32" in out
    assert "1705 bits per image, 427 bytes of codes, 503 bytes in all" in out


def test_every_kept_file_is_read_and_described_without_tensorflow(old_files):
    code = ("import pathlib, sys; from tfvq import codec\n"
            f"for path in sorted(pathlib.Path({str(old_files)!r}).glob('*.tfvq')):\n"
            "    header = codec.read_header(path.read_bytes())\n"
            "    first = header.describe()[0]\n"
            "    assert first.startswith(f'.tfvq version {header.version}') and f'model {header.model}' in first\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
