"""The VQ-VAE baseline of HQA Table 3 (van den Oord et al., 2017).

One deterministic VQ autoencoder that reaches an HQA layer's code grid by
downsampling several times, trained end to end (HQA App. C.3, Table 14):
the encoder has `num_downsamples` stride-2 conv3x3 layers and a conv1x1 to the
code dimension (Table 14's "encoder conv layers" = downsamples + 1); the
decoder a conv3x3, `num_downsamples` nearest-neighbour upsamplings each
followed by a conv3x3, and a final conv3x3 with a sigmoid (downsamples + 2).
"""

import math

import keras
import tensorflow as tf

from tfvq.layers.quantizers import VectorQuantizer
from tfvq.models.hqa import check_images


@keras.saving.register_keras_serializable(package="tfvq")
class VQVAE(keras.Model):
    """A single-layer VQ-VAE at the rate of an HQA layer.

    It shares HQA's API with one trainable stage (`num_layers == 1`), so the
    same trainer, zoo and codec serve both.

    Args:
      image_shape: (H, W, C).
      num_downsamples: how many times the encoder halves the image.
      encoder_hidden, decoder_hidden: conv widths.
      num_codes, code_dim: codebook size K and code dimension D.
      commitment_cost: beta of HQA eq. 2 (Table 14: 0.125).
      ema: learn the codebook by EMA (the original VQ-VAE) instead of gradients.
    """

    def __init__(self, image_shape, num_downsamples=5, encoder_hidden=78, decoder_hidden=22, num_codes=256,
                 code_dim=64, commitment_cost=0.125, ema=False, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_downsamples = int(num_downsamples)
        self.encoder_hidden = int(encoder_hidden)
        self.decoder_hidden = int(decoder_hidden)
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.commitment_cost = float(commitment_cost)
        self.ema = bool(ema)
        enc = [keras.layers.Conv2D(self.encoder_hidden, 3, strides=2, padding="same", activation="mish")
               for _ in range(self.num_downsamples)]
        enc.append(keras.layers.Conv2D(self.code_dim, 1))
        self.encoder = keras.Sequential(enc, name="encoder")
        self.vq = VectorQuantizer(self.num_codes, self.code_dim, commitment_cost=self.commitment_cost, ema=self.ema,
                                  name="quantizer")
        dec = [keras.layers.Conv2D(self.decoder_hidden, 3, padding="same", activation="mish")]
        for _ in range(self.num_downsamples):
            dec += [keras.layers.UpSampling2D(2, interpolation="nearest"),
                    keras.layers.Conv2D(self.decoder_hidden, 3, padding="same", activation="mish")]
        dec.append(keras.layers.Conv2D(self.image_shape[-1], 3, padding="same", activation="sigmoid"))
        self.decoder = keras.Sequential(dec, name="decoder")
        shape = (None,) + self.image_shape
        self.encoder.build(shape)
        code_shape = self.encoder.compute_output_shape(shape)
        self.vq.build(code_shape)
        self.decoder.build(code_shape)
        self.built = True

    num_layers = 1

    def _check_layer(self, layer):
        if layer not in (None, 1):
            raise ValueError(f"A VQ-VAE has a single layer (1), got layer={layer!r}.")
        return 1

    def code_shape(self, layer=1):
        self._check_layer(layer)
        h, w = self.image_shape[:2]
        for _ in range(self.num_downsamples):
            h, w = (h + 1) // 2, (w + 1) // 2
        return (h, w)

    def bits(self, layer=1):
        h, w = self.code_shape(layer)
        return h * w * max(1, math.ceil(math.log2(self.num_codes)))

    def encode(self, images, layer=1, stochastic=False, seed=None):
        """Nearest-code indices, int32 [N, h, w] (HQA eq. 1)."""
        self._check_layer(layer)
        z_e = self.encoder(check_images(images, self.image_shape))
        return self.vq(z_e, training=False)["codes"]

    def decode(self, codes, layer=1, stochastic=False, seed=None):
        """Images in [0, 1] from codes (the VQ-VAE decoder is deterministic)."""
        self._check_layer(layer)
        codes = tf.convert_to_tensor(codes)
        h, w = self.code_shape()
        if not codes.dtype.is_integer or codes.shape.rank != 3 or tuple(codes.shape[1:]) != (h, w):
            raise ValueError(f"codes must be integers of shape [batch, {h}, {w}], got {codes.dtype.name} "
                             f"{list(codes.shape)}.")
        if tf.executing_eagerly() and tf.size(codes) > 0:
            lo, hi = int(tf.reduce_min(codes)), int(tf.reduce_max(codes))
            if lo < 0 or hi >= self.num_codes:
                raise ValueError(f"codes must be in [0, {self.num_codes - 1}], got values in [{lo}, {hi}].")
        return self.decoder(self.vq.lookup(codes))

    def reconstruct(self, images, layer=1, stochastic=False, seed=None):
        return self.decode(self.encode(images, layer), layer)

    def layer_loss(self, images, layer=1, training=True, seed=None):
        """MSE + the VQ-VAE loss of HQA eq. 2, trained end to end."""
        self._check_layer(layer)
        x = check_images(images, self.image_shape)
        out = self.vq(self.encoder(x, training=training), training=training)
        recon = self.decoder(out["quantized"], training=training)
        mse = tf.reduce_mean(tf.square(recon - x))
        return {"loss": mse + out["loss"], "mse": mse, "perplexity": out["perplexity"]}

    def layer_variables(self, layer=1):
        self._check_layer(layer)
        return self.trainable_variables

    def quantizer(self, layer=1):
        self._check_layer(layer)
        return self.vq

    def call(self, images, training=None):
        return self.reconstruct(images)

    def get_config(self):
        config = super().get_config()
        config.update(dict(image_shape=list(self.image_shape), num_downsamples=self.num_downsamples,
                           encoder_hidden=self.encoder_hidden, decoder_hidden=self.decoder_hidden,
                           num_codes=self.num_codes, code_dim=self.code_dim,
                           commitment_cost=self.commitment_cost, ema=self.ema))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
