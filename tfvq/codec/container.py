"""Format version 4: the compact `.tfvq` container (NumPy and zlib only, no TensorFlow).

A file spends bytes only on what the decoder cannot know: which model, which
layers and how each was coded, and the image size when it is not the
model's own. The code grids, codebook sizes and tiles follow from the model
and the image size, so they are not stored. Every layer's codes (and a
lossless file's pixels) are ONE range-coded stream, the top layer first, so
no layer pays for padding or a length field.

Layout (a varint is an unsigned LEB128 integer: 7 bits per byte, low bits
first, bit 7 set on every byte but the last; the shortest form only):

    offset  size  field
    0       2     magic b"TQ"
    2       1     version (high 4 bits: 4) and flags (low 4 bits):
                    bit 0 LOSSLESS: the stream ends with the pixels (exact images back)
                    bit 1 SIZED: the image size follows (else it is the model's own image_shape)
                    bit 2 MANY: the number of images follows (else 1)
                    bit 3 RESIZED: the images were H x W (SIZED must be set) and were resized to the model's
                      own image size before coding, bilinearly (`tfvq.codec.images.bilinear_matrix`: what
                      tf.image.resize does, half-pixel centres), then rounded: the codes are of the model's
                      size, and the decoder resizes its images back to H x W by the least-squares inverse of
                      that resize (`tfvq.codec.images.resize_back`). Not with LOSSLESS. Files written before
                      this flag (it was reserved, 0) keep their meaning: images coded at their own size, padded.
                  All four bits have a meaning: a new field takes a new version.
    3       var   m, the length of the model name in bytes (1..255), then the name (UTF-8)
    ...     2     tag: the first `TAG_BYTES` bytes of the file's digest D (below)
    ...     var   the layers, bit-packed (most significant bit first, zero bits up to a whole byte):
                  gamma(l), l the finest layer stored (1..255), the layer decoded by default;
                  gamma(n), n the number of layers stored, l..l+n-1;
                  their coders, the top layer first, in runs of equal coders: each run is its
                  coder (2 bits), then, when n > 1, one bit saying whether more runs follow and,
                  if they do, gamma(the run's length); the last run takes the layers left
                  (gamma(k) is Elias' gamma code: k in binary after one zero bit per binary digit
                  past the first, so 1 is "1" and 5 is "00101")
    ...     var   if SIZED: H, then W (pixels, >= 1 each, H W <= `MAX_IMAGE_PIXELS`)
    ...     var   if MANY: N, the number of images (2..65535)
    ...     P     the stream: `constriction`'s range coder, as big-endian 32-bit words, shortened to the
                  fewest bytes that still decode (`entropy.Encoder.shortest`): the reader puts zero bytes
                  back up to a whole word, so it never ends in a zero byte
    end-4   4     CRC-32 (zlib), see below

Coders (2 bits): UNIFORM (0) codes each of a layer's codes under the
uniform table over its K codes (log2 K bits, the fixed rate), STATIC (1)
under the layer's static prior, MODEL (2) under the model's distribution of
the layer given the layers above it (the top layer under the model's top
prior), with escape flags (`tfvq.codec.entropy`), CONTEXT (3) under the
layer's learned context prior in four passes (`tfvq.codec.context`). The
pixels of a lossless file are coded under the model's discretised logistic
p(x | z), with escape flags.

The digest D names what a decoder must have to get the same tables: D =
SHA-256 of the model's weights hash (8 bytes), then the static prior's digest
if a layer is STATIC or MODEL, then the context priors' digest if a layer is
CONTEXT; its first 8 bytes (`file_digest`). The header keeps `TAG_BYTES` of
it, so a decoder with other weights or priors says so before decoding.

The CRC-32 covers D (all 8 bytes, not stored), every byte before the CRC,
and what the stream decodes to: each stored layer's codes (top first, as
big-endian uint32 in C order, [count, h, w]) and the pixels (uint8
[N, H, W, C]). It is checked after decoding, so one check catches a corrupt
or truncated file, other weights or priors, and a decoder whose
probabilities differ from the encoder's: a wrong image is never returned.

For one 32x32 image of `hqa_digits` (a 10-byte name) stored at layer 5 the
container costs 21 bytes: 2 + 1 + 11 + 2 + 1 (layers: "00101", "1", the coder) + 4;
its chain 5..1 (context priors, the top under the static prior) 22 bytes; `rrvq_digits` (11 bytes,
five layers) 23. A 28x28 digit of `hqa_mnist` resized to its 32x32 (RESIZED) adds the size, 2 bytes.
"""

