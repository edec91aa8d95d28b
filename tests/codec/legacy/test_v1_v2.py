"""Format versions 1 and 2, read only (`tfvq.codec.legacy.v1_v2`; the reader is NumPy: no model, no TensorFlow ops).

Version 2 (a run of layers l..l+n-1) and both layouts of version 1 (one layer, byte 1;
every layer from 1, byte 0x81) are read into the same `PackedFile`. tfvq writes them no
more: the files here are written by `_write`, the documented layouts spelt out. The kept files of
version 1 (data/README.md) still decode with their model to exactly the images they decoded to then.
"""

import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfvq import codec
from tfvq.codec import container, legacy
from tfvq.codec.errors import CodecError
from tfvq.codec.legacy import v1_v2

HASH = bytes(range(8))
GRIDS = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]

# A 2-image, layer-3 hqa_digits file written by the codec of format version 1, with the codes it holds.
HQA_V1 = bytes.fromhex(
    "54465651010a6871615f64696769747370324b6fb1fdb2c60300020004000400000100000000200e130f020c0d50160e1c0b150504"
    "0b1c0913080212cf0b1c05170d1c1aa3090c03be0360"
)
HQA_V1_CODES = [
    [[14, 19, 15, 2], [12, 13, 80, 22], [14, 28, 11, 21], [5, 4, 11, 28]],
    [[9, 19, 8, 2], [18, 207, 11, 28], [5, 23, 13, 28], [26, 163, 9, 12]],
]


def _oracle_bits(codes, k):
    """A layer's bit string spelt out with strings: bits_per_code(K) bits per code, MSB first, C order."""
    b = max(1, math.ceil(math.log2(k)))
    return "".join(format(int(c), f"0{b}b") for c in np.asarray(codes).reshape(-1))


def _oracle_payload(layers, ks):
    """The documented payload: the layers' bit strings back to back, then zero padding to a byte."""
    bits = "".join(_oracle_bits(c, k) for c, k in zip(layers, ks))
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i: i + 8], 2) for i in range(0, len(bits), 8))


def _recrc(body):
    """A file body with a freshly computed CRC: tampering that the CRC cannot see."""
    return body + struct.pack(">I", zlib.crc32(bytes(body)))


def _write(version_byte, codes, model, weights_hash, first_layer, ks):
    """A file of the documented layout of `version_byte`: 2, 1 (one layer) or 0x81 (every layer from layer 1).

    `codes` is a list of integer arrays [count, h, w] (an array: one layer), `ks` their Ks (an int: one layer)."""
    codes = [np.asarray(c) for c in (codes if isinstance(codes, list) else [codes])]
    ks = [int(k) for k in (ks if isinstance(ks, (list, tuple)) else [ks])]
    name, count, payload = model.encode(), len(codes[0]), _oracle_payload(codes, ks)
    table = b"".join(struct.pack(">HHI", c.shape[1], c.shape[2], k) for c, k in zip(codes, ks))
    if version_byte == 2:
        fields = struct.pack(">8sBBH", weights_hash, first_layer, len(codes), count) + table
    elif version_byte == 1:
        fields = struct.pack(">8sBHHHI", weights_hash, first_layer, count, *codes[0].shape[1:], ks[0])
    else:
        assert first_layer == 1
        fields = struct.pack(">8sBH", weights_hash, len(codes), count) + table
    head = b"TFVQ" + bytes([version_byte, len(name)]) + name
    return _recrc(head + fields + struct.pack(">I", len(payload)) + payload)


def _write_v2(codes, model, weights_hash, first_layer, ks):
    return _write(2, codes, model, weights_hash, first_layer, ks)


def _write_v1(codes, model, weights_hash, first_layer, ks):
    """Version 1: byte 1 for one layer, else byte 0x81 (every layer from layer 1)."""
    one = not isinstance(codes, list) or len(codes) == 1
    return _write(1 if one else 0x81, codes, model, weights_hash, first_layer, ks)


