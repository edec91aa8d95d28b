"""Format version 3, read only (`tfvq.codec.legacy.v3`): entropy-coded chunks, one per layer, decoded by today's
coders; its checks of the file, of each chunk's codes and of the pixels. tfvq writes it no more: the files changed
here are written again by `_write`, the documented layout spelt out."""

import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfvq import codec
from tfvq.codec import legacy
from tfvq.codec.errors import CodecError
from tfvq.codec.legacy import v3


def _parse(data):
    """The `ChunkedFile` of a version 3 file, through the legacy room's one function."""
    f, decode = legacy.read(data)
    assert decode is v3.decode
    return f


def _write(model, weights_hash, prior_hash, images, image_size, count, chunks, pixels=None):
    """A version 3 file of the documented layout: `chunks` (`v3.Chunk`s) written top layer first."""
    name = model.encode()
    chunks = sorted(chunks, key=lambda c: -c.layer)
    body = bytearray(b"TFVQ" + bytes([3, len(name)]) + name)
    body += struct.pack(">8s8sBBHHHHB", weights_hash, prior_hash, chunks[-1].layer, len(chunks), images,
                        *image_size, count, 0 if pixels is None else 1)
    for c in chunks:
        body += struct.pack(">HHIBII", *c.grid, c.num_codes, c.coder, len(c.data), c.crc)
    if pixels is not None:
        body += struct.pack(">BBII", pixels[0], v3.PIXELS, len(pixels[1]), pixels[2])
    body += b"".join(c.data for c in chunks) + (b"" if pixels is None else pixels[1])
    return bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))


def test_the_kept_files_are_the_documented_layout(old_files):
    for path in sorted(old_files.glob("*_v3_*.tfvq")):
        data = path.read_bytes()
        f = _parse(data)
        assert (f.version, f.version_byte, f.images, f.lossless, f.resized) == (3, 3, 2, "lossless" in path.stem, False)
        assert _write(f.model, f.weights_hash, f.prior_hash, f.images, f.image_size, f.count, f.chunks,
                      f.pixels) == data, path.name


def test_info_describes_each_chunk(old_files):
    f = _parse((old_files / "rrvq_digits_layer1_v3_lossless.tfvq").read_bytes())
    first, *layers, pixels = f.describe()
    assert first.startswith(".tfvq version 3 (entropy-coded, one chunk per layer), model rrvq_digits (weights ")
    assert "2 image(s) of 32x32 in 2 code grid(s), layers 1..5 (decoded at layer 1 by default)" in first
    assert [line.split(":")[0] for line in layers] == [f"  layer {l}" for l in (5, 4, 3, 2, 1)]
    assert pixels.startswith("  pixels: 1 channel(s), ") and pixels.endswith(" bytes (lossless)")


def test_a_version_3_layer_whose_codes_do_not_match_their_crc_is_named(old_files):
    data = bytearray((old_files / "rrvq_digits_layer1_v3_auto.tfvq").read_bytes())
    f = _parse(bytes(data))
    at = 33 + len("rrvq_digits") + 17 * 2 + 13  # the codes CRC of layer 3 (the table is top first: 5, 4, 3)
    struct.pack_into(">I", data, at, f.chunk(3).crc ^ 1)
    body = bytes(data[:-4])
    with pytest.raises(CodecError, match="Layer 3's decoded codes do not match the CRC"):
        codec.decompress(body + struct.pack(">I", zlib.crc32(body)))



def test_mutated_version_3_files_give_only_codec_errors(old_files, mutate):
    files = [(old_files / f"{stem}.tfvq").read_bytes() for stem in (
        "hqa_digits_layer3_v3_progressive", "rrvq_digits_layer1_v3_lossless", "hqa_digits_layer1_v3_27x30")]
    rng = np.random.default_rng(0)
    refused = 0
    for i in range(3_000):
        bad = mutate(files[i % len(files)], rng)
        if bad != files[i % len(files)]:
            with pytest.raises(CodecError):
                codec.decompress(bad)
            refused += 1
    assert refused > 2_900


def _refile(data, **changes):
    """A version 3 file with header fields changed and the CRC recomputed."""
    f = _parse(data)
    fields = dict(model=f.model, weights_hash=f.weights_hash, prior_hash=f.prior_hash, images=f.images,
                  image_size=f.image_size, count=f.count, chunks=list(f.chunks), pixels=f.pixels)
    fields.update(changes)
    return _write(**fields)


def test_tampered_version_3_headers_with_a_valid_crc_are_refused(old_files):
    data = (old_files / "rrvq_digits_layer1_v3_auto.tfvq").read_bytes()
    f = _parse(data)
    swapped = [v3.Chunk(c.layer, c.grid, c.num_codes, c.coder, f.chunk(1).data if c.layer == 2 else
                           f.chunk(2).data if c.layer == 1 else c.data, c.crc) for c in f.chunks]
    cases = {
        "other weights": _refile(data, weights_hash=bytes(8)),
        "another static prior": _refile(data, prior_hash=bytes(8)),
        "4 code grids for 2 image": _refile(data, count=4),
        "do not match the CRC": _refile(data, chunks=[v3.Chunk(c.layer, c.grid, c.num_codes, c.coder, c.data,
                                                                  c.crc ^ 1) for c in f.chunks]),
        "layer 2 is a 9x8 grid": _refile(data, chunks=[v3.Chunk(c.layer, (9, 8) if c.layer == 2 else c.grid,
                                                                   c.num_codes, c.coder, c.data, c.crc)
                                                       for c in f.chunks]),
        "decoded codes do not match|could not be decoded": _refile(data, chunks=swapped),
        "not in this tfvq's zoo": _refile(data, model="nope"),
    }
    for message, bad in cases.items():
        with pytest.raises(CodecError, match=message):
            codec.decompress(bad)


@settings(max_examples=150, deadline=None)
@given(images=st.integers(0, 70000), h=st.integers(0, 70000), w=st.integers(0, 70000), count=st.integers(0, 70000),
       first=st.integers(0, 300), n=st.integers(0, 8), flags=st.integers(0, 255), coder=st.integers(0, 255),
       length=st.integers(0, 1 << 33), k=st.integers(0, 1 << 33))
def test_any_header_parses_or_raises_codec_error(images, h, w, count, first, n, flags, coder, length, k):
    name = b"rrvq_digits"
    body = bytearray(b"TFVQ" + bytes([3, len(name)]) + name + bytes(16))
    body += struct.pack(">BBHHHHB", first % 256, n, images % 65536, h % 65536, w % 65536, count % 65536, flags)
    for _ in range(n):
        body += struct.pack(">HHIBII", h % 65536, w % 65536, k % (1 << 32), coder, length % (1 << 32), 0)
    body += bytes(min(length % 64, 40))
    data = bytes(body) + struct.pack(">I", zlib.crc32(bytes(body)))
    try:
        codec.decompress(data)
    except CodecError:
        pass
