"""One factory for `tf.distribute` strategies, behind `train.py --strategy`."""

import json
import os

import tensorflow as tf

STRATEGIES = ("one_device", "mirrored", "multi_worker_mirrored", "tpu")


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices (to try `mirrored` without GPUs).

    Must run before TensorFlow initialises its devices (before the first op).
    """
    if num_devices is None or int(num_devices) <= 1:
        return
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == int(num_devices):
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(int(num_devices))]
        )
    except RuntimeError as err:
        raise RuntimeError(
            f"Cannot split the CPU into {num_devices} devices: TensorFlow is already initialised. "
            "Call split_cpu (or pass --cpu_devices) before running any TensorFlow op."
        ) from err


def set_threads(inter_op=None):
    """Sets TensorFlow's inter-op thread pool (before the first op).

    Default: twice the CPU cores. The HQA step is many kernels that do not
    each fill both cores of a small machine; running several side by side was
    1.15x faster than TensorFlow's default here (benchmarks/hqa_train.py).
    """
    inter_op = int(inter_op or 2 * (os.cpu_count() or 1))
    try:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError as err:
        raise RuntimeError("Set the thread pools before running any TensorFlow op.") from err


def make_strategy(name="one_device", tpu_address=None):
    """Returns the `tf.distribute.Strategy` called `name`.

    * `one_device`: the first GPU, else the CPU.
    * `mirrored`: synchronous data parallelism over the local GPUs, or over
      the logical CPU devices when there is no GPU (see `split_cpu`).
    * `multi_worker_mirrored`: synchronous data parallelism across workers
      described by the `TF_CONFIG` environment variable.
    * `tpu`: a TPU at `tpu_address` (or found by the cluster resolver).
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; expected one of {', '.join(STRATEGIES)}.")
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(cpus)
    if name == "multi_worker_mirrored":
        config = os.environ.get("TF_CONFIG")
        if not config:
            raise ValueError(
                "multi_worker_mirrored needs the TF_CONFIG environment variable, e.g. "
                '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", "index": 0}} '
                "on each worker."
            )
        try:
            json.loads(config)
        except json.JSONDecodeError as err:
            raise ValueError(f"TF_CONFIG is not valid JSON: {err}") from err
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """True on the worker that writes checkpoints' final copy, summaries and outputs."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0)
