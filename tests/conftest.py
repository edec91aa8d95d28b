"""Test configuration: split the CPU into two logical devices before TF starts,
so `tf.distribute.MirroredStrategy` can be tested on a machine without GPUs."""

import os

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
