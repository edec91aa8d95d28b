"""The hierarchical VAE backbone of RRVQ-VAE and Spatial-VAE, with a pluggable latent layer.

`HierarchicalVAE` is the network of RRVQ §3 and App. C: a ResNet VAE (Kingma
et al. 2016). Layers are numbered 1..L from the bottom (layer 1 has the most
latents, layer L the fewest), as in RRVQ eq. 3-5. What a latent is belongs to
the subclass: `RRVQVAE` (relaxed-responsibility discrete latents, `rrvq_vae`)
and `SpatialVAE` (Gaussian latents, `spatial_vae`) are siblings on this backbone.

Inference (RRVQ eq. 4, Fig. C.3a). A stem (`enc1`: stride-2 convolutions)
takes the image to the grid of layer 1; a bottom-up chain of ResNet blocks
`enc_l` gives the deterministic representations d^_1..d^_L, downsampling (a
stride-2 block with an average-pooling identity path) where the latent grid
shrinks. Going top-down, layer l's posterior parameters are

    e_q,l = qladder_l(d^_l) + qstrap_l(d_{l+1}),

and its prior's (eq. 7) e_p,l = pstrap_l(d_{l+1}). The latent layer turns
them into a sample z_l of q and the KL of q from p. z_l enters the top-down
chain: d_l = dec_l(rescale(d_{l+1}) + pladder_l(z_l)), where `rescale`
doubles the grid (nearest neighbour) when layer l's grid is larger than layer
l+1's. Above layer L there is either nothing (`top_prior="uniform"`: a fixed
prior on z_L) or a learnt tensor d_{L+1} (`top_prior="learned"`, App. C).
`dec1` (stride-2 transposed convolutions) maps d_1 to the parameters of a
discretised logistic per sub-pixel (Kingma et al. 2016).

Generation (RRVQ eq. 3, Fig. C.3b) runs the same top-down chain with z_l drawn
from p instead of q: one pass, no autoregression over latents (App. B).

Objective (RRVQ eq. 5): log p(x|z) - sum_l KL(q(z_l|z_>l, x) || p(z_l|z_>l)),
with free bits (Kingma et al. 2016) on each layer's batch-averaged KL in
training.
"""

import math
import weakref

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvq.layers.blocks import ResNetBlock, WeightNormConv2D, upsample_nearest2
from tfvq.losses.likelihoods import discretized_logistic_log_prob
from tfvq.losses.objectives import free_bits_kl
from tfvq.models.contract import ImageModel
from tfvq.models.pixels import like_input, output_is_uint8, to_uint8
from tfvq.models.rrvq.rrvq_recipe import HierarchicalVAERecipe
from tfvq.models.serving import Endpoint, images_spec, served_images
from tfvq.models.stateless_seeds import as_seed
from tfvq.models.training import OptimizerRecipe, Stage

