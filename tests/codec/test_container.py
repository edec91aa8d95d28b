"""The compact container (format version 4): its layout byte by byte, its one stream, its one check."""

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfvq import codec
from tfvq.codec import coding, container, entropy, files
from tfvq.codec.errors import CodecError
from tfvq.data.embedded import mnist10k_raw

# ------------------------------------------------------------------------------------------------ layout
@given(st.integers(0, 1 << 40))
def test_varints_round_trip_in_their_shortest_form(value):
    data = container.put_varint(value)
    assert len(data) == max(1, -(-value.bit_length() // 7))
    assert container.get_varint(data + b"\xff", 0, "x", 1 << 40) == (value, len(data))


@pytest.mark.parametrize("coders,size", [
    ({5: 1}, 1), ({1: 3, 2: 3, 3: 3, 4: 3, 5: 1}, 2), ({1: 2, 2: 2, 3: 2, 4: 1, 5: 1}, 2),
    ({l: 2 for l in range(1, 33)}, 2), ({l: 3 if l < 7 else 1 for l in range(1, 8)}, 2)])
def test_the_layers_field_is_as_small_as_documented(coders, size):
    header = container.write_header("m", b"\0\0", min(coders), coders)
    assert len(header) == 3 + 2 + 2 + size
    assert container.parse(header + bytes(4)).coders == coders


def test_layers_fields_that_cannot_be_right_are_refused():
    head = b"TQ\x40\x01m\0\0"
    for field, message in ((b"\x00\x00\x00", "longer than any value"),
                           (bytes([0b1_1_01_0001]), "padding bits"),  # l = 1, n = 1, coder 1, then 0001
                           # l = 1, n = 2, coder 0, more runs: 1, length gamma(2) = 010 (both layers)
                           (bytes([0b1_010_00_1_0, 0b10_000000]), "more runs of coders follow its last layer"),
                           (b"\x01", "ends inside")):  # seven zero bits, then a one: 7 more bits needed
        with pytest.raises(CodecError, match=message):
            container.parse(head + field + bytes(4))


def test_overlong_and_endless_varints_are_refused():
    with pytest.raises(CodecError, match="shortest form"):
        container.get_varint(b"\x81\x00", 0, "x", 1000)  # 1 written in two bytes
    with pytest.raises(CodecError, match="ends inside"):
        container.get_varint(b"\x81", 0, "x", 1000)
    with pytest.raises(CodecError, match="more than 1000"):
        container.get_varint(container.put_varint(1001), 0, "x", 1000)


def test_a_one_layer_header_is_the_documented_21_bytes():
    header = container.write_header("hqa_digits", b"\xab\xcd", 5, {5: container.STATIC})
    # magic, version 4 with no flags, name length and name, tag, then the layers: gamma(5) = 00101,
    # gamma(1) = 1, coder 01.
    assert header == b"TQ" + bytes([0x40, 10]) + b"hqa_digits" + b"\xab\xcd" + bytes([0b00101_1_01])
    data = container.write(header, b"\x9c", bytes(8), {5: np.array([[[7]]])})
    assert len(data) == 21 + 1
    crc = zlib.crc32(bytes(8) + header + b"\x9c" + np.array([7], ">u4").tobytes())
    assert data[-4:] == crc.to_bytes(4, "big")


def test_optional_fields_are_written_only_when_needed():
    coders = {1: container.CONTEXT, 2: container.MODEL, 3: container.UNIFORM}
    header = container.write_header("m", b"\0\0", 1, coders, image_size=(300, 7), images=1000, lossless=True)
    f = container.parse(header + b"\x01" + bytes(4))
    assert (f.coders, f.image_size, f.images, f.lossless, f.layers) == (coders, (300, 7), 1000, True, (1, 2, 3))
    assert header[2] == 0x40 | container.LOSSLESS | container.SIZED | container.MANY
    # gamma(1) = 1, gamma(3) = 011; runs top first: UNIFORM (00, more: 1, gamma(1) = 1), MODEL (10, more: 1,
    # gamma(1) = 1), CONTEXT (11, the last: 0); zero bits to a whole byte.
    assert header[-7:-5] == bytes([0b1_011_00_1_1, 0b10_1_1_11_0_0])
    assert header[-5:] == container.put_varint(300) + container.put_varint(7) + container.put_varint(1000)


@settings(max_examples=200, deadline=None)
@given(name=st.text(min_size=1, max_size=20).filter(lambda s: 1 <= len(s.encode()) <= 255),
       first=st.integers(1, 200), coders=st.lists(st.integers(0, 3), min_size=1, max_size=8),
       size=st.none() | st.tuples(st.integers(1, 2048), st.integers(1, 2048)), images=st.integers(1, 65535),
       lossless=st.booleans(), tag=st.binary(min_size=2, max_size=2), stream=st.binary(max_size=12),
       resized=st.booleans())
def test_any_header_written_parses_back(name, first, coders, size, images, lossless, tag, stream, resized):
    coders = {first + i: c for i, c in enumerate(coders)}
    resized = resized and size is not None and not lossless  # RESIZED: a stored size, lossy
    header = container.write_header(name, tag, first, coders, size, images, lossless, resized)
    stream, digest = stream.rstrip(b"\0"), tag + bytes(6)
    data = container.write(header, stream, digest, {})
    f = container.parse(data)
    assert (f.model, f.tag, f.first_layer, f.coders, f.image_size, f.images, f.lossless, f.stream, f.header,
            f.resized) == (name, tag, first, coders, size, images, lossless, stream, header, resized)
    assert bytes(f) == data and f.file_bytes == len(data) and f.num_layers == len(coders)
    # The writer's own account of the file is what its reader reads.
    assert container.write_file(name, digest, first, coders, stream, {}, size, images, lossless, resized) == f


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40))
def test_any_bytes_after_the_magic_parse_or_raise_codec_error(tail):
    try:
        container.parse(b"TQ\x40" + tail)
    except CodecError:
        pass