def _read(data):
    """The `PackedFile` of a file, through the legacy room's one function."""
    return legacy.read(data)[0]


def _layers(ks=(20, 32, 3), grids=((4, 4), (2, 2), (1, 1)), count=2, seed=3):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, k, size=(count, h, w)) for (h, w), k in zip(grids, ks)]


def _v2(first_layer=2, ks=(20, 32, 3), name="rrvq_x", **kwargs):
    """A version 2 file of 3 layers first_layer..first_layer+2, and its codes."""
    layers = _layers(ks, **kwargs)
    return _write_v2(layers, name, HASH, first_layer, ks), layers


def _tamper(data, offset, raw):
    """`data` with bytes at `offset` replaced and the CRC recomputed."""
    body = bytearray(data[:-4])
    body[offset: offset + len(raw)] = raw
    return _recrc(bytes(body))


# ------------------------------------------------------------------ bit packing


@pytest.mark.parametrize("k", [2, 3, 256, 257, 512, 1000])
@pytest.mark.parametrize("n", [1, 7, 64, 100])
def test_unpack_reads_the_documented_bit_layout(k, n):
    rng = np.random.default_rng(k * 1000 + n)
    codes = rng.integers(0, k, size=n)
    codes[0] = k - 1  # the largest code uses every bit
    packed = _oracle_payload([codes], [k])
    assert len(packed) == math.ceil(n * v1_v2.bits_per_code(k) / 8) == v1_v2.layers_payload_bytes([n], [k])
    (unpacked,) = v1_v2.unpack_layers(packed, [n], [k], first_layer=None)
    assert unpacked.dtype == np.int32
    np.testing.assert_array_equal(unpacked, codes)


@pytest.mark.parametrize("k,bits", [(1, 1), (2, 1), (3, 2), (256, 8), (257, 9), (512, 9), (1000, 10)])
def test_bits_per_code_is_ceil_log2_k(k, bits):
    assert v1_v2.bits_per_code(k) == bits


def test_unpack_reads_layers_of_tapered_ks_back_to_back():
    rng = np.random.default_rng(0)
    ks = [128, 64, 32, 16, 8]  # RRVQ App. F, CelebA: 7, 6, 5, 4, 3 bits
    layers = [rng.integers(0, k, size=(2, h, w)) for (h, w), k in zip(GRIDS, ks)]
    layers[0][0, 0, 0] = 127
    packed = _oracle_payload(layers, ks)
    assert len(packed) == math.ceil(2 * 2275 / 8) == v1_v2.layers_payload_bytes([c.size for c in layers], ks)
    for got, want in zip(v1_v2.unpack_layers(packed, [c.size for c in layers], ks), layers):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want.reshape(-1))


def test_celeba_app_f_rate_is_2275_bits_in_285_bytes():
    assert v1_v2.layers_payload_bytes([h * w for h, w in GRIDS], [128, 64, 32, 16, 8]) == 285  # ceil(2275 / 8)


def test_payload_of_an_8x8_grid_at_k512_is_72_bytes():
    codes = np.full((1, 8, 8), 511)
    data = _write_v2(codes, "hqa_celeba64", HASH, 4, 512)
    header = _read(data)
    assert header.payload_bytes == 72 and header.bits == 576  # 64 codes x 9 bits (HQA Table 1)
    assert len(data) == 26 + 12 + 8 + 72


# ------------------------------------------------------------------ version 2


