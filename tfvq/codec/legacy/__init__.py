"""Every `.tfvq` version before version 4, read by one function (`read`).

tfvq writes version 4 only (`tfvq.codec.container`); the files it wrote before still decode to the images
they always did (tests/codec/test_old_files.py, from the files kept in tests/codec/data). Each old version
has its module here, which parses a file and decodes it with its model:

    v1_v2   versions 1 (version bytes 1 and 0x81) and 2: the codes bit-packed at the fixed rate
    v3      version 3: entropy-coded chunks, one per layer, decoded by today's coders

They all start with the magic b"TFVQ" and a version byte. `tfvq.codec.read_header` (`tfvq.codec.versions`)
asks `read` for any file that is not version 4; nothing that writes files imports this package.
"""

from tfvq.codec.errors import CodecError
from tfvq.codec.legacy import v1_v2, v3
from tfvq.codec.legacy.v1_v2 import ALL_LAYERS, HEAD, MAGIC

READERS = {1: v1_v2, 1 | ALL_LAYERS: v1_v2, 2: v1_v2, 3: v3}
"""The module of each version byte: `parse(data)` -> its `tfvq.codec.header.FileHeader`, and
`decode(header, model, weights_hash, prior_for, layer, seed)` -> uint8 images."""
NEWEST_VERSION = 3
"""The newest version written under the magic b"TFVQ"."""


def is_legacy(data):
    """True for bytes that start with the magic of the versions before 4."""
    return bytes(data[: len(MAGIC)]) == MAGIC


def read(data):
    """(header, decode) of a file of version 1, 0x81, 2 or 3: the checked header its version's module reads, and
    that module's `decode`.

    Raises:
      CodecError: not a file of these versions, or a corrupt one (the message says why).
    """
    data = bytes(data)
    if not is_legacy(data):
        raise CodecError(f"Not a .tfvq file of versions 1 to {NEWEST_VERSION}: it does not start with the magic "
                         f"bytes {MAGIC!r} (starts with {data[:4]!r}).")
    if len(data) < HEAD.size:
        raise CodecError(f"Truncated .tfvq file: {len(data)} bytes is shorter than the fixed header.")
    version_byte = data[len(MAGIC)]
    version = version_byte & ~ALL_LAYERS
    if version > NEWEST_VERSION:
        raise CodecError(f"The file is format version {version}, newer than this tfvq reads under the magic {MAGIC!r} "
                         f"(versions 1 to {NEWEST_VERSION}): upgrade tfvq.")
    if version_byte not in READERS:
        raise CodecError(f"Unknown .tfvq format version {version} (version byte 0x{version_byte:02x}; this tfvq "
                         f"reads the version bytes {', '.join(f'0x{b:02x}' for b in sorted(READERS))}).")
    module = READERS[version_byte]
    return module.parse(data), module.decode
