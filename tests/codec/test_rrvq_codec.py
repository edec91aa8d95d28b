"""RRVQ-VAE files with the bundled rrvq_digits model: a file of layer l holds the codes of layers l..L.

Layer 1 (the default) stores every layer (RRVQ App. F) and decodes deterministically; a
layer l > 1 leaves the layers below to the prior p(z_l | z_>l) (RRVQ eq. 3): its mode,
or samples given a seed.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec
from tfvq import cli
from tfvq.codec import container, entropy
from tfvq.codec.errors import CodecError
from tfvq.data import load_numpy

NAME = "rrvq_digits"
GRIDS = ((16, 16), (8, 8), (4, 4), (2, 2), (1, 1))
KS = (32,) * 5
CODE_BITS = sum(h * w * 5 for h, w in GRIDS)  # 1705: K = 32 is 5 bits per code
UNIFORM = {l: container.UNIFORM for l in range(1, 6)}


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


def _tag(weights_hash):
    """The tag of a file of uniform-coded layers only: D names the weights alone."""
    return container.file_digest(weights_hash)[:container.TAG_BYTES]


@pytest.fixture(scope="module")
def rrvq_fixed_file(fixed_file):
    """`rrvq_fixed_file(codes, first_layer, ks=KS, model=NAME, weights_hash=None)`: a version 4 file of `codes`
    {layer: [count, h, w]}, each layer under the uniform table of its K in `ks` (indexed by layer - 1), with a valid
    tag and CRC for `weights_hash` (default: the bundled weights')."""

    def write(codes, first_layer, ks=KS, model=NAME, weights_hash=None):
        if weights_hash is None:
            weights_hash = codec.weights_hash(codec.load_model(NAME)[0])
        return fixed_file(model, codes, first_layer, dict(enumerate(ks, 1)), container.file_digest(weights_hash))

    return write


def test_default_file_holds_every_layer_and_is_header_plus_code_bits(model, rrvq_file, digits, fixed_rate,
                                                                     uniform_stream):
    layout = model.code_layout()
    assert layout.default_layer == 1 and layout.bits(1) == CODE_BITS == 1705
    header = codec.read_header(rrvq_file)
    assert (header.version, header.model, header.first_layer, header.layers, header.images, header.image_size,
            header.lossless) == (4, NAME, 1, (1, 2, 3, 4, 5), 3, None, False)
    assert header.coders == UNIFORM  # every layer at the fixed rate, log2 32 = 5 bits per code
    assert header.tag == _tag(codec.weights_hash(model))
    # The header is what the container writes for it: 2 + 1 + 1 + 11 + 2 + 1 + 2 (layer word 1 << 10) + 1 (3 images).
    assert header.header == container.write_header(NAME, header.tag, 1, UNIFORM, images=3) and len(header.header) == 20
    assert len(rrvq_file) == len(header.header) + len(header.stream) + 4
    assert fixed_rate(len(header.stream), 3 * CODE_BITS) and math.ceil(3 * CODE_BITS / 8) == 640
    codes = model.encode(digits)
    assert header.stream == uniform_stream({l: c for l, c in zip(range(1, 6), codes)}, dict.fromkeys(range(1, 6), 32))
    one = codec.compress(digits[0], NAME, coder="fixed")
    f = codec.read_header(one)
    assert f.header == container.write_header(NAME, f.tag, 1, UNIFORM) and len(f.header) == 19
    assert len(one) == 19 + len(f.stream) + 4 and fixed_rate(len(f.stream), CODE_BITS)  # about 214 bytes of codes


def test_stream_is_the_models_codes_range_coded_top_layer_first(model, digits, rrvq_file, uniform_stream,
                                                                decoded_codes):
    codes = [c.numpy() for c in model.encode(digits)]
    decoded = decoded_codes(rrvq_file)
    assert sorted(decoded) == [1, 2, 3, 4, 5]
    for l, want in zip(range(1, 6), codes):
        assert decoded[l].dtype == np.int32 and decoded[l].shape == (3,) + GRIDS[l - 1]
        np.testing.assert_array_equal(decoded[l], want)
    # The stream is exactly the codes under the uniform table of K = 32, layer 5 first.
    stream = entropy.Encoder()
    for want in reversed(codes):
        stream.static(want.ravel(), entropy.uniform_table(32))
    assert codec.read_header(rrvq_file).stream == stream.shortest() == uniform_stream(decoded, dict.fromkeys(
        range(1, 6), 32))


def test_round_trip_equals_decode_of_encode_exactly(model, digits, rrvq_file):
    images = codec.decompress(rrvq_file)
    assert images.shape == (3, 32, 32, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, model.decode(model.encode(digits), dtype="uint8").numpy())
    np.testing.assert_array_equal(images, model.reconstruct(digits).numpy())  # uint8 in, uint8 out
    np.testing.assert_array_equal(codec.decompress(rrvq_file), images)  # deterministic


def test_a_seed_changes_nothing_when_every_layer_is_stored(rrvq_file):
    np.testing.assert_array_equal(codec.decompress(rrvq_file, seed=1), codec.decompress(rrvq_file))


def test_a_file_of_layer_3_holds_layers_3_to_5_and_the_prior_fills_in_below(model, digits, fixed_rate, uniform_stream,
                                                                            decoded_codes):
    x = digits[:2]
    data = codec.compress(x, NAME, layer=3, coder="fixed")
    header = codec.read_header(data)
    assert (header.first_layer, header.layers, header.coders) == (3, (3, 4, 5), {3: 0, 4: 0, 5: 0})
    assert model.code_layout().bits(3) == 105 and fixed_rate(len(header.stream), 2 * 105)
    assert header.header == container.write_header(NAME, header.tag, 3, {3: 0, 4: 0, 5: 0}, images=2)
    assert len(data) == len(header.header) + len(header.stream) + 4
    codes = model.encode(x, 3)
    decoded = decoded_codes(data)
    for l, want in zip((3, 4, 5), codes):
        np.testing.assert_array_equal(decoded[l], want)
    assert header.stream == uniform_stream(dict(zip((3, 4, 5), codes)), dict.fromkeys((3, 4, 5), 32))
    np.testing.assert_array_equal(codec.decompress(data), model.decode(codes, 3, dtype="uint8").numpy())
    sampled = codec.decompress(data, seed=5)
    np.testing.assert_array_equal(sampled, model.decode(codes, 3, stochastic=True, seed=5, dtype="uint8").numpy())
    np.testing.assert_array_equal(codec.decompress(data, seed=5), sampled)  # repeatable
    assert not np.array_equal(codec.decompress(data, seed=6), sampled)  # the prior is sampled below layer 3


def test_a_bad_layer_is_refused(digits):
    for layer in (0, 6, -1):
        with pytest.raises(CodecError, match=r"'rrvq_digits' has code layers 1..5 .*default, layer 1"):
            codec.compress(digits, NAME, layer, coder="fixed")


def test_spatial_vae_has_no_codes(rrvq_fixed_file):
    assert codec.model_spec("spatial_vae_cifar10").layout is None
    with pytest.raises(CodecError, match="'spatial_vae_cifar10' has no discrete codes.*code_layout"):
        codec.compress(np.zeros((32, 32, 3), np.uint8), "spatial_vae_cifar10", coder="fixed")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.rate_table("spatial_vae_cifar10")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.code_layout("spatial_vae_cifar10")
    with pytest.raises(CodecError, match="no discrete codes"):
        codec.decompress(rrvq_fixed_file({1: np.zeros((1, 1, 1), int)}, 1, ks=(2,), model="spatial_vae_cifar10"))


def test_files_that_do_not_fit_the_model_are_refused(model, rrvq_file, decoded_codes, rrvq_fixed_file):
    codes = decoded_codes(rrvq_file)
    # The file's own codes, written again by hand: the same file (the helper writes what compress writes).
    assert rrvq_fixed_file(codes, 1) == rrvq_file
    with pytest.raises(CodecError, match="made with other weights of 'rrvq_digits'"):
        codec.decompress(rrvq_fixed_file(codes, 1, weights_hash=b"\0" * 8))
    # Version 4 stores no grids or Ks (they follow from the model): codes coded for another K or another grid
    # decode to other codes, which the CRC refuses (or the range decoder, before it).
    with pytest.raises(CodecError, match="CRC-32|could not be decoded"):
        codec.decompress(rrvq_fixed_file(codes, 1, ks=(33,) + KS[1:]))
    with pytest.raises(CodecError, match="CRC-32|could not be decoded"):
        codec.decompress(rrvq_fixed_file({**codes, 5: np.arange(12).reshape(3, 2, 2) % 32}, 1))
    with pytest.raises(CodecError, match="holds layers 1..4, but decoding layer 1 of 'rrvq_digits' needs layers "
                                         "1..5"):
        codec.decompress(rrvq_fixed_file({l: codes[l] for l in range(1, 5)}, 1))
    with pytest.raises(CodecError, match="holds layer 2, but decoding layer 2 of 'rrvq_digits' needs layers "
                                         "2..5"):
        codec.decompress(rrvq_fixed_file({2: codes[2]}, 2))
    with pytest.raises(CodecError, match="holds the codes of layers 6..10, but 'rrvq_digits' has code layers 1..5"):
        codec.decompress(rrvq_fixed_file({l + 5: codes[l] for l in codes}, 6, ks=KS * 2))
    # A file of layers 2..5 is what encode(x, 2) gives: it fits, and decodes as the model decodes those codes.
    two = rrvq_fixed_file({l: codes[l] for l in range(2, 6)}, 2)
    np.testing.assert_array_equal(codec.decompress(two), model.decode([codes[l] for l in range(2, 6)], 2,
                                                                      dtype="uint8").numpy())
    assert codec.decompress(two).shape == (3, 32, 32, 1)


def test_corrupt_rrvq_files_raise_codec_error(rrvq_file, digits, mutate):
    header = codec.read_header(rrvq_file)
    at = len(header.header) + 10  # a byte of the stream
    flipped = bytearray(rrvq_file)
    flipped[at] ^= 0x01
    for broken, message in [(bytes(flipped), "CRC-32"), (rrvq_file[:-1], "CRC-32|could not be decoded|zero byte"),
                            (rrvq_file[:10], "Truncated"), (b"\x89PNG" + rrvq_file[4:], "Not a .tfvq")]:
        with pytest.raises(CodecError, match=message):
            codec.decompress(broken)
    # Every byte of a small file flipped, and every truncation: a CodecError each time (never an image).
    small = codec.compress(digits[:2], NAME, layer=3, coder="fixed")
    for i in range(len(small)):
        for bit in (0x01, 0x80):
            bad = bytearray(small)
            bad[i] ^= bit
            with pytest.raises(CodecError):
                codec.decompress(bytes(bad))
    for n in range(len(small)):
        with pytest.raises(CodecError):
            codec.decompress(small[:n])
    # Random corruptions of files of every rrvq coder (the model's probabilities, pixels): CodecError only.
    rng = np.random.default_rng(1)
    sources = [codec.compress(digits[:1], NAME), codec.compress(digits[:1], NAME, coder="progressive"),
               codec.compress(digits[:1], NAME, lossless=True)]
    tried = 0
    for i in range(45):
        source = sources[i % len(sources)]
        bad = mutate(source, rng)
        if bad != source:
            tried += 1
            with pytest.raises(CodecError):
                codec.decompress(bad)
    assert tried > 40


def test_rate_table_gives_the_bits_of_the_layers_sent_at_every_layer():
    rows = codec.rate_table(NAME)
    assert [r["layers"] for r in rows] == [(1, 2, 3, 4, 5), (2, 3, 4, 5), (3, 4, 5), (4, 5), (5,)]
    assert [r["default"] for r in rows] == [True, False, False, False, False]
    first = rows[0]
    assert first["code_grid"] == GRIDS and first["num_codes"] == KS
    assert first["layer_bits"] == (1280, 320, 80, 20, 5) and first["bits"] == 1705
    # A one-image fixed-rate file: the version 4 header (20 bytes for 11 characters and 5 layers), the codes, the CRC.
    assert (first["payload_bytes"], first["file_bytes"]) == (214, 237)
    for r in rows:
        header = container.write_header(NAME, bytes(2), r["layer"], {l: container.UNIFORM for l in r["layers"]})
        assert r["file_bytes"] == len(header) + r["payload_bytes"] + 4
    assert first["ratio"] == pytest.approx(32 * 32 * 8 / 1705) and first["file_ratio"] == pytest.approx(1024 / 237)
    assert [r["bits"] for r in rows] == [1705, 425, 105, 25, 5]
    table = codec.format_rate_table(NAME)
    assert "| 1..5 (default) | 16x16 + 8x8 + 4x4 + 2x2 + 1x1 | 32, 32, 32, 32, 32 | 1705 | 214 | 237 |" in table
    assert "| 3..5 | 4x4 + 2x2 + 1x1 | 32, 32, 32 | 105 | 14 | 37 |" in table
    celeba = codec.rate_table("rrvq_celeba64_l5")[0]
    assert (celeba["bits"], celeba["payload_bytes"]) == (2275, 285)  # RRVQ App. F: 2275 bits per image


# ------------------------------------------------------------------ the command line


def test_cli_round_trip_through_files(tmp_path, model, digits, start_tfvq):
    tf.io.write_file(str(tmp_path / "digit.png"), tf.io.encode_png(digits[0]))
    procs = {
        "compress": start_tfvq(["compress", "--coder=fixed", "digit.png", "--model=rrvq_digits", "-o", "digit.tfvq"], tmp_path),
        "models": start_tfvq(["models", "rrvq_digits"], tmp_path),
    }
    results = {name: p.result() for name, p in procs.items()}
    for name, (code, _, err) in results.items():
        assert code == 0, f"tfvq {name} failed: {err}"
    models = results["models"][1]
    assert "layer 1 (default): layers 1..5, 16x16, 8x8, 4x4, 2x2, 1x1 codes of K=32, 1705 bits (214 bytes)" in models
    assert "layer 3: layers 3..5, 4x4, 2x2, 1x1 codes of K=32, 105 bits (14 bytes) per image" in models
    data = (tmp_path / "digit.tfvq").read_bytes()
    assert data == codec.compress(digits[0], NAME, coder="fixed")
    stream = len(codec.read_header(data).stream)
    assert (f"{len(data)} bytes (layers 1..5, {8 * stream} bits of stream per image (coders: 5 uniform, 4 uniform, "
            "3 uniform, 2 uniform, 1 uniform) of rrvq_digits)") in results["compress"][1]
    assert codec.rate_table(NAME)[0]["file_bytes"] - 2 <= len(data) <= codec.rate_table(NAME)[0]["file_bytes"]

    code, _, err = start_tfvq(["decompress", "digit.tfvq", "-o", "out.png"], tmp_path).result()
    assert code == 0, err
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out.png"))).numpy()
    np.testing.assert_array_equal(image[None], model.decode(model.encode(digits[:1]), dtype="uint8").numpy())


def test_cli_layer_3_and_a_seed_in_process(tmp_path, digits, capsys):
    png = tmp_path / "digit.png"
    tf.io.write_file(str(png), tf.io.encode_png(digits[0]))
    d3 = tmp_path / "d3.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(png), "--model=rrvq_digits", "--layer=3", "-o", str(d3)]) == 0
    out = capsys.readouterr().out
    assert "(layers 3..5, " in out and "(coders: 5 uniform, 4 uniform, 3 uniform) of rrvq_digits)" in out
    assert d3.read_bytes() == codec.compress(digits[0], NAME, 3, coder="fixed")
    assert cli.main(["decompress", str(d3), "-o", str(tmp_path / "out3.png"), "--seed=2"]) == 0
    image3 = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out3.png"))).numpy()
    np.testing.assert_array_equal(image3, codec.decompress(d3.read_bytes(), seed=2)[0])


def test_cli_info_and_errors_in_process(tmp_path, digits, capsys, fixed_rate, one_line_error):
    png = tmp_path / "digit.png"
    tf.io.write_file(str(png), tf.io.encode_png(digits[1]))
    out = tmp_path / "d.tfvq"
    assert cli.main(["compress", "--coder=fixed", str(png), "--model=rrvq_digits", "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    f = codec.read_header(out.read_bytes())
    assert "version 4, model rrvq_digits" in info and f"(tag {f.tag.hex()})" in info
    assert "1 image(s) of the model's own size, layers 1..5 (decoded at layer 1 by default)" in info
    assert f"{f.file_bytes} bytes in all: header 19, stream {len(f.stream)}, CRC 4" in info
    assert fixed_rate(len(f.stream), 1705) and info.count(": fixed rate (uniform)") == 5
    assert cli.main(["decompress", str(out), "-o", str(tmp_path / "o.png"), "--seed=3"]) == 0
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "o.png"))).numpy()
    np.testing.assert_array_equal(image, codec.decompress(out.read_bytes())[0])
    capsys.readouterr()

    assert cli.main(["compress", "--coder=fixed", str(png), "--model=rrvq_digits", "--layer=6"]) == 1
    assert "code layers 1..5" in one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", "--coder=fixed", str(png), "--model=spatial_vae_cifar10"]) == 1
    assert "no discrete codes" in one_line_error(1, capsys.readouterr().err)
    data = bytearray(out.read_bytes())
    data[len(f.header) + 3] ^= 0xFF  # a byte of the stream
    out.write_bytes(bytes(data))
    assert cli.main(["decompress", str(out)]) == 1
    assert "does not match its CRC-32" in one_line_error(1, capsys.readouterr().err)
    # Version 4 checks its CRC after decoding: a file cut inside its stream is refused by decompress ...
    out.write_bytes(bytes(data[:100]))
    assert cli.main(["decompress", str(out)]) == 1
    assert "CRC-32" in one_line_error(1, capsys.readouterr().err)
    # ... and one cut inside its header by info as well.
    out.write_bytes(bytes(data[:12]))
    assert cli.main(["info", str(out)]) == 1
    assert "Truncated" in one_line_error(1, capsys.readouterr().err)
