"""All-layers `.tfvq` files: RRVQ-VAE compression (RRVQ App. F) with the bundled rrvq_digits model.

Also checks that one-layer (HQA) files written before all-layer files existed still read.
"""

import math
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf

import tfvq
from tfvq import codec
from tfvq.codec import cli
from tfvq.codec import format as fmt
from tfvq.codec.format import CodecError
from tfvq.data import load_numpy

HASH = bytes(range(8))
NAME = "rrvq_digits"
GRIDS = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
KS = [32] * 5
CODE_BITS = sum(h * w * 5 for h, w in GRIDS)  # 1705: K = 32 is 5 bits per code
HEADER = 6 + len(NAME) + 8 + 1 + 2 + 8 * 5 + 4 + 4  # 76 bytes with the CRC

# A 2-image, layer-3 hqa_digits file written by the codec as it was before all-layer files (format version 1),
# with the codes it holds.
HQA_GOLDEN = bytes.fromhex(
    "54465651010a6871615f64696769747370324b6fb1fdb2c60300020004000400000100000000200e130f020c0d50160e1c0b150504"
    "0b1c0913080212cf0b1c05170d1c1aa3090c03be0360"
)
HQA_GOLDEN_CODES = [
    [[14, 19, 15, 2], [12, 13, 80, 22], [14, 28, 11, 21], [5, 4, 11, 28]],
    [[9, 19, 8, 2], [18, 207, 11, 28], [5, 23, 13, 28], [26, 163, 9, 12]],
]


def _uint8(images):
    return np.clip(np.round(np.asarray(images) * 255), 0, 255).astype(np.uint8)


def _oracle_bits(codes, k):
    """A layer's bit string spelt out with strings: bits_per_code(K) bits per code, MSB first, C order."""
    b = max(1, math.ceil(math.log2(k)))
    return "".join(format(int(c), f"0{b}b") for c in np.asarray(codes).reshape(-1))


def _oracle_payload(layers, ks):
    """The documented all-layers payload: the layers' bit strings back to back, then zero padding."""
    bits = "".join(_oracle_bits(c, k) for c, k in zip(layers, ks))
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i: i + 8], 2) for i in range(0, len(bits), 8))


def _recrc(body):
    return body + struct.pack(">I", zlib.crc32(body))


def _layer_field_at(data, layer):
    """Offset of layer `layer`'s (h, w, K) fields in an all-layers file (layers from 1)."""
    return 6 + data[5] + 8 + 1 + 2 + 8 * (layer - 1)


@pytest.fixture(scope="module")
def model():
    return codec.load_model(NAME)[0]


@pytest.fixture(scope="module")
def digits():
    """Three test digits as uint8 [3, 32, 32, 1] images, as they would come from PNGs."""
    return _uint8(load_numpy("digits", "test", limit=3))


@pytest.fixture(scope="module")
def rrvq_file(digits):
    return codec.compress(digits, NAME)


# ------------------------------------------------------------------ the container, without a model


def test_pack_layers_matches_the_documented_bit_string_for_tapered_ks():
    rng = np.random.default_rng(0)
    ks = [128, 64, 32, 16, 8]  # RRVQ App. F, CelebA: 7, 6, 5, 4, 3 bits
    layers = [rng.integers(0, k, size=(2, h, w)) for (h, w), k in zip(GRIDS, ks)]
    layers[0][0, 0, 0] = 127
    packed = fmt.pack_layers(layers, ks)
    assert packed == _oracle_payload(layers, ks)
    assert len(packed) == math.ceil(2 * 2275 / 8) == fmt.layers_payload_bytes([c.size for c in layers], ks)
    unpacked = fmt.unpack_layers(packed, [c.size for c in layers], ks)
    for got, want in zip(unpacked, layers):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want.reshape(-1))


def test_one_layer_packed_as_layers_is_pack_codes():
    codes = np.random.default_rng(1).integers(0, 300, size=37)
    assert fmt.pack_layers([codes], [300]) == fmt.pack_codes(codes, 300)


def test_celeba_app_f_rate_is_2275_bits_in_285_bytes():
    assert fmt.layers_payload_bytes([h * w for h, w in GRIDS], [128, 64, 32, 16, 8]) == 285  # ceil(2275 / 8)


