"""The `.tfvq` file format: bit-packed VQ codes in a self-describing container.

Pure Python and NumPy (no TensorFlow), so it is fast to test and to fuzz.

A file holds either the codes of ONE layer (HQA, VQ-VAE: the receiver
decodes down the stack from that layer) or the codes of EVERY latent layer
(RRVQ-VAE, RRVQ App. F: the decoder needs all of them). Bit 7 of the version
byte (`ALL_LAYERS`) tells which; bits 0..6 are the format version
(`VERSION`, 1). One-layer files are exactly the files of tfvq before
all-layer files existed (version byte 1); an older tfvq reading an all-layer
file (version byte 0x81 = 129) says it is from a newer tfvq.

One-layer layout, version byte 1 (all integers big-endian):

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

All-layers layout, version byte `VERSION | ALL_LAYERS` (0x81):

    offset      size  field
    0           4     magic b"TFVQ"
    4           1     0x81
    5           1     n: length of the model name in bytes (1..255)
    6           n     zoo model name, UTF-8
    6+n         8     weights hash
    14+n        1     L: number of latent layers stored (1..255)
    15+n        2     count: number of images (>= 1)
    17+n+8i     8     for layer i+1 = 1..L (layer 1, the finest, first):
                        h_i (2), w_i (2), K_i (4)
    17+n+8L     4     payload length P = ceil(count * sum_i h_i w_i bits_per_code(K_i) / 8)
    21+n+8L     P     payload: the codes of every layer (see `pack_layers`)
    21+n+8L+P   4     CRC-32 (zlib) of every byte before it

The header is 25 + n + 8L bytes with the CRC; for "rrvq_digits" (n = 11,
L = 5) a file is 76 bytes plus the payload. The payload is ONE bit string
(no byte alignment between layers): layer 1's codes [count, h_1, w_1] in C
order at bits_per_code(K_1) bits each, then layer 2's, ..., then zero bits
up to a whole byte. So it is ceil(count * code_bits / 8) bytes, code_bits
being the bits of one image's codes (`RRVQVAE.code_bits()`).

Reading checks, in order: magic (a foreign file), version (a file from a
newer tfvq), the length implied by the name, layer count and payload length
fields (truncated or extended files), the CRC (any other corruption), then
the fields' meaning (UTF-8 name, layer >= 1, non-empty grids, payload length
consistent with the grids and Ks, zero padding bits, every code < its
layer's K). Every failure raises `CodecError` with a message that says what
is wrong.
"""

import dataclasses
import math
import struct
import zlib

import numpy as np

MAGIC = b"TFVQ"
VERSION = 1
ALL_LAYERS = 0x80
"""Flag bit of the version byte: the file holds the codes of every latent layer (RRVQ-VAE)."""

_FIXED_HEAD = struct.Struct(">4sBB")  # magic, version, name length
_FIELDS = struct.Struct(">8sBHHHII")  # hash, layer, count, h, w, K, payload length
_MULTI_FIELDS = struct.Struct(">8sBH")  # hash, number of layers L, count
_LAYER_FIELDS = struct.Struct(">HHI")  # h, w, K of one layer
_PAYLOAD_LEN = struct.Struct(">I")
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


def header_bytes(model_name, num_layers=None):
    """Bytes of a file besides its payload (header and CRC) for `model_name`.

    `num_layers=None` is a one-layer file; an int L is an all-layers file of L layers.
    """
    name = len(model_name.encode("utf-8"))
    if num_layers is None:
        return _FIXED_HEAD.size + name + _FIELDS.size + _CRC.size
    return _FIXED_HEAD.size + name + _MULTI_FIELDS.size + int(num_layers) * _LAYER_FIELDS.size + _PAYLOAD_LEN.size \
        + _CRC.size


