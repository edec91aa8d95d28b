"""The codec's one error type (NumPy-free, TensorFlow-free)."""


class CodecError(ValueError):
    """A `.tfvq` file that cannot be decoded: corrupt, truncated, foreign, from
    a newer version, or made with other weights or priors. The message says which."""
