"""The model contract: `ImageModel` and `CodeModel`, what every zoo model says about itself.

Nothing above `tfvq.models` asks a model for its class. It asks the model:

* **Images in, images out.** Every public method that takes images accepts
  uint8 `[B, H, W, C]` (0..255) or float `[B, H, W, C]` in [0, 1]
  (`tfvq.models.pixels.to_float_images`); a method that returns images
  returns the kind it was given (`like_input`), as TensorFlow Compression's
  models do.
* **Seeds the Keras way.** Every `seed=` is None, an int, or a pair of ints
  (`tfvq.models.stateless_seeds.as_seed`); anything else is a `ValueError`.
* **Its codes** (`CodeModel.code_layout`, a `tfvq.code_layout.CodeLayout`):
  the grid and codebook size of every layer, which layer `encode` gives by
  default, and which layers a file of layer `l` carries. `encode(images, layer)` / `decode(codes, layer)`
  mean the same in every discrete model, and with default arguments
  `decode(encode(x))` equals `reconstruct(x, stochastic=False)`.
* **How it is trained** (`training_stages`): a list of `Stage`s
  (`tfvq.models.training`), each with its variables, optimiser recipe, loss,
  per-step hooks and evaluation, under the family's recipe
  (`tfvq.models.recipes`).
* **What it serves** (`serving_endpoints`): named SavedModel signatures with
  input specs and warmup inputs (`tfvq.models.serving`), and
  (`CodeModel.tflite_encoder`) its encoder for TFLite.
* **What it reports** (`describe`, `report`, `previews`): facts for
  `tfvq.zoo.info`, test metrics and image grids for the end of a run.
"""

import keras
import tensorflow as tf

from tfvq.code_layout import check_image_shape
from tfvq.models import serving
from tfvq.models.code_checks import below_layer, checked_code_bias
from tfvq.models.pixels import to_float_images
from tfvq.models.recipes import Recipe, as_recipe


