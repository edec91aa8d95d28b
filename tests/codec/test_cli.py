"""Compression with the bundled hqa_digits model: the Python API and the `tfvq` command."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec
from tfvq import cli
from tfvq.codec import container, files, lite_model
from tfvq.codec.errors import CodecError
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


def _retag(data, model=None, tag=None, first_layer=None, coders=None):
    """The file with header fields rewritten (model name, tag, first layer, coders), its stream and CRC kept."""
    f = container.parse(data)
    header = container.write_header(model or f.model, f.tag if tag is None else tag,
                                    f.first_layer if first_layer is None else first_layer,
                                    f.coders if coders is None else coders, f.image_size, f.images, f.lossless)
    return header + f.stream + data[-4:]


def test_layer5_file_is_header_plus_one_byte_and_holds_the_models_codes(model, digit, fixed_rate, uniform_stream,
                                                                        decoded_codes):
    data = codec.compress(digit, "hqa_digits", layer=5, coder="fixed")
    header = codec.read_header(data)
    assert (header.version, header.model, header.layers, header.coders, header.images, header.image_size) == (
        4, "hqa_digits", (5,), {5: container.UNIFORM}, 1, None)
    assert header.tag == container.file_digest(codec.weights_hash(model))[:container.TAG_BYTES]
    # The documented 21 bytes of container (a 10-character name, one layer, one image), and the 8-bit code.
    assert header.header == container.write_header("hqa_digits", header.tag, 5, {5: container.UNIFORM})
    assert len(header.header) + 4 == 21 and len(data) == 21 + len(header.stream)
    assert fixed_rate(len(header.stream), 8) and len(data) <= 22
    expected = model.encode(digit[None], 5).numpy()
    np.testing.assert_array_equal(decoded_codes(data)[5], expected)
    assert header.stream == uniform_stream({5: expected}, {5: 256})
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


def test_compression_consistent_with_encode_at_every_layer_for_float_and_uint8_batches(model, fixed_rate,
                                                                                       uniform_stream, decoded_codes):
    images = load_numpy("digits", "test", limit=3)
    for layer in range(1, model.num_layers + 1):
        data = codec.compress(images, "hqa_digits", layer, coder="fixed")
        header = codec.read_header(data)
        assert header.images == 3 and header.layers == (layer,) and header.coders == {layer: container.UNIFORM}
        assert fixed_rate(len(header.stream), 3 * model.bits(layer))
        expected = model.encode(images, layer).numpy()
        np.testing.assert_array_equal(decoded_codes(data)[layer], expected)
        assert header.stream == uniform_stream({layer: expected}, {layer: 256})
    assert codec.decompress(data).shape == (3, 32, 32, 1)
    pixels = np.round(images * 255).astype(np.uint8)
    assert decoded_codes(codec.compress(pixels, "hqa_digits", 2, coder="fixed"))[2].shape == (3, 8, 8)


def test_other_weights_are_refused(digit, old_files):
    data = _retag(codec.compress(digit, "hqa_digits", 5, coder="fixed"), tag=b"\0\0")
    with pytest.raises(CodecError, match="made with other weights.*--weights=PATH"):
        codec.decompress(data)
    # A file made with other weights (the hqa_digits weights of the version 1 files) needs them back.
    old_weights = old_files / "hqa_digits_2026_11.weights.h5"
    data = codec.compress(digit, "hqa_digits", 5, coder="fixed", weights=old_weights)
    with pytest.raises(CodecError, match="made with other weights.*--weights=PATH"):
        codec.decompress(data)
    old_model = codec.load_model("hqa_digits", old_weights)[0]
    np.testing.assert_array_equal(codec.decompress(data, weights=old_weights), old_model.decode(
        old_model.encode(digit[None], 5), 5, dtype="uint8").numpy())


def test_unknown_model_is_refused(digit):
    data = _retag(codec.compress(digit, "hqa_digits", 5, coder="fixed"), model="hqa_imagenet")
    with pytest.raises(CodecError, match="'hqa_imagenet' is not in this tfvq's zoo"):
        codec.decompress(data)


def test_a_file_that_does_not_fit_the_model_is_refused(model, two_digits, decoded_codes, fixed_file):
    data = codec.compress(two_digits, "hqa_digits", 5, coder="fixed")
    digest = container.file_digest(codec.weights_hash(model))
    codes = decoded_codes(data)
    assert fixed_file("hqa_digits", codes, 5, {5: 256}, digest) == data  # the helper writes what compress writes
    with pytest.raises(CodecError, match=r"holds the codes of layer 6, but 'hqa_digits' has code layers 1..5"):
        codec.decompress(_retag(data, first_layer=6, coders={6: container.UNIFORM}))
    # Version 4 stores no grids or Ks (they follow from the model): a layer 5 stream read as layer 4's 2x2 grid,
    # or codes coded for another K, decode to other codes, which the CRC refuses (or the range decoder before it).
    with pytest.raises(CodecError, match="CRC-32|could not be decoded"):
        codec.decompress(_retag(data, first_layer=4, coders={4: container.UNIFORM}))
    layer3 = model.encode(two_digits, 3).numpy()
    assert np.array_equal(decoded_codes(fixed_file("hqa_digits", {3: layer3}, 3, {3: 256}, digest))[3], layer3)
    with pytest.raises(CodecError, match="CRC-32|could not be decoded"):
        codec.decompress(fixed_file("hqa_digits", {3: layer3}, 3, {3: 300}, digest))
    # A layer coded by the model given the layer above, which the file does not hold, is refused before decoding.
    with pytest.raises(CodecError, match="codes layer 3 with the model's probabilities given layer 4, which it does "
                                         "not hold"):
        codec.decompress(_retag(fixed_file("hqa_digits", {3: layer3}, 3, {3: 256}, digest),
                                coders={3: container.MODEL}))
    # A file of layers 4..5 holds what a file of layer 4 needs: it decodes at layer 4, and at 5.
    four = model.encode(two_digits, 4).numpy()
    both = fixed_file("hqa_digits", {4: four, 5: codes[5]}, 4, {4: 256, 5: 256}, digest)
    np.testing.assert_array_equal(codec.decompress(both), model.decode(four, 4, dtype="uint8").numpy())
    np.testing.assert_array_equal(codec.decompress(both, layer=5), codec.decompress(data))
    with pytest.raises(CodecError, match="cannot be decoded at layer 4, which needs layer 4\\."):
        codec.decompress(data, layer=4)


def test_corrupt_files_raise_codec_error(digit):
    data = codec.compress(digit, "hqa_digits", 2, coder="fixed")
    bad = bytearray(data)
    bad[-6] ^= 1  # a byte of the stream
    for broken, message in [(bytes(bad), "CRC-32"), (data[:-1], "CRC-32|could not be decoded|zero byte"),
                            (data[:12], "Truncated"), (b"\x89PNG" + data[4:], "Not a .tfvq")]:
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
    assert all(r["file_bytes"] == r["payload_bytes"] + 21 for r in digits)  # the version 4 header and CRC
    celeba = codec.rate_table("hqa_celeba64")
    layer4 = celeba[3]
    assert (layer4["code_grid"], layer4["bits"], layer4["payload_bytes"]) == (((8, 8),), 576, 72)  # HQA Table 1
    table = codec.format_rate_table("hqa_digits")
    assert "| 5 (default) | 1x1 | 256 | 8 | 1 | 22 | 1024.0:1 | 46.5:1 |" in table
    assert "| 1 | 16x16 | 256 | 2048 | 256 | 277 | 4.0:1 | 3.7:1 |" in table


# ------------------------------------------------------------------ the command line


def test_cli_models_compress_decompress(tmp_path, digit_png, digit, start_tfvq):
    # A file made by the Python API, so the three commands can run at the same time.
    api_file = tmp_path / "api.tfvq"
    api_file.write_bytes(codec.compress(digit, "hqa_digits", 4, coder="fixed"))
    procs = {
        "models": start_tfvq(["models", "hqa_digits"], tmp_path),
        "compress": start_tfvq(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "-o", "digit.tfvq"], tmp_path),
        "decompress": start_tfvq(["decompress", "api.tfvq", "-o", "out.png", "--seed=3"], tmp_path),
    }
    results = {name: p.result() for name, p in procs.items()}
    for name, (code, out, err) in results.items():
        assert code == 0, f"tfvq {name} failed: {err}"
    assert "layer 5 (default): 1x1 codes of K=256, 8 bits (1 byte) per image, 1024.0:1" in results["models"][1]
    assert "layer 1: 16x16 codes of K=256, 2048 bits (256 bytes) per image" in results["models"][1]
    data = (tmp_path / "digit.tfvq").read_bytes()
    assert data == codec.compress(digit, "hqa_digits", 5, coder="fixed")
    stream = len(codec.read_header(data).stream)
    assert (f"{len(data)} bytes (layer 5, {8 * stream} bits of stream per image (coders: 5 uniform) of "
            "hqa_digits)") in results["compress"][1]
    assert len(data) == 21 + stream <= 22
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out.png"))).numpy()
    assert image.shape == (32, 32, 1)
    np.testing.assert_array_equal(image, codec.decompress(api_file.read_bytes(), seed=3)[0])


def test_cli_compress_loads_the_model_once_and_reads_back_nothing_it_wrote(tmp_path, digit, monkeypatch, capsys):
    from PIL import Image

    (tmp_path / "in").mkdir()
    for i in range(3):
        Image.fromarray(np.roll(digit, i, axis=1)[..., 0]).save(tmp_path / "in" / f"{i}.png")
    loads, lite_loads = [], []
    real_load, real_lite = files.load_model, lite_model.LiteModel
    monkeypatch.setattr(files, "load_model", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    monkeypatch.setattr(lite_model, "LiteModel", lambda *a, **k: lite_loads.append(a) or real_lite(*a, **k))
    monkeypatch.setattr(lite_model, "_LOADED", {})
    monkeypatch.setattr(container, "parse", lambda data: pytest.fail("compress read back a file it wrote"))
    for backend in ("tensorflow", "tflite"):
        assert cli.main(["compress", str(tmp_path / "in"), "--model=hqa_digits", "--layer=4", "-o",
                         str(tmp_path / backend), f"--backend={backend}"]) == 0
    assert len(loads) == 1 and len(lite_loads) == 1  # the Keras model for the first, the TFLite one for the other
    monkeypatch.undo()
    lines = capsys.readouterr().out.splitlines()
    for backend, out in zip(("tensorflow", "tflite"), (lines[:3], lines[3:])):
        for line, i in zip(out, range(3)):
            data = (tmp_path / backend / f"{i}.tfvq").read_bytes()
            assert data == codec.compress(np.roll(digit, i, axis=1), "hqa_digits", 4, backend=backend)
            assert line.endswith(f": {len(data)} bytes ({codec.read_header(data).summary()} of hqa_digits)")


def test_cli_missing_and_corrupt_files_give_one_line_errors(tmp_path, start_tfvq, one_line_error):
    code, _, err = start_tfvq(["compress", "--coder=fixed", "nothere.png", "--model=hqa_digits", "--layer=5"],
                              tmp_path).result()
    assert "No such file: nothere.png" in one_line_error(code, err)
    code, _, err = start_tfvq(["decompress", "nothere.tfvq"], tmp_path).result()
    assert "No such file" in one_line_error(code, err)
    (tmp_path / "bad.tfvq").write_bytes(b"TFVQ\x02\x0ahqa_digits" + b"\0" * 10)
    code, _, err = start_tfvq(["decompress", "bad.tfvq"], tmp_path).result()
    assert "Truncated" in one_line_error(code, err)
    assert not (tmp_path / "bad.png").exists()
    (tmp_path / "bad4.tfvq").write_bytes(b"TQ\x40\x0ahqa_digits")  # a version 4 header cut inside its name
    code, _, err = start_tfvq(["decompress", "bad4.tfvq"], tmp_path).result()
    assert "Truncated" in one_line_error(code, err)
    assert not (tmp_path / "bad4.png").exists()


def test_cli_errors_in_process(tmp_path, digit_png, capsys, fixed_rate, one_line_error):
    rgb = tmp_path / "rgb.png"
    tf.io.write_file(str(rgb), tf.io.encode_png(np.zeros((32, 32, 3), np.uint8)))
    assert cli.main(["compress", "--coder=fixed", str(rgb), "--model=hqa_digits", "--layer=5"]) == 1
    assert "grayscale images (1 channel). Pass --grayscale" in one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_nope", "--layer=5"]) == 1
    assert "not in this tfvq's zoo" in one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=9"]) == 1
    assert "code layers 1..5" in one_line_error(1, capsys.readouterr().err)
    (tmp_path / "x.png").write_bytes(b"not a png")
    assert cli.main(["compress", "--coder=fixed", str(tmp_path / "x.png"), "--model=hqa_digits", "--layer=5"]) == 1
    assert "is not an image file this tool reads" in one_line_error(1, capsys.readouterr().err)
    missing_dir = tmp_path / "no" / "such" / "dir.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=5", "-o", str(missing_dir)]) == 1
    one_line_error(1, capsys.readouterr().err)
    out = tmp_path / "d.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(digit_png), "--model=hqa_digits", "--layer=3", "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    f = codec.read_header(out.read_bytes())
    assert "version 4, model hqa_digits" in info and "1 image(s) of the model's own size" in info
    assert f"{f.file_bytes} bytes in all: header 17, stream {len(f.stream)}, CRC 4" in info
    assert fixed_rate(len(f.stream), 128)
    assert "  layer 3: fixed rate (uniform)" in info
    data = bytearray(out.read_bytes())
    data[20] ^= 0xFF  # a byte of the stream (after the 18 bytes of header)
    out.write_bytes(bytes(data))
    assert cli.main(["decompress", str(out)]) == 1
    assert "does not match its CRC-32" in one_line_error(1, capsys.readouterr().err)