def test_a_stream_ending_in_a_zero_byte_is_refused():
    header = container.write_header("hqa_digits", b"\0\0", 5, {5: container.STATIC})
    with pytest.raises(CodecError, match="ends in a zero byte"):
        container.parse(header + b"\x07\x00" + bytes(4))


# ------------------------------------------------------------------------------------------------ stream
def test_the_shortest_stream_decodes_every_symbol_and_is_never_longer():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 40, 300):
        tables = entropy.frequencies(rng.integers(0, 1000, size=(n, 9)))
        symbols = rng.integers(0, 9, size=n)
        encoder = entropy.Encoder()
        encoder.tables(symbols, tables)
        short = encoder.shortest()
        assert len(short) <= len(encoder.bytes().rstrip(b"\0")) and not short.endswith(b"\0")
        assert len(short) <= int(np.ceil(encoder.bits / 8)) + 2  # within two bytes of the information
        decoder = entropy.Decoder(words=entropy.stream_words(short), what="test")
        np.testing.assert_array_equal(decoder.tables(tables), symbols)


# ------------------------------------------------------------------------------------------------ files
@pytest.fixture(scope="module")
def digits():
    from tfvq.data import load_numpy

    return np.round(load_numpy("digits", "test", limit=50) * 255).astype(np.uint8)


def test_one_image_files_spend_at_most_23_bytes_on_the_container(digits):
    for name, layer in (("hqa_digits", 5), ("hqa_digits", 3), ("rrvq_digits", None)):
        data = codec.compress(digits[:1], name, layer)
        f = codec.read_header(data)
        assert f.version == 4 and f.image_size is None and f.images == 1
        assert len(data) - len(f.stream) == len(f.header) + 4 <= 23


def test_hqa_digits_8_bit_files_average_at_most_24_bytes(digits):
    sizes = [len(codec.compress(digits[i:i + 1], "hqa_digits", 5)) for i in range(len(digits))]
    assert np.mean(sizes) <= 24


def test_auto_is_never_larger_than_any_other_coder(digits):
    for name, layer in (("hqa_digits", 2), ("rrvq_digits", 1)):
        x = digits[:2]
        auto = len(codec.compress(x, name, layer))
        for coder in ("static", "progressive", "context", "fixed"):
            assert auto <= len(codec.compress(x, name, layer, coder=coder))


