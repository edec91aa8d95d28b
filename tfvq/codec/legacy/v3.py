"""Format version 3 (read only): entropy-coded chunks, one per layer.

Written by tfvq before the compact container (version 4, `tfvq.codec.container`);
`tfvq.codec.decompress` still reads it, with the coders of today (`tfvq.codec.coding`).

A version 3 file holds the codes of a run of layers l..m, each in its own
chunk coded by its own coder, the top layer m first, so that a reader can
stop after any layer (`tfvq.codec.decompress(data, layer=j)`), and
optionally the pixels themselves (lossless files). It also records the
image size, so images of any size can be coded.

Layout, version byte 3 (all integers big-endian):

    offset   size   field
    0        4      magic b"TFVQ"
    4        1      3
    5        1      m: length of the model name (1..255)
    6        m      zoo model name, UTF-8
    6+m      8      weights hash (as version 2's)
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
codes (`tfvq.codec.legacy.v1_v2.unpack_layers`), byte-aligned; STATIC (1) range-codes every
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

Reading checks the lengths and the file's CRC first, then every field
(`parse`; the magic and version are `tfvq.codec.legacy.read`'s); sizes are
bounded (`MAX_IMAGE_PIXELS`, `MAX_CHUNK_SYMBOLS`) before any array is made.
Decoding (`decode`) checks the file against the model, then decodes each
chunk with today's decoder of its coder (`tfvq.codec.coding.decode_layer`).
"""

import dataclasses
import hashlib
import struct
import zlib

import numpy as np

from tfvq.codec import coding, container, entropy
from tfvq.codec.errors import CodecError
from tfvq.codec.header import FileHeader, layers_text
from tfvq.codec.legacy.v1_v2 import HEAD, MAX_LAYER, layers_payload_bytes, read_name, unpack_layers

VERSION = 3
FIXED, STATIC, MODEL, PIXELS, CONTEXT = 0, 1, 2, 3, 4
CODERS = {FIXED: "fixed", STATIC: "static", MODEL: "model", PIXELS: "pixels", CONTEXT: "context"}
CODER_TEXT = {FIXED: "fixed-rate bits", STATIC: "static prior", MODEL: "model's probabilities",
              PIXELS: "pixels under p(x | z)", CONTEXT: "context prior"}
LAYER_CODERS = (FIXED, STATIC, MODEL, CONTEXT)
AS_VERSION_4 = {STATIC: container.STATIC, MODEL: container.MODEL, CONTEXT: container.CONTEXT}
"""The range-coded layers' coders as version 4 numbers them (today's decoders; FIXED chunks are bit-packed)."""
MAX_IMAGE_PIXELS = 1 << 22
"""The largest image (H W) a file may hold: 4 megapixels (e.g. 2048x2048)."""
MAX_CHUNK_SYMBOLS = 1 << 28
"""The most codes (count h w) or pixels (N H W C) one chunk may hold."""

