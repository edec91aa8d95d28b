"""Any `.tfvq` file, whatever its version, read by one function (NumPy only: no model, no TensorFlow).

`read` is the one place the codec tells a file's version: version 4 (`tfvq.codec.container`, what
`compress` writes) in front, every older one through `tfvq.codec.legacy`. It hands back the file's
header, the same kind for every version (`tfvq.codec.header.FileHeader`), and the function that decodes
it with its model. `tfvq.codec.read_header`, `tfvq.codec.decompress` and the `tfvq` commands read every
file through it.
"""

from tfvq.codec import coding, container, legacy
from tfvq.codec.errors import CodecError


def read(data):
    """(header, decode) of a `.tfvq` file's bytes: its checked header (a `FileHeader`) and the function
    `decode(header, model, weights_hash, prior_for, layer, seed)` that gives its uint8 images.

    Raises `CodecError` for anything but a well-formed file of a version this tfvq reads.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"Expected the file's bytes, got {type(data).__name__}.")
    if container.is_compact(data):
        return container.parse(data), coding.decode_compact
    if legacy.is_legacy(data):
        return legacy.read(data)
    raise CodecError(f"Not a .tfvq file: it starts with {bytes(data[:4])!r}, neither {container.MAGIC!r} (format "
                     f"version {container.VERSION}) nor {legacy.MAGIC!r} (versions 1 to {legacy.NEWEST_VERSION}).")


def read_header(data):
    """The header of a `.tfvq` file of any version, read without the model (`read`): a `FileHeader` that
    `tfvq info` prints (`describe`).

    Raises `CodecError` for a file that is not a well-formed `.tfvq` file.
    """
    return read(data)[0]
