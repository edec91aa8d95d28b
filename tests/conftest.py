"""Test configuration: split the CPU into two logical devices before TF starts,
so `tf.distribute.MirroredStrategy` can be tested on a machine without GPUs."""

import os

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
