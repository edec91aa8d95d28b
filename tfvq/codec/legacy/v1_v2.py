"""Format versions 1 and 2 (read only): the codes of a run of layers, bit-packed at the fixed rate.

A file holds the codes of layers l, l+1, ..., l+n-1 of a zoo model, exactly
the layers `model.encode(x, l)` gives (`CodeLayout.layers_sent(l)`), each
code at ceil(log2 K) bits, and decodes to `model.decode(codes, l)`. All
integers are big-endian.

Version 2, version byte 2:

    offset      size  field
    0           4     magic b"TFVQ"
    4           1     2
    5           1     m: length of the model name in bytes (1..255)
    6           m     zoo model name, UTF-8
    6+m         8     weights hash: SHA-256 of the model's weights, first 8 bytes
    14+m        1     l: the first layer stored (1..255; layers are numbered from 1, the finest first)
    15+m        1     n: the number of layers stored (1..256-l): layers l..l+n-1
    16+m        2     count: number of images (>= 1)
    18+m+8i     8     for the stored layer l+i, i = 0..n-1 (layer l first):
                        h_i (2), w_i (2): its code grid (>= 1 each), K_i (4): its codebook size (>= 1)
    18+m+8n     4     payload length P = ceil(count * sum_i h_i w_i bits_per_code(K_i) / 8)
    22+m+8n     P     payload: the codes of the stored layers
    22+m+8n+P   4     CRC-32 (zlib) of every byte before it

The payload is ONE bit string (no byte alignment between layers): layer
l's codes [count, h_0, w_0] in C order at bits_per_code(K_0) bits each, most
significant bit first, then layer l+1's, ..., then zero bits up to a whole
byte (`unpack_layers`).

Version 1 has two layouts. Version byte 1, the codes of ONE layer:

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
    29+m    P     payload (as version 2's, one layer)
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

All three read into the same `PackedFile` (its header and its codes).
Reading checks, in order: the length implied by the name, layer count and
payload length fields (truncated or extended files), the CRC (any other
corruption), then the fields' meaning (UTF-8 name, first layer >= 1,
1..256-l layers, at least one image, non-empty grids, K >= 1, payload length
consistent with the grids and Ks, zero padding bits, every code < its
layer's K). Every size is bounded by the file's length before any array is
made. Every failure raises `CodecError` with a message that says what is
wrong. The magic and the version byte are `tfvq.codec.legacy.read`'s to check.
"""

import dataclasses
import math
import struct
import zlib

import numpy as np

from tfvq.codec.errors import CodecError
from tfvq.codec.header import FileHeader, span

MAGIC = b"TFVQ"
"""The magic of every version before 4."""
ALL_LAYERS = 0x80
"""Flag bit of a version 1 version byte: the file holds the codes of every layer from layer 1 (0x81)."""
VERSION_BYTES = {1: "version 1, one layer", 1 | ALL_LAYERS: "version 1, every layer", 2: "version 2"}
"""The version bytes read here, with the layout each names."""
HEAD = struct.Struct(">4sBB")
"""What every version before 4 starts with: the magic, the version byte and the model name's length."""
MAX_LAYER = 255
"""Layer numbers are stored in one byte: the stored layers l..l+n-1 are all in 1..255."""
_V1_FIELDS = struct.Struct(">8sBHHHII")  # hash, layer, count, h, w, K, payload length
_V1_ALL_FIELDS = struct.Struct(">8sBH")  # hash, number of layers n, count
_V2_FIELDS = struct.Struct(">8sBBH")  # hash, first layer l, number of layers n, count
_LAYER_FIELDS = struct.Struct(">HHI")  # h, w, K of one layer
_PAYLOAD_LEN = struct.Struct(">I")
_CRC = struct.Struct(">I")


def bits_per_code(num_codes):
    """Bits per code for a codebook of K codes: ceil(log2 K), at least 1 (as `CodeLayout.bits`)."""
    return max(1, math.ceil(math.log2(int(num_codes))))


