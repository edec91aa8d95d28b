"""Likelihoods and reconstruction metrics for 8-bit image autoencoders.

* :func:`discretized_logistic_log_prob` -- the discretised logistic likelihood of
  the IAF ResNet-VAE (Kingma et al. 2016), used as the decoder likelihood by
  RRVQ (Willetts et al., App. C), with PixelCNN++-style tail mass in the edge
  bins.
* :func:`bits_per_dim` -- converts a negative log-likelihood in nats per example
  to bits per dimension.
* :func:`mse` -- mean squared reconstruction error.
"""

import math
import numbers

import numpy as np
import tensorflow as tf

__all__ = ["discretized_logistic_log_prob", "bits_per_dim", "mse"]

_LN2 = math.log(2.0)


def _static_value(value):
    """Returns a NumPy array if `value` is concretely known now, else None.

    Concrete means a Python number / sequence, a NumPy array, an eager tensor, or
    a graph tensor that TensorFlow can constant-fold.
    """
    if isinstance(value, tf.Variable):
        if tf.executing_eagerly():
            return value.numpy()
        return None
    if tf.is_tensor(value):
        try:
            return tf.get_static_value(value)
        except (TypeError, ValueError):  # pragma: no cover - defensive
            return None
    return np.asarray(value)


def _to_tensor(value, default_dtype=tf.float32):
    """Converts to a tensor, keeping the dtype of tensors and NumPy arrays.

    Unlike `tf.convert_to_tensor(value, dtype_hint=...)`, a float64 NumPy array
    stays float64; only plain Python numbers / (nested) lists of numbers are
    converted to `default_dtype`.
    """
    if tf.is_tensor(value) or isinstance(value, tf.Variable):
        return tf.convert_to_tensor(value)
    if isinstance(value, (np.ndarray, np.generic)):
        return tf.convert_to_tensor(value)
    array = np.asarray(value)
    if array.dtype.kind in "iuf":
        return tf.convert_to_tensor(value, dtype=default_dtype)
    return tf.convert_to_tensor(value)


def _check_pixel_dtype(x):
    """Raises TypeError unless `x` has an integer or real floating dtype."""
    if tf.is_tensor(x) or isinstance(x, tf.Variable):
        dtype = tf.as_dtype(x.dtype)
        if dtype.is_integer or dtype.is_floating:
            return
        raise TypeError(
            "discretized_logistic_log_prob: `x` must hold integer pixel values with "
            f"an integer or real floating dtype, got dtype {dtype.name}.")
    kind = np.asarray(x).dtype.kind
    if kind in "iuf":
        return
    raise TypeError(
        "discretized_logistic_log_prob: `x` must hold integer pixel values with an "
        f"integer or real floating dtype, got NumPy dtype {np.asarray(x).dtype} "
        "(bool, complex, string and object inputs are not accepted).")


def _validate_pixel_values(x_value, num_bins):
    """Raises ValueError if concrete pixel values are out of range or non-integral."""
    x_value = np.asarray(x_value)
    if x_value.size == 0:
        return
    if x_value.dtype.kind == "f":
        if not np.all(np.isfinite(x_value)):
            raise ValueError(
                "discretized_logistic_log_prob: `x` contains NaN or inf; expected "
                f"integer pixel values in [0, {num_bins - 1}].")
        if not np.all(x_value == np.round(x_value)):
            bad = x_value[x_value != np.round(x_value)].ravel()[0]
            raise ValueError(
                "discretized_logistic_log_prob: `x` must hold integral pixel values "
                f"in [0, {num_bins - 1}] (not data rescaled to [0, 1] or [-1, 1]); "
                f"found non-integral value {bad!r}.")
    lo, hi = x_value.min(), x_value.max()
    if lo < 0 or hi > num_bins - 1:
        raise ValueError(
            "discretized_logistic_log_prob: `x` must hold pixel values in "
            f"[0, {num_bins - 1}] for num_bins={num_bins}; found values in "
            f"[{lo}, {hi}].")


