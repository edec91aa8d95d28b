"""The `.tfvq` file format: bit-packed VQ codes in a self-describing container.

Pure Python and NumPy (no TensorFlow), so it is fast to test and to fuzz.

Layout (all integers big-endian):

    offset  size  field
    0       4     magic b"TFVQ"
    4       1     format version (`VERSION`)
    5       1     n: length of the model name in bytes (1..255)
    6       n     zoo model name, UTF-8
    6+n     8     weights hash: SHA-256 of the model's weights, first 8 bytes
    14+n    1     layer (1..255; HQA numbers layers from 1)
    15+n    2     count: number of images (>= 1)
    17+n    2     h: code grid height (>= 1)
    19+n    2     w: code grid width (>= 1)
    21+n    4     K: number of codes of the layer's quantizer (>= 1)
    25+n    4     payload length P in bytes = ceil(count * h * w * bits_per_code(K) / 8)
    29+n    P     payload: the codes bit-packed (see `pack_codes`)
    29+n+P  4     CRC-32 (zlib) of every byte before it

The header is 33 + n bytes with the CRC; for "hqa_digits" (n = 10) a file
is 43 bytes plus the payload.

Reading checks, in order: magic (a foreign file), version (a file from a
newer tfvq), the length implied by the name and payload length fields
(truncated or extended files), the CRC (any other corruption), then the
fields' meaning (UTF-8 name, layer >= 1, non-empty grid, payload length
consistent with the grid and K, zero padding bits, every code < K). Every
failure raises `CodecError` with a message that says what is wrong.
"""

import dataclasses
import math
import struct
import zlib

import numpy as np

MAGIC = b"TFVQ"
VERSION = 1

_FIXED_HEAD = struct.Struct(">4sBB")  # magic, version, name length
_FIELDS = struct.Struct(">8sBHHHII")  # hash, layer, count, h, w, K, payload length
_CRC = struct.Struct(">I")
HASH_BYTES = 8
MAX_NAME_BYTES = 255


class CodecError(ValueError):
    """A `.tfvq` file that cannot be decoded: corrupt, truncated, foreign, from
    a newer version, or made with other weights. The message says which."""


def bits_per_code(num_codes):
    """Bits per code for a codebook of K codes: ceil(log2 K), at least 1 (as `HQA.bits`)."""
    num_codes = int(num_codes)
    if num_codes < 1:
        raise ValueError(f"num_codes must be >= 1, got {num_codes}.")
    return max(1, math.ceil(math.log2(num_codes)))


def payload_bytes(num_values, num_codes):
    """Bytes of the packed payload: ceil(num_values * bits_per_code(K) / 8)."""
    return -(-int(num_values) * bits_per_code(num_codes) // 8)


def header_bytes(model_name):
    """Bytes of a file besides its payload (header and CRC) for `model_name`."""
    return _FIXED_HEAD.size + len(model_name.encode("utf-8")) + _FIELDS.size + _CRC.size


def pack_codes(codes, num_codes):
    """Bit-packs integer codes in [0, K) at `bits_per_code(K)` bits each.

    The codes are taken in C (row-major) order; each is written most
    significant bit first, one after the other with no gaps, and the last
    byte is padded with zero bits. So code i occupies bits
    [i * b, (i + 1) * b) of the bit string, bit j of the string being bit
    7 - j % 8 of byte j // 8.

    Returns:
      bytes of length `payload_bytes(codes.size, num_codes)`.
    """
    b = bits_per_code(num_codes)
    codes = np.asarray(codes)
    if codes.size and codes.dtype.kind not in "iu":
        raise ValueError(f"codes must be integers, got dtype {codes.dtype}.")
    flat = codes.reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= int(num_codes)):
        raise ValueError(f"codes must be in [0, {int(num_codes) - 1}], got values in [{flat.min()}, {flat.max()}].")
    shifts = np.arange(b - 1, -1, -1, dtype=np.int64)
    bits = ((flat[:, None] >> shifts) & 1).astype(np.uint8)
    return np.packbits(bits.reshape(-1)).tobytes()


