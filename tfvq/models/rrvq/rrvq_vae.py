"""Relaxed-Responsibility hierarchical discrete VAEs (Willetts et al.).

`RRVQVAE` is the RRVQ-VAE of RRVQ §3 and App. C: the `HierarchicalVAE`
backbone whose latents are discrete. Layer l's posterior embedding e_q,l
(qladder + qstrap) and prior embedding e_p,l (pstrap, eq. 7) become
probabilities as responsibilities under the layer's Gaussian mixture
(codebooks of means and of diagonal variances,
`RelaxedResponsibilityQuantizer`, eq. 6-7); the KL of each layer is analytic
between the two categoricals. A sample z_l of q is looked up in the codebook
of means and enters the top-down chain. The top layer's prior is uniform
(`top_prior="uniform"`) or comes from a learnt d_{L+1}. Training uses relaxed
(Gumbel-softmax) samples of q at a temperature that `set_temperature`
anneals; evaluation uses non-relaxed categorical samples (RRVQ Table 1).

Codes (`CodeModel`): `encode(x, layer=l)` gives the codes of layers l..L
(default l = 1: every layer, RRVQ App. F), and `decode(codes, layer=l)`
decodes them top-down, taking layers below l from the prior p(z | z_>l)
(its mode, or a sample if `stochastic`).

Ablations (RRVQ Table G.1): `prior="direct"` makes pstrap output K logits
(Direct-Cat) instead of an embedding (Embed-Cat); `covariance="unit"` fixes
every variance to 1 (sigma = 1). `RRVQVAE` with one latent layer,
`covariance="unit"` and a uniform prior is the rVQ-VAE baseline (RRVQ eq. 2,
Table 1, App. B).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvq.code_layout import CodeLayout
from tfvq.layers.relaxed_responsibility import RelaxedResponsibilityQuantizer
from tfvq.models.code_checks import below_layer, check_codes, checked_code_bias
from tfvq.models.contract import CodeModel
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.rrvq.hierarchical_vae import DEFAULT_SEED, HierarchicalVAE

tfd = tfp.distributions

PRIORS = ("embedding", "direct")


@keras.saving.register_keras_serializable(package="tfvq")
class RRVQVAE(CodeModel, HierarchicalVAE):
    """RRVQ-VAE: a ResNet VAE with L layers of relaxed-responsibility discrete latents.

    Args:
      image_shape, latent_sizes, channels, blocks_per_layer, strap_blocks,
      top_prior, free_bits, residual_scale, seed: the backbone's (see
        `HierarchicalVAE`); `top_prior="uniform"` is p(z_L) = Cat(1/K).
      num_codes: K, one int for every layer or one per layer (App. F tapers K).
      code_dim: d_e, the embedding dimension.
      prior: "embedding" (Embed-Cat, RRVQ eq. 7) or "direct" (Direct-Cat:
        pstrap outputs the logits of p; Table G.1).
      covariance: the quantizers' variance codebooks: "diagonal" (RRVQ eq.
        6), "isotropic", or "unit" (sigma = 1; Table G.1 and rVQ eq. 2).
      initial_temperature, final_temperature, anneal_fraction: the
        Gumbel-softmax temperature schedule of `set_temperature` (the paper
        gives none): tau(t) = max(tau_1, tau_0 (tau_1 / tau_0)^(t / (f T)))
        -- an exponential decay from tau_0 to tau_1 over the first fraction f
        of the T training steps (Jang et al. 2017's exponential form), then
        constant.
      **kwargs: passed to `keras.Model`.

    References:
      Willetts et al., Relaxed-Responsibility Hierarchical Discrete VAEs:
      §3, eq. 3-7, App. C, App. F, Table G.1.
    """

    _code_serving_default = False  # serving_default is bits_per_dim, the model's evaluation metric

    def __init__(self, image_shape, latent_sizes, num_codes=256, code_dim=32, channels=256, blocks_per_layer=1,
                 strap_blocks=0, prior="embedding", covariance="diagonal", top_prior="uniform", free_bits=0.01,
                 initial_temperature=1.0, final_temperature=0.5, anneal_fraction=0.5, residual_scale=0.1, seed=None,
                 **kwargs):
        L = len(latent_sizes)
        if isinstance(num_codes, (int, np.integer)):
            num_codes = [int(num_codes)] * L
        num_codes = [int(k) for k in num_codes]
        if len(num_codes) != L:
            raise ValueError(f"num_codes has {len(num_codes)} entries for {L} latent layers.")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}.")
        if not 0.0 < float(final_temperature) <= float(initial_temperature):
            raise ValueError(
                f"Need 0 < final_temperature <= initial_temperature, got {final_temperature}, {initial_temperature}."
            )
        # Read by the backbone's hooks while it builds the network.
        self.num_codes = tuple(num_codes)
        self.code_dim = int(code_dim)
        self.prior = prior
        self.covariance = covariance
        self.initial_temperature = float(initial_temperature)
        self.final_temperature = float(final_temperature)
        self.anneal_fraction = float(anneal_fraction)
        super().__init__(image_shape, latent_sizes, channels=channels, blocks_per_layer=blocks_per_layer,
                         strap_blocks=strap_blocks, top_prior=top_prior, free_bits=free_bits,
                         residual_scale=residual_scale, seed=seed, **kwargs)
        self._layout = CodeLayout(tuple(tuple(g) for g in self.latent_grids), tuple(self.num_codes),
                                  default_layer=1, cumulative=True)

    # ------------------------------------------------------- backbone hooks
    def _latent_dim(self, l):
        return self.code_dim

    def _q_dim(self, l):
        return self.code_dim

    def _p_dim(self, l):
        """pstrap's output: an embedding (Embed-Cat), or K logits (Direct-Cat)."""
        return self.code_dim if self.prior == "embedding" else self.num_codes[l]

    def _make_latent(self, l, seed):
        return RelaxedResponsibilityQuantizer(self.num_codes[l], self.code_dim, covariance=self.covariance,
                                              temperature=self.initial_temperature, seed=seed, name=f"latent_{l + 1}")

    def _prior_kwargs(self, l, p):
        return {"prior": p} if self.prior == "embedding" else {"prior_logits": p}

    def prior_logits(self, l, d, batch):
        """log p(z_l | z_>l) [B, h, w, K] (RRVQ eq. 7) given d_{l+1}; uniform at a top without d_{L+1}."""
        q = self.latents[l]
        h, w = self.latent_grids[l]
        if d is None:
            return tf.zeros([batch, h, w, q.num_codes])
        if self.prior == "embedding":
            return q.log_responsibilities(self.pstrap[l](d))
        return tf.nn.log_softmax(self.pstrap[l](d), axis=-1)

    def _prior_latent(self, l, d, batch, seed, stochastic):
        """z_l from p(z_l | z_>l): a non-relaxed sample, or the most probable code; (embedding, codes)."""
        logits = self.prior_logits(l, d, batch)
        if stochastic:
            codes = tfd.Categorical(logits=logits, dtype=tf.int32).sample(seed=seed)
        else:
            codes = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return tf.gather(tf.cast(self.latents[l].codebook, tf.float32), codes), codes

    def _before_step(self, step, total_steps):
        return {"temperature": self.set_temperature(step, total_steps)}

    # -------------------------------------------------------------- schedule
    def temperature_at(self, step, total_steps):
        """The Gumbel-softmax temperature at `step` of `total_steps` (see the class docstring)."""
        step = tf.cast(step, tf.float32)
        span = tf.maximum(tf.cast(total_steps, tf.float32) * self.anneal_fraction, 1.0)
        t0, t1 = self.initial_temperature, self.final_temperature
        tau = t0 * tf.pow(t1 / t0, tf.minimum(step / span, 1.0))
        return tf.maximum(tau, t1)

    def set_temperature(self, step, total_steps):
        """Assigns `temperature_at(step, total_steps)` to every layer's quantizer."""
        tau = self.temperature_at(step, total_steps)
        for q in self.latents:
            q.temperature.assign(tf.cast(tau, q.temperature.dtype))
        return tau

    # ----------------------------------------------------------------- codes
    def code_layout(self):
        return self._layout

    def code_bits(self):
        """Bits to transmit every layer's codes at a fixed rate: sum_l h_l w_l ceil(log2 K_l) (RRVQ App. F)."""
        return self._layout.bits(1)

    def encode(self, images, layer=None, stochastic=False, seed=None):
        """The codes of layers `layer`..L under q (default: every layer), layer `layer` first.

        `stochastic=False` takes each layer's most probable code given the
        codes above it; `True` samples them. Returns a list of int32
        [B, h_l, w_l] (a single tensor when one layer is sent).
        """
        layer = self._layout.check_layer(layer)
        x, _ = self.check_images(images)
        *_, outs = self._inference(x, False, seed, stochastic=stochastic, from_layer=layer)
        return self._codes_out([outs[l - 1]["codes"] for l in self._layout.layers_sent(layer)])

    def encode_biased(self, images, code_bias, layer=None):
        """`encode(images, layer)` with each layer `l` of `code_bias` taking `argmax_k log q(k | x, z_>l) +
        code_bias[l][k]`, top-down: the layers below see the codes chosen above (`CodeModel.encode_biased`)."""
        layer = self._layout.check_layer(layer)
        bias = checked_code_bias(code_bias, self._layout)
        x, _ = self.check_images(images)
        *_, outs = self._inference(x, False, None, stochastic=False, from_layer=layer, code_bias=bias)
        return self._codes_out([outs[l - 1]["codes"] for l in self._layout.layers_sent(layer)])

    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        """Images from the codes of layers `layer`..L (RRVQ eq. 3, top-down).

        Each given z_l is its code's mean embedding; layers below `layer` take
        the prior's most probable code given the layers above (or a sample,
        `stochastic`). `decode(encode(x))` equals `reconstruct(x)`. Returns
        the likelihood's location, float32 in [0, 1] (or uint8, `dtype`).
        """
        layer = self._layout.check_layer(layer)
        checked = check_codes(codes, self._layout, layer)
        uint8 = output_is_uint8(dtype)
        seeds = self._layer_seeds(seed) if stochastic else [None] * self.num_latent_layers
        batch = tf.shape(checked[0])[0]
        d = self._top(batch)
        for l in reversed(range(self.num_latent_layers)):
            if l >= layer - 1:
                z = tf.gather(tf.cast(self.latents[l].codebook, tf.float32), checked[l - (layer - 1)])
            else:
                z, _ = self._prior_latent(l, d, batch, seeds[l], stochastic)
            d = self._descend(l, d, z)
        loc, _ = self._likelihood_params(d)
        return like_input(loc, uint8)

    def reconstruct(self, images, layer=None, stochastic=False, seed=None):
        """`decode(encode(images, layer), layer)` in one pass: the likelihood's location, as the kind given."""
        return HierarchicalVAE.reconstruct(self, images, layer, stochastic=stochastic, seed=seed)

    def tflite_encoder(self, layer=None):
        """The encoder for TFLite: float images in [0, 1] -> {codes_layer_l: int32 [B, h_l, w_l]} for the
        layers sent, the most probable codes (`encode(x, layer)` without its graph-mode value checks)."""
        layer = self._layout.check_layer(layer)

        def encode(images):
            *_, outs = self._inference(tf.cast(images, tf.float32), False, tf.constant(DEFAULT_SEED, tf.int32),
                                       stochastic=False, from_layer=layer)
            return {f"codes_layer_{l}": outs[l - 1]["codes"] for l in self._layout.layers_sent(layer)}

        return encode

    # ------------------------------------------------- probabilities of codes
    def _descend_codes(self, codes, layer):
        """d_layer from the codes of layers `layer`..L (each z_l its code's mean embedding, RRVQ eq. 3)."""
        checked = check_codes(codes, self._layout, layer)
        batch = tf.shape(checked[0])[0]
        d = self._top(batch)
        for l in reversed(range(layer - 1, self.num_latent_layers)):
            z = tf.gather(tf.cast(self.latents[l].codebook, tf.float32), checked[l - (layer - 1)])
            d = self._descend(l, d, z)
        return d, batch

    def code_logits(self, codes, layer):
        """log p(z_{l-1} | z_>=l): the prior of layer l-1 given the codes of layers l..L (RRVQ eq. 7).

        Returns float32 [B, h, w, K] normalised log-probabilities on layer
        l-1's grid, the distribution `decode(codes, l, stochastic=True)`
        samples layer l-1 from; `layer` must be in 2..L (`CodeModel.code_logits`).
        """
        layer = below_layer(self._layout, layer)
        d, batch = self._descend_codes(codes, layer)
        return tf.nn.log_softmax(self.prior_logits(layer - 2, d, batch), axis=-1)

    def top_code_logits(self, batch):
        """log p(z_L) [batch, h_L, w_L, K_L]: the top prior (uniform, or from the learnt d_{L+1}, RRVQ App. C)."""
        L = self.num_latent_layers
        return tf.nn.log_softmax(self.prior_logits(L - 1, self._top(batch), batch), axis=-1)

    def pixel_likelihood(self, codes, layer=None):
        """(loc, log_scale) [B, H, W, C] of the discretised logistic p(x | z) (RRVQ App. C, eq. 5's first term).

        z are the codes of layers `layer`..L (default 1: every layer) and,
        below `layer`, the prior's most probable codes (as `decode`). The
        parameters are on the [0, 1] pixel scale of
        `tfvq.losses.discretized_logistic_log_prob`; `decode` returns `loc`
        clipped to [0, 1].
        """
        layer = self._layout.check_layer(layer)
        d, batch = self._descend_codes(codes, layer)
        for l in reversed(range(layer - 1)):
            z, _ = self._prior_latent(l, d, batch, None, False)
            d = self._descend(l, d, z)
        return self._likelihood_params(d)

    def default_export_layers(self):
        return [1]

    def decodes_stochastically(self, layer):
        return layer > 1

    # --------------------------------------------------------------- serving
    def serving_endpoints(self, layers=None, default_layer=None):
        """The density signatures (`HierarchicalVAE.density_endpoints`) and the code signatures
        (`CodeModel.code_endpoints`: encode, decode, reconstruct with codes; layer 1 by default)."""
        code = self.code_endpoints(layers, default_layer)
        names = {e.name for e in code}
        return [e for e in self.density_endpoints() if e.name not in names] + code

    def describe(self):
        info = HierarchicalVAE.describe(self)
        info.update(CodeModel.describe(self))
        info.update(num_codes=list(self.num_codes), code_dim=self.code_dim, code_bits=self.code_bits())
        return info

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_codes": list(self.num_codes),
                "code_dim": self.code_dim,
                "prior": self.prior,
                "covariance": self.covariance,
                "initial_temperature": self.initial_temperature,
                "final_temperature": self.final_temperature,
                "anneal_fraction": self.anneal_fraction,
            }
        )
        return config
