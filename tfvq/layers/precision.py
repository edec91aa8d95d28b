"""Mixed precision: which Keras dtype policy a model is built under, and what stays float32.

`train.py --precision` and `tfvq.train.TrainOptions.precision` take one of
`PRECISIONS`:

* `float32`: everything in float32 (the default).
* `mixed_bfloat16`: layers compute in bfloat16 (convolutions and the
  quantizers' matrix products), variables are float32. bfloat16 has
  float32's exponent range, so no loss scaling is needed.
* `mixed_float16`: layers compute in float16, variables are float32, and the
  training step scales the loss (`tfvq.train.step`) so that small float16
  gradients do not flush to zero.

What stays float32 under a mixed policy, and why (each place says so too):

* the quantizers' logits, i.e. the (scaled) squared distances and Gaussian
  log-densities that feed a softmax (`tfvq.layers.ops`): the matrix product
  runs in the compute dtype (accumulated in float32 by the kernel, its output
  rounded to the compute dtype, since TensorFlow has no CPU kernel for a
  16-bit product with a float32 output), then the result is cast to float32
  and the per-code bias `||e_k||^2` is added in float32. A softmax, a
  log-softmax or a Gumbel-max over 256 codes in 16 bits would lose the small
  probabilities and round logits of 100 to steps of 0.5 (bfloat16);
* the Gumbel noise and the relaxed sample (`ops.relaxed_quantize`), the
  entropy, the categorical KL (RRVQ eq. 5), the commitment (HQA eq. 4);
* the discretised-logistic likelihood (`tfvq.losses`) and its parameters
  (the last decoder convolution of RRVQ-VAE computes in float32), and the
  reconstruction error of HQA: differences of numbers near 1 lose their
  low bits in 16 bits;
* the EMA codebook statistics, code-usage counts, running normalisation
  statistics and the temperature (`add_weight(..., autocast=False)`): running
  sums of many small updates stall in 16 bits;
* the weight-normalised kernels (`WeightNormConv2D`): `||v||` is formed in
  float32 and the kernel is then cast;
* the optimiser's slots and updates (float32 variables);
* the arithmetic of Mish (`tfvq.layers.activations`), inside its fused
  kernel: only its input and output are 16-bit tensors.

Models built in `precision_scope` (the trainer builds every model there, in
every precision, float32 included) also get the fused Mish of
`tfvq.layers.activations`: their layers take `activation=mish_activation()`,
which is the fused function inside the scope: one kernel each
way instead of six elementwise passes, which on HQA layer 1 matters more in
bfloat16 than the convolutions' speed-up (TensorFlow's 16-bit elementwise CPU
kernels convert every element to float32 and back).
"""

import contextlib

import keras
import tensorflow as tf

from tfvq.layers.activations import fused_activations

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
"""The `precision=` values: Keras dtype policy names."""


def check_precision(precision):
    """`precision` if it is one of `PRECISIONS`, else a `ValueError` saying which are."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}. "
                         "mixed_bfloat16 suits CPUs with AVX512-BF16/AMX and TPUs, mixed_float16 GPUs.")
    return precision


@contextlib.contextmanager
def precision_scope(precision):
    """Builds layers under the Keras dtype policy `precision` inside the block, then restores the previous one.

    Keras layers read the global policy when they are constructed, so a model
    built inside the block keeps computing in the policy's dtype afterwards.
    Layers built in the block with `activation=tfvq.layers.activations.mish_activation()`
    get the fused Mish (`tfvq.layers.activations.fused_activations`; the same function).
    """
    check_precision(precision)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        with fused_activations():
            yield
    finally:
        keras.config.set_dtype_policy(previous)


def is_low_precision(dtype):
    """True for 16-bit floats (bfloat16, float16), the dtypes whose results are widened to float32."""
    return tf.as_dtype(dtype) in (tf.bfloat16, tf.float16)


def logits_dtype(dtype):
    """The dtype of logits computed from inputs of `dtype`: float32 for 16-bit inputs, else `dtype` (float64)."""
    return tf.float32 if is_low_precision(dtype) else tf.as_dtype(dtype)


def to_float32(x):
    """`x` as float32 if it is a 16-bit float, unchanged otherwise (float64 stays float64)."""
    x = tf.convert_to_tensor(x)
    return tf.cast(x, tf.float32) if is_low_precision(x.dtype) else x
