"""Convolutional autoencoders with today's quantizers: FSQ, lookup-free, residual VQ, and VQ with its options.

Four families share one network, HQA layer 1's encoder and decoder (HQA App.
C.1, Table 10: conv3x3/2 -> Mish -> conv3x3 -> Mish -> conv1x1 down to a grid
of half the image's size; conv3x3 -> Mish -> nearest x2 -> conv3x3 -> Mish ->
conv3x3 -> sigmoid back up), so 32x32x1 digits become a 16x16 grid of codes,
and are trained end to end on the pixels' mean squared error plus the
quantizer's loss, one stage of HQA's optimiser (`VQVAERecipe`, as the VQ-VAE
baseline). Only the bottleneck differs, so the four compare quantizers alone:

* `FSQAutoencoder`: finite scalar quantization (Mentzer et al. 2023, §3.1):
  the encoder projects to `len(levels)` channels, each bounded and rounded to
  its levels; the codebook is the implicit grid of `prod(levels)` points
  (1000 for the default `(8, 5, 5, 5)`, the paper's Table 1). One layer of
  codes.
* `LFQAutoencoder`: lookup-free quantization (MAGVIT-v2, Yu et al. 2023,
  §3.1): one bit per channel, its sign; the codebook is {-1, +1}^code_dim.
  One layer of codes.
* `VQAutoencoder`: the VQ-VAE's learned codebook (van den Oord et al. 2017),
  with the rotation trick (Fifty et al. 2024), cosine codes and dead-code
  expiry as options. One layer of codes.
* `RVQAutoencoder`: residual vector quantization with quantizer dropout
  (SoundStream, Zeghidour et al. 2021, §3.3, Algorithm 1): `num_quantizers`
  codebooks, each quantizing what the stages before it left. Each depth is a
  rate: the code layout has one layer per stage, numbered so that a file of
  layer l carries stages 1..(Q - l + 1) (layer 1 every stage, the most bits
  and the finest image; layer Q the first stage alone, the fewest bits and the
  coarsest image). The layout is cumulative (`CodeLayout.cumulative`, as the
  RRVQ-VAE's): layer j holds stage Q - j + 1, and a file of layer l holds
  layers l..Q.

Why one class per quantizer and not one with a `quantizer=` switch: they
differ in their codes (one layer, or Q cumulative ones), in `encode`/`decode`,
and in their arguments (levels; bits; codes, code dimension and codebook
options; stages). A single class would accept, and write into its
configuration, arguments that mean nothing for the others. The zoo registers
one family per class, as for HQA and the VQ-VAE.
`quantized_autoencoder(image_shape, quantizer="fsq" | "lfq" | "rvq" | "vq",
...)` builds any of them by name.

References:
  Mentzer, Minnen, Agustsson, Tschannen, Finite Scalar Quantization: VQ-VAE
  Made Simple, 2023 (ICLR 2024), §3.1, Table 1.
  Zeghidour, Luebs, Omran, Skoglund, Tagliasacchi, SoundStream: An End-to-End
  Neural Audio Codec, 2021, §3.3, Algorithm 1.
  Yu et al., Language Model Beats Diffusion -- Tokenizer is Key to Visual
  Generation (MAGVIT-v2), 2023 (ICLR 2024), §3.1.
  Fifty et al., Restructuring Vector Quantization with the Rotation Trick,
  2024, §4.
  Williams et al., Hierarchical Quantized Autoencoders, NeurIPS 2020, App. C.1,
  Table 10 (the encoder and decoder).
"""

import dataclasses
import math
import numbers

import keras
import numpy as np
import tensorflow as tf

from tfvq.code_layout import CodeLayout
from tfvq.layers.activations import mish_activation
from tfvq.layers.fsq import FiniteScalarQuantizer
from tfvq.layers.kmeans import fit_stage_codebooks
from tfvq.layers.lfq import LookupFreeQuantizer
from tfvq.layers.rvq import ResidualVectorQuantizer
from tfvq.layers.vq import VectorQuantizer
from tfvq.models.code_checks import below_layer, check_codes
from tfvq.models.contract import CodeModel
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.recipes import VQVAERecipe
from tfvq.models.stages import greedy_stage
from tfvq.models.stateless_seeds import as_seed

