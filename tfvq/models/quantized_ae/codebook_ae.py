"""The autoencoders of quantizers with learned codebooks: `VQAutoencoder` (VQ-VAE, van den Oord et al. 2017, with
the rotation trick of Fifty et al. 2024, cosine codes and expiry) and `RVQAutoencoder` (residual VQ with
quantizer dropout, SoundStream, Zeghidour et al. 2021, §3.3, Algorithm 1), their codebooks started by k-means
(`tfvq.layers.kmeans.fit_stage_codebooks`, SoundStream §3.3).

`RVQAutoencoder`'s depths are rates: a cumulative code layout of one layer per stage (`CodeLayout.cumulative`,
as the RRVQ-VAE's), layer j holding stage Q - j + 1, so a file of layer l carries stages 1..(Q - l + 1).

References:
  Zeghidour, Luebs, Omran, Skoglund, Tagliasacchi, SoundStream: An End-to-End
  Neural Audio Codec, 2021, §3.3, Algorithm 1.
  Fifty et al., Restructuring Vector Quantization with the Rotation Trick,
  2024, §4.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from tfvq.code_layout import CodeLayout
from tfvq.layers.kmeans import fit_stage_codebooks
from tfvq.layers.rvq import ResidualVectorQuantizer
from tfvq.layers.vq import VectorQuantizer
from tfvq.models.code_checks import check_codes
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.quantized_ae.quantized_autoencoder import QuantizedAutoencoder, SingleLayerAutoencoder
from tfvq.models.recipes import positive_int
from tfvq.models.stateless_seeds import as_seed

__all__ = ["RVQAutoencoder", "VQAutoencoder"]


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
        num_codes = positive_int("num_codes", num_codes)
        if num_codes < 2:
            raise ValueError(f"num_codes must be at least 2 (one code carries nothing), got {num_codes}.")
        code_dim = positive_int("code_dim", code_dim)
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
        num_quantizers = positive_int("num_quantizers", num_quantizers)
        num_codes = positive_int("num_codes", num_codes)
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