def unpack_codes(payload, count, num_codes):
    """The inverse of `pack_codes`: `count` codes as an int32 array.

    Raises `CodecError` if the payload length is not exactly
    `payload_bytes(count, K)`, the padding bits are not zero, or a code is >= K.
    """
    b = bits_per_code(num_codes)
    count = int(count)
    expected = payload_bytes(count, num_codes)
    if len(payload) != expected:
        raise CodecError(
            f"Payload is {len(payload)} bytes, but {count} codes of {b} bits need exactly {expected} bytes."
        )
    bits = np.unpackbits(np.frombuffer(bytes(payload), dtype=np.uint8))
    if bits[count * b:].any():
        raise CodecError("The payload's padding bits (after the last code) are not zero.")
    weights = np.left_shift(np.int64(1), np.arange(b - 1, -1, -1, dtype=np.int64))
    codes = bits[: count * b].reshape(count, b).astype(np.int64) @ weights
    if count and codes.max() >= int(num_codes):
        bad = int(np.argmax(codes >= int(num_codes)))
        raise CodecError(
            f"Code {bad} is {int(codes[bad])}, but the layer has only K={int(num_codes)} codes (values 0..{int(num_codes) - 1})."
        )
    return codes.astype(np.int32)


@dataclasses.dataclass(frozen=True)
class Header:
    """The fields of a `.tfvq` file (everything but the codes)."""

    version: int
    model: str
    weights_hash: bytes
    layer: int
    count: int
    code_shape: tuple
    num_codes: int
    payload_bytes: int
    file_bytes: int

    @property
    def bits(self):
        """Bits of codes per image: h * w * bits_per_code(K)."""
        h, w = self.code_shape
        return h * w * bits_per_code(self.num_codes)


@dataclasses.dataclass(frozen=True, eq=False)
class Container:
    """A decoded `.tfvq` file: its header and the codes, int32 [count, h, w]."""

    header: Header
    codes: np.ndarray


def write(codes, model, weights_hash, layer, num_codes):
    """Serialises codes to a `.tfvq` file.

    Args:
      codes: integer array [count, h, w] (or [h, w] for one image), values in [0, K).
      model: the zoo model name (at most 255 UTF-8 bytes).
      weights_hash: `HASH_BYTES` bytes identifying the weights.
      layer: the layer the codes belong to (1..255).
      num_codes: K of that layer's quantizer.

    Returns:
      the file's bytes.
    """
    codes = np.asarray(codes)
    if codes.ndim == 2:
        codes = codes[None]
    if codes.ndim != 3 or 0 in codes.shape:
        raise ValueError(f"codes must have shape [count, h, w] with no empty dimension, got {list(codes.shape)}.")
    count, h, w = codes.shape
    if count > 0xFFFF or h > 0xFFFF or w > 0xFFFF:
        raise ValueError(f"count, h and w must each be at most 65535, got {count}, {h}, {w}.")
    name = str(model).encode("utf-8")
    if not 1 <= len(name) <= MAX_NAME_BYTES:
        raise ValueError(f"The model name must be 1..{MAX_NAME_BYTES} UTF-8 bytes, got {len(name)}.")
    weights_hash = bytes(weights_hash)
    if len(weights_hash) != HASH_BYTES:
        raise ValueError(f"weights_hash must be {HASH_BYTES} bytes, got {len(weights_hash)}.")
    layer, num_codes = int(layer), int(num_codes)
    if not 1 <= layer <= 255:
        raise ValueError(f"layer must be in 1..255, got {layer}.")
    if not 1 <= num_codes <= 0xFFFFFFFF:
        raise ValueError(f"num_codes must be in 1..2**32-1, got {num_codes}.")
    payload = pack_codes(codes, num_codes)
    body = (
        _FIXED_HEAD.pack(MAGIC, VERSION, len(name))
        + name
        + _FIELDS.pack(weights_hash, layer, count, h, w, num_codes, len(payload))
        + payload
    )
    return body + _CRC.pack(zlib.crc32(body))