__all__ = ["FSQAutoencoder", "LFQAutoencoder", "QUANTIZERS", "QuantizedAutoencoder", "RVQAutoencoder",
           "SingleLayerAutoencoder", "VQAutoencoder", "fit_stage_codebooks", "quantized_autoencoder"]


def _positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


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
        self.encoder_hidden = _positive_int("encoder_hidden", encoder_hidden)
        self.decoder_hidden = _positive_int("decoder_hidden", decoder_hidden)
        code_dim = _positive_int("code_dim", code_dim)
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


@keras.saving.register_keras_serializable(package="tfvq")
class FSQAutoencoder(SingleLayerAutoencoder):
    """HQA layer 1's autoencoder with finite scalar quantization (Mentzer et al. 2023, §3.1).

    The encoder's conv1x1 projects to `d = len(levels)` channels; `FiniteScalarQuantizer` bounds each channel
    with tanh to its `L_i` levels and rounds it (straight-through), so the codebook is the implicit grid of
    `prod(levels)` points: no codebook to learn, no codebook or commitment loss, no dead codes (§3.1). The
    training loss is the MSE alone.

    Codes (`CodeModel`): one layer, a grid of half the image's size (16x16 for 32x32 images) of
    `prod(levels)` codes (1000 for the default levels, `h w ceil(log2 1000)` = 2560 bits per 32x32 image at
    the fixed rate).

    Args:
      image_shape: (H, W, C), H and W even.
      levels: the levels of each channel (Mentzer et al. Table 1: (8, 5, 5, 5) for 2^10 codes).
      encoder_hidden, decoder_hidden: conv widths (HQA Table 10, layer 1: 16 and 16).
      eps: the FSQ bound's margin (the paper's 1e-3).
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = FSQAutoencoder((32, 32, 1))
      >>> model.code_shape(), model.code_layout().num_codes, model.bits()
      ((16, 16), (1000,), 2560)
    """

    quantizer_name = "fsq"

    def __init__(self, image_shape, levels=(8, 5, 5, 5), encoder_hidden=16, decoder_hidden=16, eps=1e-3,
                 **kwargs):
        fsq = FiniteScalarQuantizer(levels=levels, eps=eps, name="quantizer")  # checks the levels
        super().__init__(image_shape, fsq.code_dim, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                         **kwargs)
        self.fsq = fsq
        self.levels = fsq.levels
        self.eps = fsq.eps
        self._finish_single(fsq)

    @property
    def quantizer_layer(self):
        return self.fsq

    def describe(self):
        return {**super().describe(), "levels": list(self.levels)}

    def get_config(self):
        config = super().get_config()
        config.update(levels=list(self.levels), eps=self.eps)
        return config


