"""Finite scalar quantization (FSQ): a fixed grid of levels per channel, no codebook to learn.

Mentzer, Minnen, Agustsson, Tschannen, "Finite Scalar Quantization: VQ-VAE
Made Simple", 2023 (ICLR 2024), §3.1 and App. A.1.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.implicit import ImplicitCodebookQuantizer
from tfvq.layers.precision import logits_dtype

_INT32_MAX = 2**31 - 1


def _check_levels(levels):
    try:
        levels = tuple(levels)
    except TypeError:
        raise ValueError(f"levels must be a sequence of integers >= 2, got {levels!r}.") from None
    if not levels:
        raise ValueError("levels must name at least one channel, e.g. levels=(8, 5, 5, 5); got an empty sequence.")
    for level in levels:
        if isinstance(level, bool) or not float(level).is_integer() or int(level) < 2:
            raise ValueError(
                f"every entry of levels must be an integer >= 2 (the number of values of a channel), "
                f"got levels={levels!r}."
            )
    levels = tuple(int(level) for level in levels)
    if math.prod(levels) > _INT32_MAX:
        raise ValueError(
            f"prod(levels) = {math.prod(levels)} codes do not fit an int32 code; use at most 2**31 - 1, "
            f"got levels={levels!r}."
        )
    return levels


@keras.saving.register_keras_serializable(package="tfvq")
class FiniteScalarQuantizer(ImplicitCodebookQuantizer):
    """Finite scalar quantization (Mentzer et al. 2023, §3.1).

    Each of the `d = len(levels)` channels of the input is bounded to an
    interval holding `L_i` integers and rounded, so the implicit codebook is
    the grid of `prod(levels)` points (1000 for the default `(8, 5, 5, 5)`,
    one of the paper's Table 1 choices): no codebook variables, no codebook
    or commitment loss, no dead codes.

    For a channel with `L` levels (App. A.1 of the paper):

        half_l = (L - 1)(1 - eps) / 2
        offset = 0.5 if L is even else 0
        shift  = atanh(offset / half_l)
        bounded = tanh(z + shift) * half_l - offset
        rounded = round(bounded)                  # straight-through gradient
        quantized = rounded / (L // 2)            # the paper's normalisation

    so `rounded` takes the `L` integers `-(L // 2) .. (L - 1) // 2` and
    `quantized` lies in `[-1, 1]`. The shift centres the grid: `bounded(0)`
    is 0, a level. (The paper's App. A.1 listing writes `tan` for the shift;
    `atanh` is the inverse of the `tanh` it undoes, and the two agree to
    first order.) For `L = 2` no shift can do that (0 is the boundary
    between the two levels -1 and 0 at any eps), so the shift is 0 and the
    channel splits at `z = 0` like a sign.

    The gradient of `quantized` is that of `bounded / (L // 2)`: rounding is
    passed straight through (§3.1, "STE"). The forward value is exactly the
    grid point, as `lookup` gives it: the layer returns
    `hard + (soft - sg[soft])`.

    Codes are mixed-radix integers: `code = sum_i (rounded_i + L_i // 2) *
    prod_{j < i} L_j` (channel 0 is the least significant digit), int32 in
    `[0, prod(levels))`. Index arithmetic is exact in int32; `bounded` and
    rounding are computed in float32 under a mixed (16-bit) policy, so the
    codes do not depend on the policy beyond the rounding of the input
    itself, and `quantized` is returned in the compute dtype.

    Args:
      levels: the number of values of each channel, each an integer >= 2 (the
        paper finds 5 or more levels per channel work best; its Table 1 lists
        `(8, 6, 5)`, `(8, 5, 5, 5)`, `(7, 5, 5, 5, 5)`, `(8, 8, 8, 6, 5)`,
        `(8, 8, 8, 5, 5, 5)` for 2^8 .. 2^16 codes).
      eps: the margin `eps` of `half_l`, keeping `tanh`'s range inside the
        outer levels' rounding intervals (the paper's 1e-3).
      **kwargs: passed to `keras.layers.Layer`.

    Call args:
      inputs: `[..., len(levels)]` floats.
      training: unused (FSQ is the same in training and inference).

    Returns: a dict with `quantized` `[..., d]` (values in `[-1, 1]`), `codes`
      int32 `[...]`, `loss` (0.0, float32: FSQ has no auxiliary loss) and
      `perplexity` (of the batch's code usage, summed over replicas; see
      `ops.usage_perplexity`: above 2^16 codes it is counted with `tf.unique`, so
      the layer then reports `supports_jit = False` to Keras).

    Example:
      >>> fsq = FiniteScalarQuantizer(levels=(8, 5, 5, 5))
      >>> out = fsq(tf.zeros([2, 3, 3, 4]))
      >>> fsq.num_codes, out["codes"].shape
      (1000, TensorShape([2, 3, 3]))

    References:
      Mentzer et al., Finite Scalar Quantization: VQ-VAE Made Simple, 2023,
      §3.1, App. A.1 (reference code), Table 1 (levels).
    """

    def __init__(self, levels=(8, 5, 5, 5), eps=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.levels = _check_levels(levels)
        if not 0.0 <= float(eps) < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {eps}.")
        self.eps = float(eps)
        lv = np.asarray(self.levels, np.float64)
        self._half_l = (lv - 1.0) * (1.0 - self.eps) / 2.0
        self._offset = np.where(np.asarray(self.levels) % 2 == 0, 0.5, 0.0)
        ratio = self._offset / self._half_l  # >= 1 only for L = 2, which takes no shift
        self._shift = np.where(ratio < 1.0, np.arctanh(np.where(ratio < 1.0, ratio, 0.0)), 0.0)
        self._half_width = np.asarray([level // 2 for level in self.levels], np.int64)
        self._basis = np.cumprod((1,) + self.levels[:-1]).astype(np.int64)
        # Above MAX_COUNTED_CODES the perplexity counts codes with tf.unique, which XLA cannot compile.
        self.supports_jit = self.num_codes <= ops.MAX_COUNTED_CODES

    # -------------------------------------------------------------- properties
    @property
    def code_dim(self):
        """d = len(levels), the last dimension of the inputs."""
        return len(self.levels)

    @property
    def num_codes(self):
        """prod(levels), the size of the implicit codebook."""
        return math.prod(self.levels)

    def _dim_words(self):
        return f"len(levels)={self.code_dim} (levels={self.levels})"

    def _work_dtype(self):
        """float32 under a 16-bit policy (the index maths), else the compute dtype (float32/float64)."""
        return logits_dtype(self.compute_dtype)

    def _constants(self, dtype):
        c = lambda x: tf.constant(x, dtype)  # noqa: E731
        return c(self._half_l), c(self._offset), c(self._shift), c(self._half_width)

    # ------------------------------------------------------------ code maths
    def codes_to_levels(self, codes):
        """`[..., d]` int32 digits in `[0, L_i)` of int32 `codes` `[...]` (digit i is channel i)."""
        codes = ops.checked_codes(codes)
        basis = tf.constant(self._basis, tf.int32)
        levels = tf.constant(self.levels, tf.int32)
        digits = tf.expand_dims(codes, -1)  # not codes[..., None]: no TFLite op at unknown sizes
        return tf.math.floormod(tf.math.floordiv(digits, basis), levels)

    def levels_to_codes(self, digits):
        """int32 codes `[...]` of `[..., d]` integer digits in `[0, L_i)` (the inverse of `codes_to_levels`)."""
        digits = ops.checked_codes(digits)
        if digits.shape.rank is not None and digits.shape.rank >= 1 and digits.shape[-1] is not None:
            if digits.shape[-1] != self.code_dim:
                raise ValueError(
                    f"levels_to_codes expects digits of shape [..., {self.code_dim}] (one per level of "
                    f"{self.levels}), got last dimension {digits.shape[-1]}."
                )
        return tf.reduce_sum(digits * tf.constant(self._basis, tf.int32), axis=-1)

    def _grid_values(self, digits, dtype):
        """Grid points `(digit - L // 2) / (L // 2)` of int32 `digits`, in `dtype`."""
        half_width = tf.constant(self._half_width, dtype)
        return (tf.cast(digits, dtype) - half_width) / half_width

    def code_vectors(self, codes):
        """The grid points `[..., d]` of int32 `codes` `[...]` in float32 (float64 under a float64 policy)."""
        return self._grid_values(self.codes_to_levels(codes), self._work_dtype())

    def lookup(self, codes):
        """The grid points `[..., d]` of int32 `codes` `[...]`: exactly `quantized` for those codes."""
        return tf.cast(self.code_vectors(codes), self.compute_dtype)

    @property
    def residual_gain(self):
        """`2 ((L - 1) // 2) + 1` per channel (L for odd L, L - 1 for even): how much `ResidualQuantizer`
        scales each later stage's input (see there).

        A channel's grid has `m = (L - 1) // 2` levels on either side of 0 a step `s` apart (an even L has one
        more level below, which a residual centred on 0 cannot use), so rounding codes `[-(m + 1/2) s,
        (m + 1/2) s]` and leaves at most half a step, `s / 2`; scaling by `2m + 1` brings that back to the
        whole range. Each stage then divides the error bound by `2m + 1` (L = 2 cannot refine: use L >= 3)."""
        return tuple(float(2 * ((level - 1) // 2) + 1) for level in self.levels)

    def residual_target(self, z):
        """`bound(z) / (L // 2)`, the value in `(-1, 1)` that `quantized` rounds (and whose gradient it passes):
        what a `ResidualQuantizer` of FSQ stages approximates ever more finely, in float32 (float64 under a
        float64 policy)."""
        return self.bound(z) / self._constants(logits_dtype(z.dtype))[3]

    def input_for(self, values):
        """An input that the forward pass rounds as it would round `values` `[..., d]` (in `quantized` units):
        the inverse of `bound`, with `values` clipped to within a quarter step inside the outer levels.

        `ResidualQuantizer` passes its later stages' scaled residuals through it, so they round the residual
        uniformly (the `tanh` bound keeps an encoder's output in range at the first stage; a scaled residual
        is in range already, and the bound's curvature would round it off-grid)."""
        dtype = logits_dtype(values.dtype)
        half_l, offset, shift, half_width = self._constants(dtype)
        low = tf.constant([-(level // 2) + 0.25 for level in self.levels], dtype)
        high = tf.constant([(level - 1) // 2 - 0.25 for level in self.levels], dtype)
        ratio = (tf.clip_by_value(tf.cast(values, dtype) * half_width, low, high) + offset) / half_l
        return 0.5 * tf.math.log((1.0 + ratio) / (1.0 - ratio)) - shift  # atanh, in TFLite builtins

    def bound(self, z):
        """`tanh(z + shift) * half_l - offset` per channel, in float32 (float64 for float64 inputs)."""
        dtype = logits_dtype(z.dtype)
        half_l, offset, shift, _ = self._constants(dtype)
        return tf.tanh(tf.cast(z, dtype) + shift) * half_l - offset

    def _digits(self, bounded):
        """int32 digits in `[0, L_i)` of bounded values: each rounded to its level."""
        return tf.cast(tf.round(tf.stop_gradient(bounded)), tf.int32) + tf.constant(self._half_width, tf.int32)

    def nearest_codes(self, inputs):
        """int32 codes `[...]` of `inputs` `[..., d]`: the forward pass's codes (bound, round, mixed radix)
        without its statistics, with TFLite builtins only (the models' TFLite encoders)."""
        return self.levels_to_codes(self._digits(self.bound(self.checked_inputs(inputs))))

    # ------------------------------------------------------------------- call
    def call(self, inputs, training=None):
        z = self.checked_inputs(inputs)
        work = self._work_dtype()
        _, _, _, half_width = self._constants(work)
        bounded = self.bound(tf.cast(z, work))
        digits = self._digits(bounded)
        codes = self.levels_to_codes(digits)
        hard = self._grid_values(digits, work)
        soft = bounded / half_width
        # Value: the grid point exactly; gradient: that of bounded / (L // 2) (straight-through rounding).
        quantized = tf.cast(hard, self.compute_dtype) + tf.cast(soft - tf.stop_gradient(soft), self.compute_dtype)
        return {
            "quantized": quantized,
            "codes": codes,
            "loss": tf.constant(0.0, tf.float32),
            "perplexity": ops.usage_perplexity(codes, self.num_codes),
        }

    # ----------------------------------------------------------------- config
    def get_config(self):
        config = super().get_config()
        config.update({"levels": list(self.levels), "eps": self.eps})
        return config
