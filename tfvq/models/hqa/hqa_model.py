"""Hierarchical Quantized Autoencoders (Williams et al., 2020).

A stack of layers, each an encoder, a `StochasticVectorQuantizer` and a
decoder (HQA §5, App. C, Tables 9 and 10). Layer 1 encodes pixels; layer l > 1
encodes the continuous encoder output `z_e` of layer l - 1 (no quantisation
on the way up, Algorithm 2 line 11). Each layer is trained greedily to
reconstruct its own input (pixels, or `z_e` of the layer below) with HQA eq. 4;
decoding from layer l goes down the stack, re-quantising at every layer
(Algorithm 3), so only layer l's codes are transmitted.

Layers are numbered 1..L as in the paper.

Three switches make the ablated systems of HQA Table 3 (§6.2) out of the same
stack, each an ordinary model of this family (`HQA(..., quantizer=,
target=, probabilistic_loss=)`):

    system (Table 3)        quantizer  target  probabilistic_loss
    + hierarchy (HAMs)      "vq"       "codes" -
    HAMs + GS               "gumbel"   "codes" False
    HAMs + MSE              "vq"       "z_e"   -
    HAMs + GS + MSE         "gumbel"   "z_e"   False
    + probabilistic (HQA)   "gumbel"   "z_e"   True   (the default)

* `quantizer`: "gumbel", HQA's stochastic posterior (eq. 3) sampled by the
  Gumbel-softmax in training, with dead-code resets (App. C.4): Table 3's
  "GS"; or "vq", the deterministic nearest code with a straight-through
  gradient and a codebook that follows an online EMA k-means, no resets (HAMs,
  App. C.2; De Fauw et al. 2019).
* `target`, what a layer above the first reconstructs: "z_e", the layer
  below's continuous z_e under an MSE (HQA §5.2.2: Table 3's "MSE"); or
  "codes", the layer below's code indices under a cross-entropy (HAMs, HQA
  §2.2 and App. C.2): the decoder's last convolution gives logits over the
  K codes below, and decoding takes their most probable code (or a sample).
  The first layer always reconstructs pixels under an MSE.
* `probabilistic_loss` (with "gumbel"): HQA eq. 4's entropy and expected
  commitment (True), or the VQ-VAE's codebook and commitment terms at the
  sampled code (False, App. B.4). A "vq" layer always has the VQ-VAE's
  commitment term (its codebook follows the EMA).

In every system a layer encodes the z_e of the layer below (HQA Figure 2), so
the systems differ only in the switches.

The zoo's named configurations of this family are beside it (`tfvq.models.hqa.presets`).
"""

import keras
import numpy as np
import tensorflow as tf

from tfvq.code_layout import CodeLayout
from tfvq.layers.activations import mish_activation
from tfvq.layers.blocks import RunningNormalization
from tfvq.layers.stochastic_vq import StochasticVectorQuantizer
from tfvq.layers.vq import VectorQuantizer
from tfvq.models.code_checks import below_layer, check_codes
from tfvq.models.contract import CodeModel
from tfvq.models.hqa.hqa_recipes import HQARecipe
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.stateless_seeds import as_seed, fold_seeds
# The greedy stage and the per-layer report are shared with the VQ-VAE baseline (`tfvq.models.stages`).
from tfvq.models.stages import greedy_stage, layer_report


@keras.saving.register_keras_serializable(package="tfvq")
class DilatedResidual(keras.layers.Layer):
    """`x + mish(conv3x3_dilated(x))`: the optional dilated decoder layers of HQA App. C.1."""

    def __init__(self, channels, dilation_rate=1, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.dilation_rate = int(dilation_rate)
        self.dropout = float(dropout)
        self.conv = keras.layers.Conv2D(channels, 3, padding="same", dilation_rate=dilation_rate,
                                        activation=mish_activation())
        self.drop = keras.layers.Dropout(dropout)

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.drop.build(input_shape)

    def call(self, x, training=None):
        return x + self.drop(self.conv(x), training=training)

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels, "dilation_rate": self.dilation_rate, "dropout": self.dropout})
        return config