@keras.saving.register_keras_serializable(package="tfvq")
class LFQAutoencoder(SingleLayerAutoencoder):
    """HQA layer 1's autoencoder with lookup-free quantization (MAGVIT-v2, Yu et al. 2023, §3.1).

    The encoder's conv1x1 projects to `code_dim` channels; `LookupFreeQuantizer` keeps each channel's sign
    (eq. 2), so the codebook is the implicit set {-1, +1}^code_dim and a code is the binary number of the signs
    (eq. 3). The training loss is the MSE plus the quantizer's commitment term and entropy penalty (§3.1: low
    per-sample entropy, high codebook entropy).

    Codes (`CodeModel`): one layer, a grid of half the image's size of `2^code_dim` codes (10 bits: 1024
    codes, `h w code_dim` = 2560 bits per 32x32 image, FSQ's rate).

    Args:
      image_shape: (H, W, C), H and W even.
      code_dim: the bits per position (at most 30).
      encoder_hidden, decoder_hidden: conv widths (HQA Table 10, layer 1: 16 and 16).
      entropy_weight, commitment_cost, diversity_gamma, temperature: `LookupFreeQuantizer`'s loss.
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = LFQAutoencoder((32, 32, 1), code_dim=10)
      >>> model.code_shape(), model.code_layout().num_codes, model.bits()
      ((16, 16), (1024,), 2560)
    """

    quantizer_name = "lfq"

    def __init__(self, image_shape, code_dim=10, encoder_hidden=16, decoder_hidden=16, entropy_weight=0.1,
                 commitment_cost=0.25, diversity_gamma=1.0, temperature=1.0, **kwargs):
        lfq = LookupFreeQuantizer(code_dim, entropy_weight=entropy_weight, commitment_cost=commitment_cost,
                                  diversity_gamma=diversity_gamma, temperature=temperature,
                                  name="quantizer")  # checks its arguments
        super().__init__(image_shape, lfq.code_dim, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                         **kwargs)
        self.lfq = lfq
        self.code_dim = lfq.code_dim
        self._finish_single(lfq)

    @property
    def quantizer_layer(self):
        return self.lfq

    def describe(self):
        return {**super().describe(), "code_dim": self.code_dim}

    def get_config(self):
        config = super().get_config()
        q = self.lfq
        config.update(code_dim=self.code_dim, entropy_weight=q.entropy_weight, commitment_cost=q.commitment_cost,
                      diversity_gamma=q.diversity_gamma, temperature=q.temperature)
        return config


@keras.saving.register_keras_serializable(package="tfvq")
class VQAutoencoder(SingleLayerAutoencoder):
    """HQA layer 1's autoencoder with a VQ-VAE quantizer (van den Oord et al. 2017) and its modern options.

    The encoder's output (`code_dim` channels) goes to its nearest code of a learned codebook
    (`VectorQuantizer`, HQA eq. 1-2); the options are the layer's: gradients by the rotation trick (Fifty et
    al. 2024, §4) instead of straight through, l2-normalised codes (`distance="cosine"`, ViT-VQGAN §3.2),
    EMA codebooks, and dead-code expiry. The codebook starts from k-means on the first batch's encoder outputs
    (the training stage's `setup`, `fit_codebooks`; as RVQ's stages, SoundStream §3.3), which HQA's digits
    model also needed (a random codebook collapsed). The training loss is the MSE plus the VQ-VAE loss.

    This is the VQ-VAE at HQA layer 1's grid, the same network as `FSQAutoencoder`, `LFQAutoencoder` and
    `RVQAutoencoder`; `VQVAE` is HQA Table 3's baseline, which downsamples to an HQA layer's grid.

    Codes (`CodeModel`): one layer, a grid of half the image's size of `num_codes` codes (1024: 2560 bits per
    32x32 image, FSQ's rate).

    Args:
      image_shape: (H, W, C), H and W even.
      num_codes, code_dim: K and D of the codebook.
      encoder_hidden, decoder_hidden: conv widths (HQA Table 10, layer 1: 16 and 16).
      commitment_cost: beta of HQA eq. 2.
      ema: learn the codebook by EMA instead of gradients.
      rotation_trick: gradients by the rotation trick.
      distance: "euclidean" or "cosine".
      expire_codes_below: the codebook expiry threshold (vectors per batch, `VectorQuantizer`), or None.
      seed: the quantizer's seed.
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = VQAutoencoder((32, 32, 1), num_codes=1024, rotation_trick=True)
      >>> model.code_layout().num_codes, model.bits()
      ((1024,), 2560)
    """

    quantizer_name = "vq"

    def __init__(self, image_shape, num_codes=1024, code_dim=16, encoder_hidden=16, decoder_hidden=16,
                 commitment_cost=0.25, ema=False, rotation_trick=False, distance="euclidean",
                 expire_codes_below=1.0, seed=None, **kwargs):
        num_codes = _positive_int("num_codes", num_codes)
        if num_codes < 2:
            raise ValueError(f"num_codes must be at least 2 (one code carries nothing), got {num_codes}.")
        code_dim = _positive_int("code_dim", code_dim)
        super().__init__(image_shape, code_dim, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                         **kwargs)
        self.expire_codes_below = None if expire_codes_below is None else float(expire_codes_below)
        self.seed = None if seed is None else int(seed)
        self.vq = VectorQuantizer(num_codes, code_dim, commitment_cost=commitment_cost, ema=ema,
                                  rotation_trick=rotation_trick, distance=distance,
                                  expire_codes_below=self.expire_codes_below, seed=self.seed, name="quantizer")
        self.num_codes, self.code_dim = num_codes, code_dim
        self._finish_single(self.vq)

    @property
    def quantizer_layer(self):
        return self.vq

    def fit_codebooks(self, images, iterations=10, seed=0, max_points=20000):
        """The codebook by k-means on the encoder outputs of `images` (k-means++ seeds and `iterations` Lloyd
        steps, `fit_stage_codebooks`; l2-normalised outputs for cosine). Returns [the mean squared error left]."""
        x, _ = self.check_images(images)
        z = np.asarray(self.encoder(x), np.float64).reshape(-1, self.code_dim)
        if self.vq.distance == "cosine":
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return fit_stage_codebooks([self.vq], z, iterations=iterations, seed=seed, max_points=max_points)

    def training_stages(self, recipe=None, steps=None):
        """`QuantizedAutoencoder.training_stages`, whose stage first fits the codebook to the encoder's outputs
        on a sample of training images (`fit_codebooks`)."""
        (stage,) = super().training_stages(recipe, steps)
        return [dataclasses.replace(stage, setup=lambda images: self.fit_codebooks(images))]

    def describe(self):
        return {**super().describe(), "code_dim": self.code_dim, "rotation_trick": self.vq.rotation_trick,
                "distance": self.vq.distance}

    def get_config(self):
        config = super().get_config()
        q = self.vq
        config.update(num_codes=self.num_codes, code_dim=self.code_dim, commitment_cost=q.commitment_cost,
                      ema=q.ema, rotation_trick=q.rotation_trick, distance=q.distance,
                      expire_codes_below=self.expire_codes_below, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="tfvq")
