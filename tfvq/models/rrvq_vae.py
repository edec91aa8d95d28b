"""Relaxed-Responsibility hierarchical discrete VAEs (Willetts et al.).

`RRVQVAE` is the RRVQ-VAE of RRVQ §3 and App. C: a ResNet VAE (Kingma et al.
2016) whose latent variables are discrete. Layers are numbered 1..L from the
bottom (layer 1 has the most latents, layer L the fewest), as in RRVQ eq. 3-5.

Inference (RRVQ eq. 4, Fig. C.3a). A stem (`enc1`: stride-2 convolutions)
takes the image to the grid of layer 1; a bottom-up chain of ResNet blocks
`enc_l` gives the deterministic representations d^_1..d^_L, downsampling (a
stride-2 block with an average-pooling identity path) where the latent grid
shrinks. Going top-down, layer l's posterior embedding is

    e_q,l = qladder_l(d^_l) + qstrap_l(d_{l+1}),

and its prior embedding (eq. 7) is e_p,l = pstrap_l(d_{l+1}). Both become
probabilities as responsibilities under layer l's Gaussian mixture (codebooks
of means and of diagonal variances, `RelaxedResponsibilityQuantizer`, eq.
6-7). A sample z_l of q is looked up in the codebook of means and enters the
top-down chain: d_l = dec_l(rescale(d_{l+1}) + pladder_l(E_mu[z_l])), where
`rescale` doubles the grid (nearest neighbour) when layer l's grid is larger
than layer l+1's. Above layer L there is either nothing (uniform prior on z_L,
`top_prior="uniform"`) or a learnt tensor d_{L+1} (`top_prior="learned"`, App. C).
`dec1` (stride-2 transposed convolutions) maps d_1 to the parameters of a
discretised logistic per sub-pixel (Kingma et al. 2016).

Generation (RRVQ eq. 3, Fig. C.3b) runs the same top-down chain with z_l drawn
from p instead of q: one pass, no autoregression over latents (App. B).

Objective (RRVQ eq. 5): log p(x|z) - sum_l KL(q(z_l|z_>l, x) || p(z_l|z_>l)),
the KL of each layer analytic between the two categoricals, with free bits
(Kingma et al. 2016) on each layer's batch-averaged KL in training. Training
uses relaxed (Gumbel-softmax) samples of q at a temperature that `set_temperature`
anneals; evaluation uses non-relaxed categorical samples (RRVQ Table 1).

Ablations (RRVQ Table G.1): `prior="direct"` makes pstrap output K logits
(Direct-Cat) instead of an embedding (Embed-Cat); `covariance="unit"` fixes
every variance to 1 (sigma = 1). `RRVQVAE` with one latent layer,
`covariance="unit"` and a uniform prior is the rVQ-VAE baseline (RRVQ eq. 2,
Table 1, App. B); `tfvq.models.spatial_vae.SpatialVAE` is the same hierarchy
with Gaussian latents.
"""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvq.layers.blocks import ResNetBlock, WeightNormConv2D, upsample_nearest2
from tfvq.layers.quantizers import RelaxedResponsibilityQuantizer
from tfvq.losses.likelihoods import discretized_logistic_log_prob
from tfvq.losses.objectives import free_bits_kl
from tfvq.models.hqa import check_images

tfd = tfp.distributions

PRIORS = ("embedding", "direct")
TOP_PRIORS = ("uniform", "learned")
MIN_LOG_SCALE = -7.0
"""Floor of the likelihood's log-scale (on the [0, 1] pixel scale), as PixelCNN++ uses."""


def _as_grid(size):
    if isinstance(size, (int, np.integer)):
        return (int(size), int(size))
    h, w = size
    return (int(h), int(w))


