"""The network of the autoencoders of today's quantizers: HQA layer 1's encoder and decoder around a quantizer.

`QuantizedAutoencoder` holds what the four families share (HQA App. C.1,
Table 10, layer 1: conv3x3/2 -> Mish -> conv3x3 -> Mish -> conv1x1 down to a
grid of half the image's size; conv3x3 -> Mish -> nearest x2 -> conv3x3 ->
Mish -> conv3x3 -> sigmoid back up), its end-to-end training stage (HQA App.
C.3's optimiser, `VQVAERecipe`), its per-layer report and its serving
signatures; `SingleLayerAutoencoder` adds the codes of a quantizer with one
layer of codes (FSQ, LFQ, VQ).

Reference:
  Williams et al., Hierarchical Quantized Autoencoders, NeurIPS 2020, App. C.1,
  Table 10 (the encoder and decoder).
"""

import math
import numbers

import keras
import numpy as np
import tensorflow as tf

from tfvq.code_layout import CodeLayout
from tfvq.layers.activations import mish_activation
from tfvq.models.code_checks import below_layer, check_codes
from tfvq.models.contract import CodeModel
from tfvq.models.hqa.hqa_recipes import VQVAERecipe
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.recipes import positive_int
from tfvq.models.stages import greedy_stage
from tfvq.models.stateless_seeds import as_seed

__all__ = ["QuantizedAutoencoder", "SingleLayerAutoencoder"]


def _image_shape(image_shape):
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = ()
    if len(shape) != 3 or not all(
            isinstance(d, numbers.Integral) and not isinstance(d, (bool, np.bool_)) and int(d) > 0 for d in shape):
        raise ValueError(f"image_shape must be (H, W, C) of positive integers, got {image_shape!r}.")
    shape = tuple(int(d) for d in shape)
    if shape[0] % 2 or shape[1] % 2:
        raise ValueError(f"image_shape {list(shape)}: H and W must be even (the encoder halves them to the code "
                         "grid and the decoder doubles it back).")
    return shape


