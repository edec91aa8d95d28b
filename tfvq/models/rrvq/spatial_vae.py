"""Spatial-VAE: the RRVQ-VAE hierarchy with conditionally Gaussian latents.

RRVQ Table 1 compares RRVQ-VAE with "hierarchical Spatial-VAEs, the
conditionally-Gaussian latent variable version of our models", and App. B
defines the Spatial-VAE as a VAE whose continuous latents are laid out on a
grid like a VQ-VAE's: q(z|x) = prod_m N(z^m | mu^m(x), sigma^m(x)) and, for
the top layer, p(z) = prod_m N(z^m | 0, I).

`SpatialVAE` is `RRVQVAE`'s sibling on the `HierarchicalVAE` backbone (stem,
enc/dec chains, qladder/qstrap/pstrap/pladder): its latent layer is a
`GaussianLatent`. qladder + qstrap and pstrap output a mean and a log-scale
per latent dimension, the sample is reparameterised, and the KL of each layer
is the analytic Gaussian KL. It has no discrete codes: no `encode`/`decode`,
and `code_layout()` is None.
"""

import keras
import tensorflow as tf

from tfvq.layers.gaussian import GaussianLatent
from tfvq.models.rrvq.hierarchical_vae import HierarchicalVAE


@keras.saving.register_keras_serializable(package="tfvq")
class SpatialVAE(HierarchicalVAE):
    """The RRVQ-VAE hierarchy with Gaussian latents (RRVQ Table 1, App. B).

    Args:
      image_shape, latent_sizes, channels, blocks_per_layer, strap_blocks,
      top_prior, free_bits, residual_scale, seed: the backbone's (see
        `HierarchicalVAE`); `top_prior="uniform"` (or "standard_normal") is
        p(z_L) = N(0, I).
      latent_dim: dimension of each latent vector z^m (App. B: 16).
      min_log_scale: floor of the latents' log standard deviations.
      **kwargs: passed to `keras.Model`.

    References:
      Willetts et al., Relaxed-Responsibility Hierarchical Discrete VAEs,
      Table 1, App. B.
    """

    def __init__(self, image_shape, latent_sizes, latent_dim=32, channels=256, blocks_per_layer=1, strap_blocks=0,
                 top_prior="uniform", free_bits=0.01, min_log_scale=-7.0, residual_scale=0.1, seed=None, **kwargs):
        self.latent_dim = int(latent_dim)
        self.min_log_scale = float(min_log_scale)
        if top_prior == "standard_normal":
            top_prior = "uniform"
        super().__init__(image_shape, latent_sizes, channels=channels, blocks_per_layer=blocks_per_layer,
                         strap_blocks=strap_blocks, top_prior=top_prior, free_bits=free_bits,
                         residual_scale=residual_scale, seed=seed, **kwargs)

    def _latent_dim(self, l):
        return self.latent_dim

    def _q_dim(self, l):
        return 2 * self.latent_dim

    def _p_dim(self, l):
        return 2 * self.latent_dim

    def _make_latent(self, l, seed):
        return GaussianLatent(self.latent_dim, min_log_scale=self.min_log_scale, seed=seed, name=f"latent_{l + 1}")

    def _prior_kwargs(self, l, p):
        return {"prior": p}

    def _prior_latent(self, l, d, batch, seed, stochastic):
        """z_l from p(z_l | z_>l): N(0, I) at the top without d_{L+1}, else pstrap's Gaussian; a sample, or
        its mean. Returns (z, None): Gaussian latents have no codes."""
        h, w = self.latent_grids[l]
        params = tf.zeros([batch, h, w, 2 * self.latent_dim]) if d is None else self.pstrap[l](d)
        return self.latents[l](params, training=False, stochastic=stochastic, seed=seed)["quantized"], None

    def get_config(self):
        config = super().get_config()
        config.update({"latent_dim": self.latent_dim, "min_log_scale": self.min_log_scale})
        return config
