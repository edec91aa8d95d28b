"""`TinyVQ`: a VQ autoencoder of one layer of codes, one code per 2x2 patch of the image.

A strided 2x2 convolution takes each patch to a code vector, the nearest of K learned codes replaces it
(VQ-VAE, van den Oord et al. 2017: `tfvq.layers.vq.VectorQuantizer`, straight-through gradients and the
codebook and commitment terms), and a transposed 2x2 convolution paints the patch back. It keeps the model
contract of `tfvq.models.CodeModel` with nothing more than that.
"""

import keras
import numpy as np
import tensorflow as tf

from tfvq.layers.vq import VectorQuantizer
from tfvq.models import CodeLayout, CodeModel, OptimizerRecipe, Stage, as_seed
from tfvq.models.code_checks import check_codes
from tfvq.models.pixels import like_input, output_is_uint8


@keras.saving.register_keras_serializable(package="tiny_family")
class TinyVQ(CodeModel):
    """One layer of `num_codes` codes on a grid of half the image's height and width; decoded deterministically.

    Trains in one stage under the base `Recipe` (Adam at its learning rate): the pixels' mean squared error plus
    the quantizer's VQ-VAE loss.
    """

    stochastic_decoding = False

    def __init__(self, image_shape, num_codes=8, code_dim=4, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.num_codes, self.code_dim = int(num_codes), int(code_dim)
        h, w, c = self.image_shape
        self.patch_in = keras.layers.Conv2D(self.code_dim, 2, strides=2, name="patch_in")
        self.vq = VectorQuantizer(self.num_codes, self.code_dim, name="quantizer")
        self.patch_out = keras.layers.Conv2DTranspose(c, 2, strides=2, activation="sigmoid", name="patch_out")
        vectors = (None, h // 2, w // 2, self.code_dim)
        self.patch_in.build((None,) + self.image_shape)
        self.vq.build(vectors)
        self.patch_out.build(vectors)
        self._layout = CodeLayout(((h // 2, w // 2),), (self.num_codes,), default_layer=1, cumulative=False)
        self.built = True

    def code_layout(self):
        return self._layout

    def encode(self, images, layer=None, stochastic=False, seed=None):
        """The nearest code of each patch, int32 [B, H/2, W/2]."""
        self._layout.check_layer(layer)
        as_seed(seed)
        return self.vq.nearest_codes(self.patch_in(self.check_images(images)[0]))

    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        """The patches painted from the codes' vectors, float in [0, 1] or uint8 (`dtype`)."""
        as_seed(seed)
        (codes,) = check_codes(codes, self._layout, self._layout.check_layer(layer))
        return like_input(self.patch_out(self.vq.lookup(codes)), output_is_uint8(dtype))

    def reconstruct(self, images, layer=None, stochastic=False, seed=None):
        x, was_uint8 = self.check_images(images)
        return like_input(self.decode(self.encode(x, layer, seed=seed), layer), was_uint8)

    def tflite_encoder(self, layer=None):
        self._layout.check_layer(layer)
        return lambda images: {"codes": self.vq.nearest_codes(self.patch_in(tf.cast(images, tf.float32)))}

    def training_loss(self, images, seed=None):
        """{"loss": MSE + the VQ-VAE loss, "mse"} of a batch, end to end."""
        as_seed(seed)
        x, _ = self.check_images(images)
        out = self.vq(self.patch_in(x), training=True)
        mse = tf.reduce_mean(tf.square(tf.cast(self.patch_out(out["quantized"]), tf.float32) - x))
        return {"loss": mse + tf.cast(out["loss"], tf.float32), "mse": mse}

    def training_stages(self, recipe=None, steps=None):
        recipe = self.as_recipe(recipe)
        n = recipe.stage_steps(0, steps)
        optimizer = OptimizerRecipe("adam", recipe.learning_rate, clip_norm=recipe.clip_norm)
        return [Stage(name="train", title=f"TinyVQ: {n} steps", steps=n, variables=lambda: self.trainable_variables,
                      loss=self.training_loss, optimizer=optimizer, shown=("loss", "mse"))]

    def report(self, test_images, train_images=None, batch_size=64, seed=0, stages=None):
        x = np.asarray(self.check_images(test_images)[0])
        mse = float(np.mean((self.reconstruct(x).numpy() - x) ** 2))
        return {"metrics": {"mse": mse}, "table": (["bits", "MSE"], [[self.bits(), f"{mse:.4f}"]]), "lines": []}

    def previews(self, images, seed=0, stages=None):
        x = np.asarray(self.check_images(images)[0])
        return {"reconstructions": [x, self.reconstruct(x).numpy()]}

    def get_config(self):
        config = super().get_config()
        config.update(image_shape=list(self.image_shape), num_codes=self.num_codes, code_dim=self.code_dim)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