def test_write_layers_layout_field_by_field():
    rng = np.random.default_rng(2)
    ks = [5, 300, 2]
    layers = [rng.integers(0, k, size=(2, h, w)) for (h, w), k in zip([(4, 6), (2, 3), (1, 1)], ks)]
    data = fmt.write_layers(layers, "m", HASH, ks)
    assert data[:4] == b"TFVQ" and data[4] == 0x81 and data[5] == 1 and data[6:7] == b"m"
    assert data[7:15] == HASH
    assert struct.unpack_from(">BH", data, 15) == (3, 2)
    assert [struct.unpack_from(">HHI", data, 18 + 8 * i) for i in range(3)] == [(4, 6, 5), (2, 3, 300), (1, 1, 2)]
    (payload_len,) = struct.unpack_from(">I", data, 42)
    assert payload_len == math.ceil(2 * (24 * 3 + 6 * 9 + 1 * 1) / 8) == 32
    assert data[46: 46 + payload_len] == _oracle_payload(layers, ks)
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])
    assert len(data) == fmt.header_bytes("m", 3) + payload_len == 25 + 1 + 24 + payload_len
    container = fmt.read(data)
    h = container.header
    assert (h.version, h.model, h.weights_hash, h.layer, h.count, h.all_layers) == (1, "m", HASH, None, 2, True)
    assert (h.code_shapes, h.layer_num_codes, h.payload_bytes, h.file_bytes) == (
        ((4, 6), (2, 3), (1, 1)), (5, 300, 2), 32, len(data))
    assert h.bits == 24 * 3 + 6 * 9 + 1
    for got, want in zip(container.codes, layers):
        np.testing.assert_array_equal(got, want)


def test_one_layer_files_are_unchanged():
    data = fmt.write(np.array(HQA_GOLDEN_CODES), "hqa_digits", HQA_GOLDEN[16:24], 3, 256)
    assert data == HQA_GOLDEN
    header = fmt.read_header(HQA_GOLDEN)
    assert (header.version, header.layer, header.count, header.code_shape, header.num_codes) == (1, 3, 2, (4, 4), 256)
    assert not header.all_layers and header.code_shapes == ((4, 4),) and header.layer_num_codes == (256,)


def _all_layers_file(ks=(20, 32, 3), count=2, seed=3):
    rng = np.random.default_rng(seed)
    layers = [rng.integers(0, k, size=(count, h, w)) for (h, w), k in zip([(4, 4), (2, 2), (1, 1)], ks)]
    return fmt.write_layers(layers, "rrvq_x", HASH, ks), layers


def test_corrupt_all_layers_files_raise_codec_error():
    data, _ = _all_layers_file()
    flipped = bytearray(data)
    flipped[-6] ^= 0x04
    cases = [
        (bytes(flipped), "CRC-32 mismatch"),
        (data[:-1], "Truncated"),
        (data[:20], "Truncated"),  # inside the per-layer fields
        (data[:16], "Truncated"),  # before the layer count is complete
        (data + b"\0", "trailing bytes"),
        (b"TFVQ\x82" + data[5:], "newer than this tfvq"),  # a future version of the all-layers layout
        (b"TFVQ\x80" + data[5:], "Unknown .tfvq format version 0"),
    ]
    for broken, message in cases:
        with pytest.raises(CodecError, match=message):
            fmt.read(broken)