import dataclasses
import hashlib
import zlib

import numpy as np

from tfvq.codec.errors import ChecksumError, CodecError
from tfvq.codec.header import FileHeader, span

MAGIC = b"TQ"
VERSION = 4
LOSSLESS, SIZED, MANY, RESIZED = 1, 2, 4, 8
UNIFORM, STATIC, MODEL, CONTEXT = 0, 1, 2, 3
CODERS = {UNIFORM: "uniform", STATIC: "static", MODEL: "model", CONTEXT: "context"}
CODER_TEXT = {UNIFORM: "fixed rate (uniform)", STATIC: "static prior", MODEL: "model's probabilities",
              CONTEXT: "context prior"}
TAG_BYTES = 2
DIGEST_BYTES = 8
HASH_BYTES = 8
"""The bytes that name a model's weights (`tfvq.zoo.weights_hash`) and a prior's tables (their digests)."""
MAX_NAME_BYTES = 255
MAX_LAYER = 255
MAX_IMAGES = 0xFFFF
MAX_SIDE = 0xFFFF
MAX_IMAGE_PIXELS = 1 << 26
"""The largest image (H W) a file may hold: 64 megapixels (e.g. 8192x8192; 4 megapixels before large images
were coded in bands, `tfvq.codec.bands`)."""
_CRC_BYTES = 4


def is_compact(data):
    """True for bytes that start with this container's magic (`parse` then checks the version)."""
    return isinstance(data, (bytes, bytearray, memoryview)) and len(data) >= 2 and bytes(data[:2]) == MAGIC


# ------------------------------------------------------------------------------------------------ varints
def put_varint(value):
    """The unsigned LEB128 bytes of `value` (>= 0)."""
    value = int(value)
    if value < 0:
        raise ValueError(f"A varint is unsigned, got {value}.")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def get_varint(data, at, what, limit):
    """(value, next offset) of the varint at `at`; `CodecError` if it runs past the header, is not in its
    shortest form, or exceeds `limit`."""
    value, shift, start = 0, 0, at
    while True:
        if at >= len(data):
            raise CodecError(f"Truncated .tfvq file: the header ends inside its {what} field.")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
        if shift > 35:
            raise CodecError(f"The file's {what} field is longer than any value this tfvq writes: the file is "
                             "corrupt.")
    if at - start > 1 and byte == 0:
        raise CodecError(f"The file's {what} field is not in its shortest form: the file was written wrongly.")
    if value > limit:
        raise CodecError(f"The file's {what} is {value}, more than {limit}: the file is corrupt.")
    return value, at


def put_gamma(bits, value):
    """Appends Elias' gamma code of `value` (>= 1) to the list of bits."""
    digits = bin(int(value))[2:]
    bits.extend([0] * (len(digits) - 1) + [int(d) for d in digits])


def _runs(coders):
    """[(coder, length)] of the stored layers' coders, the top layer first."""
    runs = []
    for l in sorted(coders, reverse=True):
        if runs and runs[-1][0] == coders[l]:
            runs[-1][1] += 1
        else:
            runs.append([coders[l], 1])
    return runs


def _layer_bits(first_layer, coders):
    """The bit-packed layers field (see the module doc) as bytes."""
    bits = []
    put_gamma(bits, first_layer)
    put_gamma(bits, len(coders))
    runs = _runs(coders)
    for i, (coder, length) in enumerate(runs):
        bits += [coder >> 1, coder & 1]
        if len(coders) > 1:
            more = i < len(runs) - 1
            bits.append(int(more))
            if more:
                put_gamma(bits, length)
    bits += [0] * (-len(bits) % 8)
    return bytes(int("".join(map(str, bits[i: i + 8])), 2) for i in range(0, len(bits), 8))


class _BitReader:
    """Reads bits, most significant first, from `data` at byte `at`; `CodecError` past the end."""

    def __init__(self, data, at):
        self.data, self.at, self.bit = data, at, 0

    def read(self):
        if self.at >= len(self.data):
            raise CodecError("Truncated .tfvq file: the header ends inside its layers field.")
        value = (self.data[self.at] >> (7 - self.bit)) & 1
        self.bit += 1
        if self.bit == 8:
            self.at, self.bit = self.at + 1, 0
        return value

    def gamma(self, what, limit):
        zeros = 0
        while not self.read():
            zeros += 1
            if zeros > 8:
                raise CodecError(f"The file's {what} is longer than any value this tfvq writes: the file is corrupt.")
        value = 1
        for _ in range(zeros):
            value = value << 1 | self.read()
        if value > limit:
            raise CodecError(f"The file's {what} is {value}, more than {limit}: the file is corrupt.")
        return value

    def end(self):
        """The offset after the field; its padding bits must be zero."""
        if self.bit:
            if self.data[self.at] & ((1 << (8 - self.bit)) - 1):
                raise CodecError("The padding bits of the file's layers field are not zero: the file is corrupt.")
            self.at, self.bit = self.at + 1, 0
        return self.at