def _parse(data):
    """Checks the file and returns (Header, payload bytes)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"Expected the file's bytes, got {type(data).__name__}.")
    data = bytes(data)
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise CodecError(
            f"Not a .tfvq file: it does not start with the magic bytes {MAGIC!r} (starts with {data[:4]!r})."
        )
    if len(data) < _FIXED_HEAD.size:
        raise CodecError(f"Truncated .tfvq file: {len(data)} bytes is shorter than the fixed header.")
    _, version, name_len = _FIXED_HEAD.unpack_from(data, 0)
    if version > VERSION:
        raise CodecError(
            f"The file is format version {version}, newer than this tfvq reads (version {VERSION}): upgrade tfvq."
        )
    if version != VERSION:
        raise CodecError(f"Unknown .tfvq format version {version} (this tfvq reads version {VERSION}).")
    fields_at = _FIXED_HEAD.size + name_len
    payload_at = fields_at + _FIELDS.size
    if len(data) < payload_at + _CRC.size:
        raise CodecError(
            f"Truncated .tfvq file: {len(data)} bytes is shorter than its header ({payload_at + _CRC.size} bytes)."
        )
    weights_hash, layer, count, h, w, num_codes, payload_len = _FIELDS.unpack_from(data, fields_at)
    expected = payload_at + payload_len + _CRC.size
    if len(data) < expected:
        raise CodecError(
            f"Truncated .tfvq file: the header announces {expected} bytes ({payload_len} bytes of codes), "
            f"got {len(data)}."
        )
    if len(data) > expected:
        raise CodecError(
            f"The .tfvq file has {len(data) - expected} unexpected trailing bytes: the header announces "
            f"{expected} bytes, got {len(data)}."
        )
    (stored_crc,) = _CRC.unpack_from(data, expected - _CRC.size)
    actual_crc = zlib.crc32(data[: expected - _CRC.size])
    if stored_crc != actual_crc:
        raise CodecError(
            f"Corrupt .tfvq file: CRC-32 mismatch (stored {stored_crc:08x}, computed {actual_crc:08x})."
        )
    # The CRC matches: what follows are files written wrongly (or tampered with and re-checksummed).
    try:
        name = data[_FIXED_HEAD.size: fields_at].decode("utf-8")
    except UnicodeDecodeError as err:
        raise CodecError(f"The model name in the file is not valid UTF-8: {err}.") from None
    if not name:
        raise CodecError("The file names no model (empty model name).")
    if layer < 1:
        raise CodecError("The file's layer is 0; layers are numbered from 1.")
    if count < 1 or h < 1 or w < 1:
        raise CodecError(f"The file holds an empty code grid: {count} image(s) of {h}x{w} codes.")
    if num_codes < 1:
        raise CodecError("The file's codebook size K is 0.")
    want = payload_bytes(count * h * w, num_codes)
    if payload_len != want:
        raise CodecError(
            f"The payload is {payload_len} bytes, but {count} x {h}x{w} codes of {bits_per_code(num_codes)} bits "
            f"(K={num_codes}) need exactly {want} bytes."
        )
    header = Header(
        version=version,
        model=name,
        weights_hash=weights_hash,
        layer=layer,
        count=count,
        code_shape=(h, w),
        num_codes=num_codes,
        payload_bytes=payload_len,
        file_bytes=len(data),
    )
    return header, data[payload_at: payload_at + payload_len]


def read_header(data):
    """The checked `Header` of a `.tfvq` file (codes are checked too, not returned)."""
    return read(data).header


def read(data):
    """Parses and checks a `.tfvq` file: a `Container` with int32 codes [count, h, w].

    Raises:
      CodecError: the file is not a valid `.tfvq` file (the message says why).
    """
    header, payload = _parse(data)
    h, w = header.code_shape
    codes = unpack_codes(payload, header.count * h * w, header.num_codes)
    return Container(header=header, codes=codes.reshape(header.count, h, w))
