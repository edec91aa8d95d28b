"""Tests of tfvq.codec.errors: the codec's error type, and the one kind of it a decoder may retry."""

import ast
import inspect

import pytest

from tfvq import codec
from tfvq.codec import errors
from tfvq.codec.errors import ChecksumError, CodecError


def test_a_codec_error_is_a_value_error_and_a_checksum_error_a_codec_error():
    assert issubclass(CodecError, ValueError) and issubclass(ChecksumError, CodecError)
    assert codec.CodecError is CodecError
    with pytest.raises(ValueError, match="a message"):
        raise ChecksumError("a message")


def test_only_codes_that_do_not_match_their_crc_raise_a_checksum_error(digit):
    data = codec.compress(digit, "hqa_digits", 2, coder="fixed")
    bad = bytearray(data)
    bad[-6] ^= 1  # a byte of the stream: other codes, which decode
    with pytest.raises(ChecksumError, match="CRC-32"):
        codec.decompress(bytes(bad), backend="tensorflow")
    for broken in (data[:12], b"\x89PNG" + data[4:]):  # a truncated header, a foreign file: not retried
        with pytest.raises(CodecError) as raised:
            codec.decompress(broken, backend="tensorflow")
        assert not isinstance(raised.value, ChecksumError)


def test_the_errors_module_imports_nothing():
    """It is NumPy-free and TensorFlow-free: any part of the codec may raise its errors."""
    tree = ast.parse(inspect.getsource(errors))
    assert not [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
