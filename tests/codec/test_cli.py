"""Compression with the bundled hqa_digits model: the Python API and the `tfvq` command."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec
from tfvq.codec import cli
from tfvq.codec import format as fmt
from tfvq.codec.format import CodecError
from tfvq.data import load_numpy


@pytest.fixture(scope="module")
def model():
    return codec.load_model("hqa_digits")[0]


@pytest.fixture(scope="module")
def digit():
    """One test digit as a uint8 [32, 32, 1] image, as it would come from a PNG."""
    x = load_numpy("digits", "test", limit=1)[0]
    return np.round(x * 255).astype(np.uint8)


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory, digit):
    path = tmp_path_factory.mktemp("png") / "digit.png"
    tf.io.write_file(str(path), tf.io.encode_png(digit))
    return path


def _retag(data, **changes):
    """Rewrites header fields (with a valid CRC): model, weights_hash, first_layer, num_codes or codes."""
    container = fmt.read(data)
    h = container.header
    return fmt.write(changes.get("codes", container.codes), changes.get("model", h.model),
                     changes.get("weights_hash", h.weights_hash), changes.get("first_layer", h.first_layer),
                     changes.get("num_codes", h.layer_num_codes))


def test_layer5_file_is_header_plus_one_byte_and_holds_the_models_codes(model, digit):
    data = codec.compress(digit, "hqa_digits", layer=5, coder="fixed")
    assert len(data) == fmt.header_bytes("hqa_digits") + 1 == 45
    header = codec.read_header(data)
    assert (header.version, header.model, header.layers, header.code_shapes, header.layer_num_codes, header.bits) == (
        2, "hqa_digits", (5,), ((1, 1),), (256,), 8)
    assert header.weights_hash == codec.weights_hash(model)
    expected = model.encode(digit[None], 5).numpy()
    np.testing.assert_array_equal(fmt.read(data).codes[0], expected)
    images = codec.decompress(data)
    assert images.shape == (1, 32, 32, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, model.decode(expected, 5, dtype="uint8").numpy())


def test_the_default_layer_is_the_top_layer(digit):
    assert codec.compress(digit, "hqa_digits", coder="fixed") == codec.compress(digit, "hqa_digits", 5, coder="fixed")
    assert codec.code_layout("hqa_digits").default_layer == 5


@pytest.mark.parametrize("layer", [1, 3, 5])
def test_round_trip_equals_decode_of_encode_with_and_without_a_seed(model, two_digits, layer):
    data = codec.compress(two_digits, "hqa_digits", layer, coder="fixed")
    codes = model.encode(two_digits, layer)
    np.testing.assert_array_equal(codec.decompress(data), model.decode(codes, layer, dtype="uint8").numpy())
    seeded = model.decode(codes, layer, stochastic=True, seed=11, dtype="uint8").numpy()
    np.testing.assert_array_equal(codec.decompress(data, seed=11), seeded)
    np.testing.assert_array_equal(codec.decompress(data, seed=(11, 0)), seeded)  # the pair the int stands for


def test_decompression_is_deterministic_by_default_and_repeatable_with_a_seed(digit):
    data = codec.compress(digit, "hqa_digits", layer=3, coder="fixed")
    np.testing.assert_array_equal(codec.decompress(data), codec.decompress(data))
    np.testing.assert_array_equal(codec.decompress(data, seed=4), codec.decompress(data, seed=4))


def test_compression_consistent_with_encode_at_every_layer_for_float_and_uint8_batches(model):
    images = load_numpy("digits", "test", limit=3)
    for layer in range(1, model.num_layers + 1):
        data = codec.compress(images, "hqa_digits", layer, coder="fixed")
        container = fmt.read(data)
        assert container.header.count == 3 and container.header.layers == (layer,)
        assert container.header.payload_bytes == -(-3 * model.bits(layer) // 8)
        np.testing.assert_array_equal(container.codes[0], model.encode(images, layer).numpy())
    assert codec.decompress(data).shape == (3, 32, 32, 1)
    pixels = np.round(images * 255).astype(np.uint8)
    assert codec.read(codec.compress(pixels, "hqa_digits", 2, coder="fixed")).codes[0].shape == (3, 8, 8)


def test_other_weights_are_refused(digit):
    data = _retag(codec.compress(digit, "hqa_digits", 5, coder="fixed"), weights_hash=b"\0" * 8)
    with pytest.raises(CodecError, match="made with other weights.*--weights=PATH"):
        codec.decompress(data)


def test_unknown_model_is_refused(digit):
    data = _retag(codec.compress(digit, "hqa_digits", 5, coder="fixed"), model="hqa_imagenet")
    with pytest.raises(CodecError, match="'hqa_imagenet' is not in this tfvq's zoo"):
        codec.decompress(data)


def test_a_file_that_does_not_fit_the_model_is_refused(digit):
    data = codec.compress(digit, "hqa_digits", 5, coder="fixed")
    codes = fmt.read(data).codes
    with pytest.raises(CodecError, match=r"holds the codes of layer 6, but 'hqa_digits' has code layers 1..5"):
        codec.decompress(_retag(data, first_layer=6))
    with pytest.raises(CodecError, match="layer 4 code grid is 1x1, but layer 4 of 'hqa_digits' has a 2x2 grid"):
        codec.decompress(_retag(data, first_layer=4))
    with pytest.raises(CodecError, match="layer 5 has K=300 codes, but layer 5 of 'hqa_digits' has K=256"):
        codec.decompress(_retag(data, num_codes=[300]))
    two = _retag(data, first_layer=4, codes=[np.zeros((1, 2, 2), int)] + codes, num_codes=[256, 256])
    with pytest.raises(CodecError, match="holds the codes of layers 4..5, but a 'hqa_digits' file of layer 4 "
                                         "holds the codes of layer 4"):
        codec.decompress(two)


def test_corrupt_files_raise_codec_error(digit):
    data = codec.compress(digit, "hqa_digits", 2, coder="fixed")
    bad = bytearray(data)
    bad[-6] ^= 1
    for broken, message in [(bytes(bad), "CRC-32"), (data[:-1], "Truncated"), (b"\x89PNG" + data[4:], "Not a .tfvq")]:
        with pytest.raises(CodecError, match=message):
            codec.decompress(broken)


def test_bad_images_layers_and_seeds_are_refused(digit, tmp_path):
    with pytest.raises(CodecError, match=r"images \[H, W, 1\] or \[N, H, W, 1\] of any size with 1 channel"):
        codec.compress(np.zeros((28, 28, 3), np.uint8), "hqa_digits", 5, coder="fixed")
    with pytest.raises(CodecError, match=r"values in \[0, 1\], got values in \[2, 2\]"):
        codec.compress(np.full((32, 32, 1), 2.0, np.float32), "hqa_digits", 5, coder="fixed")
    with pytest.raises(CodecError, match="got dtype int32"):
        codec.compress(np.zeros((32, 32, 1), np.int32), "hqa_digits", 5, coder="fixed")
    with pytest.raises(CodecError, match="1..65535 images, got 0"):
        codec.compress(np.zeros((0, 32, 32, 1), np.uint8), "hqa_digits", 5, coder="fixed")
    for layer in (6, 0, "2", 2.0, True):
        with pytest.raises(CodecError, match=r"code layers 1..5 .*omit the layer for the model's default, layer 5"):
            codec.compress(digit, "hqa_digits", layer, coder="fixed")
    with pytest.raises(ValueError, match="seed must be None, an int or a pair of ints"):
        codec.decompress(codec.compress(digit, "hqa_digits", 5, coder="fixed"), seed="7")
    rgb = tmp_path / "rgb.png"
    tf.io.write_file(str(rgb), tf.io.encode_png(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(CodecError, match="3 channels.*32x32 images with 1 channel.*does not resize"):
        codec.load_png(rgb, (32, 32, 1))
    big = tmp_path / "big.png"
    tf.io.write_file(str(big), tf.io.encode_png(np.zeros((64, 64, 1), np.uint8)))
    with pytest.raises(CodecError, match="64x64"):
        codec.load_png(big, (32, 32, 1))


def test_rate_tables_give_one_row_per_layer():
    digits = codec.rate_table("hqa_digits")
    assert [r["layer"] for r in digits] == [1, 2, 3, 4, 5]
    assert [r["layers"] for r in digits] == [(l,) for l in range(1, 6)]
    assert [r["bits"] for r in digits] == [2048, 512, 128, 32, 8]
    assert [r["default"] for r in digits] == [False] * 4 + [True]
    assert digits[0]["code_grid"] == ((16, 16),) and digits[0]["num_codes"] == (256,)
    assert digits[-1]["payload_bytes"] == 1 and digits[-1]["ratio"] == 1024
    assert all(r["file_bytes"] == r["payload_bytes"] + 44 for r in digits)
    celeba = codec.rate_table("hqa_celeba64")
    layer4 = celeba[3]
    assert (layer4["code_grid"], layer4["bits"], layer4["payload_bytes"]) == (((8, 8),), 576, 72)  # HQA Table 1
    table = codec.format_rate_table("hqa_digits")
    assert "| 5 (default) | 1x1 | 256 | 8 | 1 | 45 | 1024.0:1 | 22.8:1 |" in table
    assert "| 1 | 16x16 | 256 | 2048 | 256 | 300 | 4.0:1 | 3.4:1 |" in table


# ------------------------------------------------------------------ the command line


def _command():
    exe = shutil.which("tfvq")
    return [exe] if exe else [sys.executable, "-m", "tfvq.codec.cli"]


def _start(args, cwd):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.Popen(_command() + args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _finish(proc):
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def test_cli_models_compress_decompress(tmp_path, digit_png, digit):
    # A file made by the Python API, so the three commands can run at the same time.
    api_file = tmp_path / "api.tfvq"
    api_file.write_bytes(codec.compress(digit, "hqa_digits", 4, coder="fixed"))
    procs = {
        "models": _start(["models", "hqa_digits"], tmp_path),
        "compress": _start(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "-o", "digit.tfvq"], tmp_path),
        "decompress": _start(["decompress", "api.tfvq", "-o", "out.png", "--seed=3"], tmp_path),
    }
    results = {name: _finish(p) for name, p in procs.items()}
    for name, (code, out, err) in results.items():
        assert code == 0, f"tfvq {name} failed: {err}"
    assert "layer 5 (default): 1x1 codes of K=256, 8 bits (1 byte) per image, 1024.0:1" in results["models"][1]
    assert "layer 1: 16x16 codes of K=256, 2048 bits (256 bytes) per image" in results["models"][1]
    assert "45 bytes (1 bytes of codes, 8 bits, layer 5 of hqa_digits)" in results["compress"][1]
    data = (tmp_path / "digit.tfvq").read_bytes()
    assert data == codec.compress(digit, "hqa_digits", 5, coder="fixed")
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out.png"))).numpy()
    assert image.shape == (32, 32, 1)
    np.testing.assert_array_equal(image, codec.decompress(api_file.read_bytes(), seed=3)[0])


def _one_line_error(code, err):
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfvq: error: "), err
    return lines[0]


def test_cli_missing_and_corrupt_files_give_one_line_errors(tmp_path):
    code, _, err = _finish(_start(["compress", "--coder=fixed", "nothere.png", "--model=hqa_digits", "--layer=5"], tmp_path))
    assert "No such file: nothere.png" in _one_line_error(code, err)
    code, _, err = _finish(_start(["decompress", "nothere.tfvq"], tmp_path))
    assert "No such file" in _one_line_error(code, err)
    (tmp_path / "bad.tfvq").write_bytes(b"TFVQ\x02\x0ahqa_digits" + b"\0" * 10)
    code, _, err = _finish(_start(["decompress", "bad.tfvq"], tmp_path))
    assert "Truncated" in _one_line_error(code, err)
    assert not (tmp_path / "bad.png").exists()


def test_cli_errors_in_process(tmp_path, digit_png, capsys):
    rgb = tmp_path / "rgb.png"
    tf.io.write_file(str(rgb), tf.io.encode_png(np.zeros((32, 32, 3), np.uint8)))
    assert cli.main(["compress", "--coder=fixed", str(rgb), "--model=hqa_digits", "--layer=5"]) == 1
    assert "grayscale images (1 channel). Pass --grayscale" in _one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_nope", "--layer=5"]) == 1
    assert "not in this tfvq's zoo" in _one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=9"]) == 1
    assert "code layers 1..5" in _one_line_error(1, capsys.readouterr().err)
    (tmp_path / "x.png").write_bytes(b"not a png")
    assert cli.main(["compress", "--coder=fixed", str(tmp_path / "x.png"), "--model=hqa_digits", "--layer=5"]) == 1
    assert "is not an image file this tool reads" in _one_line_error(1, capsys.readouterr().err)
    missing_dir = tmp_path / "no" / "such" / "dir.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=5", "-o", str(missing_dir)]) == 1
    _one_line_error(1, capsys.readouterr().err)
    out = tmp_path / "d.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=3", "-o", str(out)]) == 0
    assert cli.main(["info", str(out)]) == 0
    assert "version 2, model hqa_digits" in capsys.readouterr().out
    assert cli.main(["info", str(out)]) == 0
    assert "layer 3, 1 image(s) of codes 4x4 K=256, 128 bits per image, 16 bytes of codes, 60 bytes in all" in (
        capsys.readouterr().out)
    data = bytearray(out.read_bytes())
    data[20] ^= 0xFF
    out.write_bytes(bytes(data))
    assert cli.main(["decompress", str(out)]) == 1
    assert "CRC-32 mismatch" in _one_line_error(1, capsys.readouterr().err)