def layers_payload_bytes(num_values, num_codes):
    """Bytes of an all-layers payload: ceil(sum_l num_values[l] * bits_per_code(num_codes[l]) / 8)."""
    return -(-sum(int(n) * bits_per_code(k) for n, k in zip(num_values, num_codes)) // 8)


def _code_bits(codes, num_codes):
    """The codes' bit string (uint8 0/1), `bits_per_code(K)` bits per code, MSB first, C order."""
    b = bits_per_code(num_codes)
    codes = np.asarray(codes)
    if codes.size and codes.dtype.kind not in "iu":
        raise ValueError(f"codes must be integers, got dtype {codes.dtype}.")
    flat = codes.reshape(-1).astype(np.int64)
    if flat.size and (flat.min() < 0 or flat.max() >= int(num_codes)):
        raise ValueError(f"codes must be in [0, {int(num_codes) - 1}], got values in [{flat.min()}, {flat.max()}].")
    shifts = np.arange(b - 1, -1, -1, dtype=np.int64)
    return ((flat[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)


def _bits_to_codes(bits, count, num_codes, what="Code"):
    """Codes from a bit string of exactly count * bits_per_code(K) bits; a code >= K raises CodecError."""
    b = bits_per_code(num_codes)
    weights = np.left_shift(np.int64(1), np.arange(b - 1, -1, -1, dtype=np.int64))
    codes = bits.reshape(count, b).astype(np.int64) @ weights
    if count and codes.max() >= int(num_codes):
        bad = int(np.argmax(codes >= int(num_codes)))
        raise CodecError(
            f"{what} {bad} is {int(codes[bad])}, but the layer has only K={int(num_codes)} codes "
            f"(values 0..{int(num_codes) - 1})."
        )
    return codes.astype(np.int32)


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
    return np.packbits(_code_bits(codes, num_codes)).tobytes()


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
    return _bits_to_codes(bits[: count * b], count, num_codes)


def pack_layers(codes, num_codes):
    """Bit-packs the codes of several layers into one bit string (the all-layers payload).

    Layer l's codes (C order) take `bits_per_code(num_codes[l])` bits each,
    MSB first; layer 1's come first, each layer's bits follow the previous
    layer's with no gap (no byte alignment between layers), and the last
    byte is padded with zero bits. For one layer this is `pack_codes`.

    Args:
      codes: a list of integer arrays, one per layer (any shapes).
      num_codes: K of each layer.

    Returns:
      bytes of length `layers_payload_bytes([c.size for c in codes], num_codes)`.
    """
    codes, num_codes = list(codes), list(num_codes)
    if len(codes) != len(num_codes):
        raise ValueError(f"Got codes for {len(codes)} layers but {len(num_codes)} codebook sizes.")
    bits = [_code_bits(c, k) for c, k in zip(codes, num_codes)]
    return np.packbits(np.concatenate(bits) if bits else np.zeros(0, np.uint8)).tobytes()


def unpack_layers(payload, counts, num_codes):
    """The inverse of `pack_layers`: a list of int32 code vectors, `counts[l]` codes for layer l.

    Raises `CodecError` if the payload length is not exactly
    `layers_payload_bytes(counts, num_codes)`, the padding bits are not zero,
    or a code is >= its layer's K.
    """
    counts, num_codes = [int(n) for n in counts], [int(k) for k in num_codes]
    expected = layers_payload_bytes(counts, num_codes)
    if len(payload) != expected:
        raise CodecError(f"Payload is {len(payload)} bytes, but the codes of {len(counts)} layers "
                         f"({', '.join(f'{n} x {bits_per_code(k)} bits' for n, k in zip(counts, num_codes))}) "
                         f"need exactly {expected} bytes.")
    bits = np.unpackbits(np.frombuffer(bytes(payload), dtype=np.uint8))
    out, at = [], 0
    for l, (n, k) in enumerate(zip(counts, num_codes)):
        width = n * bits_per_code(k)
        out.append(_bits_to_codes(bits[at: at + width], n, k, what=f"Layer {l + 1} code"))
        at += width
    if bits[at:].any():
        raise CodecError("The payload's padding bits (after the last code) are not zero.")
    return out


@dataclasses.dataclass(frozen=True)
class Header:
    """The fields of a `.tfvq` file (everything but the codes).

    A one-layer file has `layer`, `code_shape` (h, w) and `num_codes` (K) of
    its layer. An all-layers file (`all_layers`) has `layer`, `code_shape`
    and `num_codes` None; `code_shapes` and `layer_num_codes` hold every
    layer's grid and K, layer 1 first (for a one-layer file, its one layer).
    """

    version: int
    model: str
    weights_hash: bytes
    layer: object  # int, or None for an all-layers file
    count: int
    code_shape: object  # (h, w), or None for an all-layers file
    num_codes: object  # K, or None for an all-layers file
    payload_bytes: int
    file_bytes: int
    code_shapes: tuple = ()
    layer_num_codes: tuple = ()

    def __post_init__(self):
        if not self.code_shapes and self.code_shape is not None:
            object.__setattr__(self, "code_shapes", (tuple(self.code_shape),))
            object.__setattr__(self, "layer_num_codes", (self.num_codes,))

    @property
    def all_layers(self):
        """True if the file holds the codes of every latent layer (RRVQ-VAE), not of one layer."""
        return self.layer is None

    @property
    def bits(self):
        """Bits of codes per image: sum over the stored layers of h * w * bits_per_code(K)."""
        return sum(h * w * bits_per_code(k) for (h, w), k in zip(self.code_shapes, self.layer_num_codes))


@dataclasses.dataclass(frozen=True, eq=False)
class Container:
    """A decoded `.tfvq` file: its header and the codes.

    `codes` is int32 [count, h, w] for a one-layer file, and a list of int32
    [count, h_l, w_l] arrays (layer 1 first) for an all-layers file.
    """

    header: Header
    codes: object


def _check_common(model, weights_hash):
    name = str(model).encode("utf-8")
    if not 1 <= len(name) <= MAX_NAME_BYTES:
        raise ValueError(f"The model name must be 1..{MAX_NAME_BYTES} UTF-8 bytes, got {len(name)}.")
    weights_hash = bytes(weights_hash)
    if len(weights_hash) != HASH_BYTES:
        raise ValueError(f"weights_hash must be {HASH_BYTES} bytes, got {len(weights_hash)}.")
    return name, weights_hash


def _as_grids(codes, what="codes"):
    codes = np.asarray(codes)
    if codes.ndim == 2:
        codes = codes[None]
    if codes.ndim != 3 or 0 in codes.shape:
        raise ValueError(f"{what} must have shape [count, h, w] with no empty dimension, got {list(codes.shape)}.")
    count, h, w = codes.shape
    if count > 0xFFFF or h > 0xFFFF or w > 0xFFFF:
        raise ValueError(f"count, h and w must each be at most 65535, got {count}, {h}, {w}.")
    return codes


def _check_num_codes(num_codes):
    num_codes = int(num_codes)
    if not 1 <= num_codes <= 0xFFFFFFFF:
        raise ValueError(f"num_codes must be in 1..2**32-1, got {num_codes}.")
    return num_codes


def write(codes, model, weights_hash, layer, num_codes):
    """Serialises one layer's codes to a `.tfvq` file (the one-layer layout, version byte 1).

    Args:
      codes: integer array [count, h, w] (or [h, w] for one image), values in [0, K).
      model: the zoo model name (at most 255 UTF-8 bytes).
      weights_hash: `HASH_BYTES` bytes identifying the weights.
      layer: the layer the codes belong to (1..255).
      num_codes: K of that layer's quantizer.

    Returns:
      the file's bytes.
    """
    codes = _as_grids(codes)
    count, h, w = codes.shape
    name, weights_hash = _check_common(model, weights_hash)
    layer = int(layer)
    if not 1 <= layer <= 255:
        raise ValueError(f"layer must be in 1..255, got {layer}.")
    num_codes = _check_num_codes(num_codes)
    payload = pack_codes(codes, num_codes)
    body = (
        _FIXED_HEAD.pack(MAGIC, VERSION, len(name))
        + name
        + _FIELDS.pack(weights_hash, layer, count, h, w, num_codes, len(payload))
        + payload
    )
    return body + _CRC.pack(zlib.crc32(body))


def write_layers(codes, model, weights_hash, num_codes):
    """Serialises the codes of every latent layer to a `.tfvq` file (the all-layers layout, version byte 0x81).

    Args:
      codes: a list of integer arrays, one per layer, layer 1 first: [count, h_l, w_l]
        (or [h_l, w_l] for one image), values in [0, K_l); the same count for every layer.
      model: the zoo model name (at most 255 UTF-8 bytes).
      weights_hash: `HASH_BYTES` bytes identifying the weights.
      num_codes: K_l of each layer (a list as long as `codes`).

    Returns:
      the file's bytes.
    """
    codes = [_as_grids(c, f"layer {l + 1} codes") for l, c in enumerate(codes)]
    num_codes = [_check_num_codes(k) for k in num_codes]
    if not 1 <= len(codes) <= 255:
        raise ValueError(f"An all-layers file holds 1..255 layers, got {len(codes)}.")
    if len(num_codes) != len(codes):
        raise ValueError(f"Got codes for {len(codes)} layers but {len(num_codes)} codebook sizes.")
    counts = {c.shape[0] for c in codes}
    if len(counts) != 1:
        raise ValueError(f"Every layer must hold codes for the same number of images, got {sorted(counts)}.")
    name, weights_hash = _check_common(model, weights_hash)
    payload = pack_layers(codes, num_codes)
    body = (
        _FIXED_HEAD.pack(MAGIC, VERSION | ALL_LAYERS, len(name))
        + name
        + _MULTI_FIELDS.pack(weights_hash, len(codes), codes[0].shape[0])
        + b"".join(_LAYER_FIELDS.pack(c.shape[1], c.shape[2], k) for c, k in zip(codes, num_codes))
        + _PAYLOAD_LEN.pack(len(payload))
        + payload
    )
    return body + _CRC.pack(zlib.crc32(body))


def _check_length(data, payload_at, payload_len):
    """Checks the file length the header announces, then the CRC; returns where the CRC starts."""
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


def _name(data, fields_at):
    # The CRC matches: what follows are files written wrongly (or tampered with and re-checksummed).
    try:
        name = data[_FIXED_HEAD.size: fields_at].decode("utf-8")
    except UnicodeDecodeError as err:
        raise CodecError(f"The model name in the file is not valid UTF-8: {err}.") from None
    if not name:
        raise CodecError("The file names no model (empty model name).")
    return name


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
    _, version_byte, name_len = _FIXED_HEAD.unpack_from(data, 0)
    version, all_layers = version_byte & ~ALL_LAYERS, bool(version_byte & ALL_LAYERS)
    if version > VERSION:
        raise CodecError(
            f"The file is format version {version}, newer than this tfvq reads (version {VERSION}): upgrade tfvq."
        )
    if version != VERSION:
        raise CodecError(f"Unknown .tfvq format version {version} (this tfvq reads version {VERSION}).")
    if all_layers:
        return _parse_all_layers(data, version, name_len)
    fields_at = _FIXED_HEAD.size + name_len
    payload_at = fields_at + _FIELDS.size
    if len(data) < payload_at + _CRC.size:
        raise CodecError(
            f"Truncated .tfvq file: {len(data)} bytes is shorter than its header ({payload_at + _CRC.size} bytes)."
        )
    weights_hash, layer, count, h, w, num_codes, payload_len = _FIELDS.unpack_from(data, fields_at)
    _check_length(data, payload_at, payload_len)
    name = _name(data, fields_at)
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


def _parse_all_layers(data, version, name_len):
    fields_at = _FIXED_HEAD.size + name_len
    layers_at = fields_at + _MULTI_FIELDS.size
    if len(data) < layers_at:
        raise CodecError(
            f"Truncated .tfvq file: {len(data)} bytes is shorter than its header ({layers_at} bytes at least)."
        )
    weights_hash, num_layers, count = _MULTI_FIELDS.unpack_from(data, fields_at)
    length_at = layers_at + num_layers * _LAYER_FIELDS.size
    payload_at = length_at + _PAYLOAD_LEN.size
    if len(data) < payload_at + _CRC.size:
        raise CodecError(
            f"Truncated .tfvq file: {len(data)} bytes is shorter than its header of {num_layers} layers "
            f"({payload_at + _CRC.size} bytes)."
        )
    (payload_len,) = _PAYLOAD_LEN.unpack_from(data, length_at)
    _check_length(data, payload_at, payload_len)
    name = _name(data, fields_at)
    if num_layers < 1:
        raise CodecError("The file holds codes of 0 layers.")
    if count < 1:
        raise CodecError("The file holds codes of 0 images.")
    grids, ks = [], []
    for l in range(num_layers):
        h, w, k = _LAYER_FIELDS.unpack_from(data, layers_at + l * _LAYER_FIELDS.size)
        if h < 1 or w < 1:
            raise CodecError(f"The file holds an empty code grid: layer {l + 1} is {h}x{w}.")
        if k < 1:
            raise CodecError(f"The file's codebook size K of layer {l + 1} is 0.")
        grids.append((h, w))
        ks.append(k)
    want = layers_payload_bytes([count * h * w for h, w in grids], ks)
    if payload_len != want:
        raise CodecError(
            f"The payload is {payload_len} bytes, but {count} image(s) of codes of layers "
            f"{', '.join(f'{h}x{w} (K={k})' for (h, w), k in zip(grids, ks))} need exactly {want} bytes."
        )
    header = Header(
        version=version,
        model=name,
        weights_hash=weights_hash,
        layer=None,
        count=count,
        code_shape=None,
        num_codes=None,
        payload_bytes=payload_len,
        file_bytes=len(data),
        code_shapes=tuple(grids),
        layer_num_codes=tuple(ks),
    )
    return header, data[payload_at: payload_at + payload_len]


def read_header(data):
    """The checked `Header` of a `.tfvq` file (codes are checked too, not returned)."""
    return read(data).header


def read(data):
    """Parses and checks a `.tfvq` file: a `Container` (see there for the codes' shapes).

    Raises:
      CodecError: the file is not a valid `.tfvq` file (the message says why).
    """
    header, payload = _parse(data)
    if header.all_layers:
        n = header.count
        flat = unpack_layers(payload, [n * h * w for h, w in header.code_shapes], header.layer_num_codes)
        codes = [c.reshape(n, h, w) for c, (h, w) in zip(flat, header.code_shapes)]
        return Container(header=header, codes=codes)
    h, w = header.code_shape
    codes = unpack_codes(payload, header.count * h * w, header.num_codes)
    return Container(header=header, codes=codes.reshape(header.count, h, w))
