"""Format version 3 (read only): entropy-coded `.tfvq` files, one chunk per layer (TensorFlow-free).

Written by tfvq before the compact container (version 4, `tfvq.codec.container`);
`tfvq.codec.decompress` still reads it.

A version 3 file holds the codes of a run of layers l..m, each in its own
chunk coded by its own coder, the top layer m first, so that a reader can
stop after any layer (`tfvq.codec.decompress(data, layer=j)`), and
optionally the pixels themselves (lossless files). It also records the
image size, so images of any size can be coded (`tfvq.codec.files`).

Layout, version byte 3 (all integers big-endian):

    offset   size   field
    0        4      magic b"TFVQ"
    4        1      3
    5        1      m: length of the model name (1..255)
    6        m      zoo model name, UTF-8
    6+m      8      weights hash (as version 2)
    14+m     8      prior hash: `StaticPrior.digest` of the static prior the STATIC chunks use
                    (and the escaped positions of MODEL chunks); zero bytes if no chunk needs one;
                    if a chunk is CONTEXT, `context.combined_digest` of it and the context priors'
    22+m     1      l: the finest layer stored, the layer decoded by default (1..255)
    23+m     1      n: the number of layers stored, l..l+n-1 (1..256-l)
    24+m     2      images: the number of images N (>= 1)
    26+m     2      H, 28+m  2  W: the images' height and width in pixels (>= 1 each)
    30+m     2      count: the number of code grids of each layer (N times the tiles per image, >= 1)
    32+m     1      flags: bit 0 set: a pixel chunk follows the code chunks (a lossless file);
                    every other bit 0
    33+m     17 n   per stored layer, the top layer l+n-1 first: h (2), w (2): its code grid;
                    K (4); coder (1); chunk length in bytes (4); CRC-32 of its codes (4)
    ...      10     if flags bit 0: channels C (1), coder (1, always PIXELS), chunk length (4),
                    CRC-32 of the pixels (4)
    ...             the chunks, in the order of the table (top layer first), then the pixel chunk
    end-4    4      CRC-32 (zlib) of every byte before it

Coders (`CODERS`): FIXED (0) is the version 2 bit packing of the layer's
codes (`format.pack_codes`), byte-aligned; STATIC (1) range-codes every
code under the layer's static prior; MODEL (2) range-codes each code under
the model's own distribution given the layers above it
(`CodeModel.code_logits`; the top layer under `CodeModel.top_code_logits`),
with escape flags (`tfvq.codec.entropy`); PIXELS (3) range-codes the 8-bit
pixels under the model's discretised logistic p(x | z) (`CodeModel.pixel_likelihood`);
CONTEXT (4) range-codes the layer in four passes over a 2x2 lattice, each
code under the layer's learned context prior given the layer above and the
earlier passes (`tfvq.codec.context`). Per group of
grids (`coding.GROUP`), a MODEL chunk holds the group's escape flags then
its codes; a CONTEXT chunk holds, per group and pass, that pass's codes
under the integer tables of the context network (no flags: an integer
network gives the same tables on every machine, `tfvq.codec.integer_net`).

The CRC-32 of a layer's codes is that of the codes [count, h, w] as
big-endian uint32 in C order; that of the pixels, of the uint8 pixels
[N, H, W, C] in C order. A decoder whose model gives other probabilities
than the encoder's decodes other codes: the CRC names the layer.

Reading checks the magic, version, lengths and file CRC first, then every
field (`parse`); sizes are bounded (`MAX_IMAGE_PIXELS`, `MAX_CHUNK_SYMBOLS`)
before any array is made.
"""

import dataclasses
import hashlib
import struct
import zlib

import numpy as np

from tfvq.codec.errors import CodecError
from tfvq.codec.format import HASH_BYTES, MAGIC, MAX_LAYER, MAX_NAME_BYTES
from tfvq.codec.format import _name as read_name

VERSION = 3
FIXED, STATIC, MODEL, PIXELS, CONTEXT = 0, 1, 2, 3, 4
CODERS = {FIXED: "fixed", STATIC: "static", MODEL: "model", PIXELS: "pixels", CONTEXT: "context"}
CODER_TEXT = {FIXED: "fixed-rate bits", STATIC: "static prior", MODEL: "model's probabilities",
              PIXELS: "pixels under p(x | z)", CONTEXT: "context prior"}
LAYER_CODERS = (FIXED, STATIC, MODEL, CONTEXT)
MAX_IMAGE_PIXELS = 1 << 22
"""The largest image (H W) a file may hold: 4 megapixels (e.g. 2048x2048)."""
MAX_CHUNK_SYMBOLS = 1 << 28
"""The most codes (count h w) or pixels (N H W C) one chunk may hold."""

