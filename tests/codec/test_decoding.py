"""Tests of tfvq.codec.decoding: `decompress` with TFLite decoders where the weights have them, else TensorFlow, and
corrupt files, whichever decodes them, raising `CodecError` only."""

import numpy as np
import pytest

from tfvq import codec
from tfvq.codec import decoding
from tfvq.codec.errors import CodecError


def test_corrupt_files_raise_codec_error(digit):
    data = codec.compress(digit, "hqa_digits", 2, coder="fixed")
    bad = bytearray(data)
    bad[-6] ^= 1  # a byte of the stream
    for broken, message in [(bytes(bad), "CRC-32"), (data[:-1], "CRC-32|could not be decoded|zero byte"),
                            (data[:12], "Truncated"), (b"\x89PNG" + data[4:], "Not a .tfvq")]:
        with pytest.raises(CodecError, match=message):
            codec.decompress(broken)


def test_corrupt_rrvq_files_raise_codec_error(rrvq_file, three_digits, mutate):
    header = codec.read_header(rrvq_file)
    at = len(header.header) + 10  # a byte of the stream
    flipped = bytearray(rrvq_file)
    flipped[at] ^= 0x01
    for broken, message in [(bytes(flipped), "CRC-32"), (rrvq_file[:-1], "CRC-32|could not be decoded|zero byte"),
                            (rrvq_file[:10], "Truncated"), (b"\x89PNG" + rrvq_file[4:], "Not a .tfvq")]:
        with pytest.raises(CodecError, match=message):
            codec.decompress(broken)
    # Every byte of a small file flipped, and every truncation: a CodecError each time (never an image).
    small = codec.compress(three_digits[:2], "rrvq_digits", layer=3, coder="fixed")
    for i in range(len(small)):
        for bit in (0x01, 0x80):
            bad = bytearray(small)
            bad[i] ^= bit
            with pytest.raises(CodecError):
                codec.decompress(bytes(bad))
    for n in range(len(small)):
        with pytest.raises(CodecError):
            codec.decompress(small[:n])
    # Random corruptions of files of every rrvq coder (the model's probabilities, pixels): CodecError only.
    rng = np.random.default_rng(1)
    sources = [codec.compress(three_digits[:1], "rrvq_digits"),
               codec.compress(three_digits[:1], "rrvq_digits", coder="progressive"),
               codec.compress(three_digits[:1], "rrvq_digits", lossless=True)]
    tried = 0
    for i in range(45):
        source = sources[i % len(sources)]
        bad = mutate(source, rng)
        if bad != source:
            tried += 1
            with pytest.raises(CodecError):
                codec.decompress(bad)
    assert tried > 40


def test_a_backend_other_than_the_three_is_refused_before_the_file_is_read():
    with pytest.raises(ValueError, match=r"backend must be one of auto, tflite, tensorflow, got 'gpu'\."):
        decoding.decompress(b"not a file", backend="gpu")


def test_a_reason_is_said_once_per_process(monkeypatch, capsys):
    monkeypatch.setattr(decoding, "_SAID", set())
    for line in ("tfvq: one", "tfvq: two", "tfvq: one"):
        decoding.say_once(line)
    assert capsys.readouterr().err == "tfvq: one\ntfvq: two\n"


def test_weights_without_tflite_decoders_decode_with_tensorflow_saying_so(digit, old_weights, monkeypatch, capsys):
    data = codec.compress(digit, "hqa_digits", 5, coder="fixed", weights=old_weights, backend="tensorflow")
    with pytest.raises(CodecError, match=r"Cannot decode with TFLite alone: these weights of 'hqa_digits' have no "
                                         r"TFLite decoder\."):
        codec.decompress(data, weights=old_weights, backend="tflite")
    monkeypatch.setattr(decoding, "_SAID", set())
    capsys.readouterr()
    images = codec.decompress(data, weights=old_weights)
    assert capsys.readouterr().err == ("tfvq: decoding with TensorFlow: these weights of 'hqa_digits' have no TFLite "
                                       "decoder.\n")
    np.testing.assert_array_equal(images, codec.decompress(data, weights=old_weights, backend="tensorflow"))


def test_decoders_of_another_model_or_not_decoders_at_all_are_refused(rrvq_file, tmp_path):
    from tfvq.codec import lite_model

    manifest = lite_model.find_decoder("hqa_digits")
    assert manifest is not None, "the bundled hqa_digits weights ship their TFLite decoders"
    with pytest.raises(CodecError, match="The file names the model 'rrvq_digits', but the decoders .* decode "
                                         "'hqa_digits'"):
        codec.decompress(rrvq_file, decoder=manifest["path"])
    (tmp_path / "decoder.json").write_text("{}")
    with pytest.raises(CodecError):
        codec.decompress(rrvq_file, decoder=tmp_path / "decoder.json")