def _read_layers(body, at):
    """(first layer, {layer: coder}, next offset) of the bit-packed layers field at `at`."""
    reader = _BitReader(body, at)
    first = reader.gamma("first layer", MAX_LAYER)
    n = reader.gamma("number of layers", MAX_LAYER)
    if first + n - 1 > MAX_LAYER:
        raise CodecError(f"The file holds layers {first}..{first + n - 1}, beyond layer {MAX_LAYER}: the file is "
                         "corrupt.")
    coders, layer = {}, first + n - 1
    while layer >= first:
        coder = reader.read() << 1 | reader.read()
        left = layer - first + 1
        length = left
        if n > 1 and reader.read():  # more runs follow: this one's length
            length = reader.gamma("length of a run of coders", left)
            if length == left:
                raise CodecError("The file's layers field says more runs of coders follow its last layer: the file "
                                 "is corrupt.")
        for _ in range(length):
            coders[layer] = coder
            layer -= 1
    return first, coders, reader.end()


# ------------------------------------------------------------------------------------------------- header
@dataclasses.dataclass(frozen=True)
class CompactFile(FileHeader):
    """A parsed version 4 file, its stream still coded (`tfvq.codec.header.FileHeader`; decoding needs the model,
    `tfvq.codec.coding.decode_compact`). `bytes(f)` is the file.

    Attributes:
      model: the zoo model name.
      tag: the first `TAG_BYTES` of the file's digest D.
      first_layer: l, the finest layer stored (decoded by default).
      coders: {layer: coder} of the stored layers l..l+n-1.
      image_size: (H, W) of the images, or None for the model's own image size.
      images: N.
      lossless: whether the stream ends with the pixels.
      resized: whether the images were resized from `image_size` to the model's own size before coding
        (the codes are of the model's size; the decoder resizes back).
      header: the header's bytes (what the CRC covers before the stream).
      stream: the range-coded stream (trailing zero bytes dropped).
      crc: the stored CRC-32.
      file_bytes: the file's length.
    """

    model: str
    tag: bytes
    first_layer: int
    coders: dict
    image_size: tuple
    images: int
    lossless: bool
    header: bytes
    stream: bytes
    crc: int
    file_bytes: int
    version_byte: int = VERSION
    resized: bool = False

    @property
    def version(self):
        return VERSION

    @property
    def layers(self):
        """The stored layers l..m, finest first."""
        return tuple(sorted(self.coders))

    def __bytes__(self):
        return self.header + self.stream + self.crc.to_bytes(_CRC_BYTES, "big")

    def summary(self):
        """One line: the image size if stored, the layers, the stream's bits per image and the coders."""
        size = "" if self.image_size is None else f"{self.image_size[0]}x{self.image_size[1]}" + \
            (" coded resized to the model's size" if self.resized else "") + ", "
        coders = ", ".join(f"{l} {CODERS[self.coders[l]]}" for l in sorted(self.coders, reverse=True))
        return (f"{size}{span(self.layers)}, {8 * len(self.stream) / self.images:.0f} bits of stream per image "
                f"(coders: {coders}){', lossless' if self.lossless else ''}")

    def describe(self):
        size = "the model's own size" if self.image_size is None else \
            f"{self.image_size[0]}x{self.image_size[1]} pixels" + \
            (" (coded resized to the model's size, bilinear; decoded back by its least-squares inverse)"
             if self.resized else "")
        return [f".tfvq version {VERSION}, model {self.model} (tag {self.tag.hex()}), {self.images} image(s) of "
                f"{size}, {span(self.layers)} (decoded at layer {self.first_layer} by default)"
                f"{', lossless' if self.lossless else ''}, {self.file_bytes} bytes in all: header {len(self.header)}, "
                f"stream {len(self.stream)}, CRC {_CRC_BYTES}"] + \
            [f"  layer {l}: {CODER_TEXT[self.coders[l]]}" for l in sorted(self.coders, reverse=True)]

    def check(self, digest, codes, pixels=None):
        """Raises `CodecError` unless the CRC of D, the file and the decoded codes {layer: [count, h, w]}
        (and pixels) is the stored one."""
        if crc(digest, self.header + self.stream, [codes[l] for l in sorted(codes, reverse=True)],
               pixels) != self.crc:
            raise ChecksumError(
                f"The decoded file does not match its CRC-32: the file is corrupt or truncated, or this machine "
                f"computes other probabilities for {self.model!r} than the encoder did. Decode it with the same "
                "tfvq, weights and priors it was made with.")