class _Stack(keras.layers.Layer):
    """A chain of layers applied in order (keeps sublayers tracked and saved)."""

    def __init__(self, layers, activate_input=False, **kwargs):
        super().__init__(**kwargs)
        self.blocks = list(layers)
        self.activate_input = activate_input

    def build(self, input_shape):
        shape = input_shape
        for layer in self.blocks:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        self.built = True

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for layer in self.blocks:
            shape = layer.compute_output_shape(shape)
        return shape

    def call(self, x):
        if self.activate_input:
            x = tf.nn.elu(x)
        for i, layer in enumerate(self.blocks):
            if i and isinstance(layer, WeightNormConv2D):  # blocks end pre-activation: ELU before a conv
                x = tf.nn.elu(x)
            x = layer(x)
        return x


@keras.saving.register_keras_serializable(package="tfvq")
class RRVQVAE(keras.Model):
    """RRVQ-VAE: a ResNet VAE with L layers of relaxed-responsibility discrete latents.

    Args:
      image_shape: (H, W, C) of the images (values in [0, 1], 8-bit grid).
      latent_sizes: the latent grid of each layer, bottom (layer 1) first: an
        int (square) or (h, w) per layer. Grids must not grow going up and may
        shrink by 2 per step at most; H / h_1 must be a power of two (the
        stem's stride-2 convolutions). RRVQ §4: 4 blocks of 8 layers, the
        number of latents quartered every 8 layers.
      num_codes: K, one int for every layer or one per layer (App. F tapers K).
      code_dim: d_e, the embedding dimension.
      channels: width of the ResNet backbone (App. C: 256 for L = 32).
      blocks_per_layer: ResNet blocks of enc_l and of dec_l (1 for L = 32; 4
        for L = 5, App. C).
      strap_blocks: 0 makes each ladder/strap network a single convolution
        (L = 32); n > 0 makes it n ResNet blocks and a convolution (L = 5: 4).
      prior: "embedding" (Embed-Cat, RRVQ eq. 7) or "direct" (Direct-Cat:
        pstrap outputs the logits of p; Table G.1).
      covariance: the quantizers' variance codebooks: "diagonal" (RRVQ eq.
        6), "isotropic", or "unit" (sigma = 1; Table G.1 and rVQ eq. 2).
      top_prior: "uniform" (p(z_L) = Cat(1/K)) or "learned" (p(z_L) from a
        learnt d_{L+1}, App. C).
      free_bits: lambda in nats per latent position: layer l's batch-averaged
        KL is floored at lambda * h_l * w_l in the training objective (Kingma
        et al. 2016 free bits, one group per layer). The paper uses free bits
        but gives no value; 0.01 is this package's choice.
      initial_temperature, final_temperature, anneal_fraction: the
        Gumbel-softmax temperature schedule of `set_temperature` (the paper
        gives none): tau(t) = max(tau_1, tau_0 (tau_1 / tau_0)^(t / (f T)))
        -- an exponential decay from tau_0 to tau_1 over the first fraction f
        of the T training steps (Jang et al. 2017's exponential form), then
        constant.
      residual_scale: scale of every ResNet block's residual branch.
      seed: seed of the initial weights and of the sampling streams.
      **kwargs: passed to `keras.Model`.

    References:
      Willetts et al., Relaxed-Responsibility Hierarchical Discrete VAEs:
      §3, eq. 3-7, App. C, App. F, Table G.1.
    """

    end_to_end = True
    """Trained on one objective with every variable at once (not layer by layer)."""

    def __init__(
        self,
        image_shape,
        latent_sizes,
        num_codes=256,
        code_dim=32,
        channels=256,
        blocks_per_layer=1,
        strap_blocks=0,
        prior="embedding",
        covariance="diagonal",
        top_prior="uniform",
        free_bits=0.01,
        initial_temperature=1.0,
        final_temperature=0.5,
        anneal_fraction=0.5,
        residual_scale=0.1,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {image_shape}.")
        grids = [_as_grid(s) for s in latent_sizes]
        if not grids:
            raise ValueError("latent_sizes needs at least one layer.")
        self._check_grids(grids)
        self.latent_grids = grids
        L = len(grids)
        if isinstance(num_codes, (int, np.integer)):
            num_codes = [int(num_codes)] * L
        num_codes = [int(k) for k in num_codes]
        if len(num_codes) != L:
            raise ValueError(f"num_codes has {len(num_codes)} entries for {L} latent layers.")
        if prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}.")
        if top_prior not in TOP_PRIORS:
            raise ValueError(f"top_prior must be one of {TOP_PRIORS}, got {top_prior!r}.")
        if not 0.0 < float(final_temperature) <= float(initial_temperature):
            raise ValueError(
                f"Need 0 < final_temperature <= initial_temperature, got {final_temperature}, {initial_temperature}."
            )
        if float(free_bits) < 0:
            raise ValueError(f"free_bits must be >= 0 nats per latent, got {free_bits}.")
        self.num_codes = num_codes
        self.code_dim = int(code_dim)
        self.channels = int(channels)
        self.blocks_per_layer = int(blocks_per_layer)
        self.strap_blocks = int(strap_blocks)
        self.prior = prior
        self.covariance = covariance
        self.top_prior = top_prior
        self.free_bits = float(free_bits)
        self.initial_temperature = float(initial_temperature)
        self.final_temperature = float(final_temperature)
        self.anneal_fraction = float(anneal_fraction)
        self.residual_scale = float(residual_scale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_network()
        self.build((None,) + self.image_shape)

    # ---------------------------------------------------------------- checks
    def _check_grids(self, grids):
        h, w, _ = self.image_shape
        h1, w1 = grids[0]
        ratio = h // h1 if h1 else 0
        if h1 < 1 or h % h1 or w % w1 or h // h1 != w // w1 or ratio & (ratio - 1):
            raise ValueError(
                f"The first latent grid {grids[0]} must divide the image {h}x{w} by a power of two "
                f"(the stem's stride-2 convolutions)."
            )
        for l in range(1, len(grids)):
            (a, b), (c, d) = grids[l - 1], grids[l]
            if (a, b) != (c, d) and (a, b) != (2 * c, 2 * d):
                raise ValueError(
                    f"Latent grids may keep their size or halve from one layer to the next; layer {l} is "
                    f"{grids[l - 1]} and layer {l + 1} is {grids[l]}."
                )

    # ----------------------------------------------------------- the network
    def _latent_dim(self, l):
        """Channels of the sample fed to pladder_l (the codebook's d_e)."""
        return self.code_dim

    def _q_dim(self, l):
        """Channels of the posterior embedding e_q,l."""
        return self.code_dim

    def _p_dim(self, l):
        """Channels of pstrap_l's output: an embedding, or K logits (Direct-Cat)."""
        return self.code_dim if self.prior == "embedding" else self.num_codes[l]

    def _make_latent(self, l, seed):
        return RelaxedResponsibilityQuantizer(
            self.num_codes[l],
            self.code_dim,
            covariance=self.covariance,
            temperature=self.initial_temperature,
            seed=seed,
            name=f"latent_{l + 1}",
        )

    def _seed(self, offset):
        return None if self.seed is None else int(self.seed) * 7919 + offset

    def _conv(self, filters, kernel, strides=1, transpose=False, offset=0, name=None, output=False):
        # Output convolutions (embeddings, likelihood parameters) start small: q and p start near
        # uniform / the prior, and the likelihood near loc = 1/2, log-scale = -2.
        init = keras.initializers.VarianceScaling(0.01, "fan_in", "truncated_normal") if output else "he_normal"
        return WeightNormConv2D(filters, kernel, strides=strides, transpose=transpose, seed=self._seed(offset),
                                kernel_initializer=init, name=name)

    def _block(self, resample=None, transpose=False, offset=0, name=None):
        return ResNetBlock(self.channels, resample=resample, transpose=transpose,
                           residual_scale=self.residual_scale, seed=self._seed(offset), name=name)

    def _net(self, kind, l, out_dim, upscale, offset):
        """A ladder or strap network (RRVQ App. C): one convolution, or blocks then one."""
        layers = []
        transpose = kind in ("qstrap", "pstrap")
        for b in range(self.strap_blocks if kind != "pladder" else 0):
            layers.append(self._block("up" if (upscale and b == 0) else None, transpose=transpose,
                                      offset=offset + b, name=f"{kind}_{l + 1}_block_{b + 1}"))
        if kind == "pladder":
            layers.append(self._conv(self.channels, 3, offset=offset, name=f"pladder_{l + 1}_conv"))
            for b in range(self.strap_blocks):
                layers.append(self._block(offset=offset + 1 + b, name=f"pladder_{l + 1}_block_{b + 1}"))
        else:
            stride = 2 if (upscale and self.strap_blocks == 0) else 1
            layers.append(self._conv(out_dim, 3, strides=stride, transpose=transpose and stride == 2,
                                     offset=offset + 50, name=f"{kind}_{l + 1}_conv", output=True))
        return _Stack(layers, activate_input=kind != "pladder", name=f"{kind}_{l + 1}")

    def _build_network(self):
        H, W, C = self.image_shape
        L = self.num_latent_layers
        n_down = int(round(math.log2(H // self.latent_grids[0][0])))
        self._n_down = n_down
        stem = [self._conv(self.channels, 3, strides=2 if n_down else 1, offset=1, name="enc1_conv_1")]
        for i in range(1, n_down):
            stem.append(self._conv(self.channels, 3, strides=2, offset=1 + i, name=f"enc1_conv_{i + 1}"))
        self.stem = _Stack(stem, name="enc1")
        head = []
        for i in range(max(n_down - 1, 0)):
            head.append(self._conv(self.channels, 3, strides=2, transpose=True, offset=20 + i, name=f"dec1_conv_{i + 1}"))
        head.append(self._conv(2 * C, 3, strides=2 if n_down else 1, transpose=bool(n_down), offset=30,
                               name=f"dec1_conv_{len(head) + 1}", output=True))
        self.head = _Stack(head, activate_input=True, name="dec1")
        self.enc, self.dec, self.qladder, self.qstrap, self.pstrap, self.pladder, self.latents = ([] for _ in range(7))
        for l in range(L):
            base = 1000 * (l + 1)
            down = l > 0 and self.latent_grids[l] != self.latent_grids[l - 1]
            up = l < L - 1 and self.latent_grids[l] != self.latent_grids[l + 1]
            self.enc.append(_Stack([self._block("down" if (down and b == 0) else None, offset=base + b,
                                                name=f"enc_{l + 1}_block_{b + 1}")
                                    for b in range(self.blocks_per_layer)], name=f"enc_{l + 1}"))
            self.dec.append(_Stack([self._block(None, transpose=True, offset=base + 100 + b,
                                                name=f"dec_{l + 1}_block_{b + 1}")
                                    for b in range(self.blocks_per_layer)], name=f"dec_{l + 1}"))
            self.qladder.append(self._net("qladder", l, self._q_dim(l), False, base + 200))
            has_above = l < L - 1 or self.top_prior == "learned"
            self.qstrap.append(self._net("qstrap", l, self._q_dim(l), up, base + 300) if has_above else None)
            self.pstrap.append(self._net("pstrap", l, self._p_dim(l), up, base + 400) if has_above else None)
            self.pladder.append(self._net("pladder", l, self.channels, False, base + 500))
            self.latents.append(self._make_latent(l, self._seed(base + 600)))

    def build(self, input_shape=None):
        if self.built:
            return
        H, W, C = self.image_shape
        self.stem.build((None, H, W, C))
        shape = self.stem.compute_output_shape((None, H, W, C))
        for l in range(self.num_latent_layers):
            self.enc[l].build(shape)
            shape = self.enc[l].compute_output_shape(shape)
            if tuple(shape[1:3]) != self.latent_grids[l]:
                raise ValueError(f"Internal: encoder grid {shape[1:3]} != latent grid {self.latent_grids[l]}.")
        L = self.num_latent_layers
        if self.top_prior == "learned":
            h, w = self.latent_grids[-1]
            self.top = self.add_weight(name="d_top", shape=(1, h, w, self.channels),
                                       initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self._seed(7)))
        else:
            self.top = None
        for l in reversed(range(L)):
            h, w = self.latent_grids[l]
            feat = (None, h, w, self.channels)
            self.qladder[l].build(feat)
            if self.qstrap[l] is not None:
                above = self.latent_grids[l + 1] if l < L - 1 else self.latent_grids[l]
                self.qstrap[l].build((None, *above, self.channels))
                self.pstrap[l].build((None, *above, self.channels))
            self.latents[l].build((None, h, w, self._q_dim(l)))
            self.pladder[l].build((None, h, w, self._latent_dim(l)))
            self.dec[l].build(feat)
        h, w = self.latent_grids[0]
        self.head.build((None, h, w, self.channels))
        self.built = True

    # ------------------------------------------------------------ properties
    @property
    def num_latent_layers(self):
        return len(self.latent_grids)

    @property
    def latent_shapes(self):
        """The (h, w) grid of each latent layer, layer 1 (bottom) first."""
        return list(self.latent_grids)

    @property
    def num_dims(self):
        h, w, c = self.image_shape
        return h * w * c

    def code_bits(self):
        """Bits to transmit every layer's codes at a fixed rate: sum_l h_l w_l ceil(log2 K_l) (RRVQ App. F)."""
        return int(sum(h * w * max(1, math.ceil(math.log2(k))) for (h, w), k in zip(self.latent_grids, self.num_codes)))

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
            if hasattr(q, "temperature"):
                q.temperature.assign(tf.cast(tau, q.temperature.dtype))
        return tau

    # ------------------------------------------------------------ the passes
    def _layer_seeds(self, seed):
        if seed is None:
            seed = self.seed_generator.next()
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int32)
        return [tf.random.experimental.stateless_fold_in(seed, l) for l in range(self.num_latent_layers)]

    def _top(self, batch):
        if self.top is None:
            return None
        return tf.tile(tf.cast(self.top, tf.float32), [batch, 1, 1, 1])

    def _prior_kwargs(self, l, d):
        if d is None:
            return {}
        p = self.pstrap[l](d)
        return {"prior": p} if self.prior == "embedding" else {"prior_logits": p}

    def _descend(self, l, d, z):
        """d_l = dec_l(rescale(d_{l+1}) + pladder_l(z_l))."""
        t = self.pladder[l](z)
        if d is not None:
            if tuple(d.shape[1:3]) != self.latent_grids[l]:
                d = upsample_nearest2(d)
            t = t + d
        return self.dec[l](t)

    def _likelihood_params(self, d):
        out = self.head(d)
        c = self.image_shape[-1]
        loc = out[..., :c] + 0.5
        log_scale = tf.maximum(out[..., c:] - 2.0, MIN_LOG_SCALE)
        return loc, log_scale

    def _inference(self, images, training, seed, stochastic=True):
        """The posterior pass (RRVQ eq. 4): likelihood parameters and per-layer KL [B, L]."""
        x = tf.cast(images, tf.float32)
        seeds = self._layer_seeds(seed)
        h = self.stem(2.0 * x - 1.0)
        hats = []
        for l in range(self.num_latent_layers):
            h = self.enc[l](h)
            hats.append(h)
        d = self._top(tf.shape(x)[0])
        kls, codes = [None] * self.num_latent_layers, [None] * self.num_latent_layers
        for l in reversed(range(self.num_latent_layers)):
            e_q = self.qladder[l](hats[l])
            if d is not None:
                e_q = e_q + self.qstrap[l](d)
            out = self.latents[l](e_q, training=training, stochastic=stochastic, seed=seeds[l],
                                  **self._prior_kwargs(l, d))
            kls[l] = tf.reduce_sum(out["kl"], axis=[1, 2])
            codes[l] = out.get("codes")
            d = self._descend(l, d, out["quantized"])
        loc, log_scale = self._likelihood_params(d)
        return loc, log_scale, tf.stack(kls, axis=1), codes

    def _log_likelihood(self, images, loc, log_scale):
        x_int = tf.cast(tf.round(tf.cast(images, tf.float32) * 255.0), tf.int32)
        return tf.reduce_sum(discretized_logistic_log_prob(x_int, loc, log_scale), axis=[1, 2, 3])

    def _check(self, images):
        return check_images(images, self.image_shape)

    def elbo(self, images, seed=None, training=False):
        """The ELBO of RRVQ eq. 5 per image, in nats, with one sample of q.

        At evaluation (`training=False`) the latents are non-relaxed categorical
        samples (RRVQ Table 1); with `training=True` they are relaxed.

        Returns:
          dict: `elbo` [B], `log_likelihood` [B] (log p(x | z)), `kl` [B, L]
          (KL of each layer, layer 1 first, nats).
        """
        images = self._check(images)
        loc, log_scale, kl, _ = self._inference(images, training, seed)
        log_lik = self._log_likelihood(images, loc, log_scale)
        return {"elbo": log_lik - tf.reduce_sum(kl, axis=1), "log_likelihood": log_lik, "kl": kl}

    def bits_per_dim(self, images, seed=None):
        """-ELBO / (H W C ln 2) per image (RRVQ Table 1), non-relaxed latents."""
        return -self.elbo(images, seed=seed)["elbo"] / (self.num_dims * math.log(2.0))

    def train_loss(self, images, training=True, seed=None):
        """The training objective in bits per dim: -(log p(x|z) - free-bits KL), batch mean.

        Returns a dict of scalars: `loss` (to minimise), `bpd` (the exact
        -ELBO in bits/dim), `recon_bpd` and `kl_bpd` (its two parts).
        """
        images = self._check(images)
        loc, log_scale, kl, _ = self._inference(images, training, seed)
        log_lik = self._log_likelihood(images, loc, log_scale)
        scale = 1.0 / (self.num_dims * math.log(2.0))
        recon = -tf.reduce_mean(log_lik)
        positions = tf.constant([h * w for h, w in self.latent_grids], kl.dtype)
        kl_term = free_bits_kl(kl, self.free_bits * positions)
        kl_mean = tf.reduce_sum(tf.reduce_mean(kl, axis=0))
        return {
            "loss": (recon + kl_term) * scale,
            "bpd": (recon + kl_mean) * scale,
            "recon_bpd": recon * scale,
            "kl_bpd": kl_mean * scale,
        }

    def encode(self, images, seed=None, stochastic=False):
        """The codes of every layer (int32 [B, h_l, w_l], layer 1 first) under q.

        `stochastic=False` takes each layer's most probable code given the
        codes above it; `True` samples them.
        """
        images = self._check(images)
        *_, codes = self._inference(images, False, seed, stochastic=stochastic)
        return codes

    def decode(self, codes):
        """Images from every layer's codes (a list, layer 1 first, int [B, h_l, w_l]).

        The top-down pass of RRVQ eq. 3 with each z_l fixed to its code's mean
        embedding: `decode(encode(x))` equals `reconstruct(x)`. Returns the
        likelihood's location, float in [0, 1].
        """
        codes = list(codes)
        if len(codes) != self.num_latent_layers:
            raise ValueError(f"Expected codes for {self.num_latent_layers} layers (layer 1 first), got {len(codes)}.")
        checked = []
        for l, c in enumerate(codes):
            c = tf.convert_to_tensor(c)
            if not c.dtype.is_integer:
                raise ValueError(f"Codes must be integers; layer {l + 1} has dtype {c.dtype.name}.")
            if c.shape.rank != 3 or tuple(c.shape[1:]) != self.latent_grids[l]:
                raise ValueError(f"Layer {l + 1} codes must have shape [batch, {self.latent_grids[l][0]}, "
                                 f"{self.latent_grids[l][1]}], got {list(c.shape)}.")
            if tf.executing_eagerly() and tf.size(c) and not (
                    0 <= int(tf.reduce_min(c)) and int(tf.reduce_max(c)) < self.num_codes[l]):
                raise ValueError(f"Layer {l + 1} codes must be in [0, {self.num_codes[l]}).")
            checked.append(tf.cast(c, tf.int32))
        d = self._top(tf.shape(checked[0])[0])
        for l in reversed(range(self.num_latent_layers)):
            z = tf.gather(tf.cast(self.latents[l].codebook, tf.float32), checked[l])
            d = self._descend(l, d, z)
        loc, _ = self._likelihood_params(d)
        return tf.clip_by_value(loc, 0.0, 1.0)

    def reconstruct(self, images, seed=None, stochastic=False):
        """Images decoded from q's codes: the likelihood's location, float in [0, 1]."""
        images = self._check(images)
        loc, *_ = self._inference(images, False, seed, stochastic=stochastic)
        return tf.clip_by_value(loc, 0.0, 1.0)

    # -------------------------------------------------------------- sampling
    def _sample_latent(self, l, d, batch, seed):
        """z_l ~ p(z_l | z_>l) (non-relaxed), returned as its codebook embedding."""
        q = self.latents[l]
        h, w = self.latent_grids[l]
        if d is None:
            logits = tf.zeros([batch, h, w, q.num_codes])
        elif self.prior == "embedding":
            logits = q.log_responsibilities(self.pstrap[l](d))
        else:
            logits = self.pstrap[l](d)
        codes = tfd.Categorical(logits=logits, dtype=tf.int32).sample(seed=seed)
        return tf.gather(tf.cast(q.codebook, tf.float32), codes)

    def sample(self, n, seed=None, pixels="mean"):
        """Ancestral samples in one top-down pass (RRVQ eq. 3, App. B).

        Args:
          n: number of images: a positive int, or a scalar int32 tensor.
          seed: stateless seed (int or [2] ints) for reproducible samples.
          pixels: "mean" decodes each image as the likelihood's location (the
            usual way to show VAE samples); "sample" also draws the pixels from
            the discretised logistic.

        Returns:
          uint8 [n, H, W, C].
        """
        if not tf.is_tensor(n):  # a scalar int32 tensor (traced export) is used as is
            if int(n) < 1:
                raise ValueError(f"n must be a positive number of images, got {n}.")
            n = int(n)
        if pixels not in ("mean", "sample"):
            raise ValueError(f"pixels must be 'mean' or 'sample', got {pixels!r}.")
        seeds = self._layer_seeds(seed)
        d = self._top(n)
        for l in reversed(range(self.num_latent_layers)):
            z = self._sample_latent(l, d, n, seeds[l])
            d = self._descend(l, d, z)
        loc, log_scale = self._likelihood_params(d)
        if pixels == "sample":
            u = tf.random.stateless_uniform(tf.shape(loc), tf.random.experimental.stateless_fold_in(seeds[0], 99),
                                            minval=1e-6, maxval=1 - 1e-6)
            loc = loc + tf.exp(log_scale) * (tf.math.log(u) - tf.math.log1p(-u))
        return tf.cast(tf.round(tf.clip_by_value(loc, 0.0, 1.0) * 255.0), tf.uint8)

    # ------------------------------------------------------------------ keras
    def _images_of(self, data):
        return data[0] if isinstance(data, (tuple, list)) else data

    def train_step(self, data):
        """One `model.fit` step on the objective of `train_loss` (images only; labels are ignored).

        `fit` keeps the current Gumbel-softmax temperature; call `set_temperature`
        from a callback to anneal it, or train with `tfvq.train`, which does.
        """
        images = self._check(self._images_of(data))
        with tf.GradientTape() as tape:
            terms = self.train_loss(images, training=True)
        grads = tape.gradient(terms["loss"], self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return terms

    def test_step(self, data):
        """`model.evaluate`: the mean bits per dim of non-relaxed samples (RRVQ Table 1)."""
        return {"bpd": tf.reduce_mean(self.bits_per_dim(self._images_of(data)))}

    def call(self, images, training=None):
        """Per-image bits per dim (for `predict` and export)."""
        return self.bits_per_dim(images)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "latent_sizes": [list(g) for g in self.latent_grids],
                "num_codes": list(self.num_codes),
                "code_dim": self.code_dim,
                "channels": self.channels,
                "blocks_per_layer": self.blocks_per_layer,
                "strap_blocks": self.strap_blocks,
                "prior": self.prior,
                "covariance": self.covariance,
                "top_prior": self.top_prior,
                "free_bits": self.free_bits,
                "initial_temperature": self.initial_temperature,
                "final_temperature": self.final_temperature,
                "anneal_fraction": self.anneal_fraction,
                "residual_scale": self.residual_scale,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
