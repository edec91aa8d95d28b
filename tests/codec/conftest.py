"""Shared fixtures of the codec tests (test modules are imported with --import-mode=importlib: share by fixture)."""

import functools
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import tfvq


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


# ------------------------------------------------------------------------------------------- version 4 files
def _fixed_rate(stream_bytes, bits):
    """A `coder="fixed"` stream (each code under the uniform table of its K) is at most a couple of bytes over
    ceil(bits / 8), the fixed rate. It may be shorter: `Encoder.shortest` keeps the fewest bytes that still
    decode, so a run of equal codes at the end (or a file of zero codes) costs fewer bytes."""
    return stream_bytes <= math.ceil(bits / 8) + 2


@pytest.fixture(scope="session")
def fixed_rate():
    """`fixed_rate(stream_bytes, bits)`: whether a fixed-rate stream of `bits` bits of codes is that long."""
    return _fixed_rate


def _uniform_stream(codes, ks):
    """The stream a fixed-rate file of `codes` {layer: [count, h, w]} holds: each layer, the top first, under the
    uniform table of its K (`ks[layer]`), shortened as the container shortens it."""
    from tfvq.codec import entropy

    stream = entropy.Encoder()
    for l in sorted(codes, reverse=True):
        stream.static(np.asarray(codes[l]).ravel(), entropy.uniform_table(ks[l]))
    return stream.shortest()


@pytest.fixture(scope="session")
def uniform_stream():
    """`uniform_stream(codes, ks)`: the stream of a fixed-rate file of `codes` {layer: [count, h, w]}, K = ks[layer]."""
    return _uniform_stream


@pytest.fixture(scope="session")
def fixed_file():
    """`fixed_file(model, codes, first_layer, ks, digest, images=None)`: a version 4 file of `codes` {layer:
    [count, h, w]}, each layer under the uniform table of K = ks[layer], with the tag and CRC of the digest D."""
    from tfvq.codec import container

    def write(model, codes, first_layer, ks, digest, images=None):
        images = len(next(iter(codes.values()))) if images is None else images
        return bytes(container.write_file(model, digest, first_layer, dict.fromkeys(codes, container.UNIFORM),
                                          _uniform_stream(codes, ks), codes, images=images))

    return write


@pytest.fixture(scope="session")
def decoded_codes():
    """`decoded_codes(data, weights=None)`: {layer: codes} a version 4 file's stream decodes to, its CRC checked
    (what `decompress` makes images of), the priors loaded once per file when a coder asks for them."""
    from tfvq.codec import coding, container, files

    def decode(data, weights=None):
        f = container.parse(data)
        model, digest = files.load_model(f.model, weights)
        prior_for = functools.cache(lambda: files.load_prior(f.model, model, digest))
        return coding.compact_codes(f, model, digest, prior_for)[0]

    return decode


# ------------------------------------------------------------------------------------------ the command line
class _Tfvq:
    """`python -m tfvq.cli ARGS` of THIS checkout (an installed `tfvq` script may run another copy), started in a
    process in `cwd`; `result()` waits for it: (exit status, stdout, stderr)."""

    def __init__(self, args, cwd):
        root = os.path.dirname(os.path.dirname(os.path.abspath(tfvq.__file__)))
        path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=path)
        self.proc = subprocess.Popen([sys.executable, "-m", "tfvq.cli", *map(str, args)], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, timeout=180):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.fixture(scope="session")
def start_tfvq():
    """`start_tfvq(args, cwd)`: the `tfvq` command running in a process (`.result()` waits for it)."""
    return _Tfvq


_TF_LOG = re.compile(r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                     r"|[IWEF]\d{4} \d+:\d+:\d+\.\d+ +\d+ \S+:\d+\] .*)$")
"""TensorFlow's own C++ log lines (absl), which TF_CPP_MIN_LOG_LEVEL no longer silences: not tfvq's output."""


def _one_line_error(code, err):
    assert code != 0 and "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if not _TF_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith("tfvq: error: "), err
    return lines[0]


@pytest.fixture(scope="session")
def one_line_error():
    """`one_line_error(status, stderr)`: the one line `tfvq: error: ...` a failed command printed (asserted)."""
    return _one_line_error