def file_digest(weights_hash, static_digest=None, context_digest=None):
    """D: the 8 bytes naming the weights and the priors a file's tables come from (see the module doc)."""
    h = hashlib.sha256(bytes(weights_hash))
    if static_digest is not None:
        h.update(b"static" + bytes(static_digest))
    if context_digest is not None:
        h.update(b"context" + bytes(context_digest))
    return h.digest()[:DIGEST_BYTES]


def crc(digest, body, codes, pixels=None):
    """The CRC-32 of D, the file's bytes before the CRC, the codes (a list, top layer first) and the pixels."""
    value = zlib.crc32(bytes(digest))
    value = zlib.crc32(bytes(body), value)
    for c in codes:
        value = zlib.crc32(np.ascontiguousarray(c, ">u4").tobytes(), value)
    if pixels is not None:
        value = zlib.crc32(np.ascontiguousarray(pixels, np.uint8).tobytes(), value)
    return value


def write_header(model, tag, first_layer, coders, image_size=None, images=1, lossless=False, resized=False):
    """The header's bytes (everything before the stream).

    Args:
      model: the zoo model name (1..255 UTF-8 bytes).
      tag: the first `TAG_BYTES` of D.
      first_layer: l, the finest stored layer.
      coders: {layer: coder} of consecutive layers l..l+n-1.
      image_size: (H, W), or None when the images have the model's own size.
      images: N (1..65535).
      lossless: the stream ends with the pixels.
      resized: the images of `image_size` were resized to the model's own size before coding (RESIZED;
        needs `image_size`, not with `lossless`).
    """
    name = str(model).encode("utf-8")
    if not 1 <= len(name) <= MAX_NAME_BYTES:
        raise ValueError(f"The model name must be 1..{MAX_NAME_BYTES} UTF-8 bytes, got {len(name)}.")
    tag = bytes(tag)
    if len(tag) != TAG_BYTES:
        raise ValueError(f"The tag must be {TAG_BYTES} bytes, got {len(tag)}.")
    layers = sorted(int(l) for l in coders)
    first_layer = int(first_layer)
    if not layers or layers != list(range(first_layer, first_layer + len(layers))) or layers[-1] > MAX_LAYER:
        raise ValueError(f"The coders must be of consecutive layers {first_layer}.. within 1..{MAX_LAYER}, "
                         f"got layers {layers}.")
    if first_layer < 1:
        raise ValueError(f"Layers are numbered from 1, got first_layer={first_layer}.")
    for l in layers:
        if coders[l] not in CODERS:
            raise ValueError(f"Unknown coder {coders[l]!r} for layer {l}; coders are {sorted(CODERS)}.")
    images = int(images)
    if not 1 <= images <= MAX_IMAGES:
        raise ValueError(f"A file holds 1..{MAX_IMAGES} images, got {images}.")
    if resized and (image_size is None or lossless):
        raise ValueError("A file of resized images stores their size (image_size) and is not lossless.")
    flags = (LOSSLESS if lossless else 0) | (SIZED if image_size is not None else 0) | (MANY if images > 1 else 0) \
        | (RESIZED if resized else 0)
    out = bytearray(MAGIC) + bytes([VERSION << 4 | flags]) + put_varint(len(name)) + name + tag
    out += _layer_bits(first_layer, {int(l): int(c) for l, c in coders.items()})
    if image_size is not None:
        h, w = (int(d) for d in image_size)
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE and h * w <= MAX_IMAGE_PIXELS):
            raise ValueError(f"Images of {h}x{w} pixels do not fit a file (each side 1..{MAX_SIDE}, at most "
                             f"{MAX_IMAGE_PIXELS} pixels); split them into tiles.")
        out += put_varint(h) + put_varint(w)
    if images > 1:
        out += put_varint(images)
    return bytes(out)


def write(header, stream, digest, codes, pixels=None):
    """The file: `header` (`write_header`), the trimmed stream, and the CRC over D, both and the content
    (codes: {layer: [count, h, w]}; pixels: uint8 [N, H, W, C] of a lossless file)."""
    body = bytes(header) + bytes(stream).rstrip(b"\0")
    value = crc(digest, body, [codes[l] for l in sorted(codes, reverse=True)], pixels)
    return body + value.to_bytes(_CRC_BYTES, "big")


