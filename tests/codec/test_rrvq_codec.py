"""RRVQ-VAE files with the bundled rrvq_digits model: a file of layer l holds the codes of layers l..L.

Layer 1 (the default) stores every layer (RRVQ App. F) and decodes deterministically; a
layer l > 1 leaves the layers below to the prior p(z_l | z_>l) (RRVQ eq. 3): its mode,
or samples given a seed.
"""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tfvq
from tfvq import codec
from tfvq.codec import cli
from tfvq.codec import format as fmt
from tfvq.codec.format import CodecError
from tfvq.data import load_numpy

NAME = "rrvq_digits"
GRIDS = ((16, 16), (8, 8), (4, 4), (2, 2), (1, 1))
KS = (32,) * 5
CODE_BITS = sum(h * w * 5 for h, w in GRIDS)  # 1705: K = 32 is 5 bits per code
HEADER = 26 + len(NAME) + 8 * 5  # 77 bytes with the CRC


@pytest.fixture(scope="module")
def model():
    return codec.load_model(NAME)[0]


@pytest.fixture(scope="module")
def digits():
    """Three test digits as uint8 [3, 32, 32, 1] images, as they would come from PNGs."""
    return np.round(load_numpy("digits", "test", limit=3) * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def rrvq_file(digits):
    return codec.compress(digits, NAME, coder="fixed")


def _rewrite(data, **changes):
    """A file with other codes, model, weights_hash, first_layer or num_codes (and a valid CRC)."""
    container = fmt.read(data)
    h = container.header
    return fmt.write(changes.get("codes", container.codes), changes.get("model", h.model),
                     changes.get("weights_hash", h.weights_hash), changes.get("first_layer", h.first_layer),
                     changes.get("num_codes", h.layer_num_codes))


def test_default_file_holds_every_layer_and_is_header_plus_code_bits(model, rrvq_file, digits):
    layout = model.code_layout()
    assert layout.default_layer == 1 and layout.bits(1) == CODE_BITS == 1705
    header = codec.read_header(rrvq_file)
    assert (header.version, header.model, header.first_layer, header.layers, header.count) == (
        2, NAME, 1, (1, 2, 3, 4, 5), 3)
    assert header.code_shapes == GRIDS == layout.grids and header.layer_num_codes == KS == layout.num_codes
    assert header.weights_hash == codec.weights_hash(model)
    assert header.bits == CODE_BITS and header.payload_bytes == math.ceil(3 * CODE_BITS / 8) == 640
    assert len(rrvq_file) == HEADER + 640 == fmt.header_bytes(NAME, 5) + 640
    assert len(codec.compress(digits[0], NAME, coder="fixed")) == HEADER + math.ceil(CODE_BITS / 8) == 77 + 214


def test_payload_is_the_models_codes_bit_packed_layer_after_layer(model, digits, rrvq_file):
    codes = [c.numpy() for c in model.encode(digits)]
    container = codec.read(rrvq_file)
    assert len(container.codes) == 5
    for got, want in zip(container.codes, codes):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)
    assert rrvq_file[HEADER - 4: -4] == fmt.pack_layers(codes, KS)


def test_round_trip_equals_decode_of_encode_exactly(model, digits, rrvq_file):
    images = codec.decompress(rrvq_file)
    assert images.shape == (3, 32, 32, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, model.decode(model.encode(digits), dtype="uint8").numpy())
    np.testing.assert_array_equal(images, model.reconstruct(digits).numpy())  # uint8 in, uint8 out
    np.testing.assert_array_equal(codec.decompress(rrvq_file), images)  # deterministic


def test_a_seed_changes_nothing_when_every_layer_is_stored(rrvq_file):
    np.testing.assert_array_equal(codec.decompress(rrvq_file, seed=1), codec.decompress(rrvq_file))


def test_a_file_of_layer_3_holds_layers_3_to_5_and_the_prior_fills_in_below(model, digits):
    x = digits[:2]
    data = codec.compress(x, NAME, layer=3, coder="fixed")
    header = codec.read_header(data)
    assert (header.first_layer, header.layers, header.code_shapes) == (3, (3, 4, 5), GRIDS[2:])
    assert header.bits == 105 and len(data) == fmt.header_bytes(NAME, 3) + math.ceil(2 * 105 / 8)
    codes = model.encode(x, 3)
    np.testing.assert_array_equal(codec.decompress(data), model.decode(codes, 3, dtype="uint8").numpy())
    sampled = codec.decompress(data, seed=5)
    np.testing.assert_array_equal(sampled, model.decode(codes, 3, stochastic=True, seed=5, dtype="uint8").numpy())
    np.testing.assert_array_equal(codec.decompress(data, seed=5), sampled)  # repeatable
    assert not np.array_equal(codec.decompress(data, seed=6), sampled)  # the prior is sampled below layer 3