def test_version_2_layout_field_by_field():
    ks = [5, 300, 2]
    layers = _layers(ks, grids=((4, 6), (2, 3), (1, 1)), seed=2)
    data = _write_v2(layers, "m", HASH, 3, ks)
    assert data[:4] == b"TFVQ" and data[4] == 2 and data[5] == 1 and data[6:7] == b"m"
    assert data[7:15] == HASH
    assert struct.unpack_from(">BBH", data, 15) == (3, 3, 2)  # first layer, number of layers, count
    assert [struct.unpack_from(">HHI", data, 19 + 8 * i) for i in range(3)] == [(4, 6, 5), (2, 3, 300), (1, 1, 2)]
    (payload_len,) = struct.unpack_from(">I", data, 43)
    assert payload_len == math.ceil(2 * (24 * 3 + 6 * 9 + 1 * 1) / 8) == 32
    assert data[47: 47 + payload_len] == _oracle_payload(layers, ks)
    assert struct.unpack(">I", data[-4:])[0] == zlib.crc32(data[:-4])
    assert len(data) == 26 + 1 + 24 + payload_len

    h = _read(data)
    assert (h.version, h.version_byte, h.model, h.weights_hash, h.first_layer, h.count) == (2, 2, "m", HASH, 3, 2)
    assert (h.layers, h.num_layers, h.code_shapes, h.layer_num_codes) == (
        (3, 4, 5), 3, ((4, 6), (2, 3), (1, 1)), (5, 300, 2))
    assert (h.payload_bytes, h.file_bytes) == (32, len(data))
    assert h.layer_bits == (72, 54, 1) and h.bits == 127
    assert (h.images, h.image_size, h.lossless, h.resized) == (2, None, False, False)  # what every version says
    assert len(h.codes) == 3
    for got, want in zip(h.codes, layers):
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)


def test_a_one_layer_file_is_44_bytes_plus_payload_for_hqa_digits():
    data = _write_v2(np.array([[[7]]]), "hqa_digits", HASH, 5, 256)
    assert len(data) == 44 + 1
    h = _read(data)
    assert (h.layers, h.code_shapes, h.layer_num_codes, h.bits) == ((5,), ((1, 1),), (256,), 8)


@pytest.mark.parametrize("first_layer,num_layers", [(1, 1), (1, 5), (3, 3), (7, 1), (250, 6), (255, 1)])
def test_any_run_of_layers_round_trips(first_layer, num_layers):
    rng = np.random.default_rng(first_layer * 10 + num_layers)
    ks = [int(k) for k in rng.integers(1, 2000, size=num_layers)]
    grids = [tuple(int(d) for d in rng.integers(1, 5, size=2)) for _ in range(num_layers)]
    layers = _layers(ks, grids=grids, count=3, seed=num_layers)
    h = _read(_write_v2(layers, "model", HASH, first_layer, ks))
    assert h.layers == tuple(range(first_layer, first_layer + num_layers))
    assert h.code_shapes == tuple(grids) and h.layer_num_codes == tuple(ks)
    for got, want in zip(h.codes, layers):
        np.testing.assert_array_equal(got, want)


# ------------------------------------------------------------------ version 1, read


def test_a_version_1_one_layer_file_reads_as_its_layer():
    h = _read(HQA_V1)
    assert (h.version, h.version_byte, h.model, h.first_layer, h.layers, h.count) == (1, 1, "hqa_digits", 3, (3,), 2)
    assert (h.code_shapes, h.layer_num_codes, h.bits, h.payload_bytes, h.file_bytes) == (
        ((4, 4),), (256,), 128, 32, len(HQA_V1))
    np.testing.assert_array_equal(h.codes[0], HQA_V1_CODES)
    assert _write_v1(np.array(HQA_V1_CODES), "hqa_digits", HQA_V1[16:24], 3, 256) == HQA_V1  # the layout, spelt out


def test_the_kept_version_1_files_are_the_documented_layouts(old_files):
    for path in sorted(old_files.glob("*_v1.tfvq")) + sorted(old_files.glob("*_v0x81.tfvq")):
        data = path.read_bytes()
        h = _read(data)
        assert _write_v1(h.codes, h.model, h.weights_hash, h.first_layer, h.layer_num_codes) == data, path.name