class QuantizedAutoencoder(CodeModel):
    """HQA layer 1's encoder and decoder around a quantizer, trained end to end (the base of both families).

    Encoder (HQA App. C.1, Table 10, layer 1): conv3x3 stride 2 (`encoder_hidden // 2`) -> Mish -> conv3x3
    (`encoder_hidden`) -> Mish -> conv1x1 (`code_dim`): [B, H, W, C] -> [B, H/2, W/2, code_dim]. Decoder:
    conv3x3 (`decoder_hidden`) -> Mish -> nearest-neighbour upsampling x2 -> conv3x3 (`decoder_hidden // 2`)
    -> Mish -> conv3x3 (C) -> sigmoid. Fully convolutional: images of any even H and W
    (`code_stride()` = 2, `with_image_shape`).

    Decoding is deterministic (`stochastic` and `seed` are accepted and change nothing). One training stage,
    HQA's optimiser over every variable (RAdam, cosine tail, HQA App. C.3) under a `VQVAERecipe`, on the mean
    squared error of the pixels plus the quantizer's loss.

    A subclass builds its quantizer for `code_dim` channels, gives it as `quantizer_layer`, calls
    `_finish_build(quantizer, layout)` with its `CodeLayout`, and implements `encode`, `decode` and
    `tflite_encoder`.
    """

    stochastic_decoding = False
    recipe_class = VQVAERecipe
    """How the families train (`training_stages`): the VQ-VAE baseline's end-to-end recipe (HQA App. C.3)."""
    quantizer_name = None
    """The quantizer's name in `QUANTIZERS`: "fsq", "lfq", "rvq" or "vq"."""

    def __init__(self, image_shape, code_dim, encoder_hidden=16, decoder_hidden=16, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = _image_shape(image_shape)
        self.encoder_hidden = positive_int("encoder_hidden", encoder_hidden)
        self.decoder_hidden = positive_int("decoder_hidden", decoder_hidden)
        code_dim = positive_int("code_dim", code_dim)
        e, d = self.encoder_hidden, self.decoder_hidden
        self.encoder = keras.Sequential([
            keras.layers.Conv2D(max(e // 2, 1), 3, strides=2, padding="same", activation=mish_activation()),
            keras.layers.Conv2D(e, 3, padding="same", activation=mish_activation()),
            keras.layers.Conv2D(code_dim, 1),
        ], name="encoder")
        self.decoder = keras.Sequential([
            keras.layers.Conv2D(d, 3, padding="same", activation=mish_activation()),
            keras.layers.UpSampling2D(2, interpolation="nearest"),
            keras.layers.Conv2D(max(d // 2, 1), 3, padding="same", activation=mish_activation()),
            keras.layers.Conv2D(self.image_shape[-1], 3, padding="same", activation="sigmoid"),
        ], name="decoder")
        shape = (None,) + self.image_shape
        self.encoder.build(shape)
        code_shape = self.encoder.compute_output_shape(shape)
        self.grid = (int(code_shape[1]), int(code_shape[2]))
        self.decoder.build(code_shape)
        self._code_shape = code_shape

    def _finish_build(self, quantizer, layout):
        """Builds the quantizer for the encoder's output and sets the code layout (called by subclasses)."""
        quantizer.build(self._code_shape)
        self._layout = layout
        self.built = True

    def code_layout(self):
        return self._layout

    # ---- the network
    def quantizer_output(self, z, training=False):
        """The quantizer's output dict for encoder outputs `z` (`quantized`, `codes`, `loss`, `perplexity`)."""
        return self.quantizer_layer(z, training=training)

    def reconstruct(self, images, layer=None, stochastic=False, seed=None):
        """`decode(encode(images, layer), layer)`, as the kind of images given."""
        x, was_uint8 = self.check_images(images)
        return like_input(self.decode(self.encode(x, layer, seed=seed), layer), was_uint8)

    def training_loss(self, images, training=True, seed=None):
        """MSE of the pixels + the quantizer's loss (FSQ: none; RVQ: every stage's VQ-VAE loss, SoundStream
        Algorithm 1), end to end with the straight-through gradient."""
        as_seed(seed)
        x, _ = self.check_images(images)
        out = self.quantizer_output(self.encoder(x, training=training), training=training)
        recon = tf.cast(self.decoder(out["quantized"], training=training), tf.float32)  # bf16 under mixed precision
        mse = tf.reduce_mean(tf.square(recon - x))
        loss = mse + tf.cast(out["loss"], tf.float32)
        return {"loss": loss, "mse": mse, "perplexity": out["perplexity"]}

    # ---- training
    def training_stages(self, recipe=None, steps=None):
        """One stage over every variable, HQA's optimiser (HQA App. C.3), under a `VQVAERecipe` (a mapping of its
        keys is read as one; None: the defaults)."""
        recipe = self.as_recipe(recipe)
        n = recipe.stage_steps(0, steps)
        layout = self._layout
        rates = ", ".join(str(layout.bits(l)) for l in range(1, layout.num_layers + 1))
        return [greedy_stage("train", f"{type(self).__name__}: {n} steps, {rates} bits per image", n,
                             lambda: self.trainable_variables,
                             lambda x, seed: self.training_loss(x, training=True, seed=seed),
                             self.quantizer_layer, recipe)]

    # ---- codes
    def code_logits(self, codes, layer):
        """None: the model has no distribution over its codes (the codec codes them under static priors or at
        the fixed rate). Layer 1 has nothing below it: a `ValueError` (`CodeModel.code_logits`)."""
        layer = below_layer(self._layout, layer)
        check_codes(codes, self._layout, layer)
        return None

    def serving_endpoints(self, layers=None, default_layer=None):
        """`CodeModel.code_endpoints` of `layers` (default: every layer); the unsuffixed names and
        `serving_default` are the layout's default layer (RVQ: layer 1, every stage) when it is exported and no
        `default_layer` is named (else, as `code_endpoints`, the last layer exported)."""
        if default_layer is None:
            exported = self.default_export_layers() if layers is None else [self._layout.check_layer(l)
                                                                            for l in layers]
            if self._layout.default_layer in exported:
                default_layer = self._layout.default_layer
        return self.code_endpoints(layers, default_layer)

    def code_stride(self, layer=None):
        """2: the encoder halves the image once and every layer shares the grid (fully convolutional)."""
        self._layout.check_layer(layer)
        return 2

    # ---- reporting
    def layer_metrics(self, images, batch_size=256):
        """Per layer: fixed bits per image, the MSE of `decode(encode(x, l), l)`, and the perplexity and number
        of distinct codes of layer l's own codes (the first of the codes a file of layer l holds)."""
        layout = self._layout
        images = np.asarray(self.check_images(images)[0])
        out = {}
        for layer in range(1, layout.num_layers + 1):
            errors, own = [], []
            for start in range(0, len(images), batch_size):
                batch = images[start: start + batch_size]
                codes = self.encode(batch, layer)
                errors.append(np.mean((self.decode(codes, layer).numpy() - batch) ** 2, axis=(1, 2, 3)))
                own.append(np.asarray(tf.nest.flatten(codes)[0]).ravel())
            counts = np.bincount(np.concatenate(own), minlength=layout.num_codes[layer - 1]).astype(np.float64)
            p = counts[counts > 0] / counts.sum()
            out[layer] = {
                "bits_per_image": layout.bits(layer),
                "code_shape": list(layout.grids[layer - 1]),
                "mse": float(np.mean(np.concatenate(errors))),
                "perplexity": float(math.exp(-(p * np.log(p)).sum())),
                "codes_used": int((counts > 0).sum()),
            }
        return out

    def report(self, test_images, train_images=None, batch_size=64, seed=0, stages=None):
        """Per layer: bits per image, test MSE, perplexity and codes used (`layer_metrics`), and a table."""
        metrics = self.layer_metrics(test_images, batch_size=max(int(batch_size), 1))
        rows = [[l, m["bits_per_image"], f"{m['mse']:.4f}", f"{m['perplexity']:.1f}", m["codes_used"]]
                for l, m in sorted(metrics.items())]
        return {
            "metrics": {"layers": {str(l): m for l, m in metrics.items()}},
            "table": (["layer", "bits", "MSE", "perplexity", "codes used"], rows),
            "lines": [],
        }

    def previews(self, images, seed=0, stages=None):
        """`reconstructions`: the originals, then the reconstruction at every layer (layer 1, the finest, first)."""
        images = np.asarray(self.check_images(images)[0])
        layers = range(1, self._layout.num_layers + 1)
        return {"reconstructions": [images] + [self.reconstruct(images, l).numpy() for l in layers]}

    def describe(self):
        return {**super().describe(), "quantizer": self.quantizer_name, "code_stride": 2}

    def get_config(self):
        config = super().get_config()
        config.update(image_shape=list(self.image_shape), encoder_hidden=self.encoder_hidden,
                      decoder_hidden=self.decoder_hidden)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class SingleLayerAutoencoder(QuantizedAutoencoder):
    """The families with one layer of codes (FSQ, LFQ, VQ): `encode` is the quantizer's codes
    (`quantizer_layer.nearest_codes`: no loss or statistics computed), `decode` the decoder of its code vectors
    (`quantizer_layer.lookup`), so `decode(encode(x)) == reconstruct(x)`; the TFLite encoder is the same code maths.

    A subclass builds its quantizer, gives it as the property `quantizer_layer` and calls
    `_finish_single(quantizer)`.
    """

    def _finish_single(self, quantizer):
        self._finish_build(quantizer, CodeLayout((self.grid,), (quantizer.num_codes,), default_layer=1,
                                                 cumulative=False))

    def encode(self, images, layer=None, stochastic=False, seed=None):
        """The quantizer's codes of the encoder's output, int32 [B, h, w] in [0, num_codes)."""
        self._layout.check_layer(layer)
        as_seed(seed)
        x, _ = self.check_images(images)
        return self.quantizer_layer.nearest_codes(self.encoder(x))

    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        """Images from codes: each code's vector (the quantizer's `lookup`) through the decoder."""
        layer = self._layout.check_layer(layer)
        as_seed(seed)
        (codes,) = check_codes(codes, self._layout, layer)
        return like_input(self.decoder(self.quantizer_layer.lookup(codes)), output_is_uint8(dtype))

    def tflite_encoder(self, layer=None):
        """The encoder for TFLite: float images in [0, 1] -> {"codes": int32 [B, h, w]}, TFLite builtins only
        (the quantizer's `nearest_codes`: its code maths without its loss or usage statistics)."""
        self._layout.check_layer(layer)

        def encode(images):
            return {"codes": self.quantizer_layer.nearest_codes(self.encoder(tf.cast(images, tf.float32)))}

        return encode