_HEAD = struct.Struct(">4sBB")
_FIELDS = struct.Struct(">8s8sBBHHHHB")  # weights hash, prior hash, l, n, images, H, W, count, flags
_LAYER = struct.Struct(">HHIBII")  # h, w, K, coder, length, crc
LAYER_ENTRY_BYTES = _LAYER.size
"""The header bytes each stored layer costs (17)."""
_PIXELS = struct.Struct(">BBII")  # channels, coder, length, crc
_CRC = struct.Struct(">I")


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One stored layer: grid (h, w), K, coder, the chunk's bytes and the CRC of its codes."""

    layer: int
    grid: tuple
    num_codes: int
    coder: int
    data: bytes
    crc: int


@dataclasses.dataclass(frozen=True)
class CodedFile:
    """A parsed version 3 file (codes still coded: decoding needs the model, `tfvq.codec.files`).

    Attributes:
      model, weights_hash, prior_hash: as in the header.
      first_layer: l, the finest layer stored (decoded by default).
      images: N; image_size: (H, W); count: code grids per layer.
      chunks: the stored layers' `Chunk`s, the top layer first.
      pixels: None, or (channels, bytes, crc) of a lossless file.
      file_bytes: the file's length.
    """

    model: str
    weights_hash: bytes
    prior_hash: bytes
    first_layer: int
    images: int
    image_size: tuple
    count: int
    chunks: tuple
    pixels: tuple
    file_bytes: int
    version_byte: int = VERSION

    @property
    def version(self):
        return VERSION

    @property
    def layers(self):
        """The stored layers l..m, finest first."""
        return tuple(sorted(c.layer for c in self.chunks))

    def chunk(self, layer):
        return next(c for c in self.chunks if c.layer == layer)

    @property
    def layer_bytes(self):
        """{layer: bytes of its chunk}."""
        return {c.layer: len(c.data) for c in self.chunks}


def combined_digest(static_digest, context_digest):
    """The prior hash a version 3 file records when a layer is coded with context priors: both named at once."""
    return hashlib.sha256(bytes(static_digest) + bytes(context_digest)).digest()[:HASH_BYTES]


def is_coded(data):
    """True for bytes that start like a version 3 file."""
    return isinstance(data, (bytes, bytearray, memoryview)) and len(data) >= 5 and bytes(data[:4]) == MAGIC \
        and data[4] == VERSION


def crc_of_codes(codes):
    return zlib.crc32(np.ascontiguousarray(codes, ">u4").tobytes())


def crc_of_pixels(pixels):
    return zlib.crc32(np.ascontiguousarray(pixels, np.uint8).tobytes())


def write(model, weights_hash, prior_hash, images, image_size, count, chunks, pixels=None):
    """Serialises a version 3 file.

    Args:
      model: the zoo model name; weights_hash, prior_hash: 8 bytes each.
      images: N; image_size: (H, W); count: the code grids per layer.
      chunks: `Chunk`s of consecutive layers, in any order (written top first).
      pixels: None, or (channels, chunk bytes, crc).
    """
    name = str(model).encode("utf-8")
    if not 1 <= len(name) <= MAX_NAME_BYTES:
        raise ValueError(f"The model name must be 1..{MAX_NAME_BYTES} UTF-8 bytes, got {len(name)}.")
    if len(bytes(weights_hash)) != HASH_BYTES or len(bytes(prior_hash)) != HASH_BYTES:
        raise ValueError(f"weights_hash and prior_hash must be {HASH_BYTES} bytes each.")
    chunks = sorted(chunks, key=lambda c: -c.layer)
    layers = [c.layer for c in chunks][::-1]
    if not layers or layers != list(range(layers[0], layers[0] + len(layers))) or layers[0] < 1 \
            or layers[-1] > MAX_LAYER:
        raise ValueError(f"The chunks must be of consecutive layers in 1..{MAX_LAYER}, got {layers}.")
    h, w = (int(d) for d in image_size)
    for value, what in ((images, "images"), (h, "H"), (w, "W"), (count, "count")):
        if not 1 <= int(value) <= 0xFFFF:
            raise ValueError(f"{what} must be in 1..65535, got {value}.")
    body = bytearray(_HEAD.pack(MAGIC, VERSION, len(name)) + name)
    body += _FIELDS.pack(bytes(weights_hash), bytes(prior_hash), layers[0], len(layers), int(images), h, w,
                         int(count), 1 if pixels is not None else 0)
    for c in chunks:
        body += _LAYER.pack(c.grid[0], c.grid[1], c.num_codes, c.coder, len(c.data), c.crc)
    if pixels is not None:
        channels, data, crc = pixels
        body += _PIXELS.pack(int(channels), PIXELS, len(data), crc)
    for c in chunks:
        body += c.data
    if pixels is not None:
        body += pixels[1]
    return bytes(body) + _CRC.pack(zlib.crc32(body))


