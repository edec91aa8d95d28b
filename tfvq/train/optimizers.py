"""Optimizers used to train the tfvq models.

* :class:`RAdam` -- Rectified Adam (Liu et al., "On the Variance of the Adaptive
  Learning Rate and Beyond", ICLR 2020, Algorithm 2), the optimizer of HQA
  (Williams et al. 2020, App. C: "RAdam with a learning rate of 4e-4 which is
  cosine annealed in the final third of training"). Keras 3 has no RAdam.
"""

import math
import numbers

import keras
import tensorflow as tf
from keras import ops

from tfvq.train.schedules import CosineAnnealFinalFraction

__all__ = ["OPTIMIZERS", "RAdam", "make_optimizer"]


def _check_float(name, value, low, high, low_inclusive=True, high_inclusive=False):
    """Returns `value` as a Python float after checking it lies in a range.

    Raises:
      TypeError: If `value` is not a real Python / NumPy number (or is a bool).
      ValueError: If `value` is not finite or lies outside the range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r} of type {type(value).__name__}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    too_low = value < low if low_inclusive else value <= low
    too_high = value > high if high_inclusive else value >= high
    if too_low or too_high:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        raise ValueError(f"`{name}` must lie in {left}{low}, {high}{right}, got {value}.")
    return value


@keras.saving.register_keras_serializable(package="tfvq")
class RAdam(keras.optimizers.Optimizer):
    """Rectified Adam (Liu et al., ICLR 2020, Algorithm 2).

    Adam's adaptive learning rate has a variance that diverges in the first few
    steps, when the second-moment estimate is built from a handful of gradients.
    RAdam estimates the length of the approximated simple moving average,

      rho_inf = 2 / (1 - beta_2) - 1,
      rho_t   = rho_inf - 2 t beta_2^t / (1 - beta_2^t),

    and, at step t (1-based, `t = iterations + 1`), with

      m_t   = beta_1 m_{t-1} + (1 - beta_1) g_t,
      v_t   = beta_2 v_{t-1} + (1 - beta_2) g_t^2,
      m_hat = m_t / (1 - beta_1^t),

    applies

      * if rho_t > rectify_threshold (variance tractable): the rectified
        adaptive step
          r_t   = sqrt((rho_t - 4)(rho_t - 2) rho_inf
                       / ((rho_inf - 4)(rho_inf - 2) rho_t)),
          v_hat = sqrt(v_t / (1 - beta_2^t)),
          theta_t = theta_{t-1} - lr * r_t * m_hat / (v_hat + epsilon);
      * otherwise: SGD with bias-corrected momentum,
          theta_t = theta_{t-1} - lr * m_hat.

    Both moments are updated at every step, whichever branch is taken. With the
    default `beta_2 = 0.999`, rho_t is just below t for small t: with the
    paper's threshold 4 the first four steps are un-rectified (rho_4 = 3.997)
    and rectification starts at step 5 (rho_5 = 4.996); with threshold 5 it
    starts at step 6 (rho_6 = 5.994).

    Notes on choices made here:

    * `epsilon` is added to the *bias-corrected* root second moment `v_hat`
      (as PyTorch's `torch.optim.RAdam` does). Keras' `Adam` and the authors'
      reference code add it to the uncorrected `sqrt(v_t)` instead, which is
      a larger effective epsilon early in training. Algorithm 2 of the paper
      itself has no epsilon.
    * `rectify_threshold` defaults to 4, the paper's condition "rho_t > 4"
      (Algorithm 2). The authors' reference code and some other
      implementations rectify only when rho_t >= 5; pass
      `rectify_threshold=5.0` to get that behaviour (the test is still the
      strict `rho_t > 5`, which differs from `>= 5` only if rho_t is exactly
      5). With `beta_2 = 0.999` the two thresholds differ only at step 5.
    * The step-dependent scalars (`beta^t`, `rho_t`, `r_t`) are computed in
      float64 from the Python values of the betas and only then cast to the
      variable dtype. In float32, `rho_t` is the difference of two numbers
      near 2000 and `r_t` would carry ~1e-4 relative error around the
      rectification onset; the per-element arithmetic stays in the variable
      dtype.
    * `tf.IndexedSlices` gradients (e.g. from `tf.gather` / embeddings) are
      densified: the moments of all rows decay at every step, exactly as if
      the gradient were the dense tensor with zero rows (no "lazy" updates).

    Distribution (`tf.distribute.MirroredStrategy`), gradient clipping,
    decoupled weight decay, learning-rate schedules and checkpointing are
    handled by the Keras base class. The optimizer state is `iterations` plus
    one `momentum` and one `velocity` slot per trainable variable, so it can be
    saved with `tf.train.Checkpoint(optimizer=opt)` or inside a `.keras` file.

    Args:
      learning_rate: Float, or a
        `keras.optimizers.schedules.LearningRateSchedule` (called with
        `iterations`), or a zero-argument callable. Defaults to 4e-4 (HQA
        App. C).
      beta_1: Decay rate of the first moment, a Python float in [0, 1).
      beta_2: Decay rate of the second moment, a Python float in [0, 1). If
        `rho_inf = 2 / (1 - beta_2) - 1 <= rectify_threshold` (e.g.
        `beta_2 <= 0.6` with the default threshold), the rectified branch is
        never taken and RAdam is SGD with bias-corrected momentum.
      epsilon: Non-negative float added to `v_hat` (see the notes above).
      rectify_threshold: Float >= 4: the adaptive step is used when
        `rho_t > rectify_threshold`. 4 follows the paper; 5 follows the
        reference implementation. Values below 4 are rejected because `r_t` is
        undefined (the square root of a negative number) for rho_t < 4.
      **kwargs: Passed to `keras.optimizers.Optimizer`: `name`,
        `weight_decay`, `clipnorm`, `clipvalue`, `global_clipnorm`, `use_ema`,
        `ema_momentum`, `ema_overwrite_frequency`, `loss_scale_factor`,
        `gradient_accumulation_steps`.

    Raises:
      TypeError: If a beta, `epsilon` or `rectify_threshold` is not a real
        number.
      ValueError: If a beta is outside [0, 1), `epsilon` is negative or
        `rectify_threshold` < 4.
    """

    def __init__(
        self,
        learning_rate=4e-4,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        rectify_threshold=4.0,
        **kwargs,
    ):
        if kwargs.get("name") is None:
            kwargs["name"] = "radam"
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = _check_float("beta_1", beta_1, 0.0, 1.0)
        self.beta_2 = _check_float("beta_2", beta_2, 0.0, 1.0)
        self.epsilon = _check_float("epsilon", epsilon, 0.0, math.inf)
        self.rectify_threshold = _check_float("rectify_threshold", rectify_threshold, 4.0, math.inf)

        self._rho_inf = 2.0 / (1.0 - self.beta_2) - 1.0
        # rho_t increases monotonically towards rho_inf: if rho_inf is not above
        # the threshold the rectified branch is never taken and its constant is
        # irrelevant (kept finite so that the unused branch has no inf/nan).
        if self._rho_inf > self.rectify_threshold:
            self._r_const = self._rho_inf / ((self._rho_inf - 4.0) * (self._rho_inf - 2.0))
        else:
            self._r_const = 0.0

    def build(self, var_list):
        """Creates the `momentum` (m) and `velocity` (v) slots for `var_list`.

        Args:
          var_list: The trainable variables this optimizer will update.
        """
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def _step_scalars(self):
        """Step-dependent scalars of Algorithm 2, in float64.

        Returns:
          `(rectify, inv_bias_1, inv_bias_2, r_t)`: a boolean scalar
          `rho_t > rectify_threshold`, `1 / (1 - beta_1^t)`,
          `1 / (1 - beta_2^t)` and the rectification term `r_t` (0 where
          `rho_t <= rectify_threshold`).
        """
        t = ops.cast(self.iterations + 1, "float64")
        # convert_to_tensor with an explicit dtype: `ops.cast` of a Python float
        # would round it to float32 first (0.999 -> 0.99900001), which moves
        # rho_t by ~0.03 at t = 5.
        beta_1_power = ops.power(ops.convert_to_tensor(self.beta_1, dtype="float64"), t)
        beta_2_power = ops.power(ops.convert_to_tensor(self.beta_2, dtype="float64"), t)
        inv_bias_1 = 1.0 / (1.0 - beta_1_power)
        inv_bias_2 = 1.0 / (1.0 - beta_2_power)
        rho_t = self._rho_inf - 2.0 * t * beta_2_power * inv_bias_2
        rectify = ops.greater(rho_t, self.rectify_threshold)
        r_sq = (rho_t - 4.0) * (rho_t - 2.0) / rho_t * self._r_const
        r_t = ops.where(rectify, ops.sqrt(ops.maximum(r_sq, 0.0)), ops.zeros_like(r_sq))
        return rectify, inv_bias_1, inv_bias_2, r_t

    def update_step(self, gradient, variable, learning_rate):
        """Applies one RAdam step (Algorithm 2) to `variable`.

        Args:
          gradient: Dense tensor or `tf.IndexedSlices` (densified).
          variable: The model variable to update.
          learning_rate: Current learning rate (already evaluated from the
            schedule by the base class).
        """
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]

        rectify, inv_bias_1, inv_bias_2, r_t = self._step_scalars()
        # Scalar coefficient of m_t: lr * r_t / (1 - b1^t) if rectified, else
        # lr / (1 - b1^t).
        coefficient = ops.cast(ops.where(rectify, r_t, 1.0) * inv_bias_1, dtype) * lr
        inv_bias_2 = ops.cast(inv_bias_2, dtype)

        m_new = self.beta_1 * m + (1.0 - self.beta_1) * gradient
        v_new = self.beta_2 * v + (1.0 - self.beta_2) * ops.square(gradient)
        self.assign(m, m_new)
        self.assign(v, v_new)

        # v_hat + epsilon when rectified; 1 (plain momentum SGD) otherwise.
        denominator = ops.where(rectify, ops.sqrt(v_new * inv_bias_2) + self.epsilon, ops.ones_like(v_new))
        self.assign_sub(variable, coefficient * m_new / denominator)

    def get_config(self):
        """Returns the constructor arguments (base options included)."""
        config = super().get_config()
        config.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "rectify_threshold": self.rectify_threshold,
            }
        )
        return config


OPTIMIZERS = {"adamax": keras.optimizers.Adamax, "adam": keras.optimizers.Adam, "radam": RAdam}
"""Optimisers by the name a stage's `OptimizerRecipe` gives."""


def make_optimizer(recipe, steps, name=None, loss_scale=False):
    """The Keras optimiser of a stage's `tfvq.models.OptimizerRecipe`.

    With `recipe.cosine_fraction` the learning rate is a
    `CosineAnnealFinalFraction` schedule over `steps`; otherwise it is a
    float, held in the optimiser's variable (`ReduceOnPlateau` assigns it,
    the checkpoint saves it).

    With `loss_scale=True` (mixed_float16 training) the optimiser is wrapped
    in `keras.optimizers.LossScaleOptimizer`: dynamic loss scaling from 2^15,
    halved on a step whose gradients are not finite (that step is skipped)
    and doubled after 2000 finite steps (Micikevicius et al., "Mixed
    Precision Training", ICLR 2018, §3.2). Its `learning_rate` is the inner
    optimiser's; `tfvq.train.step` scales the loss and skips non-finite steps
    consistently across replicas.
    """
    if recipe.name not in OPTIMIZERS:
        raise ValueError(f"Unknown optimizer {recipe.name!r}; known: {', '.join(sorted(OPTIMIZERS))}.")
    if recipe.cosine_fraction is not None:
        learning_rate = CosineAnnealFinalFraction(recipe.learning_rate, int(steps), fraction=recipe.cosine_fraction)
    else:
        learning_rate = float(recipe.learning_rate)
    optimizer = OPTIMIZERS[recipe.name](learning_rate=learning_rate, name=name or recipe.name)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, name=f"loss_scale_{optimizer.name}")
    return optimizer