def layers_payload_bytes(num_values, num_codes):
    """Bytes of a payload of several layers: ceil(sum_l num_values[l] * bits_per_code(num_codes[l]) / 8)."""
    return -(-sum(int(n) * bits_per_code(k) for n, k in zip(num_values, num_codes)) // 8)


def _bits_to_codes(bits, count, num_codes, what):
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


def unpack_layers(payload, counts, num_codes, first_layer=1):
    """The codes of a payload: a list of int32 code vectors, `counts[i]` codes for the i-th layer.

    Code i of a layer occupies bits [i b, (i + 1) b) of the layer's part of
    the bit string (b = `bits_per_code(K)`, most significant bit first), bit
    j of the string being bit 7 - j % 8 of byte j // 8. `first_layer` numbers
    the layers in error messages (None: one unnamed layer). Raises `CodecError`
    if the payload length is not exactly `layers_payload_bytes(counts,
    num_codes)`, the padding bits are not zero, or a code is >= its layer's K.
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
        out.append(_bits_to_codes(bits[at: at + width], n, k, what))
        at += width
    if bits[at:].any():
        raise CodecError("The payload's padding bits (after the last code) are not zero: the file was written wrongly.")
    return out


@dataclasses.dataclass(frozen=True, eq=False)
class PackedFile(FileHeader):
    """A read version 1 or 2 file: its header and its codes (`tfvq.codec.header.FileHeader`).

    Attributes:
      version_byte: byte 4 of the file: 2 (version 2), 1 (version 1, one layer) or 0x81 (version 1, every layer
        from layer 1).
      model: the zoo model name.
      weights_hash: 8 bytes identifying the model's weights.
      first_layer: l, the first layer stored: the `layer` of `model.encode(x, l)` / `model.decode(codes, l)`.
      count: the number of images (`images`).
      code_shapes: the (h, w) grid of every stored layer, layer l first.
      layer_num_codes: K of every stored layer, layer l first.
      payload_bytes: bytes of packed codes.
      file_bytes: bytes of the whole file.
      codes: int32 arrays [count, h, w], one per stored layer, layer l first: what
        `model.decode(codes, first_layer)` takes.
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
    codes: list

    image_size = None
    lossless = resized = False

    @property
    def version(self):
        """The format version: 1 or 2."""
        return self.version_byte & ~ALL_LAYERS

    @property
    def images(self):
        return self.count

    @property
    def layers(self):
        """The stored layers l, l+1, ..., l+n-1."""
        return tuple(range(self.first_layer, self.first_layer + len(self.code_shapes)))

    @property
    def layer_bits(self):
        """Bits of one image's codes in each stored layer: h * w * bits_per_code(K)."""
        return tuple(h * w * bits_per_code(k) for (h, w), k in zip(self.code_shapes, self.layer_num_codes))

    @property
    def bits(self):
        """Bits of codes per image: the sum of `layer_bits` (`CodeLayout.bits(first_layer)`)."""
        return sum(self.layer_bits)

    def describe(self):
        grids = ", ".join(f"{h}x{w} K={k}" for (h, w), k in zip(self.code_shapes, self.layer_num_codes))
        return [f".tfvq version {self.version}, model {self.model} (weights {self.weights_hash.hex()}), "
                f"{span(self.layers)}, {self.count} image(s) of codes {grids}, {self.bits} bits per image, "
                f"{self.payload_bytes} bytes of codes, {self.file_bytes} bytes in all, coder fixed-rate bits"]


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


def read_name(data, fields_at):
    """The model name after `HEAD`, which ends at `fields_at`; checked only once the CRC matched."""
    # The CRC matches: what follows are files written wrongly (or tampered with and re-checksummed).
    try:
        name = data[HEAD.size: fields_at].decode("utf-8")
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
                         f"{span(range(first_layer, first_layer + len(grids)))} ({layers}) need exactly {want} bytes.")


def _parse_v1_one_layer(data, version_byte, name_len):
    fields_at = HEAD.size + name_len
    payload_at = fields_at + _V1_FIELDS.size
    _need(data, payload_at + _CRC.size, "version 1, one layer")
    weights_hash, layer, count, h, w, num_codes, payload_len = _V1_FIELDS.unpack_from(data, fields_at)
    _check_length(data, payload_at, payload_len)
    name = read_name(data, fields_at)
    _check_layers(layer, 1, count)
    _check_grids(layer, [(h, w)], [num_codes], count, payload_len)
    return name, weights_hash, layer, count, ((h, w),), (num_codes,), payload_at, payload_len


