"""One factory for `tf.distribute` strategies (`tfvq.train.strategies`): each name's strategy, the errors of a bad
name or `TF_CONFIG`, the CPU split and thread pool that must come before TensorFlow starts, and the chief."""

import subprocess
import sys
import textwrap

import pytest
import tensorflow as tf

from tfvq.train import strategies

BEFORE_THE_FIRST_OP = textwrap.dedent("""
    import os
    import tensorflow as tf
    from tfvq.train import strategies

    strategies.set_threads()
    assert tf.config.threading.get_inter_op_parallelism_threads() == 2 * (os.cpu_count() or 1)
    strategies.set_threads(3)
    strategies.split_cpu(3)
    strategies.split_cpu(3)  # already so: nothing to do
    mirrored = strategies.make_strategy("mirrored")
    print(tf.config.threading.get_inter_op_parallelism_threads(), len(tf.config.list_logical_devices("CPU")),
          mirrored.num_replicas_in_sync, strategies.is_chief(mirrored))
""")


def test_the_cpu_split_and_the_threads_set_before_the_first_op_make_a_mirrored_strategy_over_the_parts(repo_env):
    out = subprocess.run([sys.executable, "-c", BEFORE_THE_FIRST_OP], env=repo_env(TF_CPP_MIN_LOG_LEVEL="3"),
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["3", "3", "3", "True"]


def test_after_the_first_op_the_cpu_split_and_the_threads_are_refused_saying_so():
    tf.constant(1.0) + 1.0  # TensorFlow has started
    parts = len(tf.config.list_logical_devices("CPU"))
    strategies.split_cpu(None)
    strategies.split_cpu(1)
    strategies.split_cpu(parts)  # what it is already
    with pytest.raises(RuntimeError, match=rf"^Cannot split the CPU into {parts + 1} devices: TensorFlow is already "
                                           r"initialised\. Call split_cpu \(or pass --cpu_devices\)"):
        strategies.split_cpu(parts + 1)
    with pytest.raises(RuntimeError, match=r"^Set the thread pools before running any TensorFlow op\.$"):
        strategies.set_threads(tf.config.threading.get_inter_op_parallelism_threads() + 1)
    assert len(tf.config.list_logical_devices("CPU")) == parts


def test_one_device_is_the_cpu_without_a_gpu():
    strategy = strategies.make_strategy()
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy) and strategy.num_replicas_in_sync == 1
    assert strategy.extended.worker_devices[0].endswith("CPU:0") and strategies.is_chief(strategy)


def test_an_unknown_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match=r"^Unknown strategy 'mirror'; expected one of one_device, mirrored, "
                                         r"multi_worker_mirrored, tpu\.$"):
        strategies.make_strategy("mirror")


def test_multi_worker_needs_a_tf_config_in_json(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=r"^multi_worker_mirrored needs the TF_CONFIG environment variable, e\.g\. "
                                         r'\{"cluster": '):
        strategies.make_strategy("multi_worker_mirrored")
    monkeypatch.setenv("TF_CONFIG", '{"cluster": ')
    with pytest.raises(ValueError, match="^TF_CONFIG is not valid JSON: "):
        strategies.make_strategy("multi_worker_mirrored")


class _Worker(tf.distribute.MultiWorkerMirroredStrategy):
    """A multi-worker strategy as `is_chief` sees it: its class and its cluster resolver's task (not started)."""

    def __init__(self, task_type, task_id):  # pylint: disable=super-init-not-called
        self._task = type("Resolver", (), {"task_type": task_type, "task_id": task_id})()

    @property
    def cluster_resolver(self):
        return self._task


@pytest.mark.parametrize("task_type,task_id,chief", [(None, None, True), ("chief", 0, True), ("worker", 0, True),
                                                     ("worker", 1, False), ("evaluator", 0, False)])
def test_the_chief_is_the_chief_task_else_worker_0(task_type, task_id, chief):
    assert strategies.is_chief(_Worker(task_type, task_id)) is chief