@keras.saving.register_keras_serializable(package="tfvq")
class HQALayer(keras.layers.Layer):
    """One layer of the HQA stack: encoder, stochastic quantizer, decoder.

    Encoder (HQA App. C.1; the paper is silent on the details, so the public
    reference behaviour is followed): conv3x3/2 (h/2) -> Mish -> conv3x3 (h)
    -> Mish -> conv1x1 (code_dim). Without `downsample` (CelebA's layer 1,
    Table 9, whose input and output are both 64x64) the first conv has stride 1.

    Decoder: conv3x3 (h) -> Mish -> [dilated residual conv3x3 (h)] x
    (decoder_layers - 3) -> upsample x2 (nearest neighbour) -> conv3x3 (h/2)
    -> Mish -> conv3x3 (out). Table 9's 6-layer decoders get three dilated
    residual layers (dilations 1, 2, 4); Table 10's 3-layer decoders none.
    Dropout (Table 9) is applied after every hidden decoder activation. The
    first layer ends in a sigmoid (pixels in [0, 1]); layers >= 2 normalise
    their input by running statistics and undo it on the decoder output.

    Args:
      input_channels: channels of this layer's input (image channels for
        layer 1, the lower layer's code_dim otherwise).
      num_codes: K (codebook size).
      code_dim: D (64 in the paper).
      encoder_hidden, decoder_hidden: h of the encoder and decoder.
      decoder_layers: number of decoder conv layers (>= 3).
      dropout: decoder dropout rate.
      downsample: halve the spatial size (True for every layer but CelebA's first).
      first: this is layer 1 (sigmoid output, no input normalisation).
      temperature, entropy_cost, commitment_cost, distance_scale, reset_window:
        passed to the `StochasticVectorQuantizer` (HQA eq. 3-4; beta_e and beta_c
        of the tables; the dead-code reset window of App. C.4, 20 batches).
      seed: seed of the quantizer's random stream.
      quantizer: "gumbel" (`StochasticVectorQuantizer`) or "vq" (`VectorQuantizer`
        with an EMA codebook and commitment cost `commitment_cost`); see the module
        docstring (HQA Table 3's switches).
      target: "z_e" or "codes": what this layer reconstructs when it is not the first.
      probabilistic_loss: HQA eq. 4's regulariser (True) or eq. 2's (False), for "gumbel".
      target_codes: K of the layer below (the width of the logits of a "codes" target).
    """

    def __init__(
        self,
        input_channels,
        num_codes=256,
        code_dim=64,
        encoder_hidden=16,
        decoder_hidden=16,
        decoder_layers=3,
        dropout=0.0,
        downsample=True,
        first=False,
        temperature=0.66,
        entropy_cost=1e-3,
        commitment_cost=1e-3,
        distance_scale=1.0,
        reset_window=20,
        seed=None,
        quantizer="gumbel",
        target="z_e",
        probabilistic_loss=True,
        target_codes=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(decoder_layers) < 3:
            raise ValueError(f"decoder_layers must be >= 3, got {decoder_layers}.")
        check_switches(quantizer, target, probabilistic_loss)
        self.quantizer_kind = quantizer
        self.target = "pixels" if first else target
        self.probabilistic_loss = bool(probabilistic_loss)
        if self.target == "codes" and (target_codes is None or int(target_codes) < 1):
            raise ValueError("A layer whose target is the codes below needs target_codes, the K of the layer below.")
        self.target_codes = None if target_codes is None else int(target_codes)
        self.input_channels = int(input_channels)
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.encoder_hidden = int(encoder_hidden)
        self.decoder_hidden = int(decoder_hidden)
        self.decoder_layers = int(decoder_layers)
        self.dropout = float(dropout)
        self.downsample = bool(downsample)
        self.first = bool(first)
        self.temperature = float(temperature)
        self.entropy_cost = float(entropy_cost)
        self.commitment_cost = float(commitment_cost)
        self.distance_scale = float(distance_scale)
        self.reset_window = int(reset_window)
        self.seed = seed

        stride = 2 if self.downsample else 1
        h = self.encoder_hidden
        self.encoder = keras.Sequential(
            [
                keras.layers.Conv2D(max(h // 2, 1), 3, strides=stride, padding="same", activation=mish_activation()),
                keras.layers.Conv2D(h, 3, padding="same", activation=mish_activation()),
                keras.layers.Conv2D(self.code_dim, 1),
            ],
            name="encoder",
        )
        if quantizer == "gumbel":
            self.quantizer = StochasticVectorQuantizer(
                self.num_codes,
                self.code_dim,
                temperature=self.temperature,
                distance_scale=self.distance_scale,
                entropy_cost=self.entropy_cost,
                commitment_cost=self.commitment_cost,
                reset_window=self.reset_window,
                probabilistic_loss=self.probabilistic_loss,
                seed=seed,
                name="quantizer",
            )
        else:  # HAMs (HQA App. C.2): nearest code, EMA k-means codebook, commitment term, no resets
            self.quantizer = VectorQuantizer(self.num_codes, self.code_dim, commitment_cost=self.commitment_cost,
                                             ema=True, seed=seed, name="quantizer")
        h = self.decoder_hidden
        dec = [keras.layers.Conv2D(h, 3, padding="same", activation=mish_activation()),
               keras.layers.Dropout(self.dropout)]
        for i in range(self.decoder_layers - 3):
            dec.append(DilatedResidual(h, dilation_rate=2 ** (i % 3), dropout=self.dropout))
        if self.downsample:
            dec.append(keras.layers.UpSampling2D(2, interpolation="nearest"))
        dec += [
            keras.layers.Conv2D(max(h // 2, 1), 3, padding="same", activation=mish_activation()),
            keras.layers.Dropout(self.dropout),
            keras.layers.Conv2D(self.target_codes if self.target == "codes" else self.input_channels, 3,
                                padding="same", activation="sigmoid" if self.first else None),
        ]
        self.decoder = keras.Sequential(dec, name="decoder")
        self.normalizer = None if self.first else RunningNormalization(name="input_norm")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if self.normalizer is not None:
            self.normalizer.build(input_shape)
        self.encoder.build(input_shape)
        code_shape = self.encoder.compute_output_shape(input_shape)
        self.quantizer.build(code_shape)
        self.decoder.build(code_shape)
        self.built = True

    # -- pieces used by the model and the trainer
    def encode_continuous(self, x, training=False):
        """z_e of this layer for its input x (HQA Algorithm 2 line 13)."""
        if self.normalizer is not None:
            x = self.normalizer(x, training=training)
        return self.encoder(x, training=training)

    def decode_continuous(self, z_q, training=False):
        """This layer's reconstruction of its input from quantised codes: pixels, the layer below's z_e, or (a
        "codes" target) logits [..., K below] over the layer below's codes."""
        y = self.decoder(z_q, training=training)
        if self.normalizer is not None and self.target != "codes":
            y = self.normalizer.denormalize(y)
        return y

    def quantize_z_e(self, z_e, training=False, stochastic=True, seed=None):
        """The quantizer's dict for z_e, the same keys for both kinds: `quantized`, `codes`, `loss`,
        `perplexity`, `entropy`, `commitment`, and at inference `log_probs`.

        A "vq" layer's posterior is the one-hot of the nearest code (HQA eq. 1): its `entropy` is 0 and its
        codes are the nearest whatever `stochastic` says (HQA App. B.4, eq. 18-19); its `log_probs` are
        softmax(-s ||z_e - e_k||^2) (eq. 3's form), the smooth code model that an entropy coder needs."""
        if self.quantizer_kind == "gumbel":
            return self.quantizer(z_e, training=training, stochastic=stochastic, seed=seed)
        out = dict(self.quantizer(z_e, training=training))
        distances = tf.cast(out.pop("distances"), tf.float32)
        out["entropy"] = tf.zeros([], tf.float32)
        out["commitment"] = tf.reduce_mean(tf.reduce_min(distances, axis=-1))
        if not training:
            out["log_probs"] = tf.nn.log_softmax(-self.distance_scale * distances, axis=-1)
        return out

    def codes_of(self, z_e, stochastic=False, seed=None):
        """int32 codes [...] of z_e [..., D]: the most probable code, or (`stochastic`, "gumbel") a sample of q."""
        if stochastic and self.quantizer_kind == "gumbel":
            return self.quantizer(z_e, training=False, stochastic=True, seed=seed)["codes"]
        return self.quantizer.nearest_codes(z_e)

    def code_log_probs(self, z_e):
        """float32 [..., K] log-probabilities of this layer's codes given a (predicted) z_e (HQA eq. 3; a "vq"
        layer's are `quantize_z_e`'s smooth code model)."""
        return self.quantize_z_e(z_e, training=False, stochastic=False)["log_probs"]

    def tflite_codes(self, flat):
        """The most probable codes [N] of z_e rows [N, D] with TFLite builtins only (a MatMul+BiasAdd, ARG_MAX)."""
        if self.quantizer_kind == "gumbel":
            logits, _ = self.quantizer.shifted_logits(flat)
            return tf.argmax(logits, axis=-1, output_type=tf.int32)
        return self.quantizer.nearest_codes(flat)

    def call(self, x, training=None, seed=None):
        """Autoencodes this layer's input; returns the quantizer's dict plus `reconstruction`."""
        z_e = self.encode_continuous(x, training=training)
        out = self.quantize_z_e(z_e, training=training, stochastic=True, seed=seed)
        out["reconstruction"] = self.decode_continuous(out["quantized"], training=training)
        out["z_e"] = z_e
        return out

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "input_channels": self.input_channels,
                "num_codes": self.num_codes,
                "code_dim": self.code_dim,
                "encoder_hidden": self.encoder_hidden,
                "decoder_hidden": self.decoder_hidden,
                "decoder_layers": self.decoder_layers,
                "dropout": self.dropout,
                "downsample": self.downsample,
                "first": self.first,
                "temperature": self.temperature,
                "entropy_cost": self.entropy_cost,
                "commitment_cost": self.commitment_cost,
                "distance_scale": self.distance_scale,
                "reset_window": self.reset_window,
                "seed": self.seed,
                "quantizer": self.quantizer_kind,
                "target": "z_e" if self.first else self.target,
                "probabilistic_loss": self.probabilistic_loss,
                "target_codes": self.target_codes,
            }
        )
        return config


QUANTIZERS = ("gumbel", "vq")
"""HQA Table 3's quantizer switch: HQA's Gumbel-softmax posterior with resets ("GS"), or HAMs' EMA VQ."""
TARGETS = ("z_e", "codes")
"""HQA Table 3's target switch for layers above the first: the z_e below under an MSE, or its codes (HAMs)."""


def check_switches(quantizer, target, probabilistic_loss):
    """Raises a `ValueError` naming the allowed values for an unknown switch (HQA Table 3)."""
    if quantizer not in QUANTIZERS:
        raise ValueError(f"quantizer must be one of {QUANTIZERS}, got {quantizer!r}.")
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}.")
    if not isinstance(probabilistic_loss, (bool, np.bool_)):
        raise ValueError(f"probabilistic_loss must be True or False, got {probabilistic_loss!r}.")
    if quantizer == "vq" and probabilistic_loss:
        raise ValueError("probabilistic_loss (HQA eq. 4) needs quantizer='gumbel': a 'vq' layer's posterior is "
                         "one-hot, with no entropy to reward. Pass probabilistic_loss=False.")


@keras.saving.register_keras_serializable(package="tfvq")
class HQA(CodeModel):
    """A Hierarchical Quantized Autoencoder: a stack of `HQALayer`s.

    Codes (`CodeModel`): layer l's code alone decodes to an image, going down
    the stack (HQA Algorithm 3); `encode`/`decode` default to the top layer,
    the lowest rate.

    Args:
      image_shape: (H, W, C) of the input images.
      layers: a list of dicts of `HQALayer` arguments, one per layer, bottom
        first (`input_channels`, `first` and `target_codes` are filled in).
      quantizer, target, probabilistic_loss: HQA Table 3's switches for every
        layer (the module docstring); the defaults are HQA's. A layer's dict
        may set its own.
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = HQA((32, 32, 1), [dict(num_codes=8, code_dim=4)] * 2)
      >>> model.code_shape(2), model.bits(2)
      ((8, 8), 192)

    References:
      Williams et al., Hierarchical Quantized Autoencoders, NeurIPS 2020.
    """

    recipe_class = HQARecipe
    """How the family trains (`training_stages`; HQA App. C.1)."""

    def __init__(self, image_shape, layers, quantizer="gumbel", target="z_e", probabilistic_loss=True, **kwargs):
        super().__init__(**kwargs)
        check_switches(quantizer, target, probabilistic_loss)
        self.switches = {"quantizer": quantizer, "target": target, "probabilistic_loss": bool(probabilistic_loss)}
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {image_shape}.")
        self.layer_configs = [dict(cfg) for cfg in layers]
        if not self.layer_configs:
            raise ValueError("An HQA model needs at least one layer.")
        self.hqa_layers = []
        channels = self.image_shape[-1]
        shape = (None,) + self.image_shape
        grids = []
        for i, cfg in enumerate(self.layer_configs):
            cfg = {**self.switches, **cfg}
            cfg.update(input_channels=channels, first=(i == 0),
                       target_codes=self.hqa_layers[-1].num_codes if self.hqa_layers else None)
            cfg.setdefault("name", f"hqa_layer_{i + 1}")
            layer = HQALayer(**cfg)
            layer.build(shape)
            self.hqa_layers.append(layer)
            shape = layer.encoder.compute_output_shape(shape)
            if shape[1] < 1 or shape[2] < 1:
                raise ValueError(f"Layer {i + 1} would produce an empty code grid from images {self.image_shape}.")
            grids.append((int(shape[1]), int(shape[2])))
            channels = layer.code_dim
        self._layout = CodeLayout(tuple(grids), tuple(l.num_codes for l in self.hqa_layers),
                                  default_layer=len(grids), cumulative=False)
        self.build((None,) + self.image_shape)

    @property
    def num_layers(self):
        return len(self.hqa_layers)

    def code_layout(self):
        return self._layout

    def _check_layer(self, layer):
        return self._layout.check_layer(layer)

    def build(self, input_shape):
        self.built = True

    # ---------------------------------------------------------------- encoding
    def encode_continuous(self, images, layer=None, training=False):
        """z_e of layer `layer` (HQA Algorithm 2 lines 8-13: no quantisation below)."""
        layer = self._check_layer(layer)
        x, _ = self.check_images(images)
        return self._encode_continuous(x, layer, training)

    def _encode_continuous(self, x, layer, training=False):
        for l in self.hqa_layers[:layer]:
            x = l.encode_continuous(x, training=training)
        return x

    def encode(self, images, layer=None, stochastic=False, seed=None):
        """Codes of layer `layer` (default: the top layer): int32 [B, h, w].

        By default the most probable code (a deterministic encoder for
        compression); `stochastic=True` samples q (HQA eq. 3).
        """
        layer = self._check_layer(layer)
        seed = as_seed(seed)
        z_e = self.encode_continuous(images, layer)
        return self.hqa_layers[layer - 1].codes_of(z_e, stochastic=stochastic, seed=seed)

    # ---------------------------------------------------------------- decoding
    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        """Images from layer `layer`'s codes (HQA Algorithm 3).

        Decodes layer `layer`, then at every layer below re-quantises the
        predicted z_e (its most probable code, or a sample of q if
        `stochastic`) and decodes it, down to pixels. `seed` makes stochastic
        decodes repeatable. Returns float32 in [0, 1], or uint8 if
        `dtype="uint8"`.
        """
        layer = self._check_layer(layer)
        (codes,) = check_codes(codes, self._layout, layer)
        seeds = fold_seeds(seed, layer)
        top = self.hqa_layers[layer - 1]
        x = top.decode_continuous(top.quantizer.lookup(codes))
        for i in range(layer - 1, 0, -1):
            l = self.hqa_layers[i - 1]
            below = self._codes_below(i + 1, x, stochastic, seeds[i - 1])
            x = l.decode_continuous(l.quantizer.lookup(below))
        return like_input(x, output_is_uint8(dtype))

    def _codes_below(self, layer, output, stochastic=False, seed=None):
        """Layer `layer - 1`'s codes from layer `layer`'s decoder output (HQA Algorithm 3, lines 6-7): the
        re-quantised z_e, or for a "codes" target the most probable (or a sampled) code of its logits."""
        if self.hqa_layers[layer - 1].target == "codes":
            if stochastic:
                logits = tf.cast(output, tf.float32)
                flat = tf.reshape(logits, [-1, logits.shape[-1]])
                if seed is None:
                    seed = tf.cast(self.hqa_layers[layer - 1].quantizer.seed_generator.next(), tf.int32)
                draws = tf.random.stateless_categorical(flat, 1, seed, dtype=tf.int32)
                return tf.reshape(draws, tf.shape(logits)[:-1])
            return tf.argmax(output, axis=-1, output_type=tf.int32)
        return self.hqa_layers[layer - 2].codes_of(output, stochastic=stochastic, seed=seed)

    def reconstruct(self, images, layer=None, stochastic=False, seed=None):
        """Compress to layer `layer` (default: the top) and decode (HQA Algorithm 3).

        With `stochastic=True` every layer, the top one included, takes a
        sample of q; by default every layer takes its most probable code, so
        `reconstruct(x, l) == decode(encode(x, l), l)`. Returns images of the
        kind given (uint8 or float).
        """
        layer = self._check_layer(layer)
        x, was_uint8 = self.check_images(images)
        seeds = fold_seeds(seed, layer + 1)
        codes = self.encode(x, layer, stochastic=stochastic, seed=seeds[-1])
        out = self.decode(codes, layer, stochastic=stochastic, seed=None if seed is None else seeds[0])
        return like_input(out, was_uint8)

    def interpolate(self, a, b, layer=None, steps=8):
        """Decodes `steps` points linearly interpolated between the z_e of two images.

        HQA Table 1 / Table 4: interpolate in z_e of layer `layer`, quantise
        (most probable code) and decode. `a`, `b`: [H, W, C] images (uint8
        or float). Returns [steps, H, W, C] of the same kind.
        """
        layer = self._check_layer(layer)
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or int(steps) < 2:
            raise ValueError(f"steps must be an integer >= 2, got {steps!r}.")
        pair = [tf.convert_to_tensor(v) for v in (a, b)]
        if pair[0].dtype != pair[1].dtype:
            raise TypeError(f"a and b must have the same dtype, got {pair[0].dtype.name} and {pair[1].dtype.name}.")
        x, was_uint8 = self.check_images(tf.stack(pair) if pair[0].shape.rank == 3 else tf.concat(pair, 0))
        if x.shape[0] != 2:
            raise ValueError(f"a and b must each be one image [H, W, C], got shape {pair[0].shape.as_list()}.")
        z = self._encode_continuous(x, layer)
        t = tf.cast(tf.reshape(tf.linspace(0.0, 1.0, int(steps)), [-1, 1, 1, 1]), z.dtype)
        z_t = (1.0 - t) * z[:1] + t * z[1:]
        codes = self.hqa_layers[layer - 1].codes_of(z_t)
        return like_input(self.decode(codes, layer), was_uint8)

    # ---------------------------------------------------------------- training
    def layer_loss(self, images, layer, training=True, seed=None):
        """HQA eq. 4 for layer `layer` with the layers below frozen (Algorithm 2).

        The input is the pixels (layer 1) or the continuous z_e of the frozen
        layers below. Terms: `mse`, the mean over all target elements of the
        squared error; `entropy` and `commitment`, means over the code
        positions of H[q] and E_q||z_e - e_k||^2; `loss = mse + beta_c *
        commitment - beta_e * entropy` with the layer's beta_e, beta_c.

        A layer whose target is the codes below (HAMs, HQA App. C.2) has
        `cross_entropy` instead of `mse`: the mean over the positions of the
        layer below of -log softmax(logits)[c], where c is that layer's code of
        the input (its nearest code; with the "gumbel" quantizer a sample of its
        q, the sample HAMs reconstructs, HQA §5.2.2). The quantizer's term is
        the layer's (`HQALayer.quantize_z_e`: eq. 4's or eq. 2's).
        """
        layer = self._check_layer(layer)
        x, _ = self.check_images(images)
        seed = as_seed(seed)
        inputs = tf.stop_gradient(self._encode_continuous(x, layer - 1) if layer > 1 else x)
        this = self.hqa_layers[layer - 1]
        out = this(inputs, training=training, seed=seed)
        terms = {"entropy": out["entropy"], "commitment": out["commitment"], "perplexity": out["perplexity"]}
        if this.target == "codes":
            lower = self.hqa_layers[layer - 2]
            sample_seed = None if seed is None else tf.random.experimental.stateless_fold_in(seed, 1)
            codes = tf.stop_gradient(lower.codes_of(inputs, stochastic=lower.quantizer_kind == "gumbel",
                                                    seed=sample_seed))
            terms["cross_entropy"] = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=codes, logits=tf.cast(out["reconstruction"], tf.float32)))
            terms["loss"] = terms["cross_entropy"] + out["loss"]
            return terms
        # float32 under mixed precision: the error of a reconstruction near its target cancels in 16 bits.
        terms["mse"] = tf.reduce_mean(tf.square(tf.cast(out["reconstruction"], tf.float32) - tf.cast(inputs, tf.float32)))
        terms["loss"] = terms["mse"] + out["loss"]
        return terms

    def layer_variables(self, layer):
        """The trainable variables of layer `layer` (the only ones a greedy step updates)."""
        return self.hqa_layers[self._check_layer(layer) - 1].trainable_variables

    def quantizer(self, layer):
        return self.hqa_layers[self._check_layer(layer) - 1].quantizer

    def training_stages(self, recipe=None, steps=None):
        """One greedy stage per layer, bottom first (HQA Algorithm 2; `greedy_stage`), under an `HQARecipe`
        (a mapping of its keys is read as one; None: the defaults, HQA App. C.1)."""
        recipe = self.as_recipe(recipe)
        stages = []
        for layer in range(1, self.num_layers + 1):
            n = recipe.stage_steps(layer - 1, steps)
            stages.append(greedy_stage(
                f"layer_{layer}", f"Layer {layer}/{self.num_layers}: {n} steps, {self.bits(layer)} bits per image",
                n, lambda layer=layer: self.layer_variables(layer),
                lambda x, seed, layer=layer: self.layer_loss(x, layer, training=True, seed=seed),
                self.quantizer(layer), recipe,
                encode=lambda x, layer=layer: self.encode_continuous(x, layer),
                seed=layer,
                temperatures=(recipe.initial_temperature, recipe.final_temperature),
                reset_fraction=recipe.reset_fraction,
                codebook_init=recipe.layer_codebook_init(layer - 1),
                keep_codes=recipe.layer_keep_codes(layer - 1)))
        return stages

    # ------------------------------------------------------------ deployment
    def tflite_encoder(self, layer=None):
        """Layer `layer`'s encoder for TFLite: float images in [0, 1] -> {"codes": int32 [B, h, w]}.

        Calls the layers directly (no graph-mode value assertions, which are
        not TFLite builtins) and takes `tf.argmax(..., output_type=tf.int32)`
        of the quantizer's logits (an ARG_MAX builtin), as `encode` does.
        """
        layer = self._check_layer(layer)
        top = self.hqa_layers[layer - 1]
        h, w = self.code_shape(layer)

        def encode(images):
            z = self._encode_continuous(tf.cast(images, tf.float32), layer)
            return {"codes": tf.reshape(top.tflite_codes(tf.reshape(z, [-1, top.code_dim])), [-1, h, w])}

        return encode

    # ------------------------------------------------- probabilities of codes
    def code_logits(self, codes, layer):
        """log q(z_{l-1} | z_l): layer l-1's code distribution given layer l's codes (HQA Algorithm 3, eq. 3).

        Layer l's decoder turns its codes into a prediction of layer l-1's
        z_e; layer l-1's quantizer turns that into the categorical
        softmax(-s ||z_e - e_k||^2) (HQA eq. 3) that a stochastic decode
        samples from. Returns float32 [B, h, w, K] normalised log-probabilities
        on layer l-1's grid; `layer` must be in 2..L (`CodeModel.code_logits`).
        """
        layer = below_layer(self._layout, layer)
        (codes,) = check_codes(codes, self._layout, layer)
        top = self.hqa_layers[layer - 1]
        output = top.decode_continuous(top.quantizer.lookup(codes))
        if top.target == "codes":  # HAMs: the decoder's own distribution over the codes below
            return tf.nn.log_softmax(tf.cast(output, tf.float32), axis=-1)
        return self.hqa_layers[layer - 2].code_log_probs(output)

    def code_stride(self, layer=None):
        """2^(the number of downsampling layers up to `layer`, default the top): HQA is fully convolutional."""
        layer = self._check_layer(layer)
        return 2 ** sum(int(l.downsample) for l in self.hqa_layers[:layer])

    # ------------------------------------------------------------- reporting
    def report(self, test_images, train_images=None, batch_size=64, seed=0, stages=None):
        layers = [s + 1 for s in (stages if stages is not None else range(self.num_layers))]
        return layer_report(self, test_images, layers, seed=seed)

    def previews(self, images, seed=0, stages=None, num_decodes=8):
        """`reconstructions`: originals, then the deterministic reconstruction from each trained layer.
        `stochastic_decodes`: per row an original, then stochastic decodes from the top trained layer."""
        layers = [s + 1 for s in (stages if stages is not None else range(self.num_layers))]
        images = np.asarray(images, np.float32)
        rows = [images] + [self.reconstruct(images, l).numpy() for l in layers]
        top = max(layers)
        show = images[:6]
        codes = self.encode(show, top)
        decodes = [self.decode(codes, top, stochastic=True, seed=[seed, i]).numpy() for i in range(num_decodes)]
        grid = [np.concatenate([show[i: i + 1]] + [d[i: i + 1] for d in decodes]) for i in range(len(show))]
        return {"reconstructions": rows, "stochastic_decodes": grid}

    def describe(self):
        info = super().describe()
        info["code_shape_per_layer"] = {l: self.code_shape(l) for l in range(1, self.num_layers + 1)}
        return info

    def get_config(self):
        config = super().get_config()
        config.update({"image_shape": list(self.image_shape), "layers": self.layer_configs, **self.switches})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

