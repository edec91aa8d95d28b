"""Hierarchical Quantized Autoencoders (Williams et al., 2020).

A stack of layers, each an encoder, a `StochasticVectorQuantizer` and a
decoder (HQA §5, App. C, Tables 9 and 10). Layer 1 encodes pixels; layer l > 1
encodes the continuous encoder output `z_e` of layer l - 1 (no quantisation
on the way up, Algorithm 2 line 11). Each layer is trained greedily to
reconstruct its own input (pixels, or `z_e` of the layer below) with HQA eq. 4;
decoding from layer l goes down the stack, re-quantising at every layer
(Algorithm 3), so only layer l's codes are transmitted.

Layers are numbered 1..L as in the paper.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from tfvq.layers.blocks import RunningNormalization
from tfvq.layers.quantizers import StochasticVectorQuantizer


@keras.saving.register_keras_serializable(package="tfvq")
class DilatedResidual(keras.layers.Layer):
    """`x + mish(conv3x3_dilated(x))`: the optional dilated decoder layers of HQA App. C.1."""

    def __init__(self, channels, dilation_rate=1, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.dilation_rate = int(dilation_rate)
        self.dropout = float(dropout)
        self.conv = keras.layers.Conv2D(channels, 3, padding="same", dilation_rate=dilation_rate, activation="mish")
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
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(decoder_layers) < 3:
            raise ValueError(f"decoder_layers must be >= 3, got {decoder_layers}.")
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
                keras.layers.Conv2D(max(h // 2, 1), 3, strides=stride, padding="same", activation="mish"),
                keras.layers.Conv2D(h, 3, padding="same", activation="mish"),
                keras.layers.Conv2D(self.code_dim, 1),
            ],
            name="encoder",
        )
        self.quantizer = StochasticVectorQuantizer(
            self.num_codes,
            self.code_dim,
            temperature=self.temperature,
            distance_scale=self.distance_scale,
            entropy_cost=self.entropy_cost,
            commitment_cost=self.commitment_cost,
            reset_window=self.reset_window,
            seed=seed,
            name="quantizer",
        )
        h = self.decoder_hidden
        dec = [keras.layers.Conv2D(h, 3, padding="same", activation="mish"), keras.layers.Dropout(self.dropout)]
        for i in range(self.decoder_layers - 3):
            dec.append(DilatedResidual(h, dilation_rate=2 ** (i % 3), dropout=self.dropout))
        if self.downsample:
            dec.append(keras.layers.UpSampling2D(2, interpolation="nearest"))
        dec += [
            keras.layers.Conv2D(max(h // 2, 1), 3, padding="same", activation="mish"),
            keras.layers.Dropout(self.dropout),
            keras.layers.Conv2D(self.input_channels, 3, padding="same", activation="sigmoid" if self.first else None),
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
        """This layer's reconstruction of its input from quantised codes."""
        y = self.decoder(z_q, training=training)
        if self.normalizer is not None:
            y = self.normalizer.denormalize(y)
        return y

    def call(self, x, training=None, seed=None):
        """Autoencodes this layer's input; returns the quantizer's dict plus `reconstruction`."""
        z_e = self.encode_continuous(x, training=training)
        out = self.quantizer(z_e, training=training, stochastic=True, seed=seed)
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
            }
        )
        return config


def check_images(images, image_shape):
    """Validates a batch of images for a model that takes `image_shape` inputs.

    Raises `ValueError` that says what was expected: float images of shape
    [batch, H, W, C] with values in [0, 1]. Values are checked when they are
    known (eager tensors, NumPy arrays); inside a `tf.function` an assertion
    op checks them at run time.
    """
    h, w, c = image_shape
    if isinstance(images, np.ndarray) or not tf.is_tensor(images):
        images = np.asarray(images)
        if images.dtype.kind not in "f":
            raise ValueError(
                f"Expected float images with values in [0, 1], got dtype {images.dtype}. "
                "Convert 8-bit images with `images.astype('float32') / 255`."
            )
        images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise ValueError(
            f"Expected float images with values in [0, 1], got dtype {images.dtype.name}. "
            "Convert 8-bit images with `tf.cast(images, tf.float32) / 255`."
        )
    shape = images.shape
    if shape.rank != 4 or tuple(shape[1:]) != (h, w, c):
        raise ValueError(
            f"Expected images of shape [batch, {h}, {w}, {c}] (NHWC, {c} channel{'s' if c > 1 else ''}), "
            f"got shape {list(shape)}. Resize or convert the images first (tfvq.data does this)."
        )
    if tf.executing_eagerly():
        if images.shape[0] != 0:
            lo, hi = float(tf.reduce_min(images)), float(tf.reduce_max(images))
            if not (0.0 <= lo and hi <= 1.0) or math.isnan(lo) or math.isnan(hi):
                raise ValueError(
                    f"Expected image values in [0, 1], got values in [{lo:g}, {hi:g}]. "
                    "Scale 8-bit images by 1/255."
                )
    else:
        with tf.control_dependencies(
            [
                tf.debugging.assert_greater_equal(images, tf.cast(0.0, images.dtype), message="image values < 0"),
                tf.debugging.assert_less_equal(images, tf.cast(1.0, images.dtype), message="image values > 1"),
            ]
        ):
            images = tf.identity(images)
    return images


