"""A diagonal-Gaussian latent layer with the quantizers' output contract.

`GaussianLatent` is the continuous counterpart of
`RelaxedResponsibilityQuantizer`: the same call
`out = layer(e_q, training=..., stochastic=True, seed=seed, prior=e_p)` and the
same keys `quantized`, `kl`, `loss`, so a hierarchy can swap discrete latents
for Gaussian ones (the Spatial-VAE baseline of RRVQ) without other changes.
"""

import keras
import numpy as np
import tensorflow as tf

from tfvq.layers import ops
from tfvq.layers.precision import logits_dtype


def _check_params_width(layer, got, expected, words, what):
    """`ops.check_last_dim` for `concat([mean, log_scale], -1)`, which first needs an even width."""
    if int(got) % 2:
        raise ValueError(
            f"GaussianLatent '{layer.name}': {what} must be concat([mean, log_scale], -1) with an even "
            f"last dimension 2 * latent_dim = {expected}, got odd last dimension {got}."
        )
    ops.check_last_dim(layer, got, expected, f"2 * latent_dim = {expected} (mean and log_scale)", what)


@keras.saving.register_keras_serializable(package="tfvq")
class GaussianLatent(keras.layers.Layer):
    """Diagonal Gaussian latent `q(z|x) = N(mean, diag(exp(log_scale)^2))`.

    The conditionally-Gaussian latent of the Spatial-VAE baseline of RRVQ
    (App. B: `p(z) = prod_m N(z^m | 0, I)`,
    `q(z|x) = prod_m N(z^m | mu^m(x), sigma^m(x))`, `z^m in R^16`; Table 1,
    "the conditionally-Gaussian latent variable version of our models"). In a
    hierarchy the prior of a lower layer is itself a Gaussian whose parameters
    come from the layer above, passed as `prior`.

    The layer has no weights. `inputs` packs q's parameters on the last axis
    as `concat([mean, log_scale], -1)`, `[..., 2 * latent_dim]`; `log_scale`
    is the log standard deviation (not the log-variance). For example an
    encoder output `[16, 8, 8, 32]` with `latent_dim=16` gives a sample
    `[16, 8, 8, 16]` and a KL `[16, 8, 8]` (one value per spatial position).

    Sampling uses the reparameterisation trick (Kingma & Welling 2014):
    `z = mean + exp(log_scale) * eps`, `eps ~ N(0, I)`, so gradients flow to
    both parameters. `eps = ndtri(u)` with `u` from `ops.replica_uniform`, so
    under `tf.distribute.MirroredStrategy` each replica draws its own slice of
    the noise one device would draw for the global batch (a mirrored step sees
    the same noise as a one-device step with the same seed; this needs equal
    shards whose per-replica element count is a multiple of 4, or of 2 in
    float64). Under a mixed (16-bit) policy q's and p's parameters are cast
    to float32 and the sample and the KL are float32.

    The KL is analytic (Kingma & Welling 2014, App. B; `ops.gaussian_kl`),
    summed over the `latent_dim` axis, per position, in nats. Without a prior
    it is taken against the standard normal N(0, I).

    Args:
      latent_dim: size of the latent vector at each position (16 in RRVQ's
        Spatial-VAE).
      min_log_scale: floor on `log_scale` (of q and of the prior), a HARD clamp
        `max(log_scale, min_log_scale)`: values above the floor pass unchanged
        (exact KL, exact samples) and values below it get no gradient. The
        default -7 keeps sigma >= ~9e-4, so `1 / sigma_p^2` in the KL stays
        below ~1.2e6. `None` disables the clamp.
      seed: integer seed of the layer's `keras.random.SeedGenerator`, used when
        `call` is given no `seed`.
      **kwargs: passed to `keras.layers.Layer`.

    Returns (from `call`): a dict with
      `quantized` `[..., latent_dim]`: the sample (or the mean, see `call`).
        The key is named `quantized`, as in the quantizers, only so that a
        hierarchy treats discrete and Gaussian latents alike; nothing is
        quantised.
      `kl` `[...]`: KL(q || p) per position, nats.
      `loss`: scalar mean of `kl` (0 for an empty batch).
      `mean`, `log_scale` `[..., latent_dim]`: q's parameters (`log_scale`
        after the clamp).

    References:
      Willetts et al., Relaxed-Responsibility Hierarchical Discrete VAEs,
      App. B and Table 1 (Spatial-VAE).
      Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014, §2.4
      (reparameterisation) and App. B (Gaussian KL).
    """

    def __init__(self, latent_dim, min_log_scale=-7.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if int(latent_dim) != latent_dim or int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}.")
        self.latent_dim = int(latent_dim)
        self.min_log_scale = None if min_log_scale is None else float(min_log_scale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape=None):
        if input_shape is not None and len(input_shape) > 0 and input_shape[-1] is not None:
            _check_params_width(self, input_shape[-1], 2 * self.latent_dim, None, "inputs")
        self.built = True

    # ----------------------------------------------------------------- checks
    def _split(self, params, what):
        """Checks `[..., 2 * latent_dim]` params and returns `(mean, clamped log_scale)`."""
        params = ops.checked_input(params, self, 2 * self.latent_dim, what=what, check=_check_params_width)
        # float32 for a 16-bit compute dtype: the sample's noise, the scale exp(log_scale) and the KL.
        params = tf.cast(params, logits_dtype(self.compute_dtype))
        mean, log_scale = params[..., : self.latent_dim], params[..., self.latent_dim :]
        if self.min_log_scale is not None:
            log_scale = tf.maximum(log_scale, tf.constant(self.min_log_scale, log_scale.dtype))
        return mean, log_scale

    def standard_normal(self, shape, seed, dtype):
        """`N(0, 1)` noise of `shape`: `ndtri(u)`, `u = ops.replica_uniform(shape, seed, minval=tiny)`."""
        noise_dtype = tf.float64 if dtype == tf.float64 else tf.float32
        tiny = np.finfo(noise_dtype.as_numpy_dtype).tiny
        uniform = ops.replica_uniform(shape, seed, noise_dtype, minval=tiny)
        return tf.cast(tf.math.ndtri(uniform), dtype)

    # ------------------------------------------------------------------- call
    def call(self, inputs, training=None, stochastic=True, seed=None, prior=None):
        """Samples q and returns it with KL(q || p).

        Args:
          inputs: `[..., 2 * latent_dim]` = `concat([mean, log_scale], -1)` of q.
          training: if True, `quantized` is a reparameterised sample.
          stochastic: if True, `quantized` is a sample also outside training;
            with `training` and `stochastic` both False it is exactly `mean`.
          seed: optional int32 `[2]` stateless seed; by default the layer's
            `SeedGenerator` gives a fresh one per call.
          prior: `[..., 2 * latent_dim]` parameters of p, same shape as
            `inputs`, or None for N(0, I).

        Returns:
          The dict described in the class docstring.
        """
        mean, log_scale = self._split(inputs, "inputs")
        if prior is None:
            p_mean = tf.zeros_like(mean)
            p_log_scale = tf.zeros_like(log_scale)
        else:
            p_mean, p_log_scale = self._split(prior, "prior")
            if not p_mean.shape.is_compatible_with(mean.shape):
                raise ValueError(
                    f"GaussianLatent '{self.name}': prior must have the shape of inputs "
                    f"{tf.convert_to_tensor(inputs).shape}, got {tf.convert_to_tensor(prior).shape}."
                )
        if training or stochastic:
            eps = self.standard_normal(tf.shape(mean), ops.stateless_seed(seed, self.seed_generator), mean.dtype)
            sample = mean + tf.exp(log_scale) * eps
        else:
            sample = mean
        kl = tf.reduce_sum(ops.gaussian_kl(mean, log_scale, p_mean, p_log_scale), axis=-1)
        return {
            "quantized": sample,
            "kl": kl,
            "loss": ops.safe_mean(kl),
            "mean": mean,
            "log_scale": log_scale,
        }

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim, "min_log_scale": self.min_log_scale, "seed": self.seed})
        return config
