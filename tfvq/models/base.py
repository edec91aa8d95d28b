"""The model contract: what every zoo model says about itself.

Nothing above `tfvq.models` asks a model for its class. It asks the model:

* **Images in, images out.** Every public method that takes images accepts
  uint8 `[B, H, W, C]` (0..255) or float `[B, H, W, C]` in [0, 1]
  (`to_float_images`); a method that returns images returns the kind it was
  given (`like_input`), as TensorFlow Compression's models do.
* **Seeds the Keras way.** Every `seed=` is None, an int, or a pair of ints
  (`as_seed`); anything else is a `ValueError`.
* **Its codes** (`CodeModel.code_layout`): the grid and codebook size of
  every layer, which layer `encode` gives by default, and which layers a
  file of layer `l` carries. `encode(images, layer)` / `decode(codes, layer)`
  mean the same in every discrete model, and with default arguments
  `decode(encode(x))` equals `reconstruct(x, stochastic=False)`.
* **How it is trained** (`training_stages`): a list of `Stage`s, each with
  its variables, optimiser recipe, loss, per-step hooks and evaluation.
* **What it serves** (`serving_endpoints`): named SavedModel signatures with
  input specs and warmup inputs, and (`CodeModel.tflite_encoder`) its encoder
  for TFLite.
* **What it reports** (`describe`, `report`, `previews`): facts for
  `tfvq.zoo.info`, test metrics and image grids for the end of a run.
"""

import dataclasses
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfvq.code_layout import CodeLayout  # noqa: F401  (the contract's vocabulary, NumPy only)
from tfvq.images import tensor_images
from tfvq.models.recipes import Recipe, as_recipe
from tfvq.seeds import seed_error, seed_values


# ----------------------------------------------------------------------------------------------- images
def to_float_images(images, image_shape, name="images"):
    """Checks a batch of images and returns `(float32 [B, H, W, C] in [0, 1], was_uint8)`.

    The one place where images enter a model. Accepts uint8 (0..255, divided
    by 255) and float images with values in [0, 1] (any float dtype, cast to
    float32), as NumPy arrays, lists or tensors. The checks and their
    messages are `tfvq.images` (`tensor_images`), shared with the codec,
    data loading and the TFLite export.

    Raises:
      TypeError: another dtype (int32, bool, strings), saying how to convert.
      ValueError: not [batch, H, W, C] with the model's H, W and C, or float
        values outside [0, 1] or not finite (checked eagerly when the values
        are known, by an assertion op inside a `tf.function`).
    """
    return tensor_images(images, image_shape, name)


def to_uint8(images):
    """Float images in [0, 1] -> uint8 pixels: `round(255 * clip(x, 0, 1))`."""
    return tf.cast(tf.round(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0) * 255.0), tf.uint8)


def like_input(images, was_uint8):
    """Returns float images in [0, 1] as the caller gave them: uint8 if `was_uint8`, else float32."""
    return to_uint8(images) if was_uint8 else tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0)


def output_is_uint8(dtype):
    """`dtype=` of the methods that make images from codes or noise: "float32" or "uint8" (or tf dtypes)."""
    try:
        name = dtype if isinstance(dtype, str) else tf.as_dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "uint8"):
        raise ValueError(f"dtype must be 'float32' (images in [0, 1]) or 'uint8' (pixels), got {dtype!r}.")
    return name == "uint8"


# ------------------------------------------------------------------------------------------------ seeds
def as_seed(seed, name="seed"):
    """A stateless seed: None, or an int32 tensor of shape [2].

    Accepts None, an int (`s` -> `[s, 0]`), a pair of ints, or an integer
    tensor of shape [] or [2] (traced exports pass tensors). Ints must fit in
    int32. Anything else raises `ValueError` saying what is expected.
    """
    if seed is None:
        return None
    if tf.is_tensor(seed):
        if not seed.dtype.is_integer or seed.shape.rank not in (0, 1) or (
                seed.shape.rank == 1 and seed.shape[0] not in (None, 2)):
            raise ValueError(seed_error(seed, name) + f" (a {seed.dtype.name} tensor of shape {seed.shape.as_list()}).")
        seed = tf.cast(seed, tf.int32)
        return tf.stack([seed, tf.constant(0, tf.int32)]) if seed.shape.rank == 0 else tf.reshape(seed, [2])
    return tf.constant(seed_values(seed, name), tf.int32)


