"""Training schedules of HQA (Williams et al. 2020, §5.1 and App. C) and RRVQ-VAE (App. C).

* :func:`linear_anneal` -- the Gumbel-softmax temperature schedule (`tfvq.layers.anneal`'s, re-exported so
  that every training schedule is found here): "the Gumbel
  softmax temperature is linearly annealed to 0.01, with an initial
  temperature of 0.4 and 0.66 for CelebA and MNIST respectively".
* :class:`CosineAnnealFinalFraction` -- the learning-rate schedule: "a learning
  rate of 4e-4 which is cosine annealed in the final third of training".
* :class:`ReduceOnPlateau` -- RRVQ-VAE's learning-rate decay: "an initial
  learning rate [8e-4] that we decay on plateau, multiplying by 0.8 when there
  has been no decrease in the test set ELBO for 20 / 5 epochs, down to a
  minimum of 5e-5".
"""

import math
import numbers

import keras
import numpy as np
import tensorflow as tf

# The temperature anneal lives with the models that run it (a leaf below them); re-exported here.
from tfvq.layers.anneal import linear_anneal

__all__ = ["CosineAnnealFinalFraction", "ReduceOnPlateau", "linear_anneal"]


def _check_real(name, value):
    """Raises TypeError if `value` is a bool or not a real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r} of type {type(value).__name__}.")


@keras.saving.register_keras_serializable(package="tfvq")
class CosineAnnealFinalFraction(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate, cosine-annealed over the final `fraction` of training.

    HQA App. C: "a learning rate of 4e-4 which is cosine annealed in the final
    third of training". With `knee = (1 - fraction) * total_steps` and
    `span = fraction * total_steps`:

      lr(step) = initial_learning_rate                                  if step <= knee,
      lr(step) = final + (initial - final) * (1 + cos(pi * p)) / 2,
                 p = (step - knee) / span                               if knee < step < total_steps,
      lr(step) = final_learning_rate                                    if step >= total_steps.

    The schedule is continuous (the cosine starts at `initial` at the knee and
    reaches `final` at `total_steps`) and non-increasing when
    `final_learning_rate <= initial_learning_rate`. The knee need not be an
    integer step.

    Args:
      initial_learning_rate: Learning rate before the knee, a float >= 0
        (4e-4 in HQA).
      total_steps: Total number of training steps, an integer > 0.
      fraction: Final fraction of `total_steps` over which to anneal, a float
        in (0, 1]. Defaults to 1/3 (HQA); 1 gives plain cosine decay.
      final_learning_rate: Learning rate reached at `total_steps` and kept
        afterwards, a float >= 0. Defaults to 0.
      name: Optional name scope of the schedule's ops.

    Raises:
      TypeError: If an argument has the wrong type (e.g. a float or bool
        `total_steps`).
      ValueError: If an argument is out of range.
    """

    def __init__(
        self,
        initial_learning_rate,
        total_steps,
        fraction=1.0 / 3.0,
        final_learning_rate=0.0,
        name=None,
    ):
        super().__init__()
        _check_real("initial_learning_rate", initial_learning_rate)
        _check_real("fraction", fraction)
        _check_real("final_learning_rate", final_learning_rate)
        if isinstance(total_steps, (bool, np.bool_)) or not isinstance(total_steps, numbers.Integral):
            raise TypeError(f"`total_steps` must be an integer, got {total_steps!r} of type {type(total_steps).__name__}.")
        if not (math.isfinite(initial_learning_rate) and initial_learning_rate >= 0):
            raise ValueError(f"`initial_learning_rate` must be finite and >= 0, got {initial_learning_rate}.")
        if not (math.isfinite(final_learning_rate) and final_learning_rate >= 0):
            raise ValueError(f"`final_learning_rate` must be finite and >= 0, got {final_learning_rate}.")
        if total_steps <= 0:
            raise ValueError(f"`total_steps` must be > 0, got {total_steps}.")
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"`fraction` must lie in (0, 1], got {fraction}.")
        self.initial_learning_rate = float(initial_learning_rate)
        self.total_steps = int(total_steps)
        self.fraction = float(fraction)
        self.final_learning_rate = float(final_learning_rate)
        self.name = name

    @property
    def knee(self):
        """The step `(1 - fraction) * total_steps` at which annealing starts."""
        return (1.0 - self.fraction) * self.total_steps

    def __call__(self, step):
        """Learning rate at `step` (a number or integer/float tensor), as float32."""
        with tf.name_scope(self.name or "cosine_anneal_final_fraction"):
            # float64 keeps large integer steps exact before the subtraction.
            step = tf.cast(tf.convert_to_tensor(step), tf.float64)
            span = self.fraction * self.total_steps
            progress = tf.clip_by_value((step - self.knee) / span, 0.0, 1.0)
            cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
            lr = self.final_learning_rate + (self.initial_learning_rate - self.final_learning_rate) * cosine
            return tf.cast(lr, tf.float32)

    def get_config(self):
        """Returns the constructor arguments."""
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "total_steps": self.total_steps,
            "fraction": self.fraction,
            "final_learning_rate": self.final_learning_rate,
            "name": self.name,
        }


