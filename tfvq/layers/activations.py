"""Mish in one fused pass each way, with its gradient written out.

HQA (App. C) uses Mish (Misra, "Mish: A Self Regularized Non-Monotonic
Activation Function", 2019), `mish(x) = x tanh(softplus(x))`, after every
hidden convolution. Keras evaluates it as three elementwise kernels (Softplus,
Tanh, Mul) and autodiff adds as many again for the gradient (Sigmoid, TanhGrad,
Mul, ...), each one a full pass over the activation; TensorFlow's CPU
kernels for 16-bit floats convert every element to float32 and back inside
each of those passes. On HQA layer 1 at batch 512 these passes cost as much as
a matrix product of the quantizer in float32, and several times more in
bfloat16.

Here the forward and the backward are each one XLA-compiled elementwise
kernel (`tf.function(jit_compile=True)`; TensorFlow runs it inside an
ordinary graph) over the closed form that needs a single exponential:

    e = exp(x),  n = e (e + 2),  tanh(softplus(x)) = ((1 + e)^2 - 1) / ((1 + e)^2 + 1) = n / (n + 2),
    mish(x) = x n / (n + 2),
    mish'(x) = tanh(softplus(x)) + x sech^2(softplus(x)) sigmoid(x) = n / (n + 2) + 4 x e (e + 1) / (n + 2)^2.

For x > 20, `n / (n + 2)` is 1 to float32 precision (and `e^2` would
overflow past x = 44), so there `mish(x) = x` and `mish'(x) = 1`, as in
Keras's softplus. Only `x` is kept for the backward pass (autodiff of the
Keras form keeps the softplus and tanh outputs too).

Mixed precision: for a 16-bit `x` (bfloat16, float16) the arithmetic is done
in float32 inside the fused kernel -- the exponential and the quotient of
numbers near 1 would lose their low bits in 16 bits -- and only the result
(and the gradient) is rounded to `x`'s dtype; there is no float32 tensor in
memory. float32 and float64 inputs are computed in their own dtype.

How models get it: a layer is given its Mish as an object,
`activation=mish_activation()`, never by name. `mish_activation()` is this
module's `mish` inside `fused_activations()` (which
`tfvq.layers.precision.precision_scope`, where the trainer builds every
model, enters) and Keras's `keras.activations.mish` elsewhere, so trained
models get the fused kernel and models built elsewhere (export, the zoo's
loaders) keep Keras's Mish -- the same function to float32 rounding (tested
against a NumPy oracle in float64). Keras's own identifier table is never
touched: the choice is a context variable of this module, so it holds for
the thread (and context) that entered the block only.

`mish` is registered with Keras as `"tfvq>mish"`, so a layer built with it
saves that name in its config and `.keras` files / `from_config` restore the
fused function (with `tfvq.layers.activations` imported).
"""

import contextlib
import contextvars

import keras
import tensorflow as tf

_LINEAR_ABOVE = 20.0  # tanh(softplus(x)) == 1 in float32 for x above this


def _internal(dtype):
    """float32 for 16-bit dtypes (the arithmetic), else the dtype itself."""
    return tf.float32 if dtype in (tf.bfloat16, tf.float16) else dtype


@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
def _mish_forward(x):
    dtype = _internal(x.dtype)
    xf = tf.cast(x, dtype)
    e = tf.exp(tf.minimum(xf, _LINEAR_ABOVE))
    n = e * (e + 2.0)
    return tf.cast(tf.where(xf > _LINEAR_ABOVE, xf, xf * n / (n + 2.0)), x.dtype)


@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)
def _mish_backward(x, upstream):
    dtype = _internal(x.dtype)
    xf = tf.cast(x, dtype)
    e = tf.exp(tf.minimum(xf, _LINEAR_ABOVE))
    n = e * (e + 2.0)
    d = n + 2.0
    slope = tf.where(xf > _LINEAR_ABOVE, tf.ones_like(xf), n / d + 4.0 * xf * e * (e + 1.0) / (d * d))
    return tf.cast(tf.cast(upstream, dtype) * slope, upstream.dtype)


@tf.custom_gradient
def _mish(x):
    def grad(upstream):
        return _mish_backward(x, upstream)

    return _mish_forward(x), grad


class _Mish(keras.Operation):
    """The Keras operation: symbolic calls (functional model building) get the output's spec."""

    def call(self, x):
        return _mish(tf.convert_to_tensor(x))

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, x.dtype)


@keras.saving.register_keras_serializable(package="tfvq")
def mish(x):
    """`x * tanh(softplus(x))` (Misra 2019) in one fused kernel, with a one-kernel analytic gradient.

    Same values as `keras.activations.mish` to float32 rounding; for 16-bit
    `x` computed in float32 and rounded once (see the module docstring).
    Accepts tensors and Keras symbolic tensors.
    """
    return _Mish()(x)


_FUSED = contextvars.ContextVar("tfvq_fused_mish", default=False)


@contextlib.contextmanager
def fused_activations():
    """Inside the block `mish_activation()` gives this module's fused `mish`; the previous choice is restored on exit.

    Keras layers keep the activation object they were constructed with, so
    layers built inside the block keep the fused Mish after it. Only this
    module's context variable changes (no Keras table): other threads are
    not affected.
    """
    token = _FUSED.set(True)
    try:
        yield
    finally:
        _FUSED.reset(token)


def mish_activation():
    """The Mish to pass as `activation=` to a layer being built now.

    The fused `mish` inside `fused_activations()` (and so inside
    `tfvq.layers.precision.precision_scope`), else `keras.activations.mish`
    (whose config name is Keras's plain `"mish"`).
    """
    return mish if _FUSED.get() else keras.activations.mish
