"""The codec's error type, and the one kind of it a decoder may retry (NumPy-free, TensorFlow-free)."""


class CodecError(ValueError):
    """A `.tfvq` file that cannot be decoded: corrupt, truncated, foreign, from
    a newer version, or made with other weights or priors. The message says which."""


class ChecksumError(CodecError):
    """Decoded codes (or pixels) whose CRC-32 is not the file's: a corrupt file, or probabilities other than the
    encoder's (a model-coded layer or lossless pixels decoded by other arithmetic, `tfvq.codec.decoding`)."""