def _parse_layer_table(data, version_byte, name_len):
    """Version 2 and version 1 all-layers files: fields, then n (h, w, K) entries, then the payload length."""
    fields = _V2_FIELDS if version_byte == 2 else _V1_ALL_FIELDS
    fields_at = HEAD.size + name_len
    layers_at = fields_at + fields.size
    _need(data, layers_at, VERSION_BYTES[version_byte])
    if version_byte == 2:
        weights_hash, first_layer, num_layers, count = fields.unpack_from(data, fields_at)
    else:
        (weights_hash, num_layers, count), first_layer = fields.unpack_from(data, fields_at), 1
    length_at = layers_at + num_layers * _LAYER_FIELDS.size
    payload_at = length_at + _PAYLOAD_LEN.size
    _need(data, payload_at + _CRC.size, f"{VERSION_BYTES[version_byte]}, {num_layers} layers")
    (payload_len,) = _PAYLOAD_LEN.unpack_from(data, length_at)
    _check_length(data, payload_at, payload_len)
    name = read_name(data, fields_at)
    _check_layers(first_layer, num_layers, count)
    table = [_LAYER_FIELDS.unpack_from(data, layers_at + i * _LAYER_FIELDS.size) for i in range(num_layers)]
    grids, ks = tuple((h, w) for h, w, _ in table), tuple(k for _, _, k in table)
    _check_grids(first_layer, grids, ks, count, payload_len)
    return name, weights_hash, first_layer, count, grids, ks, payload_at, payload_len


def parse(data):
    """Reads and checks a file of version byte 1, 0x81 or 2 (its codes too): a `PackedFile`.

    Raises:
      CodecError: the file is not a valid file of these versions (the message says why).
    """
    data = bytes(data)
    _, version_byte, name_len = HEAD.unpack_from(data, 0)
    parse_fields = _parse_v1_one_layer if version_byte == 1 else _parse_layer_table
    name, weights_hash, first_layer, count, grids, ks, payload_at, payload_len = parse_fields(
        data, version_byte, name_len)
    flat = unpack_layers(data[payload_at: payload_at + payload_len], [count * h * w for h, w in grids], ks,
                         first_layer=first_layer)
    return PackedFile(version_byte=version_byte, model=name, weights_hash=weights_hash, first_layer=first_layer,
                      count=count, code_shapes=grids, layer_num_codes=ks, payload_bytes=payload_len,
                      file_bytes=len(data), codes=[c.reshape(count, h, w) for c, (h, w) in zip(flat, grids)])


# ---------------------------------------------------------------------------------------------- decoding
def decode(f, model, weights_hash, prior_for=None, layer=None, seed=None):
    """uint8 images [count, H, W, C] of a `PackedFile`: `model.decode(codes, first_layer)` after checking that
    `model` (with `weights_hash`, its weights' hash) made the file: its weights, layers, grids and Ks.

    The file decodes at its first layer only; `prior_for` is not used (fixed-rate codes need no prior).
    """
    if f.weights_hash != weights_hash:
        raise CodecError(
            f"The file was made with other weights of {f.model!r} (weights hash {f.weights_hash.hex()}, "
            f"these weights have {weights_hash.hex()}); pass the weights it was made with (--weights=PATH)."
        )
    layout = model.code_layout()
    first = f.first_layer
    if first > layout.num_layers:
        raise CodecError(f"The file holds the codes of {span(f.layers)}, but {f.model!r} has code layers "
                         f"1..{layout.num_layers}: the file was not made by this model.")
    sent = layout.layers_sent(first)
    if f.layers != sent:
        raise CodecError(
            f"The file holds the codes of {span(f.layers)}, but a {f.model!r} file of layer {first} holds "
            f"the codes of {span(sent)} (what encode(x, {first}) gives): the file was not made by this model."
        )
    for l, grid, k in zip(sent, f.code_shapes, f.layer_num_codes):
        want_grid, want_k = tuple(layout.grids[l - 1]), layout.num_codes[l - 1]
        if tuple(grid) != want_grid:
            raise CodecError(f"The file's layer {l} code grid is {grid[0]}x{grid[1]}, but layer {l} of "
                             f"{f.model!r} has a {want_grid[0]}x{want_grid[1]} grid: the file was not made "
                             "by this model.")
        if k != want_k:
            raise CodecError(f"The file's layer {l} has K={k} codes, but layer {l} of {f.model!r} has "
                             f"K={want_k}: the file was not made by this model.")
    if layer is not None and layer != first:
        raise CodecError(f"The file holds the codes of layer {first} (fixed-rate, format version {f.version}): it "
                         f"decodes at that layer only, not at {layer}.")
    return np.asarray(model.decode(f.codes, first, stochastic=seed is not None, seed=seed, dtype="uint8"))