def test_a_decoder_with_other_tables_is_caught_by_the_crc(digits, monkeypatch):
    data = codec.compress(digits[:2], "hqa_digits", 3, coder="static")
    np.testing.assert_array_equal(codec.decompress(data), codec.decompress(data))
    real, digest = codec.StaticPrior.table, files.load_prior("hqa_digits", *files.load_model("hqa_digits")).digest
    # A decoder that names the same priors but computes other tables: the codes decode differently.
    monkeypatch.setattr(codec.StaticPrior, "digest", property(lambda self: digest))
    monkeypatch.setattr(codec.StaticPrior, "table", lambda self, l: real(self, l)[::-1].copy())
    with pytest.raises(CodecError, match="does not match its CRC-32|could not be decoded"):
        codec.decompress(data)


def test_other_weights_are_named_before_decoding(digits, monkeypatch):
    data = codec.compress(digits[:1], "hqa_digits", 4, coder="fixed")
    model, digest = files.load_model("hqa_digits")
    f = codec.read_header(data)
    with pytest.raises(CodecError, match="other weights of 'hqa_digits'"):
        coding.compact_codes(f, model, bytes(8), lambda: None)


@pytest.mark.slow
def test_ten_thousand_mutated_files_give_only_codec_errors(digits, mutate, decoded_codes):
    sources = [codec.compress(digits[:1], "hqa_digits", 1),  # context priors and the static top
               codec.compress(digits[:2], "rrvq_digits", coder="static"),
               codec.compress(digits[:1, :20, :30], "hqa_digits", 2, coder="fixed")]  # sized, uniform
    for data in sources:
        decoded_codes(data)
    rng = np.random.default_rng(0)
    refused = 0
    for i in range(10_000):
        source = sources[i % len(sources)]
        bad = mutate(source, rng)
        if bad == source:
            continue
        with pytest.raises(CodecError):
            decoded_codes(bad)
        refused += 1
    assert refused > 9_900
    # And through decompress itself, model probabilities and pixels included, on fewer files.
    sources = [codec.compress(digits[:1], "rrvq_digits", lossless=True),
               codec.compress(digits[:2], "hqa_digits", 2, coder="progressive"),
               codec.compress(mnist10k_raw("test")[0][:1, ..., None], "hqa_mnist", 2)]  # 28x28, resized
    for i in range(100):
        source = sources[i % len(sources)]
        bad = mutate(source, rng)
        if bad != source:
            with pytest.raises(CodecError):
                codec.decompress(bad)


def test_the_version_after_the_magic_is_named():
    header = container.write_header("hqa_digits", b"\0\0", 5, {5: container.STATIC})
    newer = b"TQ" + bytes([0x50]) + header[3:] + b"\x07" + bytes(4)
    with pytest.raises(CodecError, match="format version 5, newer than this tfvq reads"):
        codec.read_header(newer)
    with pytest.raises(CodecError, match="says format version 3 after the magic"):
        codec.read_header(b"TQ" + bytes([0x30]) + header[3:] + b"\x07" + bytes(4))


def test_a_corrupt_or_contradictory_size_field_is_a_codec_error(resized_file):
    f = codec.read_header(resized_file)
    at = len(f.header) - 2  # the size's two varints end the header of a one-image file
    assert resized_file[at: at + 2] == bytes([28, 28])
    for size in (bytes([27, 28]), bytes([28, 99])):  # a size that parses: the CRC says no
        with pytest.raises(CodecError, match="CRC-32"):
            codec.decompress(resized_file[:at] + size + resized_file[at + 2:])
    with pytest.raises(CodecError, match=f"1..{container.MAX_IMAGE_PIXELS} pixels"):
        codec.decompress(resized_file[:at] + bytes([0, 28]) + resized_file[at + 2:])
    no_size = bytes([resized_file[2] & ~container.SIZED])
    with pytest.raises(CodecError, match="resized, but stores no image size"):
        codec.read_header(resized_file[:2] + no_size + resized_file[3:at] + resized_file[at + 2:])
    lossless = bytes([resized_file[2] | container.LOSSLESS])
    with pytest.raises(CodecError, match="resized, but is lossless"):
        codec.read_header(resized_file[:2] + lossless + resized_file[3:])
    with pytest.raises(ValueError, match="stores their size"):
        container.write_header("hqa_mnist", b"\0\0", 5, {5: container.STATIC}, resized=True)
