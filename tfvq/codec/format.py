"""The `.tfvq` file format: bit-packed VQ codes in a self-describing container.

Pure Python and NumPy (no TensorFlow), so it is fast to test and to fuzz.

A file holds the codes of a run of consecutive layers l, l+1, ..., l+n-1 of
a zoo model: exactly the layers `model.encode(x, l)` gives
(`CodeLayout.layers_sent(l)`): one layer for HQA and VQ-VAE models (the
receiver decodes down the stack from it, HQA Algorithm 3), layers l..L for
an RRVQ-VAE (the prior of layer l is conditioned on the layers above, RRVQ
eq. 3; l = 1 stores every layer, RRVQ App. F). `write` writes format
version 2 (`VERSION`); `read` also reads the two layouts of version 1.

Version 2 layout, version byte 2 (all integers big-endian):

    offset      size  field
    0           4     magic b"TFVQ"
    4           1     format version, 2 (`VERSION`)
    5           1     m: length of the model name in bytes (1..255)
    6           m     zoo model name, UTF-8
    6+m         8     weights hash: SHA-256 of the model's weights, first 8 bytes
    14+m        1     l: the first layer stored (1..255; layers are numbered from 1, the finest first)
    15+m        1     n: the number of layers stored (1..256-l): layers l..l+n-1
    16+m        2     count: number of images (>= 1)
    18+m+8i     8     for the stored layer l+i, i = 0..n-1 (layer l first):
                        h_i (2), w_i (2): its code grid (>= 1 each), K_i (4): its codebook size (>= 1)
    18+m+8n     4     payload length P = ceil(count * sum_i h_i w_i bits_per_code(K_i) / 8)
    22+m+8n     P     payload: the codes of the stored layers (see `pack_layers`)
    22+m+8n+P   4     CRC-32 (zlib) of every byte before it

The header is 26 + m + 8n bytes with the CRC (`header_bytes`): for
"hqa_digits" (m = 10) and one layer, 44 bytes plus the payload; for
"rrvq_digits" (m = 11) and its 5 layers, 77 bytes plus the payload. The
payload is ONE bit string (no byte alignment between layers): layer l's
codes [count, h_0, w_0] in C order at bits_per_code(K_0) bits each, MSB
first, then layer l+1's, ..., then zero bits up to a whole byte. So it is
ceil(count * bits / 8) bytes, bits being the bits of one image's codes
(`CodeLayout.bits(l)`).

Version 1 (read only, `write_v1` writes it for an older tfvq) has two
layouts. Version byte 1, the codes of ONE layer:

    offset  size  field
    0       4     magic b"TFVQ"
    4       1     1
    5       1     m: length of the model name in bytes (1..255)
    6       m     zoo model name, UTF-8
    6+m     8     weights hash
    14+m    1     layer (1..255)
    15+m    2     count: number of images (>= 1)
    17+m    2     h: code grid height (>= 1)
    19+m    2     w: code grid width (>= 1)
    21+m    4     K: number of codes of the layer's quantizer (>= 1)
    25+m    4     payload length P = ceil(count * h * w * bits_per_code(K) / 8)
    29+m    P     payload (see `pack_codes`)
    29+m+P  4     CRC-32 (zlib) of every byte before it

Version byte 0x81 (bit 7, `ALL_LAYERS`, set on version 1), the codes of
EVERY layer from layer 1:

    offset      size  field
    0           4     magic b"TFVQ"
    4           1     0x81
    5           1     m: length of the model name in bytes (1..255)
    6           m     zoo model name, UTF-8
    6+m         8     weights hash
    14+m        1     n: number of layers stored (1..255), layers 1..n
    15+m        2     count: number of images (>= 1)
    17+m+8i     8     for layer i+1 = 1..n: h_i (2), w_i (2), K_i (4)
    17+m+8n     4     payload length P (as in version 2)
    21+m+8n     P     payload (as in version 2)
    21+m+8n+P   4     CRC-32 (zlib) of every byte before it

All three read into the same `Header` (first layer, layers, grids, Ks) and
`Container` (a list of code arrays, the first layer's first).

Reading checks, in order: magic (a foreign file), version (a file from a
newer tfvq, or a version byte no tfvq wrote), the length implied by the name,
layer count and payload length fields (truncated or extended files), the CRC
(any other corruption), then the fields' meaning (UTF-8 name, first layer
>= 1, 1..256-l layers, at least one image, non-empty grids, K >= 1, payload
length consistent with the grids and Ks, zero padding bits, every code < its
layer's K). Every size in the header is bounded by the file's length (the
payload length must match the bytes present, and the grids must match the
payload length) before any array is made. Every failure raises
`CodecError` with a message that says what is wrong.
"""