@keras.saving.register_keras_serializable(package="tfvq")
class HQA(keras.Model):
    """A Hierarchical Quantized Autoencoder: a stack of `HQALayer`s.

    Args:
      image_shape: (H, W, C) of the input images (values in [0, 1]).
      layers: a list of dicts of `HQALayer` arguments, one per layer, bottom
        first (`input_channels` and `first` are filled in).
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = HQA((32, 32, 1), [dict(num_codes=8, code_dim=4)] * 2)
      >>> model.code_shape(2), model.bits(2)
      ((8, 8), 192)

    References:
      Williams et al., Hierarchical Quantized Autoencoders, NeurIPS 2020.
    """

    def __init__(self, image_shape, layers, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (H, W, C), got {image_shape}.")
        self.layer_configs = [dict(cfg) for cfg in layers]
        if not self.layer_configs:
            raise ValueError("An HQA model needs at least one layer.")
        self.hqa_layers = []
        channels = self.image_shape[-1]
        shape = (None,) + self.image_shape
        for i, cfg in enumerate(self.layer_configs):
            cfg = dict(cfg)
            cfg.update(input_channels=channels, first=(i == 0))
            cfg.setdefault("name", f"hqa_layer_{i + 1}")
            layer = HQALayer(**cfg)
            layer.build(shape)
            self.hqa_layers.append(layer)
            shape = layer.encoder.compute_output_shape(shape)
            if shape[1] < 1 or shape[2] < 1:
                raise ValueError(f"Layer {i + 1} would produce an empty code grid from images {self.image_shape}.")
            channels = layer.code_dim
        self.build((None,) + self.image_shape)

    @property
    def num_layers(self):
        return len(self.hqa_layers)

    def _check_layer(self, layer):
        if not isinstance(layer, (int, np.integer)) or not 1 <= int(layer) <= self.num_layers:
            raise ValueError(f"layer must be an integer in 1..{self.num_layers} (layers are numbered from 1), got {layer!r}.")
        return int(layer)

    def build(self, input_shape):
        self.built = True

    # ------------------------------------------------------------------ rates
    def code_shape(self, layer):
        """(h, w) of layer `layer`'s code grid."""
        layer = self._check_layer(layer)
        h, w = self.image_shape[:2]
        for l in self.hqa_layers[:layer]:
            if l.downsample:
                h, w = (h + 1) // 2, (w + 1) // 2
        return (h, w)

    def bits(self, layer):
        """The fixed rate of layer `layer`: h * w * ceil(log2 K) bits per image."""
        h, w = self.code_shape(layer)
        k = self.hqa_layers[layer - 1].num_codes
        return h * w * max(1, math.ceil(math.log2(k)))

    # ---------------------------------------------------------------- encoding
    def encode_continuous(self, images, layer, training=False):
        """z_e of layer `layer` (HQA Algorithm 2 lines 8-13: no quantisation below)."""
        layer = self._check_layer(layer)
        x = check_images(images, self.image_shape)
        for l in self.hqa_layers[:layer]:
            x = l.encode_continuous(x, training=training)
        return x

    def encode(self, images, layer, stochastic=False, seed=None):
        """Codes of layer `layer`: int32 [N, h, w].

        By default the most probable code (a deterministic encoder for
        compression); `stochastic=True` samples q (HQA eq. 3).
        """
        layer = self._check_layer(layer)
        z_e = self.encode_continuous(images, layer)
        out = self.hqa_layers[layer - 1].quantizer(z_e, training=False, stochastic=stochastic, seed=seed)
        return out["codes"]

    # ---------------------------------------------------------------- decoding
    def _check_codes(self, codes, layer):
        codes = tf.convert_to_tensor(codes)
        if not codes.dtype.is_integer:
            raise ValueError(f"codes must be integers (int32), got dtype {codes.dtype.name}.")
        h, w = self.code_shape(layer)
        if codes.shape.rank != 3 or tuple(codes.shape[1:]) != (h, w):
            raise ValueError(f"Layer {layer} codes must have shape [batch, {h}, {w}], got {list(codes.shape)}.")
        k = self.hqa_layers[layer - 1].num_codes
        if tf.executing_eagerly() and tf.size(codes) > 0:
            lo, hi = int(tf.reduce_min(codes)), int(tf.reduce_max(codes))
            if lo < 0 or hi >= k:
                raise ValueError(f"Layer {layer} codes must be in [0, {k - 1}], got values in [{lo}, {hi}].")
        return tf.cast(codes, tf.int32)

    def _layer_seeds(self, seed, layer):
        if seed is None:
            return [None] * layer
        base = tf.cast(tf.reshape(tf.convert_to_tensor(seed), [-1]), tf.int32)
        if base.shape[0] == 1:
            base = tf.concat([base, [0]], axis=0)
        return [tf.random.experimental.stateless_fold_in(base, i) for i in range(layer)]

    def decode(self, codes, layer, stochastic=True, seed=None):
        """Images in [0, 1] from layer `layer`'s codes (HQA Algorithm 3).

        Decodes layer `layer`, then at every layer below re-quantises the
        predicted z_e (a sample of q if `stochastic`, else its most probable
        code) and decodes it, down to pixels. `seed` (an int or an int32 pair)
        makes stochastic decodes repeatable.
        """
        layer = self._check_layer(layer)
        codes = self._check_codes(codes, layer)
        seeds = self._layer_seeds(seed, layer)
        top = self.hqa_layers[layer - 1]
        x = top.decode_continuous(top.quantizer.lookup(codes))
        for i in range(layer - 1, 0, -1):
            l = self.hqa_layers[i - 1]
            out = l.quantizer(x, training=False, stochastic=stochastic, seed=seeds[i - 1])
            x = l.decode_continuous(out["quantized"])
        return x

    def reconstruct(self, images, layer, stochastic=True, seed=None):
        """Compress to layer `layer` and decode (HQA Algorithm 3).

        With `stochastic=True` every layer, the top one included, takes a
        sample of q; with `stochastic=False` every layer takes its most
        probable code.
        """
        layer = self._check_layer(layer)
        seeds = self._layer_seeds(seed, layer + 1)
        codes = self.encode(images, layer, stochastic=stochastic, seed=seeds[-1])
        return self.decode(codes, layer, stochastic=stochastic, seed=None if seed is None else seeds[0])

    def interpolate(self, a, b, layer, steps=8):
        """Decodes `steps` points linearly interpolated between the z_e of two images.

        HQA Table 1 / Table 4: interpolate in z_e of layer `layer`, quantise
        (most probable code) and decode. Returns [steps, H, W, C].
        """
        layer = self._check_layer(layer)
        if int(steps) < 2:
            raise ValueError(f"steps must be >= 2, got {steps}.")
        a = tf.reshape(tf.convert_to_tensor(a), (1,) + self.image_shape)
        b = tf.reshape(tf.convert_to_tensor(b), (1,) + self.image_shape)
        z = self.encode_continuous(tf.concat([a, b], 0), layer)
        t = tf.reshape(tf.linspace(0.0, 1.0, int(steps)), [-1, 1, 1, 1])
        t = tf.cast(t, z.dtype)
        z_t = (1.0 - t) * z[:1] + t * z[1:]
        codes = self.hqa_layers[layer - 1].quantizer(z_t, training=False, stochastic=False)["codes"]
        return self.decode(codes, layer, stochastic=False)

    # ---------------------------------------------------------------- training
    def layer_loss(self, images, layer, training=True, seed=None):
        """HQA eq. 4 for layer `layer` with the layers below frozen (Algorithm 2).

        The target is the pixels (layer 1) or the continuous z_e of the frozen
        layers below. Terms: `mse`, the mean over all target elements of the
        squared error; `entropy` and `commitment`, means over the code
        positions of H[q] and E_q||z_e - e_k||^2; `loss = mse + beta_c *
        commitment - beta_e * entropy` with the layer's beta_e, beta_c.
        """
        layer = self._check_layer(layer)
        target = self.encode_continuous(images, layer - 1) if layer > 1 else check_images(images, self.image_shape)
        target = tf.stop_gradient(target)
        out = self.hqa_layers[layer - 1](target, training=training, seed=seed)
        mse = tf.reduce_mean(tf.square(out["reconstruction"] - target))
        return {
            "loss": mse + out["loss"],
            "mse": mse,
            "entropy": out["entropy"],
            "commitment": out["commitment"],
            "perplexity": out["perplexity"],
        }

    def layer_variables(self, layer):
        """The trainable variables of layer `layer` (the only ones a greedy step updates)."""
        return self.hqa_layers[self._check_layer(layer) - 1].trainable_variables

    def quantizer(self, layer):
        return self.hqa_layers[self._check_layer(layer) - 1].quantizer

    def call(self, images, training=None):
        """Deterministic reconstruction through the whole stack (for `predict` and export)."""
        return self.reconstruct(images, self.num_layers, stochastic=False)

    def get_config(self):
        config = super().get_config()
        config.update({"image_shape": list(self.image_shape), "layers": self.layer_configs})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