def fold_seeds(seed, count):
    """`count` independent stateless seeds from one seed (`as_seed`), or `[None] * count`."""
    seed = as_seed(seed)
    if seed is None:
        return [None] * count
    return [tf.random.experimental.stateless_fold_in(seed, i) for i in range(count)]


# ------------------------------------------------------------------------------------------------ codes
def below_layer(layout, layer):
    """`layer` checked for `CodeModel.code_logits`: an int in 2..L (the layer below it is `layer - 1`)."""
    layer = layout.check_layer(layer)
    if layer == 1:
        raise ValueError("Layer 1 is the finest layer: there are no codes below it to give probabilities for; "
                         f"code_logits takes a layer in 2..{layout.num_layers}.")
    return layer


def check_codes(codes, layout, layer):
    """Validates codes for `decode(codes, layer)`: a list of int32 tensors, one per layer sent.

    A single tensor is accepted for a one-layer code. Raises `TypeError` for
    non-integer codes and `ValueError` for a wrong number of layers, a wrong
    grid, or values outside [0, K) (checked when the values are known).
    """
    sent = layout.layers_sent(layer)
    if tf.is_tensor(codes) or isinstance(codes, np.ndarray):
        codes = [codes]
    codes = list(codes)
    if len(codes) != len(sent):
        what = f"layers {sent[0]}..{sent[-1]}" if len(sent) > 1 else f"layer {sent[0]}"
        raise ValueError(f"Expected the codes of {what} ({len(sent)} tensor{'s' if len(sent) > 1 else ''}, "
                         f"layer {sent[0]} first), got {len(codes)}.")
    out = []
    for l, c in zip(sent, codes):
        c = tf.convert_to_tensor(c)
        h, w = layout.grids[l - 1]
        k = layout.num_codes[l - 1]
        if not c.dtype.is_integer:
            raise TypeError(f"Layer {l} codes must be integers (int32), got dtype {c.dtype.name}.")
        if c.shape.rank != 3 or not c.shape[1:].is_compatible_with((h, w)):
            raise ValueError(f"Layer {l} codes must have shape [batch, {h}, {w}], got {c.shape.as_list()}.")
        if tf.executing_eagerly() and tf.size(c) > 0:
            lo, hi = int(tf.reduce_min(c)), int(tf.reduce_max(c))
            if lo < 0 or hi >= k:
                raise ValueError(f"Layer {l} codes must be in [0, {k - 1}], got values in [{lo}, {hi}].")
        out.append(tf.cast(c, tf.int32))
    if len({int(c.shape[0]) if c.shape[0] is not None else -1 for c in out}) > 1:
        raise ValueError(f"Every layer's codes must have the same batch size, got {[c.shape[0] for c in out]}.")
    return out


def checked_code_bias(code_bias, layout):
    """`code_bias` {layer: float [K_layer]} checked against `layout`, as float32 NumPy vectors."""
    if not isinstance(code_bias, dict):
        raise TypeError(f"code_bias must be a dict {{layer: [K] floats}}, got {type(code_bias).__name__}.")
    out = {}
    for l, bias in code_bias.items():
        layout.check_layer(l)
        bias = np.asarray(bias, np.float32)
        k = layout.num_codes[int(l) - 1]
        if bias.shape != (k,) or not np.all(np.isfinite(bias)):
            raise ValueError(f"code_bias of layer {l} must be {k} finite floats (one per code), got shape "
                             f"{bias.shape}.")
        out[int(l)] = bias
    return out