def parse(data):
    """Checks a version 3 file's structure and returns a `CodedFile` (its chunks are not decoded).

    Raises `CodecError` (a truncated, extended or corrupt file, or fields
    that cannot be right); the message says which.
    """
    data = bytes(data)
    if len(data) < _HEAD.size:
        raise CodecError(f"Truncated .tfvq file: {len(data)} bytes is shorter than the fixed header.")
    _, version, name_len = _HEAD.unpack_from(data, 0)
    fields_at = _HEAD.size + name_len
    table_at = fields_at + _FIELDS.size
    if len(data) < table_at + _CRC.size:
        raise CodecError(f"Truncated .tfvq file: {len(data)} bytes is shorter than its version 3 header "
                         f"({table_at + _CRC.size} bytes at least).")
    (weights_hash, prior_hash, first, n, images, h, w, count, flags) = _FIELDS.unpack_from(data, fields_at)
    lossless = bool(flags & 1)
    pixels_at = table_at + n * _LAYER.size
    chunks_at = pixels_at + (_PIXELS.size if lossless else 0)
    if len(data) < chunks_at + _CRC.size:
        raise CodecError(f"Truncated .tfvq file: {len(data)} bytes is shorter than its header of {n} layers "
                         f"({chunks_at + _CRC.size} bytes at least).")
    table = [_LAYER.unpack_from(data, table_at + i * _LAYER.size) for i in range(n)]
    pixel_entry = _PIXELS.unpack_from(data, pixels_at) if lossless else None
    total = chunks_at + sum(e[4] for e in table) + (pixel_entry[2] if lossless else 0) + _CRC.size
    if len(data) != total:
        what = "Truncated" if len(data) < total else "Extended"
        raise CodecError(f"{what} .tfvq file: its header announces {total} bytes, got {len(data)}.")
    (stored,) = _CRC.unpack_from(data, total - _CRC.size)
    actual = zlib.crc32(data[: total - _CRC.size])
    if stored != actual:
        raise CodecError(f"Corrupt .tfvq file: CRC-32 mismatch (stored {stored:08x}, computed {actual:08x}).")
    # The CRC matches: what follows are files written wrongly (or tampered with and re-checksummed).
    name = read_name(data, fields_at)  # the same magic/version/name-length head as the fixed-rate formats
    if flags & ~1:
        raise CodecError(f"Unknown flags 0x{flags:02x} in the header (this tfvq knows bit 0, lossless): a file from "
                         "a newer tfvq, or written wrongly.")
    if first < 1 or n < 1 or first + n - 1 > MAX_LAYER:
        raise CodecError(f"The file holds layers {first}..{first + n - 1}: expected 1 or more layers numbered "
                         f"1..{MAX_LAYER}.")
    if images < 1 or h < 1 or w < 1 or count < 1:
        raise CodecError(f"The file holds {images} image(s) of {h}x{w} pixels in {count} code grid(s): each must "
                         "be at least 1.")
    if h * w > MAX_IMAGE_PIXELS:
        raise CodecError(f"The file's images are {h}x{w} pixels, more than this tfvq decodes "
                         f"({MAX_IMAGE_PIXELS} pixels); split the image into tiles.")
    if count % images:
        raise CodecError(f"The file has {count} code grids for {images} images: not a whole number per image.")
    chunks, at = [], chunks_at
    for i, (gh, gw, k, coder, length, crc) in enumerate(table):
        layer = first + n - 1 - i
        if gh < 1 or gw < 1 or k < 1:
            raise CodecError(f"Layer {layer}'s code grid {gh}x{gw} or K={k} is empty.")
        if coder not in LAYER_CODERS:
            raise CodecError(f"Layer {layer} names coder {coder}; this tfvq knows "
                             f"{', '.join(f'{c} ({CODERS[c]})' for c in LAYER_CODERS)}.")
        if count * gh * gw > MAX_CHUNK_SYMBOLS:
            raise CodecError(f"Layer {layer} would hold {count * gh * gw} codes, more than {MAX_CHUNK_SYMBOLS}.")
        chunks.append(Chunk(layer, (gh, gw), k, coder, data[at: at + length], crc))
        at += length
    pixels = None
    if lossless:
        channels, coder, length, crc = pixel_entry
        if channels < 1 or coder != PIXELS:
            raise CodecError(f"The pixel chunk has {channels} channels and coder {coder}: expected >= 1 channel and "
                             f"coder {PIXELS} ({CODERS[PIXELS]}).")
        if images * h * w * channels > MAX_CHUNK_SYMBOLS:
            raise CodecError(f"The pixel chunk would hold {images * h * w * channels} pixels, more than "
                             f"{MAX_CHUNK_SYMBOLS}.")
        pixels = (channels, data[at: at + length], crc)
    return CodedFile(model=name, weights_hash=weights_hash, prior_hash=prior_hash, first_layer=first, images=images,
                     image_size=(h, w), count=count, chunks=tuple(chunks), pixels=pixels, file_bytes=len(data))