def test_a_version_1_all_layers_file_reads_as_every_layer_from_layer_1():
    ks = [5, 300, 2]
    layers = _layers(ks, grids=((4, 6), (2, 3), (1, 1)), seed=2)
    payload = _oracle_payload(layers, ks)
    body = (b"TFVQ\x81\x01m" + HASH + struct.pack(">BH", 3, 2)
            + b"".join(struct.pack(">HHI", c.shape[1], c.shape[2], k) for c, k in zip(layers, ks))
            + struct.pack(">I", len(payload)) + payload)
    data = _recrc(body)  # the layout of version 1, spelt out
    assert _write_v1(layers, "m", HASH, 1, ks) == data
    h = _read(data)
    assert (h.version, h.version_byte, h.first_layer, h.layers, h.count) == (1, 0x81, 1, (1, 2, 3), 2)
    assert (h.code_shapes, h.layer_num_codes, h.bits) == (((4, 6), (2, 3), (1, 1)), (5, 300, 2), 127)
    for got, want in zip(h.codes, layers):
        np.testing.assert_array_equal(got, want)


def test_every_version_reads_into_the_same_header_and_codes():
    layers = _layers()
    ks = [20, 32, 3]
    v2 = _read(_write_v2(layers, "m", HASH, 1, ks))
    v1 = _read(_write_v1(layers, "m", HASH, 1, ks))
    fields = lambda h: (h.model, h.weights_hash, h.first_layer, h.layers, h.count, h.code_shapes,  # noqa: E731
                        h.layer_num_codes, h.bits, h.payload_bytes)
    assert fields(v2) == fields(v1)
    assert (v2.version, v1.version) == (2, 1)
    for a, b in zip(v2.codes, v1.codes):
        np.testing.assert_array_equal(a, b)
    one_v2, one_v1 = (_read(w(layers[1], "m", HASH, 4, 32)) for w in (_write_v2, _write_v1))
    assert fields(one_v2) == fields(one_v1)


# ------------------------------------------------------------------ errors


def _every_version():
    layers = _layers()
    return {
        "v2": _write_v2(layers, "rrvq_x", HASH, 2, [20, 32, 3]),
        "v1": _write_v1(layers[0], "hqa_x", HASH, 4, 20),
        "v1_all": _write_v1(layers, "rrvq_x", HASH, 1, [20, 32, 3]),
    }


def test_bad_magic_is_a_foreign_file():
    data, _ = _v2()
    for foreign in (b"PNG!" + data[4:], b"", b"TF"):
        with pytest.raises(CodecError, match=r"Not a .tfvq file: it starts with .*, neither b'TQ' \(format version 4\) "
                                             r"nor b'TFVQ' \(versions 1 to 3\)"):
            codec.read_header(foreign)
        with pytest.raises(CodecError, match="Not a .tfvq file of versions 1 to 3"):
            _read(foreign)


@pytest.mark.parametrize("byte,message", [
    (4, "format version 4, newer than this tfvq reads .*upgrade tfvq"),
    (0x84, "format version 4, newer"),
    (0x7F, "format version 127, newer"),
    (0, r"Unknown .tfvq format version 0 \(version byte 0x00"),
    (0x80, r"Unknown .tfvq format version 0 \(version byte 0x80"),
    (0x82, r"Unknown .tfvq format version 2 \(version byte 0x82; this tfvq reads the version bytes 0x01, 0x02, 0x03, "
           r"0x81"),
])
def test_a_version_byte_this_tfvq_did_not_write_is_refused(byte, message):
    data = bytearray(_v2()[0])
    data[4] = byte
    with pytest.raises(CodecError, match=message):
        codec.read_header(bytes(data))


@pytest.mark.parametrize("version", ["v2", "v1", "v1_all"])
@pytest.mark.parametrize("keep", [4, 6, 16, 20, 30, 40, -1, -4, -5])
def test_truncated_file(version, keep):
    data = _every_version()[version]
    with pytest.raises(CodecError, match="Truncated"):
        _read(data[:keep])


@pytest.mark.parametrize("version", ["v2", "v1", "v1_all"])
def test_extended_file_has_trailing_bytes(version):
    with pytest.raises(CodecError, match="1 unexpected trailing bytes"):
        _read(_every_version()[version] + b"\0")