class RVQAutoencoder(QuantizedAutoencoder):
    """HQA layer 1's autoencoder with residual VQ and quantizer dropout (SoundStream, Zeghidour et al. 2021).

    The encoder's output (`code_dim` channels) goes through `ResidualVectorQuantizer` (SoundStream Algorithm
    1): stage i quantizes the residual the stages before it left, and the decoder sees the sum of the code
    vectors. Quantizer dropout (§3.3): in training each example uses the first `n_q` stages only, `n_q`
    uniform in 1..Q, so every depth decodes well and one model serves Q rates. Codebooks start from k-means
    on the first batch (SoundStream §3.3; the stage's `setup`, `fit_codebooks`); codes used less than
    `expire_codes_below` times per batch are replaced by input vectors (SoundStream's codebook expiry).

    Codes (`CodeModel`): one layer per stage on the same grid, `num_codes` codes each, numbered so that a
    higher layer is a lower rate. Layer j holds stage Q - j + 1, and the layout is cumulative: a file of layer
    l holds layers l..Q, i.e. stages 1..(Q - l + 1): layer 1 every stage (the default: the most bits, the
    finest image), layer Q the first stage alone (the fewest bits, the coarsest image).
    `encode(x, l)` gives their codes, layer l (the deepest stage sent) first and layer Q (stage 1) last;
    `decode(codes, l)` sums those stages' code vectors and decodes (the stages not sent add nothing, as under
    quantizer dropout), so `decode(encode(x, l), l) == reconstruct(x, l)`.

    Args:
      image_shape: (H, W, C), H and W even.
      num_quantizers: Q, the stages (rates).
      num_codes: K, the codes of each stage (`log2 K` bits per position per stage).
      code_dim: D of the code vectors.
      encoder_hidden, decoder_hidden: conv widths (HQA Table 10, layer 1: 16 and 16).
      commitment_cost: beta of each stage's VQ-VAE loss (van den Oord et al. 2017: 0.25).
      ema: learn the codebooks by EMA (SoundStream) instead of gradients.
      quantizer_dropout: quantizer dropout in training (SoundStream §3.3).
      expire_codes_below: the codebook expiry threshold (vectors per batch, see `VectorQuantizer`), or None
        (no expiry). The default, 1, replaces only codes that (nearly) went out of use: without it the deeper
        stages of the digits model collapsed to a few codes in 600 steps (stage 4: one code).
      seed: the quantizer's seed (codebook initialisers, dropout draws).
      **kwargs: passed to `keras.Model`.

    Example:
      >>> model = RVQAutoencoder((32, 32, 1), num_quantizers=4, num_codes=32)
      >>> [model.bits(l) for l in (1, 2, 3, 4)], model.stages_sent(3)
      ([5120, 3840, 2560, 1280], 2)
    """

    quantizer_name = "rvq"

    def __init__(self, image_shape, num_quantizers=4, num_codes=32, code_dim=16, encoder_hidden=16,
                 decoder_hidden=16, commitment_cost=0.25, ema=False, quantizer_dropout=True,
                 expire_codes_below=1.0, seed=None, **kwargs):
        num_quantizers = _positive_int("num_quantizers", num_quantizers)
        num_codes = _positive_int("num_codes", num_codes)
        if num_codes < 2:
            raise ValueError(f"num_codes must be at least 2 (a stage of one code carries nothing), got {num_codes}.")
        super().__init__(image_shape, code_dim, encoder_hidden=encoder_hidden, decoder_hidden=decoder_hidden,
                         **kwargs)
        self.num_quantizers = num_quantizers
        self.num_codes = num_codes
        self.code_dim = int(code_dim)
        self.commitment_cost = float(commitment_cost)
        self.ema = bool(ema)
        self.quantizer_dropout = bool(quantizer_dropout)
        self.expire_codes_below = None if expire_codes_below is None else float(expire_codes_below)
        self.seed = None if seed is None else int(seed)
        self.rvq = ResidualVectorQuantizer(
            num_quantizers, num_codes, self.code_dim, commitment_cost=self.commitment_cost, ema=self.ema,
            dropout=self.quantizer_dropout, expire_codes_below=self.expire_codes_below, seed=self.seed,
            name="quantizer")
        layout = CodeLayout((self.grid,) * num_quantizers, (num_codes,) * num_quantizers, default_layer=1,
                            cumulative=True)
        self._finish_build(self.rvq, layout)

    @property
    def quantizer_layer(self):
        return self.rvq

    def stages_sent(self, layer=None):
        """How many stages a file of layer `layer` carries, Q - layer + 1 (stages 1..Q-layer+1); also the stage
        (1-based) whose codes layer `layer` itself holds."""
        return self.num_quantizers - self._layout.check_layer(layer) + 1

    def encode(self, images, layer=None, stochastic=False, seed=None):
        """The nearest codes of stages 1..(Q - layer + 1) (SoundStream Algorithm 1), as the codes of layers
        `layer`..Q: a list of int32 [B, h, w], layer `layer` (the deepest stage) first, layer Q (stage 1) last;
        one tensor for layer Q."""
        layer = self._layout.check_layer(layer)
        as_seed(seed)
        x, _ = self.check_images(images)
        k = self.stages_sent(layer)
        codes = self.rvq(self.encoder(x), training=False, num_quantizers=k)["codes"]  # [B, h, w, k], stage order
        return self._codes_out([codes[..., k - 1 - i] for i in range(k)])

    def stage_codes(self, codes, layer=None):
        """int32 [B, h, w, k] of the codes of layers `layer`..Q (as `decode` takes them), in stage order."""
        layer = self._layout.check_layer(layer)
        checked = check_codes(codes, self._layout, layer)
        return tf.stack(checked[::-1], axis=-1)

    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        """Images from the codes of layers `layer`..Q: the sum of stages 1..(Q - layer + 1)'s code vectors
        (`ResidualVectorQuantizer.lookup`) through the decoder."""
        as_seed(seed)
        uint8 = output_is_uint8(dtype)
        return like_input(self.decoder(self.rvq.lookup(self.stage_codes(codes, layer))), uint8)

    def tflite_encoder(self, layer=None):
        """The encoder for TFLite: float images in [0, 1] -> {"codes": int32 [B, h, w]} (layer Q) or
        {"codes_layer_l": ...} for the layers sent: the residual chain of nearest codes with builtins only."""
        layer = self._layout.check_layer(layer)
        k = self.stages_sent(layer)
        h, w = self.grid
        sent = self._layout.layers_sent(layer)
        names = ["codes"] if len(sent) == 1 else [f"codes_layer_{l}" for l in sent]

        def encode(images):
            # As `ResidualVectorQuantizer`: the residual chain in float32 (the codebooks' dtype), each search in
            # the compute dtype (bfloat16 under a mixed policy).
            z = self.encoder(tf.cast(images, tf.float32))
            residual = tf.reshape(tf.cast(z, tf.float32), [-1, self.code_dim])
            stage_codes = []
            for stage in self.rvq.stages[:k]:
                codes = stage.nearest_codes(residual)  # the search in the stage's compute dtype
                residual = residual - tf.gather(tf.cast(stage.codebook, tf.float32), codes)
                stage_codes.append(tf.reshape(codes, [-1, h, w]))
            return dict(zip(names, stage_codes[::-1]))

        return encode

    # ---- data-dependent initialisation
    def fit_codebooks(self, images, iterations=10, seed=0, max_points=20000):
        """Every stage's codebook by k-means on the residuals of `images` (SoundStream §3.3: "we run the k-means
        algorithm on the first training batch and use the learned centroids as initialization").

        Stage by stage: k-means++ seeds (`kmeans_plus_plus_codebook`, Arthur & Vassilvitskii 2007), then
        `iterations` Lloyd steps on at most `max_points` encoder output vectors (a seeded subset); the next
        stage fits the residuals left by this one's nearest codes. A code left without points keeps its seed.
        With `ema=True` each stage's EMA statistics restart from the fitted codebook. Returns the mean squared
        residual after each stage (falling with depth on any data with spread).
        """
        x, _ = self.check_images(images)
        z = np.asarray(self.encoder(x), np.float64).reshape(-1, self.code_dim)
        return fit_stage_codebooks(self.rvq.stages, z, iterations=iterations, seed=seed, max_points=max_points)

    def training_stages(self, recipe=None, steps=None):
        """`QuantizedAutoencoder.training_stages`, whose stage first fits the codebooks to the encoder's
        outputs on a sample of training images (`fit_codebooks`, SoundStream §3.3)."""
        (stage,) = super().training_stages(recipe, steps)
        return [dataclasses.replace(stage, setup=lambda images: self.fit_codebooks(images))]

    def describe(self):
        layers = range(1, self.num_quantizers + 1)
        return {**super().describe(), "num_quantizers": self.num_quantizers, "code_dim": self.code_dim,
                "stages_per_layer": {l: self.stages_sent(l) for l in layers}}

    def get_config(self):
        config = super().get_config()
        config.update(num_quantizers=self.num_quantizers, num_codes=self.num_codes, code_dim=self.code_dim,
                      commitment_cost=self.commitment_cost, ema=self.ema, quantizer_dropout=self.quantizer_dropout,
                      expire_codes_below=self.expire_codes_below, seed=self.seed)
        return config


QUANTIZERS = {"fsq": FSQAutoencoder, "lfq": LFQAutoencoder, "rvq": RVQAutoencoder, "vq": VQAutoencoder}
"""The quantizer names of `quantized_autoencoder` and their classes."""


def quantized_autoencoder(image_shape, quantizer="fsq", **kwargs):
    """The `QUANTIZERS` class of `quantizer` ("fsq", "lfq", "rvq" or "vq"), built with `image_shape` and `kwargs`."""
    if quantizer not in QUANTIZERS:
        raise ValueError(f"quantizer must be one of {', '.join(repr(q) for q in QUANTIZERS)}, got {quantizer!r}.")
    return QUANTIZERS[quantizer](image_shape, **kwargs)
