"""The `.tfvq` container and bit packing (pure NumPy: no model, no TensorFlow ops)."""

import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfvq.codec import format as fmt
from tfvq.codec.format import CodecError

HASH = bytes(range(8))


def _oracle_pack(codes, k):
    """The documented bit layout, spelt out with strings: MSB first, no gaps, zero padding."""
    b = max(1, math.ceil(math.log2(k)))
    bits = "".join(format(int(c), f"0{b}b") for c in np.asarray(codes).reshape(-1))
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i: i + 8], 2) for i in range(0, len(bits), 8))


def _file(codes=None, k=512, name="hqa_celeba64", layer=4):
    if codes is None:
        codes = np.random.default_rng(0).integers(0, k, size=(1, 8, 8))
    return fmt.write(codes, name, HASH, layer, k)


def _recrc(body):
    """A file body with a freshly computed CRC: tampering that the CRC cannot see."""
    return body + struct.pack(">I", zlib.crc32(body))


def _name_len(data):
    return data[5]


def _fields_at(data):
    return 6 + _name_len(data)


@pytest.mark.parametrize("k", [2, 3, 256, 257, 512, 1000])
@pytest.mark.parametrize("n", [1, 7, 64, 100])
def test_pack_matches_bit_layout_and_round_trips(k, n):
    rng = np.random.default_rng(k * 1000 + n)
    codes = rng.integers(0, k, size=n)
    codes[0] = k - 1  # the largest code uses every bit
    packed = fmt.pack_codes(codes, k)
    assert packed == _oracle_pack(codes, k)
    assert len(packed) == math.ceil(n * fmt.bits_per_code(k) / 8)
    unpacked = fmt.unpack_codes(packed, n, k)
    assert unpacked.dtype == np.int32
    np.testing.assert_array_equal(unpacked, codes)


@pytest.mark.parametrize("k,bits", [(1, 1), (2, 1), (3, 2), (256, 8), (257, 9), (512, 9), (1000, 10)])
def test_bits_per_code_is_ceil_log2_k(k, bits):
    assert fmt.bits_per_code(k) == bits


def test_payload_of_an_8x8_grid_at_k512_is_72_bytes():
    codes = np.full((1, 8, 8), 511)
    assert len(fmt.pack_codes(codes, 512)) == 72  # 64 codes x 9 bits = 576 bits (HQA Table 1)
    data = _file(codes)
    header = fmt.read_header(data)
    assert header.payload_bytes == 72 and header.bits == 576
    assert len(data) == fmt.header_bytes("hqa_celeba64") + 72


def test_container_round_trip():
    codes = np.random.default_rng(1).integers(0, 257, size=(3, 4, 5))
    data = fmt.write(codes, "hqa_digits", HASH, 3, 257)
    container = fmt.read(data)
    h = container.header
    assert (h.version, h.model, h.weights_hash, h.layer, h.count, h.code_shape, h.num_codes) == (
        fmt.VERSION, "hqa_digits", HASH, 3, 3, (4, 5), 257)
    assert h.payload_bytes == math.ceil(60 * 9 / 8) and h.file_bytes == len(data)
    np.testing.assert_array_equal(container.codes, codes)
    assert data[:4] == b"TFVQ" and len(data) == 33 + len("hqa_digits") + h.payload_bytes


def test_one_unbatched_grid_is_stored_as_a_batch_of_one():
    container = fmt.read(fmt.write(np.array([[5]]), "m", HASH, 1, 256))
    assert container.codes.shape == (1, 1, 1) and container.header.count == 1


def test_write_refuses_codes_outside_the_codebook():
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        fmt.write(np.array([[[256]]]), "m", HASH, 1, 256)


def test_bad_magic_is_a_foreign_file():
    data = _file()
    with pytest.raises(CodecError, match="Not a .tfvq file"):
        fmt.read(b"PNG!" + data[4:])
    with pytest.raises(CodecError, match="Not a .tfvq file"):
        fmt.read(b"")


def test_future_version_asks_for_an_upgrade():
    data = bytearray(_file())
    data[4] = fmt.VERSION + 1
    with pytest.raises(CodecError, match="newer than this tfvq"):
        fmt.read(bytes(data))
    data[4] = 0
    with pytest.raises(CodecError, match="Unknown .tfvq format version 0"):
        fmt.read(bytes(data))


@pytest.mark.parametrize("keep", [4, 6, 20, 40, -1, -4, -5])
def test_truncated_file(keep):
    data = _file()
    with pytest.raises(CodecError, match="Truncated"):
        fmt.read(data[:keep])


def test_extended_file_has_trailing_bytes():
    with pytest.raises(CodecError, match="trailing bytes"):
        fmt.read(_file() + b"\0")


def test_crc_mismatch_in_payload_header_and_crc():
    data = _file()
    for at in (len(data) - 10, _fields_at(data) + 2, len(data) - 1, 7):
        bad = bytearray(data)
        bad[at] ^= 0x10
        with pytest.raises(CodecError, match="CRC-32 mismatch"):
            fmt.read(bytes(bad))