# ------------------------------------------------------------------------------------------- training
@dataclasses.dataclass(frozen=True)
class OptimizerRecipe:
    """How a stage's optimiser is made (`tfvq.train.optimizers.make_optimizer` builds it).

    Attributes:
      name: "radam", "adamax" or "adam".
      learning_rate: the initial learning rate.
      cosine_fraction: if set, the learning rate is constant, then
        cosine-annealed to 0 over this final fraction of the stage's steps.
      plateau: if set, a dict of `tfvq.train.ReduceOnPlateau` arguments
        (factor, patience, min_value): the stage's `evaluate` drives it.
      clip_norm: gradients are clipped to this global norm after the
        cross-replica all-reduce.
    """

    name: str
    learning_rate: float
    cosine_fraction: Optional[float] = None
    plateau: Optional[Mapping[str, float]] = None
    clip_norm: float = 1.0


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of training.

    Attributes:
      name: a short name, also the TensorBoard prefix ("layer_3", "train").
      title: one line for the log.
      steps: the number of steps.
      variables: `() -> list` of the variables the stage updates.
      loss: `(float images [B, H, W, C], seed [2]) -> dict` of scalars with
        a "loss" to minimise (runs in replica context, relaxed samples).
      optimizer: its `OptimizerRecipe`.
      before_step: `(step) -> dict` of scalars to show: per-step hooks
        (temperature annealing, dead-code reset window), run in replica
        context before the loss.
      shown: the scalars shown on the progress bar.
      evaluate: `(float images [N, H, W, C], batch_size, seed) -> float`, a
        test metric to minimise (the plateau schedule's input), or None.
      eval_every: steps between evaluations (when `evaluate` is set).
      eval_name: what `evaluate` measures (a progress-bar and TensorBoard name).
      setup: `(float images [N, H, W, C]) -> None`, run once when the stage
        starts (not when a run resumes inside it), on a sample of training
        images: data-dependent initialisation (e.g. a codebook from k-means++).
      at_steps: {step: `(float images [N, H, W, C]) -> None`}: data-dependent
        changes run just before that step, on a sample of training images, when
        the run gets there (a run that resumes at that step runs it; one that
        resumes past it does not: the change is in the checkpoint).
    """

    name: str
    title: str
    steps: int
    variables: Callable[[], List[Any]]
    loss: Callable[..., Dict[str, Any]]
    optimizer: OptimizerRecipe
    before_step: Callable[[Any], Dict[str, Any]] = lambda step: {}
    shown: Sequence[str] = ("loss",)
    evaluate: Optional[Callable[..., float]] = None
    eval_every: Optional[int] = None
    eval_name: str = "test_metric"
    setup: Optional[Callable[[Any], None]] = None
    at_steps: Mapping[int, Callable[[Any], None]] = dataclasses.field(default_factory=dict)


# -------------------------------------------------------------------------------------------- serving
@dataclasses.dataclass(frozen=True)
class Endpoint:
    """A SavedModel signature: `fn(*inputs) -> dict of tensors`, traced with `input_signature`.

    `warmup(image)` gives batch-1 NumPy inputs for a TF Serving warmup
    request, `image` a uint8 [1, H, W, C] example. `aliases` are further
    signature names of the same function (e.g. "serving_default").
    """

    name: str
    fn: Callable[..., Dict[str, Any]]
    input_signature: Sequence[tf.TensorSpec]
    warmup: Callable[[np.ndarray], Dict[str, np.ndarray]]
    aliases: Sequence[str] = ()

    def __call__(self, **inputs):
        """Runs `fn` eagerly on inputs named as the signature's (positional in `input_signature` order)."""
        return self.fn(*[inputs[spec.name] for spec in self.input_signature])


def images_spec(image_shape):
    return tf.TensorSpec((None,) + tuple(image_shape), tf.uint8, name="images")


def served_images(images, image_shape):
    """uint8 pixels of a signature -> float [0, 1] (EnsureShape: a run-time check naming both shapes)."""
    return tf.cast(tf.ensure_shape(images, (None,) + tuple(image_shape), name="images_shape_check"), tf.float32) / 255.0


# -------------------------------------------------------------------------------------------- models
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
        shape = tuple(int(d) for d in image_shape)
        if len(shape) != 3 or shape[2] != self.image_shape[2] or min(shape[:2]) < 1 or shape[0] % stride \
                or shape[1] % stride:
            raise ValueError(f"Expected an image shape (H, W, {self.image_shape[2]}) with H and W positive "
                             f"multiples of the model's stride {stride}, got {list(shape)}; pad the image first.")
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
        """The code signatures of every exported layer.

        For each exported layer L (suffix `_layer_L`; the unsuffixed names
        are the default layer's):

          encode        {images: uint8 [B,H,W,C]} -> codes of the layers sent
          decode        codes -> {images: uint8}, `decode(codes, L)` (deterministic)
          decode_seeded codes, {seed: int32 [B]} -> {images}: row i is
                        `decode(codes[i:i+1], L, stochastic=True, seed=(seed[i], 0))`
                        (only if `decodes_stochastically(L)`)
          reconstruct   {images} -> codes and {images}: `reconstruct(x, L)`

        The codes are `codes` (one layer sent) or `codes_layer_l` (several).
        """
        layout = self.code_layout()
        layers = self.default_export_layers() if layers is None else sorted({layout.check_layer(l) for l in layers})
        if not layers:
            raise ValueError("layers must name at least one layer.")
        default_layer = layers[-1] if default_layer is None else layout.check_layer(default_layer)
        if default_layer not in layers:
            layers = sorted(layers + [default_layer])
        suffixed = len(layers) > 1 or layers != [layout.default_layer]
        endpoints = []
        for layer in layers:
            names = lambda m, l=layer: ([f"{m}_layer_{l}"] if suffixed else []) + (  # noqa: E731
                [m] if l == default_layer else [])
            for method, (fn, spec, warmup) in self._layer_endpoints(layer).items():
                first, *aliases = names(method)
                if method == "reconstruct" and layer == default_layer and self._code_serving_default:
                    aliases.append("serving_default")
                endpoints.append(Endpoint(first, fn, spec, warmup, tuple(aliases)))
        return endpoints

    _code_serving_default = True

    def _layer_endpoints(self, layer):
        layout = self.code_layout()
        sent = layout.layers_sent(layer)
        names = ["codes"] if len(sent) == 1 else [f"codes_layer_{l}" for l in sent]
        code_specs = [tf.TensorSpec((None,) + tuple(layout.grids[l - 1]), tf.int32, name=n)
                      for l, n in zip(sent, names)]
        image_spec = images_spec(self.image_shape)
        seed_spec = tf.TensorSpec((None,), tf.int32, name="seed")

        def checked_codes(codes):
            out = []
            for l, c in zip(sent, codes):
                k = layout.num_codes[l - 1]
                c = tf.ensure_shape(c, (None,) + tuple(layout.grids[l - 1]), name="codes_shape_check")
                message = f"layer {l} codes must be in [0, {k - 1}]"
                with tf.control_dependencies([tf.debugging.assert_non_negative(c, message=message),
                                              tf.debugging.assert_less(c, tf.constant(k, tf.int32), message=message)]):
                    out.append(tf.identity(c))
            return out

        def as_dict(codes):
            return dict(zip(names, tf.nest.flatten(codes)))

        def encode(images):
            return as_dict(self.encode(served_images(images, self.image_shape), layer))

        def decode(*codes):
            return {"images": to_uint8(self.decode(checked_codes(codes), layer))}

        def decode_seeded(*args):
            codes, seed = checked_codes(args[:-1]), args[-1]
            check = tf.debugging.assert_equal(tf.size(seed), tf.shape(codes[0])[0],
                                              message="seed must be int32 of shape [batch]: one seed per row of codes")
            with tf.control_dependencies([check]):
                seed = tf.identity(tf.reshape(seed, [-1]))

            def one(row):
                *c, s = row
                x = self.decode([ci[None] for ci in c], layer, stochastic=True, seed=tf.stack([s, 0]))
                return to_uint8(x)[0]

            images = tf.map_fn(one, (*codes, seed), fn_output_signature=tf.TensorSpec(self.image_shape, tf.uint8))
            return {"images": images}

        def reconstruct(images):
            x = served_images(images, self.image_shape)
            codes = self.encode(x, layer)
            return {**as_dict(codes), "images": to_uint8(self.decode(codes, layer))}

        def warm_codes(image):
            return {n: np.zeros((1,) + tuple(s.shape[1:]), np.int32) for n, s in zip(names, code_specs)}

        endpoints = {
            "encode": (encode, [image_spec], lambda image: {"images": image}),
            "decode": (decode, code_specs, warm_codes),
        }
        if self.decodes_stochastically(layer):
            endpoints["decode_seeded"] = (
                decode_seeded, code_specs + [seed_spec],
                lambda image: {**warm_codes(image), "seed": np.zeros((1,), np.int32)})
        endpoints["reconstruct"] = (reconstruct, [image_spec], lambda image: {"images": image})
        return endpoints

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