def test_a_bad_layer_is_refused(digits):
    for layer in (0, 6, -1):
        with pytest.raises(CodecError, match=r"'rrvq_digits' has code layers 1..5 .*default, layer 1"):
            codec.compress(digits, NAME, layer, coder="fixed")


def test_spatial_vae_has_no_codes():
    assert codec.model_spec("spatial_vae_cifar10").layout is None
    with pytest.raises(CodecError, match="'spatial_vae_cifar10' has no discrete codes.*code_layout"):
        codec.compress(np.zeros((32, 32, 3), np.uint8), "spatial_vae_cifar10", coder="fixed")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.rate_table("spatial_vae_cifar10")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.code_layout("spatial_vae_cifar10")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.decompress(fmt.write([np.zeros((1, 1, 1), int)], "spatial_vae_cifar10", bytes(8), 1, [2]))


def test_files_that_do_not_fit_the_model_are_refused(rrvq_file):
    codes = codec.read(rrvq_file).codes
    with pytest.raises(CodecError, match="made with other weights"):
        codec.decompress(_rewrite(rrvq_file, weights_hash=b"\0" * 8))
    with pytest.raises(CodecError, match="layer 1 has K=33 codes, but layer 1 of 'rrvq_digits' has K=32"):
        codec.decompress(_rewrite(rrvq_file, num_codes=(33,) + KS[1:]))
    with pytest.raises(CodecError, match="layer 5 code grid is 2x2, but layer 5 of 'rrvq_digits' has a 1x1 grid"):
        codec.decompress(_rewrite(rrvq_file, codes=codes[:4] + [np.zeros((3, 2, 2), int)]))
    with pytest.raises(CodecError, match="holds the codes of layers 1..4, but a 'rrvq_digits' file of layer 1 holds "
                                         "the codes of layers 1..5"):
        codec.decompress(_rewrite(rrvq_file, codes=codes[:4], num_codes=KS[:4]))
    with pytest.raises(CodecError, match="holds the codes of layer 2, but a 'rrvq_digits' file of layer 2 holds "
                                         r"the codes of layers 2..5 \(what encode\(x, 2\) gives\)"):
        codec.decompress(_rewrite(rrvq_file, codes=codes[1:2], num_codes=KS[1:2], first_layer=2))
    with pytest.raises(CodecError, match="holds the codes of layers 6..10, but 'rrvq_digits' has code layers 1..5"):
        codec.decompress(_rewrite(rrvq_file, first_layer=6))
    # A file of layers 2..5 is what encode(x, 2) gives: it fits.
    assert codec.decompress(_rewrite(rrvq_file, codes=codes[1:], num_codes=KS[1:], first_layer=2)).shape == (
        3, 32, 32, 1)


def test_corrupt_rrvq_files_raise_codec_error(rrvq_file):
    flipped = bytearray(rrvq_file)
    flipped[HEADER + 10] ^= 0x01
    for broken, message in [(bytes(flipped), "CRC-32"), (rrvq_file[:-1], "Truncated"),
                            (rrvq_file[:HEADER - 10], "Truncated"), (b"\x89PNG" + rrvq_file[4:], "Not a .tfvq")]:
        with pytest.raises(CodecError, match=message):
            codec.decompress(broken)


def test_rate_table_gives_the_bits_of_the_layers_sent_at_every_layer():
    rows = codec.rate_table(NAME)
    assert [r["layers"] for r in rows] == [(1, 2, 3, 4, 5), (2, 3, 4, 5), (3, 4, 5), (4, 5), (5,)]
    assert [r["default"] for r in rows] == [True, False, False, False, False]
    first = rows[0]
    assert first["code_grid"] == GRIDS and first["num_codes"] == KS
    assert first["layer_bits"] == (1280, 320, 80, 20, 5) and first["bits"] == 1705
    assert (first["payload_bytes"], first["file_bytes"]) == (214, 291)
    assert first["ratio"] == pytest.approx(32 * 32 * 8 / 1705) and first["file_ratio"] == pytest.approx(1024 / 291)
    assert [r["bits"] for r in rows] == [1705, 425, 105, 25, 5]
    table = codec.format_rate_table(NAME)
    assert "| 1..5 (default) | 16x16 + 8x8 + 4x4 + 2x2 + 1x1 | 32, 32, 32, 32, 32 | 1705 | 214 | 291 |" in table
    assert "| 3..5 | 4x4 + 2x2 + 1x1 | 32, 32, 32 | 105 | 14 | 75 |" in table
    celeba = codec.rate_table("rrvq_celeba64_l5")[0]
    assert (celeba["bits"], celeba["payload_bytes"]) == (2275, 285)  # RRVQ App. F: 2275 bits per image