tfd = tfp.distributions

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
class HierarchicalVAE(ImageModel):
    """The ResNet VAE backbone of RRVQ App. C, with a latent layer chosen by the subclass.

    A subclass says what a latent is, through these hooks:
      `_make_latent(l, seed)`: the Keras layer of latent layer l (0-based);
        `call(params, training, stochastic, seed, **prior)` returns at least
        `quantized` (the sample fed to pladder) and `kl` (per position).
      `_latent_dim(l)`, `_q_dim(l)`, `_p_dim(l)`: channels of the sample, of
        q's parameters and of pstrap's output.
      `_prior_kwargs(l, p)`: the keyword arguments that pass pstrap's output
        `p` to the latent layer.
      `_prior_latent(l, d, batch, seed, stochastic)`: z_l drawn from (or the
        mode of) p(z_l | z_>l), given d_{l+1} (None at a uniform top).
      `_before_step(step, total_steps)`: per-step hooks of training.

    Args:
      image_shape: (H, W, C) of the images (8-bit grid).
      latent_sizes: the latent grid of each layer, bottom (layer 1) first: an
        int (square) or (h, w) per layer. Grids must not grow going up and may
        shrink by 2 per step at most; H / h_1 must be a power of two (the
        stem's stride-2 convolutions). RRVQ §4: 4 blocks of 8 layers, the
        number of latents quartered every 8 layers.
      channels: width of the ResNet backbone (App. C: 256 for L = 32).
      blocks_per_layer: ResNet blocks of enc_l and of dec_l (1 for L = 32; 4
        for L = 5, App. C).
      strap_blocks: 0 makes each ladder/strap network a single convolution
        (L = 32); n > 0 makes it n ResNet blocks and a convolution (L = 5: 4).
      top_prior: "uniform" (a fixed prior on z_L) or "learned" (p(z_L) from
        a learnt d_{L+1}, App. C).
      free_bits: lambda in nats per latent position: layer l's batch-averaged
        KL is floored at lambda * h_l * w_l in the training objective (Kingma
        et al. 2016 free bits, one group per layer). The paper uses free bits
        but gives no value; 0.01 is this package's choice.
      residual_scale: scale of every ResNet block's residual branch.
      seed: seed of the initial weights and of the sampling streams.
      **kwargs: passed to `keras.Model`.
    """

    recipe_class = HierarchicalVAERecipe
    """How the family trains (`training_stages`; RRVQ App. C)."""

    def __init__(self, image_shape, latent_sizes, channels=256, blocks_per_layer=1, strap_blocks=0,
                 top_prior="uniform", free_bits=0.01, residual_scale=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {image_shape}.")
        grids = [_as_grid(s) for s in latent_sizes]
        if not grids:
            raise ValueError("latent_sizes needs at least one layer.")
        self._check_grids(grids)
        self.latent_grids = grids
        if top_prior not in TOP_PRIORS:
            raise ValueError(f"top_prior must be one of {TOP_PRIORS}, got {top_prior!r}.")
        if float(free_bits) < 0:
            raise ValueError(f"free_bits must be >= 0 nats per latent, got {free_bits}.")
        self.channels = int(channels)
        self.blocks_per_layer = int(blocks_per_layer)
        self.strap_blocks = int(strap_blocks)
        self.top_prior = top_prior
        self.free_bits = float(free_bits)
        self.residual_scale = float(residual_scale)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._build_network()
        self.build((None,) + self.image_shape)

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
    def _seed(self, offset):
        return None if self.seed is None else int(self.seed) * 7919 + offset

    def _conv(self, filters, kernel, strides=1, transpose=False, offset=0, name=None, output=False, dtype=None):
        # Output convolutions (embeddings, likelihood parameters) start small: q and p start near
        # uniform / the prior, and the likelihood near loc = 1/2, log-scale = -2.
        init = keras.initializers.VarianceScaling(0.01, "fan_in", "truncated_normal") if output else "he_normal"
        return WeightNormConv2D(filters, kernel, strides=strides, transpose=transpose, seed=self._seed(offset),
                                kernel_initializer=init, name=name, dtype=dtype)

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
        # The likelihood's parameters are computed in float32 under mixed precision too: loc in bfloat16
        # would move by up to half a pixel bin of the discretised logistic.
        head.append(self._conv(2 * C, 3, strides=2 if n_down else 1, transpose=bool(n_down), offset=30,
                               name=f"dec1_conv_{len(head) + 1}", output=True, dtype="float32"))
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

    # ------------------------------------------------------------ properties
    @property
    def num_latent_layers(self):
        return len(self.latent_grids)

    @property
    def latent_shapes(self):
        """The (h, w) grid of each latent layer, layer 1 (bottom) first."""
        return list(self.latent_grids)

    def _check_from_layer(self, layer):
        if layer is None:
            return 1
        L = self.num_latent_layers
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)) or not 1 <= int(layer) <= L:
            raise ValueError(f"layer must be an integer in 1..{L} (the lowest latent layer taken from the image; "
                             f"layers below it come from the prior), got {layer!r}.")
        return int(layer)

    # ---------------------------------------------------------------- hooks
    def _before_step(self, step, total_steps):
        """Per-step hooks of training; returns scalars to show (none here)."""
        return {}

    # ------------------------------------------------------------ the passes
    def _layer_seeds(self, seed):
        seed = as_seed(seed)
        if seed is None:
            seed = tf.cast(self.seed_generator.next(), tf.int32)
        return [tf.random.experimental.stateless_fold_in(seed, l) for l in range(self.num_latent_layers)]

    def _top(self, batch):
        if self.top is None:
            return None
        return tf.tile(tf.cast(self.top, tf.float32), [batch, 1, 1, 1])

    def _descend(self, l, d, z):
        """d_l = dec_l(rescale(d_{l+1}) + pladder_l(z_l))."""
        t = self.pladder[l](z)
        if d is not None:
            if tuple(d.shape[1:3]) != self.latent_grids[l]:
                d = upsample_nearest2(d)
            t = t + tf.cast(d, t.dtype)
        return self.dec[l](t)

    def _likelihood_params(self, d):
        out = self.head(d)
        c = self.image_shape[-1]
        loc = out[..., :c] + 0.5
        log_scale = tf.maximum(out[..., c:] - 2.0, MIN_LOG_SCALE)
        return loc, log_scale

    def _inference(self, x, training, seed, stochastic=True, from_layer=1, code_bias=None):
        """The posterior pass (RRVQ eq. 4) on float images `x` in [0, 1].

        Layers >= `from_layer` take z_l from q; layers below it from the
        prior p(z_l | z_>l) (its mode, or a sample if `stochastic`), and their
        KL is reported as 0. `code_bias` {layer (1-based): float [K]}: those
        layers take `argmax_k log q(k) + code_bias[k]` instead of q's mode
        (`CodeModel.encode_biased`; `stochastic=False` only).

        Returns:
          (loc, log_scale, kl [B, L] in nats, list of each layer's latent-layer
          outputs, layer 1 first; None for layers taken from the prior).
        """
        seeds = self._layer_seeds(seed)
        h = self.stem(2.0 * x - 1.0)
        hats = []
        for l in range(self.num_latent_layers):
            h = self.enc[l](h)
            hats.append(h)
        batch = tf.shape(x)[0]
        d = self._top(batch)
        kls, outs = [None] * self.num_latent_layers, [None] * self.num_latent_layers
        for l in reversed(range(self.num_latent_layers)):
            if l >= from_layer - 1:
                e_q = self.qladder[l](hats[l])
                if d is not None:
                    e_q = e_q + self.qstrap[l](d)
                prior = {} if d is None else self._prior_kwargs(l, self.pstrap[l](d))
                if code_bias and l + 1 in code_bias:
                    prior["code_bias"] = code_bias[l + 1]
                out = self.latents[l](e_q, training=training, stochastic=stochastic, seed=seeds[l], **prior)
                kls[l] = tf.reduce_sum(out["kl"], axis=[1, 2])
                outs[l] = out
                z = out["quantized"]
            else:
                z, _ = self._prior_latent(l, d, batch, seeds[l], stochastic)
                kls[l] = tf.zeros([batch], z.dtype)
            d = self._descend(l, d, z)
        loc, log_scale = self._likelihood_params(d)
        return loc, log_scale, tf.stack(kls, axis=1), outs

    def _log_likelihood(self, x, loc, log_scale):
        x_int = tf.cast(tf.round(x * 255.0), tf.int32)
        return tf.reduce_sum(discretized_logistic_log_prob(x_int, loc, log_scale), axis=[1, 2, 3])

    def elbo(self, images, seed=None, training=False):
        """The ELBO of RRVQ eq. 5 per image, in nats, with one sample of q.

        At evaluation (`training=False`) the latents are non-relaxed samples
        (RRVQ Table 1); with `training=True` they are relaxed.

        Returns:
          dict: `elbo` [B], `log_likelihood` [B] (log p(x | z)), `kl` [B, L]
          (KL of each layer, layer 1 first, nats).
        """
        x, _ = self.check_images(images)
        loc, log_scale, kl, _ = self._inference(x, training, seed)
        log_lik = self._log_likelihood(x, loc, log_scale)
        return {"elbo": log_lik - tf.reduce_sum(kl, axis=1), "log_likelihood": log_lik, "kl": kl}

    def bits_per_dim(self, images, seed=None):
        """-ELBO / (H W C ln 2) per image (RRVQ Table 1), non-relaxed latents."""
        return -self.elbo(images, seed=seed)["elbo"] / (self.num_dims * math.log(2.0))

    def train_loss(self, images, training=True, seed=None):
        """The training objective in bits per dim: -(log p(x|z) - free-bits KL), batch mean.

        Returns a dict of scalars: `loss` (to minimise), `bpd` (the exact
        -ELBO in bits/dim), `recon_bpd` and `kl_bpd` (its two parts).
        """
        x, _ = self.check_images(images)
        loc, log_scale, kl, _ = self._inference(x, training, seed)
        log_lik = self._log_likelihood(x, loc, log_scale)
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

    def reconstruct(self, images, layer=None, stochastic=False, seed=None):
        """Images decoded from q's latents: the likelihood's location, as the kind of images given.

        `layer` (default 1) is the lowest layer whose latent comes from q;
        layers below it take the prior's mode (or a sample, `stochastic`).
        `stochastic=True` also samples q.
        """
        from_layer = self._check_from_layer(layer)
        x, was_uint8 = self.check_images(images)
        loc, *_ = self._inference(x, False, seed, stochastic=stochastic, from_layer=from_layer)
        return like_input(loc, was_uint8)

    # -------------------------------------------------------------- sampling
    def sample(self, n, seed=None, pixels="mean", dtype="uint8"):
        """Ancestral samples in one top-down pass (RRVQ eq. 3, App. B).

        Args:
          n: number of images: a positive int, or a scalar int32 tensor.
          seed: None, an int or a pair of ints, for reproducible samples.
          pixels: "mean" decodes each image as the likelihood's location (the
            usual way to show VAE samples); "sample" also draws the pixels from
            the discretised logistic.
          dtype: "uint8" (pixels, the default) or "float32" (in [0, 1]).

        Returns:
          [n, H, W, C] images.
        """
        if not tf.is_tensor(n):  # a scalar int32 tensor (traced export) is used as is
            if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or int(n) < 1:
                raise ValueError(f"n must be a positive number of images, got {n!r}.")
            n = int(n)
        if pixels not in ("mean", "sample"):
            raise ValueError(f"pixels must be 'mean' or 'sample', got {pixels!r}.")
        uint8 = output_is_uint8(dtype)
        seeds = self._layer_seeds(seed)
        d = self._top(n)
        for l in reversed(range(self.num_latent_layers)):
            z, _ = self._prior_latent(l, d, n, seeds[l], True)
            d = self._descend(l, d, z)
        loc, log_scale = self._likelihood_params(d)
        if pixels == "sample":
            u = tf.random.stateless_uniform(tf.shape(loc), tf.random.experimental.stateless_fold_in(seeds[0], 99),
                                            minval=1e-6, maxval=1 - 1e-6)
            loc = loc + tf.exp(log_scale) * (tf.math.log(u) - tf.math.log1p(-u))
        images = tf.cast(tf.round(tf.clip_by_value(loc, 0.0, 1.0) * 255.0), tf.uint8)
        return images if uint8 else tf.cast(images, tf.float32) / 255.0

    # -------------------------------------------------------------- training
    def training_stages(self, recipe=None, steps=None):
        """One end-to-end stage (RRVQ App. C): every variable on `train_loss`, under a `HierarchicalVAERecipe`
        (a mapping of its keys is read as one; None: the defaults, RRVQ App. C's CIFAR-10 recipe).

        The recipe's optimiser (AdaMax) at its learning rate (8e-4), multiplied
        by `plateau_factor` (0.8) when the test bits per dim (`evaluate`) has
        not improved for `plateau_patience` evaluations, down to
        `min_learning_rate` (5e-5); an evaluation every `eval_every` steps.
        Gradients clipped to `clip_norm`.
        """
        recipe = self.as_recipe(recipe)
        n = recipe.stage_steps(0, steps)
        plateau = dict(factor=recipe.plateau_factor, patience=recipe.plateau_patience,
                       min_value=recipe.min_learning_rate)
        return [Stage(
            name="train",
            title=f"End to end: {n} steps, {self.num_latent_layers} latent layers",
            steps=n,
            variables=lambda: self.trainable_variables,
            loss=lambda x, seed: self.train_loss(x, training=True, seed=seed),
            optimizer=OptimizerRecipe(recipe.optimizer, recipe.learning_rate, plateau=plateau,
                                      clip_norm=recipe.clip_norm),
            before_step=lambda step: self._before_step(step, n),
            shown=("loss", "bpd", "kl_bpd"),
            evaluate=lambda images, batch_size, seed: elbo_summary(self, images, batch_size, seed)["bpd"],
            eval_every=recipe.eval_every,
            eval_name="test_bpd",
        )]

    def train_step(self, data):
        """One `model.fit` step on `train_loss` (images only; labels are ignored).

        `fit` keeps the current temperature; `tfvq.train` anneals it.
        """
        images = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            terms = self.train_loss(images, training=True)
        grads = tape.gradient(terms["loss"], self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return terms

    def test_step(self, data):
        """`model.evaluate`: the mean bits per dim of non-relaxed samples (RRVQ Table 1)."""
        images = data[0] if isinstance(data, (tuple, list)) else data
        return {"bpd": tf.reduce_mean(self.bits_per_dim(images))}

    # --------------------------------------------------------------- serving
    def density_endpoints(self):
        """SavedModel signatures of a density model (uint8 images; see `tfvq.export`).

          bits_per_dim (serving_default)  {images} -> {bits_per_dim [B]}, seed `DEFAULT_SEED`
          bits_per_dim_seeded             {images, seed: int32 [2]} -> the same
          elbo / elbo_seeded              -> {elbo [B], log_likelihood [B], kl [B, L]} in nats
          reconstruct                     {images} -> {images: uint8}, `reconstruct(x)`
          sample                          {num_images: int32 [], seed: int32 [2]} -> {images: uint8}
        """
        image_spec = images_spec(self.image_shape)
        seed_spec = tf.TensorSpec((2,), tf.int32, name="seed")
        n_spec = tf.TensorSpec((), tf.int32, name="num_images")

        def x_of(images):
            return served_images(images, self.image_shape)

        def checked_seed(seed):
            return tf.ensure_shape(seed, (2,), name="seed_shape_check")

        def default_seed():
            return tf.constant(DEFAULT_SEED, tf.int32)

        def sample(num_images, seed):
            n = tf.ensure_shape(num_images, (), name="num_images_shape_check")
            with tf.control_dependencies([tf.debugging.assert_positive(
                    n, message="num_images must be a positive number of images")]):
                n = tf.identity(n)
            return {"images": self.sample(n, seed=checked_seed(seed))}

        # The unseeded signatures call the seeded ones with `DEFAULT_SEED`: one traced graph serves both.
        bpd_seeded = tf.function(
            lambda images, seed: {"bits_per_dim": self.bits_per_dim(x_of(images), checked_seed(seed))},
            input_signature=[image_spec, seed_spec], autograph=False)
        elbo_seeded = tf.function(lambda images, seed: dict(self.elbo(x_of(images), checked_seed(seed))),
                                  input_signature=[image_spec, seed_spec], autograph=False)
        image_in = lambda image: {"images": image}  # noqa: E731
        seeded_in = lambda image: {"images": image, "seed": np.zeros((2,), np.int32)}  # noqa: E731
        return [
            Endpoint("bits_per_dim", lambda images: bpd_seeded(images, default_seed()), [image_spec], image_in,
                     aliases=("serving_default",)),
            Endpoint("bits_per_dim_seeded", bpd_seeded, [image_spec, seed_spec], seeded_in),
            Endpoint("elbo", lambda images: elbo_seeded(images, default_seed()), [image_spec], image_in),
            Endpoint("elbo_seeded", elbo_seeded, [image_spec, seed_spec], seeded_in),
            Endpoint("reconstruct", lambda images: {"images": to_uint8(self.reconstruct(x_of(images), seed=default_seed()))},
                     [image_spec], image_in),
            Endpoint("sample", sample, [n_spec, seed_spec],
                     lambda image: {"num_images": np.array(1, np.int32), "seed": np.zeros((2,), np.int32)}),
        ]

    def serving_endpoints(self, layers=None, default_layer=None):
        if layers is not None or default_layer is not None:
            raise ValueError(f"A {type(self).__name__} has no per-layer signatures: leave layers and default_layer "
                             "unset.")
        return self.density_endpoints()

    # ------------------------------------------------------------- reporting
    def describe(self):
        return {**super().describe(), "num_latent_layers": self.num_latent_layers,
                "latent_shapes": [tuple(g) for g in self.latent_shapes]}

    def report(self, test_images, train_images=None, batch_size=64, seed=0, stages=None):
        """Test (and train) bits per dim and the KL of every layer in bits (RRVQ Table 1)."""
        test = elbo_summary(self, test_images, batch_size, seed)
        metrics = {"test_bpd": test["bpd"], "test_recon_bpd": test["recon_bpd"],
                   "kl_bits_per_layer": test["kl_bits_per_layer"],
                   "latent_shapes": [list(s) for s in self.latent_shapes], "test_examples": int(len(test_images))}
        lines = []
        if train_images is not None:
            train = elbo_summary(self, train_images, batch_size, seed)
            metrics.update(train_bpd=train["bpd"], train_examples=int(len(train_images)))
            lines.append(f"bits per dim (-ELBO): train {train['bpd']:.4f} ({len(train_images)} images), "
                         f"test {test['bpd']:.4f} ({len(test_images)} images)")
        else:
            lines.append(f"bits per dim (-ELBO): test {test['bpd']:.4f} ({len(test_images)} images)")
        rows = [[l, f"{h}x{w}", f"{b:.2f}"] for l, ((h, w), b) in
                enumerate(zip(self.latent_shapes, test["kl_bits_per_layer"]), start=1)]
        return {"metrics": metrics, "table": (["layer", "latents", "KL (bits)"], rows), "lines": lines}

    def previews(self, images, seed=0, stages=None, num_samples=64):
        """`reconstructions`: originals, then `reconstruct`; `samples`: ancestral samples in rows of 8."""
        images = np.asarray(images, np.float32)
        recon = self.reconstruct(images, seed=[seed, 0]).numpy()
        samples = self.sample(num_samples, seed=[seed, 1], dtype="float32").numpy()
        per_row = min(8, num_samples)
        rows = [samples[i: i + per_row] for i in range(0, num_samples - num_samples % per_row, per_row)]
        return {"reconstructions": [images, recon], "samples": rows}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "latent_sizes": [list(g) for g in self.latent_grids],
                "channels": self.channels,
                "blocks_per_layer": self.blocks_per_layer,
                "strap_blocks": self.strap_blocks,
                "top_prior": self.top_prior,
                "free_bits": self.free_bits,
                "residual_scale": self.residual_scale,
                "seed": self.seed,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


DEFAULT_SEED = (0, 0)
"""The stateless seed of the unseeded `bits_per_dim`, `elbo` and `reconstruct` signatures."""

_ELBO_FNS = weakref.WeakKeyDictionary()


def elbo_summary(model, images, batch_size=64, seed=0):
    """Negative ELBO and per-layer KL of a hierarchical VAE over `images` (RRVQ Table 1).

    Uses `model.elbo` (non-relaxed latents, one sample of q per image) in
    batches, with stateless seeds `[seed, 2_000_003 + batch index]`, through
    one `tf.function` per model (traced once), so two evaluations of the same
    weights agree exactly.

    Returns:
      dict: `bpd` (mean -ELBO in bits per dim), `recon_bpd` (mean -log p(x|z)
      in bits per dim) and `kl_bits_per_layer` (mean KL of each latent layer
      in bits per image, layer 1 first).
    """
    if model not in _ELBO_FNS:
        _ELBO_FNS[model] = tf.function(lambda x, s: model.elbo(x, seed=s), reduce_retracing=True)
    elbo_fn = _ELBO_FNS[model]
    images = np.asarray(images)
    dims = float(np.prod(images.shape[1:]))
    elbo, log_lik, kl = [], [], []
    for i, start in enumerate(range(0, len(images), batch_size)):
        out = elbo_fn(tf.constant(images[start: start + batch_size]), tf.constant([seed, 2_000_003 + i], tf.int32))
        elbo.append(out["elbo"].numpy())
        log_lik.append(out["log_likelihood"].numpy())
        kl.append(out["kl"].numpy())
    elbo, log_lik, kl = (np.concatenate(a).astype(np.float64) for a in (elbo, log_lik, kl))
    return {
        "bpd": float(-elbo.mean() / (dims * math.log(2.0))),
        "recon_bpd": float(-log_lik.mean() / (dims * math.log(2.0))),
        "kl_bits_per_layer": [float(v) for v in kl.mean(axis=0) / math.log(2.0)],
    }