class ReduceOnPlateau(tf.Module):
    """Multiplies a value (a learning rate) by `factor` when a metric stops decreasing.

    RRVQ-VAE App. C: the learning rate is multiplied by 0.8 "when there has
    been no decrease in the test set ELBO [in bits/dim] for 20 (SVHN,
    CIFAR-10) / 5 (CelebA) epochs, down to a minimum of 5e-5". The trainer
    calls :meth:`update` once per evaluation period (its `eval_every` steps
    stand in for the paper's epochs) with the test-set bits/dim.

    The rule (Keras' `ReduceLROnPlateau` with `mode="min"`, no cooldown):

      if metric < best - min_delta:  best = metric; wait = 0
      else:                          wait += 1
                                     if wait >= patience:
                                         value = max(value * factor, min_value); wait = 0

    So with `patience=p` the value drops at the p-th evaluation in a row
    without improvement, and again p evaluations later if there is still none.
    A non-finite metric counts as no improvement. A value already at or below
    `min_value` is left unchanged.

    Example (patience 2, factor 0.5, min 0.1, starting at 1.0):

      metric:  5.0  4.0  4.0  4.5  4.0  3.0  3.5  3.5  3.5  3.5
      wait:    0    0    1    0    1    0    1    0    1    0
      value:   1.0  1.0  1.0  0.5  0.5  0.5  0.5  0.25 0.25 0.125

    `best` and `wait` are `tf.Variable`s, so a `tf.train.Checkpoint` holding
    this module saves and restores the schedule's state with the run.

    Args:
      factor: multiplier in (0, 1) applied on a plateau (0.8 in the paper).
      patience: evaluations without improvement before reducing, an int >= 1
        (20 or 5 in the paper, in epochs).
      min_value: lower bound of the value, >= 0 (5e-5 in the paper).
      min_delta: how much the metric must fall below `best` to count as an
        improvement, >= 0 (0: any decrease).
      name: module name.
    """

    def __init__(self, factor=0.8, patience=5, min_value=0.0, min_delta=0.0, name=None):
        super().__init__(name=name or "reduce_on_plateau")
        _check_real("factor", factor)
        _check_real("min_value", min_value)
        _check_real("min_delta", min_delta)
        if isinstance(patience, (bool, np.bool_)) or not isinstance(patience, numbers.Integral):
            raise TypeError(f"`patience` must be an integer, got {patience!r} of type {type(patience).__name__}.")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"`factor` must lie in (0, 1), got {factor}.")
        if patience < 1:
            raise ValueError(f"`patience` must be >= 1, got {patience}.")
        if not (math.isfinite(min_value) and min_value >= 0):
            raise ValueError(f"`min_value` must be finite and >= 0, got {min_value}.")
        if not (math.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"`min_delta` must be finite and >= 0, got {min_delta}.")
        self.factor = float(factor)
        self.patience = int(patience)
        self.min_value = float(min_value)
        self.min_delta = float(min_delta)
        self.best = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best")
        self.wait = tf.Variable(0, dtype=tf.int64, trainable=False, name="wait")

    def update(self, metric, value):
        """Feeds one evaluation's `metric`; returns the new value (a Python float).

        Args:
          metric: the evaluation metric, lower is better (a number or scalar tensor).
          value: the current value (a number, scalar tensor or variable); it is
            not modified: assign the returned value yourself.
        """
        metric = float(metric.numpy() if hasattr(metric, "numpy") else metric)
        value = float(value.numpy() if hasattr(value, "numpy") else value)
        if math.isfinite(metric) and metric < float(self.best.numpy()) - self.min_delta:
            self.best.assign(metric)
            self.wait.assign(0)
            return value
        self.wait.assign_add(1)
        if int(self.wait.numpy()) >= self.patience:
            self.wait.assign(0)
            if value > self.min_value:
                value = max(value * self.factor, self.min_value)
        return value