@pytest.mark.parametrize("version", ["v2", "v1", "v1_all"])
def test_crc_mismatch_in_payload_header_and_crc(version):
    data = _every_version()[version]
    for at in (len(data) - 6, 12, 6 + data[5] + 2, len(data) - 1):
        bad = bytearray(data)
        bad[at] ^= 0x10
        with pytest.raises(CodecError, match="CRC-32 mismatch"):
            _read(bytes(bad))


def test_tampered_version_2_fields_are_refused_even_with_a_valid_crc():
    data, _ = _v2(first_layer=2)  # "rrvq_x": m = 6, layers 2..4 of K = 20, 32, 3
    first_at, table_at = 14 + 6, 18 + 6
    cases = [
        (_tamper(data, first_at, b"\0"), "first layer is 0; layers are numbered from 1"),
        (_tamper(data, first_at, b"\xfe"), "layers 254..256, beyond the last layer number 255"),
        (_tamper(data, first_at + 2, b"\0\0"), "codes of 0 images"),
        (_tamper(data, table_at + 16, b"\0\0"), "empty code grid: layer 4 is 0x1"),
        (_tamper(data, table_at + 8 + 2, b"\0\0"), "empty code grid: layer 3 is 2x0"),
        (_tamper(data, table_at + 20, b"\0\0\0\0"), "codebook size K of layer 4 is 0"),
        (_tamper(data, table_at + 4, struct.pack(">I", 64)),  # layer 2: 5 -> 6 bits per code
         r"payload is 26 bytes, but 2 image\(s\) of codes of layers 2..4 .* need exactly 30 bytes"),
        (_tamper(data, 6, b"\xff"), "not valid UTF-8"),
    ]
    for broken, message in cases:
        with pytest.raises(CodecError, match=message):
            _read(broken)
    # n = 0 moves the payload length field: the announced length no longer fits.
    with pytest.raises(CodecError, match="Truncated|trailing"):
        _read(_tamper(data, first_at + 1, b"\0"))
    # A well-formed file of 0 layers.
    with pytest.raises(CodecError, match="codes of 0 layers"):
        _read(_recrc(b"TFVQ\x02\x01m" + HASH + b"\x01\x00\x00\x01" + b"\0" * 4))


def test_codes_beyond_k_and_nonzero_padding_are_refused_even_with_a_valid_crc():
    data, _ = _v2(first_layer=2)
    payload_at = len(data) - 4 - v1_v2.layers_payload_bytes([32, 8, 2], [20, 32, 3])
    # Layer 2 has K = 20: its 5-bit codes can spell 20..31. The first code becomes 31.
    with pytest.raises(CodecError, match="Layer 2 code 0 is 31, but the layer has only K=20"):
        _read(_tamper(data, payload_at, bytes([data[payload_at] | 0xF8])))
    # 2 images x (16x5 + 4x5 + 1x2) = 204 bits: the last byte's low 4 bits are padding.
    with pytest.raises(CodecError, match="padding bits"):
        _read(_tamper(data, len(data) - 5, bytes([data[-5] | 0x01])))
    one = _write_v2(np.zeros((1, 2, 2), int), "m", HASH, 1, 257)  # 9 bits per code: 257..511 representable
    with pytest.raises(CodecError, match="Layer 1 code 0 is 510, but the layer has only K=257"):
        _read(_tamper(one, len(one) - 4 - 5, b"\xff"))


def test_tampered_version_1_fields_are_refused_even_with_a_valid_crc():
    one = _every_version()["v1"]  # "hqa_x": m = 5, layer 4, count 2, 4x4, K 20
    fields_at = 6 + 5
    cases = [
        (_tamper(one, fields_at + 8, b"\0"), "first layer is 0"),
        (_tamper(one, fields_at + 9, b"\0\0"), "codes of 0 images"),
        (_tamper(one, fields_at + 11, b"\0\0"), "empty code grid: layer 4 is 0x4"),
        (_tamper(one, fields_at + 15, b"\0\0\0\0"), "K of layer 4 is 0"),
        (_tamper(one, fields_at + 13, struct.pack(">H", 5)), "need exactly 25 bytes"),
    ]
    every = _every_version()["v1_all"]  # "rrvq_x": m = 6
    cases += [
        (_tamper(every, 6 + 6 + 9, b"\0\0"), "codes of 0 images"),
        (_tamper(every, 6 + 6 + 11 + 16, b"\0\0"), "empty code grid: layer 3 is 0x1"),
        (_recrc(b"TFVQ\x81\x01m" + HASH + b"\0\0\x01" + b"\0" * 4), "codes of 0 layers"),
    ]
    for broken, message in cases:
        with pytest.raises(CodecError, match=message):
            _read(broken)


