"""Files written before format version 2 still decode to exactly the images they decoded to then.

The fixtures in data/ (see data/README.md) are hqa_digits files of layers 1, 3 and 5
(version byte 1) and an rrvq_digits file of every layer (version byte 0x81), two test
digits each, with the uint8 images the codec of the time decoded them to.
"""

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import cli
from tfvq.codec import format as fmt

HQA = [("hqa_digits_layer1_v1", 1), ("hqa_digits_layer3_v1", 3), ("hqa_digits_layer5_v1", 5)]
HQA_WEIGHTS = "hqa_digits_2026_11.weights.h5"
"""The hqa_digits weights the HQA files were made with (the bundled ones of that time; a file names its weights
by their hash, and decodes only with them)."""


def _weights(old_files, model):
    return str(old_files / HQA_WEIGHTS) if model == "hqa_digits" else None
RRVQ = "rrvq_digits_all_layers_v0x81"


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
def test_the_same_digits_compress_to_the_same_codes_in_version_2(old_files, two_digits, stem, layer):
    data, _ = _load(old_files, stem)
    old = codec.read(data)
    new = codec.read(codec.compress(two_digits, old.header.model, layer, coder="fixed",
                                    weights=_weights(old_files, old.header.model)))
    assert new.header.version == fmt.VERSION == 2
    assert (new.header.layers, new.header.code_shapes, new.header.layer_num_codes, new.header.weights_hash) == (
        old.header.layers, old.header.code_shapes, old.header.layer_num_codes, old.header.weights_hash)
    for a, b in zip(new.codes, old.codes):
        np.testing.assert_array_equal(a, b)
    # ... and the version 1 writer still writes the old bytes.
    h = new.header
    assert fmt.write_v1(new.codes, h.model, h.weights_hash, h.first_layer, h.layer_num_codes) == data


def test_info_describes_an_old_file(old_files, capsys):
    assert cli.main(["info", str(old_files / f"{RRVQ}.tfvq")]) == 0
    out = capsys.readouterr().out
    assert ".tfvq version 1, model rrvq_digits" in out
    assert "layers 1..5, 2 image(s) of codes 16x16 K=32, 8x8 K=32, 4x4 K=32, 2x2 K=32, 1x1 K=32" in out
    assert "1705 bits per image, 427 bytes of codes, 503 bytes in all" in out