# ------------------------------------------------------------------ the command line


def _start(args, cwd):
    """`python -m tfvq.codec.cli` of THIS checkout (an installed `tfvq` script may run another copy)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(tfvq.__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=path)
    return subprocess.Popen([sys.executable, "-m", "tfvq.codec.cli"] + args, cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def _one_line_error(code, err):
    assert code != 0 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfvq: error: "), err
    return lines[0]


def test_cli_round_trip_through_files(tmp_path, model, digits):
    tf.io.write_file(str(tmp_path / "digit.png"), tf.io.encode_png(digits[0]))
    procs = {
        "compress": _start(["compress", "--coder=fixed", "digit.png", "--model=rrvq_digits", "-o", "digit.tfvq"], tmp_path),
        "models": _start(["models", "rrvq_digits"], tmp_path),
    }
    results = {name: _finish(p) for name, p in procs.items()}
    for name, (code, _, err) in results.items():
        assert code == 0, f"tfvq {name} failed: {err}"
    models = results["models"][1]
    assert "layer 1 (default): layers 1..5, 16x16, 8x8, 4x4, 2x2, 1x1 codes of K=32, 1705 bits (214 bytes)" in models
    assert "layer 3: layers 3..5, 4x4, 2x2, 1x1 codes of K=32, 105 bits (14 bytes) per image" in models
    assert "291 bytes (214 bytes of codes, 1705 bits, layers 1..5 of rrvq_digits)" in results["compress"][1]
    data = (tmp_path / "digit.tfvq").read_bytes()
    assert data == codec.compress(digits[0], NAME, coder="fixed")

    code, _, err = _finish(_start(["decompress", "digit.tfvq", "-o", "out.png"], tmp_path))
    assert code == 0, err
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out.png"))).numpy()
    np.testing.assert_array_equal(image[None], model.decode(model.encode(digits[:1]), dtype="uint8").numpy())


def test_cli_layer_3_and_a_seed_in_process(tmp_path, digits, capsys):
    png = tmp_path / "digit.png"
    tf.io.write_file(str(png), tf.io.encode_png(digits[0]))
    d3 = tmp_path / "d3.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(png), "--model=rrvq_digits", "--layer=3", "-o", str(d3)]) == 0
    assert "layers 3..5 of rrvq_digits" in capsys.readouterr().out
    assert d3.read_bytes() == codec.compress(digits[0], NAME, 3, coder="fixed")
    assert cli.main(["decompress", str(d3), "-o", str(tmp_path / "out3.png"), "--seed=2"]) == 0
    image3 = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out3.png"))).numpy()
    np.testing.assert_array_equal(image3, codec.decompress(d3.read_bytes(), seed=2)[0])


def test_cli_info_and_errors_in_process(tmp_path, digits, capsys):
    png = tmp_path / "digit.png"
    tf.io.write_file(str(png), tf.io.encode_png(digits[1]))
    out = tmp_path / "d.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(png), "--model=rrvq_digits", "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "version 2, model rrvq_digits" in info and "layers 1..5, 1 image(s) of codes 16x16 K=32, 8x8 K=32" in info
    assert "1705 bits per image, 214 bytes of codes, 291 bytes in all" in info
    assert cli.main(["decompress", str(out), "-o", str(tmp_path / "o.png"), "--seed=3"]) == 0
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "o.png"))).numpy()
    np.testing.assert_array_equal(image, codec.decompress(out.read_bytes())[0])
    capsys.readouterr()

    assert cli.main(["compress", "--coder=fixed", str(png), "--model=rrvq_digits", "--layer=6"]) == 1
    assert "code layers 1..5" in _one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(png), "--model=spatial_vae_cifar10"]) == 1
    assert "no discrete codes" in _one_line_error(1, capsys.readouterr().err)
    data = bytearray(out.read_bytes())
    data[HEADER + 3] ^= 0xFF
    out.write_bytes(bytes(data))
    assert cli.main(["decompress", str(out)]) == 1
    assert "CRC-32 mismatch" in _one_line_error(1, capsys.readouterr().err)
    out.write_bytes(bytes(data[:100]))
    assert cli.main(["info", str(out)]) == 1
    assert "Truncated" in _one_line_error(1, capsys.readouterr().err)
