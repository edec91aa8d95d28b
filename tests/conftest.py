"""Test configuration: split the CPU into two logical devices before TF starts,
so `tf.distribute.MirroredStrategy` can be tested on a machine without GPUs."""

import os
import pathlib
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The repository's folder (the one that holds tfvq/)."""

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tfvq  # noqa: E402,F401  (sets the CPU allocator before TensorFlow starts)
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
try:
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
except RuntimeError:  # already initialised by an earlier import: keep what is there
    pass


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One `MirroredStrategy` over the two logical CPUs for the whole session.

    Collective all-reduces are keyed per process: several strategies over the
    same devices in one process can collide, so tests share this one."""
    devices = tf.config.list_logical_devices("CPU")
    if len(devices) < 2:
        pytest.fail("the CPU must be split into two logical devices before TensorFlow starts")
    return tf.distribute.MirroredStrategy([d.name for d in devices[:2]])


@pytest.fixture
def repo_env():
    """`repo_env(**changes)`: the environment of a subprocess that runs this checkout's tfvq: `os.environ` with the
    repository first on `PYTHONPATH`, each key of `changes` set to its value (None: removed)."""

    def env(**changes):
        out = dict(os.environ)
        out["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)
        for key, value in changes.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    return env


# ------------------------------------------------------------------------------- images and files of the codec
@pytest.fixture(scope="session")
def old_files():
    """The directory of the files kept from every format version, with the images they decoded to
    (tests/codec/data/README.md)."""
    return pathlib.Path(ROOT) / "tests" / "codec" / "data"


@pytest.fixture(scope="session")
def six_digits():
    """The first six test digits as uint8 [6, 32, 32, 1], as they would come from PNGs."""
    import numpy as np

    from tfvq.data import load_numpy

    return np.round(load_numpy("digits", "test", limit=6) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def two_digits(six_digits):
    """The first two test digits as uint8 [2, 32, 32, 1] (the images the old files were made from)."""
    return six_digits[:2]


@pytest.fixture(scope="session")
def digit(six_digits):
    """The first test digit as a uint8 [32, 32, 1] image, as it would come from a PNG."""
    return six_digits[0]


@pytest.fixture(scope="session")
def digit_png(tmp_path_factory, digit):
    """The first test digit as a PNG file."""
    from PIL import Image

    path = tmp_path_factory.mktemp("png") / "digit.png"
    Image.fromarray(digit[..., 0]).save(path)
    return path


@pytest.fixture(scope="session")
def digits28():
    """The first two real test digits of mnist10k as stored, uint8 [2, 28, 28, 1] (the kept file
    hqa_mnist_layer2_v4_28x28's digits)."""
    from tfvq.data.embedded import mnist10k_raw

    return mnist10k_raw("test")[0][:2, ..., None]


@pytest.fixture(scope="session")
def resized_file(digits28):
    """A file of the first 28x28 digit by `hqa_mnist` at layer 2: resized to 32x32 to be coded."""
    from tfvq import codec

    return codec.compress(digits28[:1], "hqa_mnist", layer=2)


def _fixed_rate(stream_bytes, bits):
    """A `coder="fixed"` stream (each code under the uniform table of its K) is at most a couple of bytes over
    ceil(bits / 8), the fixed rate. It may be shorter: `Encoder.shortest` keeps the fewest bytes that still
    decode, so a run of equal codes at the end (or a file of zero codes) costs fewer bytes."""
    return stream_bytes <= -(-bits // 8) + 2


@pytest.fixture(scope="session")
def fixed_rate():
    """`fixed_rate(stream_bytes, bits)`: whether a fixed-rate stream of `bits` bits of codes is that long."""
    return _fixed_rate


# ------------------------------------------------------------------------------------------ the command line
class _Tfvq:
    """`python -m tfvq.cli ARGS` of THIS checkout (an installed `tfvq` script may run another copy), started in a
    process in `cwd` with the environment `env`; `result()` waits for it: (exit status, stdout, stderr)."""

    def __init__(self, args, cwd, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "tfvq.cli", *map(str, args)], cwd=cwd, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, timeout=180):
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err


@pytest.fixture
def start_tfvq(repo_env):
    """`start_tfvq(args, cwd)`: the `tfvq` command running in a process (`.result()` waits for it)."""
    return lambda args, cwd: _Tfvq(args, cwd, repo_env(TF_CPP_MIN_LOG_LEVEL="2"))


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