import dataclasses
import math
import struct
import zlib

import numpy as np

from tfvq.codec.errors import CodecError

MAGIC = b"TFVQ"
VERSION = 2
"""The format version `write` writes."""
ALL_LAYERS = 0x80
"""Flag bit of a version 1 version byte: the file holds the codes of every layer from layer 1 (0x81)."""
VERSION_BYTES = {1: "version 1, one layer", 1 | ALL_LAYERS: "version 1, every layer", VERSION: "version 2"}
"""The version bytes `read` reads, with the layout each names."""
NEWEST_VERSION = 3
"""The newest version written under the magic b"TFVQ": version 3, entropy-coded files (`tfvq.codec.coded`, read
only). Version 4, what `tfvq.codec.compress` writes, has its own shorter magic (`tfvq.codec.container`)."""

_FIXED_HEAD = struct.Struct(">4sBB")  # magic, version byte, name length
_V1_FIELDS = struct.Struct(">8sBHHHII")  # hash, layer, count, h, w, K, payload length
_V1_ALL_FIELDS = struct.Struct(">8sBH")  # hash, number of layers n, count
_V2_FIELDS = struct.Struct(">8sBBH")  # hash, first layer l, number of layers n, count
_LAYER_FIELDS = struct.Struct(">HHI")  # h, w, K of one layer
_PAYLOAD_LEN = struct.Struct(">I")
_CRC = struct.Struct(">I")
HASH_BYTES = 8
MAX_NAME_BYTES = 255
MAX_LAYER = 255
"""Layer numbers are stored in one byte: the stored layers l..l+n-1 are all in 1..255."""


def bits_per_code(num_codes):
    """Bits per code for a codebook of K codes: ceil(log2 K), at least 1 (as `CodeLayout.bits`)."""
    num_codes = int(num_codes)
    if num_codes < 1:
        raise ValueError(f"num_codes must be >= 1, got {num_codes}.")
    return max(1, math.ceil(math.log2(num_codes)))