def test_not_bytes_is_refused():
    with pytest.raises(CodecError, match="Expected the file's bytes"):
        codec.read_header("TFVQ")


# ------------------------------------------------------------------ fuzzing


def test_fuzz_every_corruption_is_detected(mutate):
    """Thousands of corrupted files of every version: each raises CodecError or (a no-op) decodes the same."""
    rng = np.random.default_rng(2020)
    bases = []
    for k, shape, name, first_layer, write in [
            (512, (1, 8, 8), "hqa_celeba64", 4, _write_v2), (256, (1, 1, 1), "hqa_digits", 5, _write_v2),
            (3, (2, 3, 5), "m", 2, _write_v2), (1000, (1, 4, 4), "naïve_model", 1, _write_v1)]:
        codes = rng.integers(0, k, size=shape)
        bases.append((write(codes, name, HASH, first_layer, k), [codes]))
    for first_layer, write in [(1, _write_v1), (2, _write_v2)]:
        layers = _layers(seed=first_layer)
        bases.append((write(layers, "rrvq_x", HASH, first_layer, [20, 32, 3]), layers))
    assert _mutated_reads(bases, 20000, rng, mutate) > 19000


def _mutated_reads(bases, count, rng, mutate):
    """Reads `count` mutated copies of the (file, codes) `bases`; returns how many raised `CodecError`.

    A mutated file that reads without an error must be unchanged and give its codes back."""
    errors = 0
    for i in range(count):
        data, codes = bases[i % len(bases)]
        bad = mutate(data, rng)
        try:
            h = _read(bad)
        except CodecError as err:
            assert str(err)
            errors += 1
            continue
        assert bad == data, "a corrupted file was read without an error"
        for got, want in zip(h.codes, codes):
            np.testing.assert_array_equal(got, want)
    return errors


def _check_consistent(h):
    assert 1 <= h.first_layer and h.layers[-1] <= 255 and h.count >= 1
    assert len(h.codes) == len(h.code_shapes) == len(h.layer_num_codes) >= 1
    for codes, shape, k in zip(h.codes, h.code_shapes, h.layer_num_codes):
        assert codes.shape == (h.count,) + shape and codes.min() >= 0 and codes.max() < k


def test_fuzz_tampering_with_a_recomputed_crc_never_crashes():
    """With the CRC recomputed, field checks still turn every bad header into a CodecError."""
    rng = np.random.default_rng(7)
    _tamper_with_recomputed_crc(_write_v2(rng.integers(0, 257, size=(1, 3, 3)), "hqa_digits", HASH, 2, 257),
                                10000, rng)


def _tamper_with_recomputed_crc(data, count, rng):
    """Changes 1-2 bytes of `data`'s body `count` times, recomputes the CRC: a read is an error or consistent."""
    for _ in range(count):
        body = bytearray(data[:-4])
        for _ in range(rng.integers(1, 3)):
            body[rng.integers(len(body))] = int(rng.integers(256))
        try:
            h = _read(_recrc(bytes(body)))
        except CodecError:
            continue
        _check_consistent(h)


def test_fuzz_version_1_all_layers_corruption_is_detected(mutate):
    rng = np.random.default_rng(2021)
    layers = _layers()
    data = _write_v1(layers, "rrvq_x", HASH, 1, [20, 32, 3])
    assert _mutated_reads([(data, layers)], 4000, rng, mutate) > 3800