def test_tampered_all_layers_fields_are_refused_even_with_a_valid_crc():
    data, _ = _all_layers_file()
    body = bytes(data[:-4])
    at1, at3 = _layer_field_at(data, 1), _layer_field_at(data, 3)

    def tamper(offset, raw):
        b = bytearray(body)
        b[offset: offset + len(raw)] = raw
        return _recrc(bytes(b))

    count_at = 6 + data[5] + 9
    cases = [
        (tamper(count_at, b"\0\0"), "0 images"),
        (tamper(at3, b"\0\0"), "empty code grid: layer 3"),
        (tamper(at3 + 4, b"\0\0\0\0"), "K of layer 3 is 0"),
        (tamper(at1 + 4, struct.pack(">I", 64)), "need exactly"),  # 5 -> 6 bits per code in layer 1
        (tamper(6 + data[5] + 8, b"\0"), "Truncated"),  # L = 0 moves the payload length field
        (_recrc(b"TFVQ\x81\x01m" + HASH + b"\0\0\x01" + b"\0" * 4), "0 layers"),  # a well-formed L = 0 file
    ]
    for broken, message in cases:
        with pytest.raises(CodecError, match=message):
            fmt.read(broken)
    # Layer 1 has K = 20: its 5-bit codes can spell 20..31. The first code becomes 31.
    payload_at = len(body) - fmt.layers_payload_bytes([32, 8, 2], [20, 32, 3])
    b = bytearray(body)
    b[payload_at] |= 0xF8
    with pytest.raises(CodecError, match="Layer 1 code 0 is 31, but the layer has only K=20"):
        fmt.read(_recrc(bytes(b)))
    # Nonzero padding: the last byte's low bits are padding (2 images x (16x5 + 4x5 + 1x2) = 204 bits -> 4 spare).
    b = bytearray(body)
    b[-1] |= 0x01
    with pytest.raises(CodecError, match="padding bits"):
        fmt.read(_recrc(bytes(b)))




def test_fuzz_all_layers_corruption_is_detected(mutate):
    rng = np.random.default_rng(2021)
    data, layers = _all_layers_file()
    errors = 0
    for _ in range(4000):
        bad = mutate(data, rng)
        try:
            container = fmt.read(bad)
        except CodecError as err:
            assert str(err)
            errors += 1
            continue
        assert bad == data, "a corrupted file was read without an error"
        for got, want in zip(container.codes, layers):
            np.testing.assert_array_equal(got, want)
    assert errors > 3800


def test_fuzz_all_layers_tampering_with_a_recomputed_crc_never_crashes():
    rng = np.random.default_rng(8)
    data, _ = _all_layers_file()
    for _ in range(4000):
        body = bytearray(data[:-4])
        for _ in range(rng.integers(1, 3)):
            body[rng.integers(len(body))] = int(rng.integers(256))
        try:
            container = fmt.read(_recrc(bytes(body)))
        except CodecError:
            continue
        h = container.header
        assert h.all_layers == (body[4] & 0x80 != 0)
        if h.all_layers:
            for codes, shape, k in zip(container.codes, h.code_shapes, h.layer_num_codes):
                assert codes.shape == (h.count,) + shape and codes.min() >= 0 and codes.max() < k


# ------------------------------------------------------------------ with the bundled rrvq_digits model


def test_round_trip_equals_decode_of_encode_exactly(model, digits, rrvq_file):
    images = codec.decompress(rrvq_file)
    assert images.shape == (3, 32, 32, 1) and images.dtype == np.uint8
    x = digits.astype(np.float32) / 255
    expected = _uint8(model.decode(model.encode(x, stochastic=False)))
    np.testing.assert_array_equal(images, expected)
    np.testing.assert_array_equal(images, _uint8(model.reconstruct(x)))
    np.testing.assert_array_equal(codec.decompress(rrvq_file), images)  # deterministic


def test_file_is_header_plus_code_bits_and_holds_every_layers_codes(model, digits, rrvq_file):
    assert model.code_bits() == CODE_BITS == 1705
    header = codec.read_header(rrvq_file)
    assert (header.model, header.layer, header.count, header.all_layers) == (NAME, None, 3, True)
    assert list(header.code_shapes) == GRIDS == [tuple(g) for g in model.latent_shapes]
    assert list(header.layer_num_codes) == KS == list(model.num_codes)
    assert header.weights_hash == codec.weights_hash(model)
    assert header.bits == CODE_BITS
    assert header.payload_bytes == math.ceil(3 * CODE_BITS / 8) == 640
    assert len(rrvq_file) == HEADER + 640 == fmt.header_bytes(NAME, 5) + 640
    one = codec.compress(digits[0], NAME)
    assert len(one) == HEADER + math.ceil(CODE_BITS / 8) == 76 + 214


