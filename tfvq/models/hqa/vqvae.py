"""The VQ-VAE baseline of HQA Table 3 (van den Oord et al., 2017).

One deterministic VQ autoencoder that reaches an HQA layer's code grid by
downsampling several times, trained end to end (HQA App. C.3, Table 14):
the encoder has `num_downsamples` stride-2 conv3x3 layers and a conv1x1 to the
code dimension (Table 14's "encoder conv layers" = downsamples + 1); the
decoder a conv3x3, `num_downsamples` nearest-neighbour upsamplings each
followed by a conv3x3, and a final conv3x3 with a sigmoid (downsamples + 2).
"""

import keras
import tensorflow as tf

from tfvq.code_layout import CodeLayout
from tfvq.layers import ops
from tfvq.layers.activations import mish_activation
from tfvq.layers.vq import VectorQuantizer
from tfvq.models.code_checks import below_layer, check_codes
from tfvq.models.contract import CodeModel
from tfvq.models.hqa.hqa_recipes import VQVAERecipe
from tfvq.models.pixels import like_input, output_is_uint8
from tfvq.models.stages import greedy_stage, layer_report
from tfvq.models.stateless_seeds import as_seed


@keras.saving.register_keras_serializable(package="tfvq")
class VQVAE(CodeModel):
    """A single-layer VQ-VAE at the rate of an HQA layer.

    Codes (`CodeModel`): one layer, decoded deterministically (nothing to
    sample: `stochastic` and `seed` are accepted and change nothing). One
    training stage, HQA's recipe (RAdam, cosine tail) over every variable.

    Args:
      image_shape: (H, W, C).
      num_downsamples: how many times the encoder halves the image.
      encoder_hidden, decoder_hidden: conv widths.
      num_codes, code_dim: codebook size K and code dimension D.
      commitment_cost: beta of HQA eq. 2 (Table 14: 0.125).
      ema: learn the codebook by EMA (the original VQ-VAE) instead of gradients.
      expire_codes_below: None (the paper: no resets), or dead-code expiry (`VectorQuantizer`): a code used
        fewer than this many times per batch, on average over 20 batches, takes a random z_e of the batch.
        Five stride-2 convolutions start the encoder with outputs a thousandth apart across images, and its
        first updates move them together out of the codebook onto one code, whose gradients cannot pull them
        apart again ("dead starts", `docs/results.md`); expiry puts codes back where the encoder's outputs are.
      output_activation: "sigmoid" (the decoder's last conv ends in a sigmoid) or "linear" (pixels predicted
        directly, clipped to [0, 1] when decoded; the MSE of training reads them unclipped).
    """

    stochastic_decoding = False
    recipe_class = VQVAERecipe
    """How the family trains (`training_stages`; HQA App. C.3)."""

    def __init__(self, image_shape, num_downsamples=5, encoder_hidden=78, decoder_hidden=22, num_codes=256,
                 code_dim=64, commitment_cost=0.125, ema=False, expire_codes_below=None,
                 output_activation="sigmoid", **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_downsamples = int(num_downsamples)
        self.encoder_hidden = int(encoder_hidden)
        self.decoder_hidden = int(decoder_hidden)
        self.num_codes = int(num_codes)
        self.code_dim = int(code_dim)
        self.commitment_cost = float(commitment_cost)
        self.ema = bool(ema)
        self.expire_codes_below = None if expire_codes_below is None else float(expire_codes_below)
        if output_activation not in ("sigmoid", "linear"):
            raise ValueError(f"output_activation must be 'sigmoid' or 'linear', got {output_activation!r}.")
        self.output_activation = output_activation
        enc = [keras.layers.Conv2D(self.encoder_hidden, 3, strides=2, padding="same", activation=mish_activation())
               for _ in range(self.num_downsamples)]
        enc.append(keras.layers.Conv2D(self.code_dim, 1))
        self.encoder = keras.Sequential(enc, name="encoder")
        self.vq = VectorQuantizer(self.num_codes, self.code_dim, commitment_cost=self.commitment_cost, ema=self.ema,
                                  expire_codes_below=self.expire_codes_below, name="quantizer")
        dec = [keras.layers.Conv2D(self.decoder_hidden, 3, padding="same", activation=mish_activation())]
        for _ in range(self.num_downsamples):
            dec += [keras.layers.UpSampling2D(2, interpolation="nearest"),
                    keras.layers.Conv2D(self.decoder_hidden, 3, padding="same", activation=mish_activation())]
        dec.append(keras.layers.Conv2D(self.image_shape[-1], 3, padding="same", activation=self.output_activation))
        self.decoder = keras.Sequential(dec, name="decoder")
        shape = (None,) + self.image_shape
        self.encoder.build(shape)
        code_shape = self.encoder.compute_output_shape(shape)
        self.vq.build(code_shape)
        self.decoder.build(code_shape)
        self._layout = CodeLayout(((int(code_shape[1]), int(code_shape[2])),), (self.num_codes,), default_layer=1,
                                  cumulative=False)
        self.built = True

    num_layers = 1

    def code_layout(self):
        return self._layout

    def encode(self, images, layer=None, stochastic=False, seed=None):
        """Nearest-code indices, int32 [B, h, w] (HQA eq. 1)."""
        self._layout.check_layer(layer)
        as_seed(seed)
        x, _ = self.check_images(images)
        return self.vq(self.encoder(x), training=False)["codes"]

    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        """Images from codes (the VQ-VAE decoder is deterministic): float in [0, 1], or uint8."""
        layer = self._layout.check_layer(layer)
        as_seed(seed)
        (codes,) = check_codes(codes, self._layout, layer)
        return like_input(self.decoder(self.vq.lookup(codes)), output_is_uint8(dtype))

    def reconstruct(self, images, layer=None, stochastic=False, seed=None):
        """`decode(encode(images))`, as the kind of images given."""
        x, was_uint8 = self.check_images(images)
        return like_input(self.decode(self.encode(x, layer, seed=seed), layer), was_uint8)

    def layer_loss(self, images, layer=1, training=True, seed=None):
        """MSE + the VQ-VAE loss of HQA eq. 2, trained end to end."""
        self._layout.check_layer(layer)
        x, _ = self.check_images(images)
        out = self.vq(self.encoder(x, training=training), training=training)
        recon = tf.cast(self.decoder(out["quantized"], training=training), tf.float32)  # bf16 under mixed precision
        mse = tf.reduce_mean(tf.square(recon - x))
        return {"loss": mse + out["loss"], "mse": mse, "perplexity": out["perplexity"]}

    def layer_variables(self, layer=1):
        self._layout.check_layer(layer)
        return self.trainable_variables

    def quantizer(self, layer=1):
        self._layout.check_layer(layer)
        return self.vq

    def training_stages(self, recipe=None, steps=None):
        """One stage over every variable, HQA's optimiser (HQA App. C.3), under a `VQVAERecipe` (a mapping of its
        keys is read as one; None: the defaults)."""
        recipe = self.as_recipe(recipe)
        n = recipe.stage_steps(0, steps)
        return [greedy_stage("layer_1", f"VQ-VAE: {n} steps, {self.bits()} bits per image", n,
                             lambda: self.trainable_variables,
                             lambda x, seed: self.layer_loss(x, training=True, seed=seed), self.vq, recipe,
                             encode=lambda x: self.encoder(self.check_images(x)[0], training=False),
                             codebook_init=recipe.layer_codebook_init(0))]

    def tflite_encoder(self, layer=None):
        """The encoder for TFLite: float images in [0, 1] -> {"codes": int32 [B, h, w]} (nearest code)."""
        self._layout.check_layer(layer)
        h, w = self._layout.grids[0]

        def encode(images):
            z = tf.reshape(self.encoder(tf.cast(images, tf.float32)), [-1, self.code_dim])
            scores = ops.distance_scores(z, tf.convert_to_tensor(self.vq.codebook))
            return {"codes": tf.reshape(tf.argmin(scores, axis=-1, output_type=tf.int32), [-1, h, w])}

        return encode

    def code_logits(self, codes, layer):
        """A one-layer model has no codes below its only layer: always a `ValueError` (`CodeModel.code_logits`)."""
        below_layer(self._layout, layer)

    def code_stride(self, layer=None):
        """2^num_downsamples: the VQ-VAE is fully convolutional (HQA App. C.3)."""
        self._layout.check_layer(layer)
        return 2 ** self.num_downsamples

    def report(self, test_images, train_images=None, batch_size=64, seed=0, stages=None):
        return layer_report(self, test_images, [1], seed=seed)

    def previews(self, images, seed=0, stages=None):
        return {"reconstructions": [images, self.reconstruct(images).numpy()]}

    def get_config(self):
        config = super().get_config()
        config.update(dict(image_shape=list(self.image_shape), num_downsamples=self.num_downsamples,
                           encoder_hidden=self.encoder_hidden, decoder_hidden=self.decoder_hidden,
                           num_codes=self.num_codes, code_dim=self.code_dim,
                           commitment_cost=self.commitment_cost, ema=self.ema))
        if self.expire_codes_below is not None:  # absent from the configs of models saved without it
            config["expire_codes_below"] = self.expire_codes_below
        if self.output_activation != "sigmoid":
            config["output_activation"] = self.output_activation
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