class ImageModel(keras.Model):
    """Base of every zoo model: images in and out, training stages, serving endpoints, reports.

    Subclasses set `image_shape` and implement `reconstruct`,
    `training_stages`, `serving_endpoints`, `report` and `previews`.
    `call(images)` is the deterministic reconstruction, so `model.predict`
    gives images in every family; `model.fit` trains the model's single
    stage (or `fit_stage`, for a model of several stages).
    """

    fit_stage = None
    """Which stage `model.fit` trains (0-based); None: the only stage (an error if there are several)."""

    @property
    def num_dims(self):
        h, w, c = self.image_shape
        return h * w * c

    def check_images(self, images, name="images"):
        """`to_float_images(images, self.image_shape)`."""
        return to_float_images(images, self.image_shape, name)

    def reconstruct(self, images, layer=None, stochastic=False, seed=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def call(self, images, training=None):
        """The deterministic reconstruction (for `predict`)."""
        return self.reconstruct(images)

    # ---- training
    recipe_class = Recipe
    """The family's training recipe (`tfvq.models.recipes`): what `training_stages` takes and a zoo entry holds."""

    @classmethod
    def as_recipe(cls, recipe=None):
        """`recipe` as the family's `recipe_class`: None gives its defaults (the paper's), a mapping of its keys is
        read (an unknown key raises, naming the known keys), a recipe of the family is returned as it is."""
        return as_recipe(cls.recipe_class, recipe)

    def training_stages(self, recipe=None, steps=None):  # pragma: no cover - abstract
        """The `Stage`s that train this model under `recipe` (`as_recipe`; `steps` overrides every stage's)."""
        raise NotImplementedError

    def _fit_stage(self):
        """The stage `fit` trains (its loss and variables; the optimiser is the one given to `compile`)."""
        stages = self.training_stages(None, steps=1)
        if self.fit_stage is None and len(stages) > 1:
            raise ValueError(
                f"{type(self).__name__} trains in {len(stages)} stages ({', '.join(s.name for s in stages)}); "
                "set `model.fit_stage` to the stage `fit` should train (0-based), or train with tfvq.train."
            )
        return stages[self.fit_stage or 0]

    def train_step(self, data):
        """One `model.fit` step on a stage's loss (images only; labels are ignored).

        The stage's per-step hooks (temperature, code reset) are not run: the
        current temperature stays. `tfvq.train` runs the full schedule.
        """
        images = data[0] if isinstance(data, (tuple, list)) else data
        x, _ = self.check_images(images)
        stage = self._fit_stage()
        variables = stage.variables()
        seed = self.seed_generator.next() if hasattr(self, "seed_generator") else None
        with tf.GradientTape() as tape:
            terms = dict(stage.loss(x, seed))
        grads = tape.gradient(terms["loss"], variables)
        self.optimizer.apply_gradients([(g, v) for g, v in zip(grads, variables) if g is not None])
        return terms

    def test_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        x, _ = self.check_images(images)
        terms = self._fit_stage().loss(x, tf.constant([0, 0], tf.int32))
        return {k: v for k, v in terms.items() if tf.convert_to_tensor(v).shape.rank == 0}

    # ---- serving
    def serving_endpoints(self, layers=None):  # pragma: no cover - abstract
        """The `Endpoint`s of this model's SavedModel."""
        raise NotImplementedError

    # ---- reporting
    def describe(self):
        """Facts about the model for `tfvq.zoo.info` (JSON-able)."""
        return {"image_shape": list(self.image_shape)}

    def report(self, test_images, train_images=None, batch_size=64, seed=0, stages=None):  # pragma: no cover
        """Test metrics after training: `{"metrics": dict, "table": (columns, rows), "lines": [str]}`."""
        raise NotImplementedError

    def previews(self, images, seed=0, stages=None):  # pragma: no cover - abstract
        """Image grids to look at: {name: list of rows, each float [n, H, W, C] in [0, 1]}."""
        raise NotImplementedError

    def code_layout(self):
        """None: this model has no discrete codes (`CodeModel` overrides it)."""
        return None


class CodeModel(ImageModel):
    """Base of the discrete models: one vocabulary for codes.

    * `code_layout()`: a `CodeLayout`.
    * `encode(images, layer=None, stochastic=False, seed=None)`: int32 codes
      of the layers `code_layout().layers_sent(layer)`: a tensor [B, h, w]
      when one layer is sent, else a list (layer `layer` first).
    * `decode(codes, layer=None, stochastic=False, seed=None)`: images from
      them, as uint8 if `like` is uint8 else float in [0, 1]. Layers below
      `layer` take their most probable code, or a sample if `stochastic`.
    * `reconstruct(images, layer=None, stochastic=False, seed=None)`:
      encode and decode; with default arguments equal to
      `decode(encode(images))`.
    * `tflite_encoder(layer)`: `(fn, output names)` for TFLite conversion.
    """

    stochastic_decoding = True
    """Whether `decode(..., stochastic=True)` samples anything (then the model serves `decode_seeded`)."""

    def decodes_stochastically(self, layer):
        """Whether `decode(codes, layer, stochastic=True)` samples anything."""
        return self.stochastic_decoding

    def code_layout(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def bits(self, layer=None):
        """Fixed-rate bits per image of `encode(x, layer)` (`CodeLayout.bits`)."""
        return self.code_layout().bits(layer)

    def code_shape(self, layer=None):
        """(h, w) of layer `layer`'s code grid."""
        layout = self.code_layout()
        return tuple(layout.grids[layout.check_layer(layer) - 1])

    def tflite_encoder(self, layer=None):  # pragma: no cover - abstract
        """A function of float images [B, H, W, C] in [0, 1] -> {name: int32 codes}, TFLite builtins only."""
        raise NotImplementedError

    # ---- probabilities of codes and pixels (what an entropy coder needs, `tfvq.codec`)
    def code_logits(self, codes, layer):
        """log p(codes of layer `layer - 1` | the codes a file of layer `layer` holds), or None.

        `codes` are those of `code_layout().layers_sent(layer)` (as `decode`
        takes them). The result is float32 [B, h, w, K] of layer `layer - 1`'s
        grid and codebook, normalised over K: the distribution
        `decode(codes, layer, stochastic=True)` draws layer `layer - 1` from
        (HQA Algorithm 3: layer `layer - 1`'s quantizer on the predicted z_e,
        HQA eq. 3; RRVQ-VAE: the prior p(z_{l-1} | z_>=l), RRVQ eq. 7). None:
        the model offers no distribution (an entropy coder then uses a
        static prior). This default offers none.

        Raises:
          ValueError: `layer` is not in 2..L (layer 1 has nothing below it).
        """
        below_layer(self.code_layout(), layer)
        return None

    def top_code_logits(self, batch):
        """log p(codes of the top layer L) as float32 [batch, h_L, w_L, K_L], or None (no prior on the top).

        RRVQ-VAE: its top prior (uniform, or from the learnt d_{L+1}, RRVQ
        App. C). HQA and VQ-VAE have no prior over their codes: None.
        """
        return None

    def encode_biased(self, images, code_bias, layer=None):
        """`encode(images, layer)`'s codes with the most probable code of some layers' q moved by a bias, or None.

        `code_bias` {layer: float [K]}: each of those layers takes, at every
        position, `argmax_k log q(k | ...) + code_bias[layer][k]` instead of
        q's mode. With a weight times the log-probabilities of the entropy
        coder's prior it is entropy-constrained VQ's choice (Chou, Lookabaugh
        & Gray 1989): cheaper codes where q hardly prefers one
        (`tfvq.codec.fit_prior`'s `rate_weights`). Layers are chosen in the
        order the model infers them, so later layers see the codes chosen
        (RRVQ-VAE: top-down). None: the model has no q to bias (this
        default)."""
        checked_code_bias(code_bias, self.code_layout())
        self.code_layout().check_layer(layer)
        return None

    def pixel_likelihood(self, codes, layer=None):
        """(loc, log_scale) of the model's discretised logistic p(x | z) given the codes, or None.

        For a density model (RRVQ-VAE, RRVQ App. C): float32 [B, H, W, C]
        each, on the [0, 1] pixel scale of
        `tfvq.losses.discretized_logistic_log_prob`, for the codes of
        `code_layout().layers_sent(layer)` with every layer below `layer` at
        the prior's most probable code (as `decode`). None: the model has no
        pixel likelihood (it cannot code pixels losslessly). This default: None.
        """
        return None

    def code_stride(self, layer=None):
        """Pixels per code of layer `layer` along each axis if the model is fully convolutional, else None.

        A fully convolutional model codes images of any size whose height and
        width are multiples of `code_stride()` (the stride of its top layer):
        `with_image_shape` builds it for that size. None (this default): the
        model takes images of its `image_shape` only.
        """
        self.code_layout().check_layer(layer)
        return None

    def with_image_shape(self, image_shape):
        """The same model (same weights) for images of another (H, W, C); fully convolutional models only.

        H and W must be multiples of `code_stride()`, and C the model's.
        Built from `get_config()` with the new `image_shape`, then given this
        model's weights (`set_weights`), so its codes mean what this model's do.

        Raises:
          ValueError: the model is not fully convolutional (`code_stride()` is
            None), or the shape does not fit; the message says what does.
        """
        stride = self.code_stride()
        if stride is None:
            raise ValueError(f"{type(self).__name__} takes images of shape {list(self.image_shape)} only (it is not "
                             "fully convolutional): resize or tile the images to that shape.")
        shape = check_image_shape(image_shape, self.image_shape, stride)
        if shape == tuple(self.image_shape):
            return self
        model = type(self).from_config({**self.get_config(), "image_shape": list(shape)})
        model.set_weights(self.get_weights())
        model.zoo_name = getattr(self, "zoo_name", None)
        return model

    def _codes_out(self, codes):
        return codes[0] if len(codes) == 1 else list(codes)

    # ---- serving: encode / decode / decode_seeded / reconstruct per layer
    def default_export_layers(self):
        return list(range(1, self.code_layout().num_layers + 1))

    def code_endpoints(self, layers=None, default_layer=None):
        """The code signatures of every exported layer: `encode`, `decode`, `decode_seeded` and `reconstruct`
        (`tfvq.models.serving.code_endpoints`); the default layer's `reconstruct` is also "serving_default"
        unless `_code_serving_default` is False."""
        return serving.code_endpoints(self, layers, default_layer, serving_default=self._code_serving_default)

    _code_serving_default = True

    def serving_endpoints(self, layers=None, default_layer=None):
        return self.code_endpoints(layers, default_layer)

    def describe(self):
        layout = self.code_layout()
        return {
            **super().describe(),
            "code_layers": layout.num_layers,
            "code_grids": [list(g) for g in layout.grids],
            "num_codes": list(layout.num_codes),
            "default_layer": layout.default_layer,
            "bits_per_layer": {l: layout.bits(l) for l in range(1, layout.num_layers + 1)},
        }