def test_fuzz_multi_layer_tampering_with_a_recomputed_crc_never_crashes():
    rng = np.random.default_rng(8)
    for data in (_v2(first_layer=3)[0], _write_v1(_layers(), "rrvq_x", HASH, 1, [20, 32, 3])):
        _tamper_with_recomputed_crc(data, 2000, rng)


@pytest.mark.parametrize("version_byte", [b"\x01", b"\x02", b"\x81"])
@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200))
def test_arbitrary_bytes_raise_codec_error(version_byte, data):
    with pytest.raises(CodecError):
        _read(b"TFVQ" + version_byte + data)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.data())
def test_unpack_any_k(k, draw):
    codes = np.array(draw.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=50)))
    (unpacked,) = v1_v2.unpack_layers(_oracle_payload([codes], [k]), [codes.size], [k], first_layer=None)
    np.testing.assert_array_equal(unpacked, codes)


# ------------------------------------------------------------------ decoding


def test_a_file_of_a_model_without_codes_is_refused():
    with pytest.raises(CodecError, match="'spatial_vae_cifar10' has no discrete codes"):
        codec.decompress(_write_v2([np.zeros((1, 1, 1), int)], "spatial_vae_cifar10", bytes(8), 1, [2]))


# ------------------------------------------------------------------------------------- the kept files
HQA_FILES = [("hqa_digits_layer1_v1", 1), ("hqa_digits_layer3_v1", 3), ("hqa_digits_layer5_v1", 5)]
"""The kept hqa_digits files of layers 1, 3 and 5 (version byte 1), two test digits each (data/README.md), made
with the hqa_digits weights of that time (`old_weights`)."""
RRVQ_FILE = "rrvq_digits_all_layers_v0x81"
"""The kept rrvq_digits file of every layer (version byte 0x81), made with today's bundled weights."""


@pytest.mark.parametrize("stem,layer", HQA_FILES)
def test_old_hqa_files_decode_to_the_same_images_with_and_without_a_seed(old_files, old_file, old_weights, stem,
                                                                        layer):
    data, images = old_file(stem)
    header = codec.read_header(data)
    assert (header.version_byte, header.model, header.layers, header.count) == (1, "hqa_digits", (layer,), 2)
    weights = str(old_weights)
    decoded = codec.decompress(data, weights=weights)
    assert decoded.dtype == np.uint8 and decoded.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(decoded, images)
    np.testing.assert_array_equal(codec.decompress(data, seed=7, weights=weights),
                                  np.load(old_files / f"{stem}_seed7.npy"))


def test_old_rrvq_all_layers_file_decodes_to_the_same_images(old_file):
    data, images = old_file(RRVQ_FILE)
    header = codec.read_header(data)
    assert (header.version_byte, header.model, header.layers, header.count) == (0x81, "rrvq_digits", (1, 2, 3, 4, 5), 2)
    np.testing.assert_array_equal(codec.decompress(data), images)
    # Every layer is stored: a seed has nothing to sample (the old codec refused one).
    np.testing.assert_array_equal(codec.decompress(data, seed=7), images)


@pytest.mark.parametrize("stem,layer", HQA_FILES + [(RRVQ_FILE, None)])
def test_the_same_digits_compress_to_the_same_codes_in_version_4(old_file, old_weights, two_digits, stem, layer,
                                                                decoded_codes):
    data, _ = old_file(stem)
    old = codec.read_header(data)
    weights = str(old_weights) if old.model == "hqa_digits" else None
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


@pytest.mark.parametrize("stem,layer", HQA_FILES)
def test_a_file_whose_weights_are_gone_is_refused(old_file, stem, layer):
    data, _ = old_file(stem)
    # The hqa_digits weights these were made with are no longer the bundled ones: without them, no image.
    with pytest.raises(CodecError, match="made with other weights of 'hqa_digits'.*--weights=PATH"):
        codec.decompress(data)
    with pytest.raises(CodecError, match="made with other weights of 'hqa_digits'.*--weights=PATH"):
        codec.decompress(data, seed=7)