def _log1mexp(d, log_d):
    """Computes log(1 - exp(-d)) for d >= 0 stably, given d and log(d).

    Three branches, each evaluated on "safe" inputs so that the unused branches
    contribute neither inf/NaN values nor NaN gradients through `tf.where`:

    * d < 1e-3: the series log(d) - d/2 + d^2/24 (error O(d^4)); this branch is
      what keeps the result finite when exp(-log_scale) underflows to 0 and
      d = 0 numerically while log(d) is still a finite number.
    * 1e-3 <= d <= ln 2: log(-expm1(-d)).
    * d > ln 2: log1p(-exp(-d)).
    """
    one = tf.ones_like(d)
    small = d < 1e-3
    large = d > _LN2
    series = log_d - 0.5 * d + tf.square(d) / 24.0
    d_mid = tf.where(small | large, one, d)
    mid = tf.math.log(-tf.math.expm1(-d_mid))
    d_large = tf.where(large, d, one)
    tail = tf.math.log1p(-tf.exp(-d_large))
    return tf.where(small, series, tf.where(large, tail, mid))


def discretized_logistic_log_prob(x, loc, log_scale, num_bins=256):
    """Elementwise log-likelihood of integer pixels under a discretised logistic.

    This is the IAF (Kingma et al. 2016) discretised logistic likelihood of the
    ResNet-VAE, which RRVQ (Willetts et al., App. C) uses as its decoder
    likelihood; as in PixelCNN++ (Salimans et al. 2017, §2.1) the two edge bins
    take the tail mass, so the probabilities of the `num_bins` values sum to 1.

    Convention:
      * `x` holds integer pixel values v in [0, num_bins - 1] (uint8 or any
        integer dtype, or a float dtype holding integral values) -- *not* pixels
        rescaled to [0, 1] or [-1, 1].
      * Value v occupies the bin [v / num_bins, (v + 1) / num_bins) of the unit
        interval; `loc` lives on that same [0, 1] scale and so does
        `scale = exp(log_scale)`.
      * Bin 0 extends down to -inf and bin num_bins - 1 up to +inf.

    With a = (v / num_bins - loc) / scale and b = ((v + 1) / num_bins - loc) / scale,
    the mass of an interior bin is sigmoid(b) - sigmoid(a), evaluated as

      log P(v) = log_sigmoid(b) + log_sigmoid(-a) + log(1 - exp(-(b - a)))

    using sigmoid(b) - sigmoid(a) = sigmoid(b) sigmoid(-a) (1 - exp(-(b - a))).
    The bottom bin has log P(0) = log_sigmoid(b) and the top bin
    log P(num_bins - 1) = log_sigmoid(-a). b - a = exp(-log_scale) / num_bins is
    formed from `log_scale` directly, and log(1 - exp(-d)) uses a stable
    log1mexp (with a series branch for tiny d), so the result and its gradients
    are finite even for extreme parameters such as loc=50, log_scale=-10 or
    log_scale=+10 (far-tail log-masses stay accurate instead of rounding to -inf).
    `log_scale` is clipped from below at -log(finfo(dtype).max) / 2
    (about -44 in float32, -354 in float64) so that 1/scale cannot overflow;
    below that the gradient w.r.t. `log_scale` is zero.

    Args:
      x: Integer pixel values in [0, num_bins - 1]; integer dtype or a real
        floating dtype holding integral values. Broadcast against `loc`.
      loc: Float tensor, logistic location in the [0, 1] scale. Its dtype
        (float32 if given as Python floats) is the computation/output dtype.
      log_scale: Logistic log-scale in the [0, 1] scale, broadcastable; converted
        to `loc`'s dtype.
      num_bins: Python int >= 2, number of pixel levels (256 for 8-bit data).

    Returns:
      A tensor of log-probabilities (nats) with the broadcast shape of `x`,
      `loc` and `log_scale` and the dtype of `loc`; no reduction is applied.

    Raises:
      TypeError: If `x` is bool, complex, string or object typed, or `loc` is
        not floating.
      ValueError: If `num_bins` < 2, or if `x` is concretely known (NumPy array,
        Python value, eager tensor, or constant-foldable graph tensor) and holds
        values outside [0, num_bins - 1] or non-integral values. Values of
        symbolic tensors inside `tf.function` are not checked.
    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, numbers.Integral):
        raise ValueError(f"num_bins must be a Python int >= 2, got {num_bins!r}.")
    num_bins = int(num_bins)
    if num_bins < 2:
        raise ValueError(f"num_bins must be >= 2, got {num_bins}.")

    _check_pixel_dtype(x)
    x_value = _static_value(x)
    if x_value is not None:
        _validate_pixel_values(x_value, num_bins)

    loc = _to_tensor(loc)
    if not loc.dtype.is_floating:
        raise TypeError(
            f"discretized_logistic_log_prob: `loc` must be floating, got {loc.dtype.name}.")
    dtype = loc.dtype
    log_scale = tf.cast(_to_tensor(log_scale, dtype), dtype)
    x = tf.cast(tf.convert_to_tensor(x), dtype)

    min_log_scale = -0.5 * float(np.log(np.finfo(dtype.as_numpy_dtype).max))
    log_scale = tf.maximum(log_scale, tf.constant(min_log_scale, dtype))
    inv_scale = tf.exp(-log_scale)

    lower = x / num_bins
    upper = (x + 1.0) / num_bins
    a = (lower - loc) * inv_scale
    b = (upper - loc) * inv_scale

    # b - a = (1 / num_bins) / scale, computed without cancellation.
    width = inv_scale / num_bins
    log_width = -log_scale - math.log(num_bins)

    log_cdf_upper = tf.math.log_sigmoid(b)      # log P(X < upper edge)
    log_sf_lower = tf.math.log_sigmoid(-a)      # log P(X >= lower edge)
    interior = log_cdf_upper + log_sf_lower + _log1mexp(width, log_width)

    result = tf.where(
        x <= 0.0, log_cdf_upper,
        tf.where(x >= num_bins - 1.0, log_sf_lower, interior))
    return result


def bits_per_dim(nats, num_dims):
    """Converts a negative log-likelihood in nats per example to bits per dim.

    bits/dim = nats / (num_dims * ln 2), the metric reported for the IAF
    ResNet-VAE (Kingma et al. 2016) and RRVQ (Willetts et al.): the NLL (or
    -ELBO, an upper bound on it) of one example in nats, divided by the number
    of dimensions D = H * W * C of that example and by ln 2 to change the
    logarithm base from e to 2.

    Args:
      nats: NLL per example in nats: a Python/NumPy float or a tensor of any
        shape (each element is converted independently).
      num_dims: Number of data dimensions per example, H * W * C (> 0). A
        Python int, or an integer/float tensor.

    Returns:
      A Python float when both arguments are Python/NumPy scalars, otherwise a
      floating tensor shaped like `nats` (integer `nats` become float32).

    Raises:
      ValueError: If `num_dims` is concretely known to be <= 0.
    """
    num_dims_value = _static_value(num_dims)
    if num_dims_value is not None and np.any(np.asarray(num_dims_value) <= 0):
        raise ValueError(
            f"bits_per_dim: num_dims (= H * W * C) must be > 0, got {num_dims_value}.")

    python_scalars = (numbers.Real, np.number)
    if (isinstance(nats, python_scalars) and not isinstance(nats, bool)
            and isinstance(num_dims, python_scalars) and not isinstance(num_dims, bool)):
        return float(nats) / (float(num_dims) * _LN2)

    nats = _to_tensor(nats)
    if not nats.dtype.is_floating:
        nats = tf.cast(nats, tf.float32)
    num_dims = tf.cast(num_dims, nats.dtype)
    return nats / (num_dims * tf.constant(_LN2, nats.dtype))


def mse(x, y):
    """Mean squared error over all elements: mean((x - y)^2), a scalar.

    This is the reconstruction term log p(x | z_q(x)) of the VQ-VAE objective
    (van den Oord et al. 2017, eq. 3) when the decoder is a Gaussian with fixed
    variance, up to scale and an additive constant; HQA and RRVQ report it as a
    reconstruction metric.

    Args:
      x: Tensor (or array-like).
      y: Tensor with the same shape as `x` (no broadcasting).

    Returns:
      Scalar tensor. Its dtype is the floating dtype of the inputs; integer
      inputs are cast to the other argument's floating dtype, or float32.

    Raises:
      ValueError: If the static shapes of `x` and `y` are incompatible.
      TypeError: If `x` and `y` have different floating dtypes.
    """
    x = _to_tensor(x)
    y = _to_tensor(y, x.dtype if x.dtype.is_floating else tf.float32)
    if not x.shape.is_compatible_with(y.shape):
        raise ValueError(
            f"mse: shapes of x {x.shape} and y {y.shape} do not match "
            "(mse does not broadcast).")
    if x.dtype.is_floating and y.dtype.is_floating and x.dtype != y.dtype:
        raise TypeError(
            f"mse: x and y have different floating dtypes ({x.dtype.name} vs "
            f"{y.dtype.name}); cast one of them explicitly.")
    if x.dtype.is_floating:
        dtype = x.dtype
    elif y.dtype.is_floating:
        dtype = y.dtype
    else:
        dtype = tf.float32
    x = tf.cast(x, dtype)
    y = tf.cast(y, dtype)
    return tf.reduce_mean(tf.square(x - y))
