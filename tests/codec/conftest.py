"""Shared fixtures of the codec tests (test modules are imported with --import-mode=importlib: share by fixture)."""

import pathlib

import numpy as np
import pytest


def mutate_file(data, rng):
    """Random corruptions of `data`: bit flips, byte changes, truncation, extension, insertion, deletion."""
    kind = rng.integers(6)
    out = bytearray(data)
    if kind == 0:
        for _ in range(rng.integers(1, 4)):
            at = rng.integers(len(out))
            out[at] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        for _ in range(rng.integers(1, 6)):
            out[rng.integers(len(out))] = int(rng.integers(256))
    elif kind == 2:
        out = out[: rng.integers(len(out))]
    elif kind == 3:
        out += rng.bytes(int(rng.integers(1, 20)))
    elif kind == 4:
        at = rng.integers(len(out) + 1)
        out[at:at] = rng.bytes(int(rng.integers(1, 5)))
    else:
        at = rng.integers(len(out))
        del out[at: at + int(rng.integers(1, 5))]
    return bytes(out)


@pytest.fixture
def mutate():
    """`mutate(data, rng)`: one random corruption of a file's bytes (for the fuzz tests)."""
    return mutate_file


@pytest.fixture(scope="session")
def old_files():
    """The directory of the files kept from every format version, with the images they decoded to (data/README.md)."""
    return pathlib.Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def two_digits():
    """The first two test digits as uint8 [2, 32, 32, 1] (the images the old files were made from)."""
    from tfvq.data import load_numpy

    return np.round(load_numpy("digits", "test", limit=2) * 255).astype(np.uint8)