def write_file(model, digest, first_layer, coders, stream, codes, image_size=None, images=1, lossless=False,
               resized=False, pixels=None):
    """A new file as the `CompactFile` its reader would parse (`bytes()` of it is the file): `write_header` (its
    tag the first `TAG_BYTES` of D, `digest`) and `write`, so the writer describes what it wrote without reading
    it back."""
    header = write_header(model, bytes(digest)[:TAG_BYTES], first_layer, coders, image_size, images, lossless, resized)
    data = write(header, stream, digest, codes, pixels)
    return CompactFile(model=str(model), tag=bytes(digest)[:TAG_BYTES], first_layer=int(first_layer),
                       coders={int(l): int(c) for l, c in coders.items()},
                       image_size=None if image_size is None else tuple(int(d) for d in image_size), images=int(images),
                       lossless=bool(lossless), header=header, stream=data[len(header):-_CRC_BYTES],
                       crc=int.from_bytes(data[-_CRC_BYTES:], "big"), file_bytes=len(data), resized=bool(resized))


def parse(data):
    """Checks a version 4 file's header and returns a `CompactFile` (the stream is not decoded, and the CRC
    is checked only after decoding: `CompactFile.check`).

    Raises `CodecError` for anything but a well-formed header; the message says what is wrong.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"Expected the file's bytes, got {type(data).__name__}.")
    data = bytes(data)
    if len(data) < 2 or data[:2] != MAGIC:
        raise CodecError(f"Not a .tfvq file of version {VERSION}: it does not start with {MAGIC!r}.")
    if len(data) < 3:
        raise CodecError("Truncated .tfvq file: it ends after its magic bytes.")
    version, flags = data[2] >> 4, data[2] & 0x0F
    if version > VERSION:
        raise CodecError(f"The file is format version {version}, newer than this tfvq reads (up to {VERSION}): "
                         "upgrade tfvq.")
    if version != VERSION:
        raise CodecError(f"The file says format version {version} after the magic {MAGIC!r}, which only version "
                         f"{VERSION} uses: the file is corrupt.")
    if flags & RESIZED and (not flags & SIZED or flags & LOSSLESS):
        raise CodecError("The file says its images were resized, but "
                         + ("stores no image size" if not flags & SIZED else "is lossless")
                         + ": the file is corrupt or was written wrongly.")
    if len(data) < 3 + _CRC_BYTES:
        raise CodecError(f"Truncated .tfvq file: {len(data)} bytes is shorter than any version {VERSION} file.")
    end = len(data) - _CRC_BYTES
    body = data[:end]
    name_len, at = get_varint(body, 3, "model name length", MAX_NAME_BYTES)
    if name_len < 1:
        raise CodecError("The file names no model (empty model name): the file is corrupt.")
    if at + name_len + TAG_BYTES > len(body):
        raise CodecError("Truncated .tfvq file: the header ends inside the model name or tag.")
    try:
        name = body[at: at + name_len].decode("utf-8")
    except UnicodeDecodeError:
        raise CodecError("The model name in the file is not valid UTF-8: the file is corrupt.") from None
    at += name_len
    tag = body[at: at + TAG_BYTES]
    at += TAG_BYTES
    first, coders, at = _read_layers(body, at)
    image_size = None
    if flags & SIZED:
        h, at = get_varint(body, at, "image height", MAX_SIDE)
        w, at = get_varint(body, at, "image width", MAX_SIDE)
        if h < 1 or w < 1 or h * w > MAX_IMAGE_PIXELS:
            raise CodecError(f"The file's images are {h}x{w} pixels: expected 1..{MAX_IMAGE_PIXELS} pixels, at "
                             "least 1 in each side.")
        image_size = (h, w)
    images = 1
    if flags & MANY:
        images, at = get_varint(body, at, "number of images", MAX_IMAGES)
        if images < 2:
            raise CodecError(f"The file says it holds several images, then {images}: the file was written wrongly.")
    stream = body[at:]
    if stream.endswith(b"\0"):
        raise CodecError("The file's stream ends in a zero byte, which no encoder writes: the file is corrupt or "
                         "was extended.")
    return CompactFile(model=name, tag=tag, first_layer=first, coders=coders, image_size=image_size, images=images,
                       lossless=bool(flags & LOSSLESS), header=body[:at], stream=stream,
                       crc=int.from_bytes(data[end:], "big"), file_bytes=len(data), resized=bool(flags & RESIZED))
