"""Tests of tfvq.codec.versions: any `.tfvq` file, whatever its version, read by one function; the files kept of
format versions 2, 3 and 4 still decode to exactly the images they decoded to then.

The kept files in data/ (see data/README.md) are the version 2 and 3 files of the last codec that wrote them,
and version 4 files written before the RESIZED flag (a 28x28 real digit then coded padded), two test digits
each, with the uint8 images the codec of the time decoded them to.
"""

import subprocess
import sys

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import coding, legacy, versions
from tfvq.codec.errors import CodecError
from tfvq.codec.legacy import v1_v2, v3


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


@pytest.mark.parametrize("stem,version,model,layers,size", KEPT)
def test_kept_version_2_3_and_4_files_decode_to_the_same_images(old_files, old_file, stem, version, model, layers,
                                                                size):
    data, images = old_file(stem)
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


def test_a_kept_file_is_refused_with_the_old_weights(old_file, old_weights):
    # The other way round: a version 2 (and 3) file of today's bundled weights, given the old weights.
    for stem in ("hqa_digits_layer2_v2", "hqa_digits_layer5_v3_static"):
        data, _ = old_file(stem)
        with pytest.raises(CodecError, match="made with other weights of 'hqa_digits'"):
            codec.decompress(data, weights=old_weights)


def test_every_kept_file_is_read_and_described_without_tensorflow(old_files, repo_env):
    code = ("import pathlib, sys; from tfvq import codec\n"
            f"for path in sorted(pathlib.Path({str(old_files)!r}).glob('*.tfvq')):\n"
            "    header = codec.read_header(path.read_bytes())\n"
            "    first = header.describe()[0]\n"
            "    assert first.startswith(f'.tfvq version {header.version}') and f'model {header.model}' in first\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=repo_env())


def test_each_version_is_read_by_its_reader_and_decoded_by_its_decoder(old_file, rrvq_file):
    f, decode = versions.read(rrvq_file)
    assert f.version == 4 and decode is coding.decode_compact
    for stem, version, reader in (("rrvq_digits_all_layers_v0x81", 1, v1_v2), ("hqa_digits_layer1_v1", 1, v1_v2),
                                  ("hqa_digits_layer2_v2", 2, v1_v2), ("hqa_digits_layer1_v3_auto", 3, v3)):
        data, _ = old_file(stem)
        f, decode = versions.read(bytearray(data))
        assert f.version == version and decode is reader.decode, stem
        assert type(f) is type(reader.parse(data)) and versions.read_header(memoryview(data)).layers == f.layers


def test_anything_but_the_bytes_of_a_tfvq_file_is_refused_saying_what_it_is():
    with pytest.raises(CodecError, match="Expected the file's bytes, got str"):
        versions.read("digit.tfvq")
    with pytest.raises(CodecError, match=r"Not a .tfvq file: it starts with b'\\x89PNG', neither b'TQ' \(format "
                                         r"version 4\) nor b'TFVQ' \(versions 1 to 3\)"):
        versions.read_header(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(CodecError, match="Not a .tfvq file"):
        versions.read(b"")
    assert legacy.NEWEST_VERSION == 3