def test_payload_is_the_models_codes_bit_packed_layer_after_layer(model, digits, rrvq_file):
    codes = [c.numpy() for c in model.encode(digits.astype(np.float32) / 255, stochastic=False)]
    payload = rrvq_file[HEADER - 4: -4]
    assert payload == _oracle_payload(codes, KS)
    container = codec.read(rrvq_file)
    assert len(container.codes) == 5
    for got, want in zip(container.codes, codes):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)


def test_hqa_files_from_before_all_layer_files_still_decode(digits):
    hqa, _ = codec.load_model("hqa_digits")
    container = codec.read(HQA_GOLDEN)
    assert container.header.version == 1 and container.header.layer == 3 and not container.header.all_layers
    np.testing.assert_array_equal(container.codes, HQA_GOLDEN_CODES)
    expected = _uint8(hqa.decode(np.array(HQA_GOLDEN_CODES, np.int32), 3, stochastic=False))
    np.testing.assert_array_equal(codec.decompress(HQA_GOLDEN), expected)
    # ... and compressing the same digits still writes the same bytes.
    two = _uint8(load_numpy("digits", "test", limit=2))
    assert codec.compress(two, "hqa_digits", 3) == HQA_GOLDEN


def test_a_layer_is_refused_for_rrvq_and_required_for_hqa(digits):
    for layer in (1, 5, 0):
        with pytest.raises(CodecError, match="RRVQ-VAE.*no layer to choose; omit layer"):
            codec.compress(digits, NAME, layer)
    with pytest.raises(CodecError, match=r"needs the layer whose codes to store: layer=1..5"):
        codec.compress(digits, "hqa_digits")


def test_a_seed_is_refused_for_rrvq_files(rrvq_file):
    with pytest.raises(CodecError, match="decode deterministically"):
        codec.decompress(rrvq_file, seed=1)


def test_spatial_vae_has_no_codes(digits):
    with pytest.raises(CodecError, match="Spatial-VAE.*no discrete codes"):
        codec.compress(np.zeros((32, 32, 3), np.uint8), "spatial_vae_cifar10")
    with pytest.raises(CodecError, match="Spatial-VAE"):
        codec.rate_table("spatial_vae_cifar10")
    with pytest.raises(CodecError, match="Spatial-VAE"):
        codec.decompress(fmt.write_layers([np.zeros((1, 1, 1), int)], "spatial_vae_cifar10", HASH, [2]))


def test_files_that_do_not_fit_the_model_are_refused(rrvq_file):
    container = codec.read(rrvq_file)
    h = container.header
    with pytest.raises(CodecError, match="made with other weights"):
        codec.decompress(fmt.write_layers(container.codes, NAME, b"\0" * 8, KS))
    with pytest.raises(CodecError, match="Ks are"):
        codec.decompress(fmt.write_layers(container.codes, NAME, h.weights_hash, [33] + KS[1:]))
    with pytest.raises(CodecError, match="latent grids"):
        codec.decompress(fmt.write_layers(container.codes[:4] + [np.zeros((3, 2, 2), int)], NAME,
                                          h.weights_hash, KS))
    with pytest.raises(CodecError, match="codes of 4 layers, but 'rrvq_digits' has 5"):
        codec.decompress(fmt.write_layers(container.codes[:4], NAME, h.weights_hash, KS[:4]))
    with pytest.raises(CodecError, match="holds the codes of layer 1 only, but 'rrvq_digits' files hold every"):
        codec.decompress(fmt.write(container.codes[0], NAME, h.weights_hash, 1, 32))
    hqa_hash = codec.read_header(HQA_GOLDEN).weights_hash
    with pytest.raises(CodecError, match="holds every latent layer's codes, but 'hqa_digits' files hold the codes"):
        codec.decompress(fmt.write_layers(container.codes, "hqa_digits", hqa_hash, KS))


def test_corrupt_rrvq_files_raise_codec_error(rrvq_file):
    flipped = bytearray(rrvq_file)
    flipped[HEADER + 10] ^= 0x01
    for broken, message in [(bytes(flipped), "CRC-32"), (rrvq_file[:-1], "Truncated"),
                            (rrvq_file[:HEADER - 10], "Truncated"), (b"\x89PNG" + rrvq_file[4:], "Not a .tfvq")]:
        with pytest.raises(CodecError, match=message):
            codec.decompress(broken)


