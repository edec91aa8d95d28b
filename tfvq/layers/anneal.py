"""Schedules the models run inside their training stages: HQA's Gumbel-softmax temperature anneal.

* :func:`linear_anneal` -- "the Gumbel softmax temperature is linearly annealed
  to 0.01, with an initial temperature of 0.4 and 0.66 for CelebA and MNIST
  respectively" (HQA §5.1, App. C.1).

A leaf below `tfvq.models` (which anneals a quantizer's temperature per step)
and `tfvq.train` (whose `tfvq.train.schedules` re-exports it beside the
learning-rate schedules).
"""

import numbers

import keras
import numpy as np
import tensorflow as tf

__all__ = ["linear_anneal"]


def _is_python_scalar(value):
    """True for Python / NumPy real scalars (bools excluded)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, numbers.Real) or (isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf")


def _static_value(value):
    """Concrete NumPy value of a Python number / array / eager tensor, else None."""
    if isinstance(value, (tf.Variable, keras.Variable)):
        return np.asarray(value.numpy()) if tf.executing_eagerly() else None
    if tf.is_tensor(value):
        return tf.get_static_value(value)
    return np.asarray(value)


def linear_anneal(step, total_steps, start, end):
    """Linear annealing from `start` at step 0 to `end` at `total_steps`.

    HQA §5.1 / App. C anneal the Gumbel-softmax temperature linearly, e.g. from
    0.66 (MNIST) or 0.4 (CelebA) to 0.01 over training:

      value(step) = start * (1 - f) + end * f,  f = clip(step / total_steps, 0, 1),

    so the value is exactly `start` at step 0, exactly `end` at
    `step >= total_steps` (clamped afterwards), and linear in between.

    Args:
      step: Current step, >= 0: Python / NumPy number, or a tensor / variable
        (e.g. `optimizer.iterations`) of any real dtype and any shape.
      total_steps: Length of the anneal, > 0: number or scalar tensor.
      start: Value at step 0: number or tensor.
      end: Value from `total_steps` on: number or tensor.

    Returns:
      A Python float if all arguments are Python / NumPy scalars, otherwise a
      float32 tensor (broadcast shape of the arguments).

    Raises:
      TypeError: If a Python argument is not a real number (bools included).
      ValueError: If `total_steps` is known to be <= 0 or `step` is known to be
        negative. A graph tensor `total_steps` is checked at run time with
        `tf.debugging.assert_positive`.
    """
    args = {"step": step, "total_steps": total_steps, "start": start, "end": end}
    for name, value in args.items():
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"`{name}` must be a real number, got the bool {value!r}.")

    total_value = _static_value(total_steps)
    if total_value is not None:
        if total_value.ndim != 0:
            raise ValueError(f"`total_steps` must be a scalar, got shape {total_value.shape}.")
        if not total_value > 0:
            raise ValueError(f"`total_steps` must be > 0, got {total_value}.")
    step_value = _static_value(step)
    if step_value is not None and np.any(step_value < 0):
        raise ValueError(f"`step` must be >= 0, got {step_value}.")

    if all(_is_python_scalar(value) for value in args.values()):
        fraction = min(max(float(step) / float(total_steps), 0.0), 1.0)
        return float(start) * (1.0 - fraction) + float(end) * fraction

    with tf.name_scope("linear_anneal"):
        # The ratio is formed in float64 so that large integer steps (int64
        # `optimizer.iterations`) are not rounded before the division.
        step = tf.cast(tf.convert_to_tensor(step), tf.float64)
        total = tf.cast(tf.convert_to_tensor(total_steps), tf.float64)
        if total_value is None:
            with tf.control_dependencies([tf.debugging.assert_positive(total, message="`total_steps` must be > 0")]):
                total = tf.identity(total)
        fraction = tf.cast(tf.clip_by_value(step / total, 0.0, 1.0), tf.float32)
        start = tf.cast(tf.convert_to_tensor(start), tf.float32)
        end = tf.cast(tf.convert_to_tensor(end), tf.float32)
        return start * (1.0 - fraction) + end * fraction