def payload_bytes(num_values, num_codes):
    """Bytes of the packed codes of one layer: ceil(num_values * bits_per_code(K) / 8)."""
    return -(-int(num_values) * bits_per_code(num_codes) // 8)


def layers_payload_bytes(num_values, num_codes):
    """Bytes of a payload of several layers: ceil(sum_l num_values[l] * bits_per_code(num_codes[l]) / 8)."""
    return -(-sum(int(n) * bits_per_code(k) for n, k in zip(num_values, num_codes)) // 8)


def header_bytes(model_name, num_layers=1):
    """Bytes of a version 2 file besides its payload (header and CRC): 26 + len(name) + 8 * num_layers."""
    name = len(str(model_name).encode("utf-8"))
    return _FIXED_HEAD.size + name + _V2_FIELDS.size + int(num_layers) * _LAYER_FIELDS.size + _PAYLOAD_LEN.size \
        + _CRC.size


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
            f"(values 0..{int(num_codes) - 1}): the file was written wrongly."
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
    (codes,) = unpack_layers(payload, [count], [num_codes], first_layer=None)
    return codes


def pack_layers(codes, num_codes):
    """Bit-packs the codes of several layers into one bit string (the payload of a file).

    Each layer's codes (C order) take `bits_per_code(num_codes[i])` bits
    each, MSB first; the first layer's come first, each layer's bits follow
    the previous layer's with no gap (no byte alignment between layers), and
    the last byte is padded with zero bits. For one layer this is `pack_codes`.

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


def unpack_layers(payload, counts, num_codes, first_layer=1):
    """The inverse of `pack_layers`: a list of int32 code vectors, `counts[i]` codes for the i-th layer.

    `first_layer` numbers the layers in error messages (None: one unnamed layer).
    Raises `CodecError` if the payload length is not exactly
    `layers_payload_bytes(counts, num_codes)`, the padding bits are not zero,
    or a code is >= its layer's K.
    """
    counts, num_codes = [int(n) for n in counts], [int(k) for k in num_codes]
    expected = layers_payload_bytes(counts, num_codes)
    if len(payload) != expected:
        raise CodecError(f"Payload is {len(payload)} bytes, but "
                         f"{', '.join(f'{n} codes of {bits_per_code(k)} bits' for n, k in zip(counts, num_codes))} "
                         f"need exactly {expected} bytes.")
    bits = np.unpackbits(np.frombuffer(bytes(payload), dtype=np.uint8))
    out, at = [], 0
    for i, (n, k) in enumerate(zip(counts, num_codes)):
        width = n * bits_per_code(k)
        what = "Code" if first_layer is None else f"Layer {first_layer + i} code"
        out.append(_bits_to_codes(bits[at: at + width], n, k, what=what))
        at += width
    if bits[at:].any():
        raise CodecError("The payload's padding bits (after the last code) are not zero: the file was written wrongly.")
    return out


def _span(layers):
    """'layer 3' or 'layers 1..5'."""
    return f"layer {layers[0]}" if len(layers) == 1 else f"layers {layers[0]}..{layers[-1]}"


@dataclasses.dataclass(frozen=True)
class Header:
    """The fields of a `.tfvq` file (everything but the codes), whatever its version.

    Attributes:
      version_byte: byte 4 of the file: 2 (version 2), 1 (version 1, one
        layer) or 0x81 (version 1, every layer from layer 1).
      model: the zoo model name.
      weights_hash: `HASH_BYTES` bytes identifying the model's weights.
      first_layer: l, the first layer stored: the `layer` of
        `model.encode(x, l)` / `model.decode(codes, l)`.
      count: the number of images.
      code_shapes: the (h, w) grid of every stored layer, layer l first.
      layer_num_codes: K of every stored layer, layer l first.
      payload_bytes: bytes of packed codes.
      file_bytes: bytes of the whole file.
    """

    version_byte: int
    model: str
    weights_hash: bytes
    first_layer: int
    count: int
    code_shapes: tuple
    layer_num_codes: tuple
    payload_bytes: int
    file_bytes: int

    @property
    def version(self):
        """The format version: 1 or 2."""
        return self.version_byte & ~ALL_LAYERS

    @property
    def layers(self):
        """The stored layers l, l+1, ..., l+n-1."""
        return tuple(range(self.first_layer, self.first_layer + len(self.code_shapes)))

    @property
    def num_layers(self):
        """n, the number of stored layers."""
        return len(self.code_shapes)

    @property
    def layer_bits(self):
        """Bits of one image's codes in each stored layer: h * w * bits_per_code(K)."""
        return tuple(h * w * bits_per_code(k) for (h, w), k in zip(self.code_shapes, self.layer_num_codes))

    @property
    def bits(self):
        """Bits of codes per image: the sum of `layer_bits` (`CodeLayout.bits(first_layer)`)."""
        return sum(self.layer_bits)


@dataclasses.dataclass(frozen=True, eq=False)
class Container:
    """A decoded `.tfvq` file: its header and its codes.

    `codes` is a list of int32 arrays [count, h, w], one per stored layer,
    layer `header.first_layer` first: what `model.decode(codes, first_layer)` takes.
    """

    header: Header
    codes: list


# ----------------------------------------------------------------------------------------------- writing
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
        raise ValueError(f"{what}: count, h and w must each be at most 65535, got {count}, {h}, {w}.")
    return codes


def _check_num_codes(num_codes):
    num_codes = int(num_codes)
    if not 1 <= num_codes <= 0xFFFFFFFF:
        raise ValueError(f"num_codes must be in 1..2**32-1, got {num_codes}.")
    return num_codes


def _layers_to_write(codes, first_layer, num_codes):
    """Checks the arguments of `write`/`write_v1`: (codes list, first layer, Ks list)."""
    if isinstance(codes, np.ndarray):
        codes = [codes]
    codes = list(codes)
    if isinstance(num_codes, (int, np.integer)):
        num_codes = [num_codes]
    num_codes = [_check_num_codes(k) for k in num_codes]
    first_layer = int(first_layer)
    if not codes:
        raise ValueError("A file holds the codes of at least one layer, got none.")
    if not 1 <= first_layer <= MAX_LAYER - len(codes) + 1:
        raise ValueError(f"The stored layers {first_layer}..{first_layer + len(codes) - 1} must lie in "
                         f"1..{MAX_LAYER} (layers are numbered from 1).")
    if len(num_codes) != len(codes):
        raise ValueError(f"Got codes for {len(codes)} layers but {len(num_codes)} codebook sizes.")
    codes = [_as_grids(c, f"layer {first_layer + i} codes") for i, c in enumerate(codes)]
    counts = {c.shape[0] for c in codes}
    if len(counts) != 1:
        raise ValueError(f"Every layer must hold codes for the same number of images, got {sorted(counts)}.")
    return codes, first_layer, num_codes


def write(codes, model, weights_hash, first_layer, num_codes):
    """Serialises the codes of layers l..l+n-1 to a `.tfvq` file (format version 2).

    Args:
      codes: a list of n integer arrays [count, h_i, w_i] (or [h_i, w_i]
        for one image), layer `first_layer` first, values in [0, K_i); the
        same count in every layer. A NumPy array (not a list) is one layer.
      model: the zoo model name (at most 255 UTF-8 bytes).
      weights_hash: `HASH_BYTES` bytes identifying the weights.
      first_layer: l, the first layer the codes belong to (1..255).
      num_codes: K_i of each stored layer (an int for one layer).

    Returns:
      the file's bytes (the layout in the module docstring).

    Raises:
      ValueError: arguments that do not fit the layout (the message says which).
    """
    codes, first_layer, num_codes = _layers_to_write(codes, first_layer, num_codes)
    name, weights_hash = _check_common(model, weights_hash)
    payload = pack_layers(codes, num_codes)
    body = (
        _FIXED_HEAD.pack(MAGIC, VERSION, len(name))
        + name
        + _V2_FIELDS.pack(weights_hash, first_layer, len(codes), codes[0].shape[0])
        + b"".join(_LAYER_FIELDS.pack(c.shape[1], c.shape[2], k) for c, k in zip(codes, num_codes))
        + _PAYLOAD_LEN.pack(len(payload))
        + payload
    )
    return body + _CRC.pack(zlib.crc32(body))


def write_v1(codes, model, weights_hash, first_layer, num_codes):
    """Serialises codes to a format version 1 file, for a tfvq that reads version 1 only.

    Version 1 holds one layer (any `first_layer`; version byte 1) or every
    layer from layer 1 (version byte 0x81); the arguments are those of
    `write`. Layers l..L with l > 1 have no version 1 layout: a `ValueError`.
    """
    codes, first_layer, num_codes = _layers_to_write(codes, first_layer, num_codes)
    name, weights_hash = _check_common(model, weights_hash)
    payload = pack_layers(codes, num_codes)
    if len(codes) == 1:
        count, h, w = codes[0].shape
        body = (_FIXED_HEAD.pack(MAGIC, 1, len(name)) + name
                + _V1_FIELDS.pack(weights_hash, first_layer, count, h, w, num_codes[0], len(payload)) + payload)
    elif first_layer == 1:
        body = (
            _FIXED_HEAD.pack(MAGIC, 1 | ALL_LAYERS, len(name))
            + name
            + _V1_ALL_FIELDS.pack(weights_hash, len(codes), codes[0].shape[0])
            + b"".join(_LAYER_FIELDS.pack(c.shape[1], c.shape[2], k) for c, k in zip(codes, num_codes))
            + _PAYLOAD_LEN.pack(len(payload))
            + payload
        )
    else:
        raise ValueError(f"Format version 1 holds one layer or every layer from layer 1, not layers "
                         f"{first_layer}..{first_layer + len(codes) - 1}: write a version 2 file (`write`).")
    return body + _CRC.pack(zlib.crc32(body))


# ----------------------------------------------------------------------------------------------- reading
def _check_length(data, payload_at, payload_len):
    """Checks the file length the header announces, then the CRC."""
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


def _need(data, size, what):
    if len(data) < size:
        raise CodecError(f"Truncated .tfvq file: {len(data)} bytes is shorter than its header ({what}: "
                         f"{size} bytes at least).")


def _name(data, fields_at):
    # The CRC matches: what follows are files written wrongly (or tampered with and re-checksummed).
    try:
        name = data[_FIXED_HEAD.size: fields_at].decode("utf-8")
    except UnicodeDecodeError as err:
        raise CodecError(f"The model name in the file is not valid UTF-8: {err}.") from None
    if not name:
        raise CodecError("The file names no model (empty model name).")
    return name


def _check_layers(first_layer, num_layers, count):
    if first_layer < 1:
        raise CodecError("The file's first layer is 0; layers are numbered from 1.")
    if num_layers < 1:
        raise CodecError("The file holds codes of 0 layers; a file holds at least one.")
    if first_layer + num_layers - 1 > MAX_LAYER:
        raise CodecError(f"The file holds layers {first_layer}..{first_layer + num_layers - 1}, beyond the last "
                         f"layer number {MAX_LAYER}.")
    if count < 1:
        raise CodecError("The file holds codes of 0 images; a file holds at least one.")


def _check_grids(first_layer, grids, ks, count, payload_len):
    for i, ((h, w), k) in enumerate(zip(grids, ks)):
        if h < 1 or w < 1:
            raise CodecError(f"The file holds an empty code grid: layer {first_layer + i} is {h}x{w}.")
        if k < 1:
            raise CodecError(f"The file's codebook size K of layer {first_layer + i} is 0.")
    want = layers_payload_bytes([count * h * w for h, w in grids], ks)
    if payload_len != want:
        layers = ", ".join(f"{h}x{w} (K={k}, {bits_per_code(k)} bits)" for (h, w), k in zip(grids, ks))
        raise CodecError(f"The payload is {payload_len} bytes, but {count} image(s) of codes of "
                         f"{_span(range(first_layer, first_layer + len(grids)))} ({layers}) need exactly {want} bytes.")


def _parse_v1_one_layer(data, version_byte, name_len):
    fields_at = _FIXED_HEAD.size + name_len
    payload_at = fields_at + _V1_FIELDS.size
    _need(data, payload_at + _CRC.size, "version 1, one layer")
    weights_hash, layer, count, h, w, num_codes, payload_len = _V1_FIELDS.unpack_from(data, fields_at)
    _check_length(data, payload_at, payload_len)
    name = _name(data, fields_at)
    _check_layers(layer, 1, count)
    _check_grids(layer, [(h, w)], [num_codes], count, payload_len)
    return (version_byte, name, weights_hash, layer, count, ((h, w),), (num_codes,), payload_at, payload_len)


def _parse_layer_table(data, version_byte, name_len):
    """Version 2 and version 1 all-layers files: fields, then n (h, w, K) entries, then the payload length."""
    fields = _V2_FIELDS if version_byte == VERSION else _V1_ALL_FIELDS
    fields_at = _FIXED_HEAD.size + name_len
    layers_at = fields_at + fields.size
    _need(data, layers_at, VERSION_BYTES[version_byte])
    if version_byte == VERSION:
        weights_hash, first_layer, num_layers, count = fields.unpack_from(data, fields_at)
    else:
        (weights_hash, num_layers, count), first_layer = fields.unpack_from(data, fields_at), 1
    length_at = layers_at + num_layers * _LAYER_FIELDS.size
    payload_at = length_at + _PAYLOAD_LEN.size
    _need(data, payload_at + _CRC.size, f"{VERSION_BYTES[version_byte]}, {num_layers} layers")
    (payload_len,) = _PAYLOAD_LEN.unpack_from(data, length_at)
    _check_length(data, payload_at, payload_len)
    name = _name(data, fields_at)
    _check_layers(first_layer, num_layers, count)
    table = [_LAYER_FIELDS.unpack_from(data, layers_at + i * _LAYER_FIELDS.size) for i in range(num_layers)]
    grids, ks = tuple((h, w) for h, w, _ in table), tuple(k for _, _, k in table)
    _check_grids(first_layer, grids, ks, count, payload_len)
    return (version_byte, name, weights_hash, first_layer, count, grids, ks, payload_at, payload_len)


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
    version = version_byte & ~ALL_LAYERS
    if version > NEWEST_VERSION:
        raise CodecError(
            f"The file is format version {version}, newer than this tfvq reads (versions 1 to {NEWEST_VERSION}): "
            "upgrade tfvq."
        )
    if version_byte == 3:
        raise CodecError("The file is entropy-coded (format version 3): its codes are decoded with the model's "
                         "probabilities, so read it with tfvq.codec.decompress (or read_header for its header).")
    if version_byte not in VERSION_BYTES:
        raise CodecError(f"Unknown .tfvq format version {version} (version byte 0x{version_byte:02x}; this tfvq "
                         f"reads the version bytes {', '.join(f'0x{b:02x}' for b in sorted(VERSION_BYTES))}).")
    parse = _parse_v1_one_layer if version_byte == 1 else _parse_layer_table
    version_byte, name, weights_hash, first_layer, count, grids, ks, payload_at, payload_len = parse(
        data, version_byte, name_len)
    header = Header(version_byte=version_byte, model=name, weights_hash=weights_hash, first_layer=first_layer,
                    count=count, code_shapes=tuple(grids), layer_num_codes=tuple(ks), payload_bytes=payload_len,
                    file_bytes=len(data))
    return header, data[payload_at: payload_at + payload_len]


def read_header(data):
    """The checked `Header` of a `.tfvq` file of version 1 or 2 (its codes are checked too, not returned)."""
    return read(data).header


def read(data):
    """Parses and checks a `.tfvq` file of any version: a `Container`.

    Raises:
      CodecError: the file is not a valid `.tfvq` file (the message says why).
    """
    header, payload = _parse(data)
    n = header.count
    flat = unpack_layers(payload, [n * h * w for h, w in header.code_shapes], header.layer_num_codes,
                         first_layer=header.first_layer)
    codes = [c.reshape(n, h, w) for c, (h, w) in zip(flat, header.code_shapes)]
    return Container(header=header, codes=codes)