def test_rate_table_gives_bits_per_image_of_every_layer():
    (row,) = codec.rate_table(NAME)
    assert row["layer"] is None
    assert list(row["code_grid"]) == GRIDS and list(row["num_codes"]) == KS
    assert row["layer_bits"] == (1280, 320, 80, 20, 5) and row["bits"] == 1705
    assert (row["payload_bytes"], row["file_bytes"]) == (214, 290)
    assert row["ratio"] == pytest.approx(32 * 32 * 8 / 1705) and row["file_ratio"] == pytest.approx(1024 / 290)
    assert "| all | 16x16 + 8x8 + 4x4 + 2x2 + 1x1 | 32, 32, 32, 32, 32 | 1705 | 214 | 290 |" in (
        codec.format_rate_table(NAME))
    (celeba,) = codec.rate_table("rrvq_celeba64_l5")
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


def test_cli_round_trip_through_files(tmp_path, digits):
    tf.io.write_file(str(tmp_path / "digit.png"), tf.io.encode_png(digits[0]))
    procs = {
        "compress": _start(["compress", "digit.png", "--model=rrvq_digits", "-o", "digit.tfvq"], tmp_path),
        "models": _start(["models", "rrvq_digits"], tmp_path),
    }
    results = {name: _finish(p) for name, p in procs.items()}
    for name, (code, _, err) in results.items():
        assert code == 0, f"tfvq {name} failed: {err}"
    assert "all 5 layers: 16x16 K=32, 8x8 K=32, 4x4 K=32, 2x2 K=32, 1x1 K=32; 1705 bits (214 bytes)" in (
        results["models"][1])
    assert "290 bytes (214 bytes of codes, 1705 bits, all 5 layers of rrvq_digits)" in results["compress"][1]
    data = (tmp_path / "digit.tfvq").read_bytes()
    assert data == codec.compress(digits[0], NAME)

    code, out, err = _finish(_start(["decompress", "digit.tfvq", "-o", "out.png"], tmp_path))
    assert code == 0, err
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "out.png"))).numpy()
    np.testing.assert_array_equal(image, codec.decompress(data)[0])
    x = digits[:1].astype(np.float32) / 255
    model = codec.load_model(NAME)[0]
    np.testing.assert_array_equal(image[None], _uint8(model.decode(model.encode(x))))


def test_cli_info_and_errors_in_process(tmp_path, digits, capsys):
    png = tmp_path / "digit.png"
    tf.io.write_file(str(png), tf.io.encode_png(digits[1]))
    out = tmp_path / "d.tfvq"
    assert cli.main(["compress", str(png), "--model=rrvq_digits", "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "model rrvq_digits" in info and "all 5 layers, 1 image(s) of codes 16x16 K=32, 8x8 K=32" in info
    assert "1705 bits per image, 214 bytes of codes, 290 bytes in all" in info
    assert cli.main(["decompress", str(out), "-o", str(tmp_path / "o.png")]) == 0
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "o.png"))).numpy()
    np.testing.assert_array_equal(image, codec.decompress(out.read_bytes())[0])
    capsys.readouterr()

    assert cli.main(["compress", str(png), "--model=rrvq_digits", "--layer=2"]) == 1
    assert "no layer to choose" in _one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", str(png), "--model=hqa_digits"]) == 1
    assert "needs the layer" in _one_line_error(1, capsys.readouterr().err)
    assert cli.main(["compress", str(png), "--model=spatial_vae_cifar10"]) == 1
    assert "no discrete codes" in _one_line_error(1, capsys.readouterr().err)
    assert cli.main(["decompress", str(out), "--seed=3"]) == 1
    assert "decode deterministically" in _one_line_error(1, capsys.readouterr().err)
    data = bytearray(out.read_bytes())
    data[HEADER + 3] ^= 0xFF
    out.write_bytes(bytes(data))
    assert cli.main(["decompress", str(out)]) == 1
    assert "CRC-32 mismatch" in _one_line_error(1, capsys.readouterr().err)
    out.write_bytes(bytes(data[:100]))
    assert cli.main(["info", str(out)]) == 1
    assert "Truncated" in _one_line_error(1, capsys.readouterr().err)