def test_codes_beyond_k_are_refused_even_with_a_valid_crc():
    codes = np.zeros((1, 2, 2), int)
    data = fmt.write(codes, "m", HASH, 1, 257)  # 9 bits per code: 257..511 are representable
    body = bytearray(data[:-4])
    payload_at = _fields_at(data) + 23
    body[payload_at] = 0xFF  # first code becomes 0b111111110 = 510
    with pytest.raises(CodecError, match="Code 0 is 510, but the layer has only K=257"):
        fmt.read(_recrc(bytes(body)))


def test_nonzero_padding_is_refused_even_with_a_valid_crc():
    data = fmt.write(np.zeros((1, 1, 3), int), "m", HASH, 1, 8)  # 9 bits -> 2 bytes, 7 bits of padding
    body = bytearray(data[:-4])
    body[-1] |= 0x01
    with pytest.raises(CodecError, match="padding bits"):
        fmt.read(_recrc(bytes(body)))


def test_inconsistent_payload_length_is_refused_even_with_a_valid_crc():
    data = fmt.write(np.zeros((1, 2, 2), int), "m", HASH, 1, 256)  # 4 bytes of payload
    body = bytearray(data[:-4])
    at = _fields_at(data)
    body[at + 13: at + 15] = struct.pack(">H", 3)  # w: 2 -> 3, payload should then be 6 bytes
    with pytest.raises(CodecError, match="need exactly 6 bytes"):
        fmt.read(_recrc(bytes(body)))


@pytest.mark.parametrize(
    "offset,value,message",
    [(8, 0, "layer is 0"), (9, 0, "empty code grid"), (11, 0, "empty code grid"), (13, 0, "empty code grid")],
)
def test_meaningless_fields_are_refused_even_with_a_valid_crc(offset, value, message):
    data = fmt.write(np.zeros((1, 1, 1), int), "m", HASH, 1, 256)
    body = bytearray(data[:-4])
    at = _fields_at(data) + offset
    body[at: at + 2] = bytes([value, value]) if offset != 8 else bytes([value]) + body[at + 1: at + 2]
    with pytest.raises(CodecError, match=message):
        fmt.read(_recrc(bytes(body)))


def test_a_name_that_is_not_utf8_is_refused():
    data = fmt.write(np.zeros((1, 1, 1), int), "m", HASH, 1, 256)
    body = bytearray(data[:-4])
    body[6] = 0xFF
    with pytest.raises(CodecError, match="not valid UTF-8"):
        fmt.read(_recrc(bytes(body)))


def test_not_bytes_is_refused():
    with pytest.raises(CodecError, match="Expected the file's bytes"):
        fmt.read("TFVQ")




def test_fuzz_every_corruption_is_detected(mutate):
    """Thousands of corrupted files: each raises CodecError or (a no-op mutation) decodes to the same codes."""
    rng = np.random.default_rng(2020)
    bases = []
    for k, shape, name in [(512, (1, 8, 8), "hqa_celeba64"), (256, (1, 1, 1), "hqa_digits"),
                           (3, (2, 3, 5), "m"), (1000, (1, 4, 4), "naïve_model")]:
        codes = rng.integers(0, k, size=shape)
        bases.append((fmt.write(codes, name, HASH, 2, k), codes))
    errors = unchanged = 0
    for i in range(20000):
        data, codes = bases[i % len(bases)]
        bad = mutate(data, rng)
        try:
            container = fmt.read(bad)
        except CodecError as err:
            assert str(err)
            errors += 1
            continue
        assert bad == data, "a corrupted file was read without an error"
        np.testing.assert_array_equal(container.codes, codes)
        unchanged += 1
    assert errors > 19000


def test_fuzz_tampering_with_a_recomputed_crc_never_crashes():
    """With the CRC recomputed, field checks still turn every bad header into a CodecError."""
    rng = np.random.default_rng(7)
    data = fmt.write(rng.integers(0, 257, size=(1, 3, 3)), "hqa_digits", HASH, 2, 257)
    for _ in range(10000):
        body = bytearray(data[:-4])
        for _ in range(rng.integers(1, 3)):
            body[rng.integers(len(body))] = int(rng.integers(256))
        try:
            container = fmt.read(_recrc(bytes(body)))
        except CodecError:
            continue
        h = container.header
        assert container.codes.shape == (h.count,) + h.code_shape
        assert container.codes.min() >= 0 and container.codes.max() < h.num_codes


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_raise_codec_error(data):
    with pytest.raises(CodecError):
        fmt.read(b"TFVQ\x01" + data)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.data())
def test_pack_round_trip_any_k(k, draw):
    codes = np.array(draw.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=50)))
    packed = fmt.pack_codes(codes, k)
    assert packed == _oracle_pack(codes, k)
    np.testing.assert_array_equal(fmt.unpack_codes(packed, codes.size, k), codes)


def test_format_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = "import sys, tfvq.codec.format, tfvq.codec; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