_FIELDS = struct.Struct(">8s8sBBHHHHB")  # weights hash, prior hash, l, n, images, H, W, count, flags
_LAYER = struct.Struct(">HHIBII")  # h, w, K, coder, length, crc
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
class ChunkedFile(FileHeader):
    """A parsed version 3 file, its chunks still coded (`tfvq.codec.header.FileHeader`).

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

    version = version_byte = VERSION
    resized = False

    @property
    def lossless(self):
        return self.pixels is not None

    @property
    def layers(self):
        """The stored layers l..m, finest first."""
        return tuple(sorted(c.layer for c in self.chunks))

    def chunk(self, layer):
        return next(c for c in self.chunks if c.layer == layer)

    def describe(self):
        lines = [f".tfvq version 3 (entropy-coded, one chunk per layer), model {self.model} (weights "
                 f"{self.weights_hash.hex()}, static prior {self.prior_hash.hex()}), {self.images} image(s) of "
                 f"{self.image_size[0]}x{self.image_size[1]} in {self.count} code grid(s), layers "
                 f"{layers_text(self.layers)} (decoded at layer {self.first_layer} by default), "
                 f"{self.file_bytes} bytes in all"]
        lines += [f"  layer {c.layer}: {c.grid[0]}x{c.grid[1]} K={c.num_codes}, coder {CODER_TEXT[c.coder]}, "
                  f"{len(c.data)} bytes, {8 * len(c.data) / self.images:.1f} bits per image, codes CRC {c.crc:08x}"
                  for c in self.chunks]
        if self.pixels is not None:
            lines.append(f"  pixels: {self.pixels[0]} channel(s), {len(self.pixels[1])} bytes (lossless)")
        return lines


def combined_digest(static_digest, context_digest):
    """The prior hash a version 3 file records when a layer is coded with context priors: both named at once."""
    return hashlib.sha256(bytes(static_digest) + bytes(context_digest)).digest()[:container.HASH_BYTES]


def crc_of_codes(codes):
    return zlib.crc32(np.ascontiguousarray(codes, ">u4").tobytes())


def crc_of_pixels(pixels):
    return zlib.crc32(np.ascontiguousarray(pixels, np.uint8).tobytes())


def parse(data):
    """Checks a version 3 file's structure and returns a `ChunkedFile` (its chunks are not decoded).

    Raises `CodecError` (a truncated, extended or corrupt file, or fields
    that cannot be right); the message says which.
    """
    data = bytes(data)
    if len(data) < HEAD.size:
        raise CodecError(f"Truncated .tfvq file: {len(data)} bytes is shorter than the fixed header.")
    name_len = HEAD.unpack_from(data, 0)[2]
    fields_at = HEAD.size + name_len
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
    name = read_name(data, fields_at)  # the head of versions 1 and 2
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
    return ChunkedFile(model=name, weights_hash=weights_hash, prior_hash=prior_hash, first_layer=first,
                       images=images, image_size=(h, w), count=count, chunks=tuple(chunks), pixels=pixels,
                       file_bytes=len(data))


# ---------------------------------------------------------------------------------------------- decoding
def _check(f, model, weights_hash, prior_for):
    """Checks a parsed version 3 file against the model; returns its `coding.Geometry`."""
    layout = model.code_layout()
    name = f.model
    if f.weights_hash != weights_hash:
        raise CodecError(
            f"The file was made with other weights of {name!r} (weights hash {f.weights_hash.hex()}, these weights "
            f"have {weights_hash.hex()}); pass the weights it was made with (--weights=PATH)."
        )
    coding.check_layers(name, layout, f.layers, f.first_layer,
                        {c.layer: AS_VERSION_4.get(c.coder, container.UNIFORM) for c in f.chunks})
    height, width = f.image_size
    geometry = coding.Geometry(model, height, width)
    if f.count != f.images * geometry.tiles:
        raise CodecError(f"The file has {f.count} code grids for {f.images} image(s) of {height}x{width}, but "
                         f"{name!r} codes such an image in {geometry.tiles} grid(s): the file was written wrongly.")
    sized_layout = geometry.layout
    for chunk in f.chunks:
        l = chunk.layer
        want_grid, want_k = tuple(sized_layout.grids[l - 1]), sized_layout.num_codes[l - 1]
        if tuple(chunk.grid) != want_grid or chunk.num_codes != want_k:
            raise CodecError(f"The file's layer {l} is a {chunk.grid[0]}x{chunk.grid[1]} grid of K={chunk.num_codes} "
                             f"codes, but {name!r} gives {want_grid[0]}x{want_grid[1]} codes of K={want_k} for "
                             f"{height}x{width} images: the file was not made by this model.")
        fixed_bytes = layers_payload_bytes([f.count * want_grid[0] * want_grid[1]], [want_k])
        if chunk.coder == FIXED and len(chunk.data) != fixed_bytes:
            raise CodecError(f"The file's layer {l} chunk is {len(chunk.data)} bytes, but its fixed-rate codes need "
                             f"{fixed_bytes}.")
    if f.pixels is not None and f.pixels[0] != model.image_shape[2]:
        raise CodecError(f"The file's pixels have {f.pixels[0]} channels, but {name!r} takes "
                         f"{model.image_shape[2]}: the file was not made by this model.")
    if any(c.coder != FIXED for c in f.chunks) or f.pixels is not None:
        prior = prior_for()
        context_layers = [c.layer for c in f.chunks if c.coder == CONTEXT]
        if context_layers:
            coding.check_context_priors(prior, context_layers, name)
        expected = prior.digest if not context_layers else combined_digest(prior.digest, prior.context.digest)
        if expected != f.prior_hash:
            what = "other static and context priors" if context_layers else "another static prior"
            raise CodecError(f"The file was coded with {what} of {name!r} (prior hash {f.prior_hash.hex()}, these "
                             f"{expected.hex()}): use the model folder or weights it was made with, priors included.")
    return geometry


def decode(f, model, weights_hash, prior_for, layer=None, seed=None):
    """uint8 images [N, H, W, C] of a `ChunkedFile` made by `model` (`weights_hash`, its weights' hash; `prior_for()`
    its priors): each chunk its own stream, each layer checked by its CRC. `layer` and `seed` as
    `tfvq.codec.decompress`'s."""
    layout = model.code_layout()
    geometry = _check(f, model, weights_hash, prior_for)
    stop = coding.stop_layer(layout, f.layers, f.first_layer, layer)
    codes = {}
    for chunk in f.chunks:  # the top layer first
        if chunk.layer < min(layout.layers_sent(stop)):
            break
        l = chunk.layer
        if chunk.coder == FIXED:
            (h, w), k = chunk.grid, chunk.num_codes
            (flat,) = unpack_layers(chunk.data, [f.count * h * w], [k], first_layer=l)
            layer_codes = flat.reshape(f.count, h, w)
        else:
            decoder = entropy.Decoder(chunk.data, f"layer {l} chunk")
            layer_codes = coding.decode_layer(decoder, geometry, AS_VERSION_4[chunk.coder], codes, l, f.count,
                                              prior_for, f.model)
        if crc_of_codes(layer_codes) != chunk.crc:
            raise CodecError(
                f"Layer {l}'s decoded codes do not match the CRC the encoder stored ({chunk.crc:08x}): the file is "
                "corrupt, or this machine computes other probabilities than the encoder did. Decode it with the same "
                "tfvq and weights it was made with.")
        codes[l] = layer_codes
    height, width = f.image_size
    if f.pixels is not None and stop == f.first_layer:
        channels, data, crc = f.pixels
        sent = [codes[l] for l in layout.layers_sent(stop)]
        pixels = coding.decode_pixels(entropy.Decoder(data, "pixel chunk"), geometry.sized, sent, stop, f.images,
                                      channels, geometry.padded, geometry.tile, height, width, f.model)
        if crc_of_pixels(pixels) != crc:
            raise CodecError("The decoded pixels do not match the CRC the encoder stored: this machine computes "
                             "another p(x | z) than the encoder did, or the file is corrupt.")
        return pixels
    return coding.decoded_images(geometry, codes, stop, seed, f.images, height, width)
