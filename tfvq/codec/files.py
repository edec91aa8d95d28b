"""Images to `.tfvq` files and back, for any zoo model with discrete codes.

The codec asks the model only what the model contract (`CodeModel`) says
every model answers: `code_layout()` (None for a model without discrete
codes), `encode(images, layer)`, `decode(codes, layer, stochastic, seed,
dtype)`, `image_shape` and the probabilities of `tfvq.codec.coding`. A file
of layer l holds the codes of `code_layout().layers_sent(l)` (or, from the
progressive and context coders, every layer from l to the top); decoding it
is `model.decode(codes, l)`, which fills in the layers below l (their most
probable codes, or samples given a seed).

Models come from the zoo by name or from a model folder (`tfvq.zoo.load`,
`tfvq.zoo.refs`: a file made with a folder names the folder's zoo name), with their weights
hash (`tfvq.zoo.weights_hash`) and their priors, read from where the zoo
says the priors of those weights live (`tfvq.zoo.prior_paths`: beside the
weights, in the model's folder).

A model whose training images were resized from a native size (`hqa_mnist`
and `vqvae_mnist`: MNIST's 28x28 digits rescaled to 32x32, HQA §6.2; the
dataset's `DatasetInfo.resized_from`) gets an image of that size resized
the same way (`resize="auto"`): the file stores the image's size and that
it was resized (the container's RESIZED flag), and `decompress` resizes the
model's images back (`tfvq.codec.images.resize_back`).
"""

import collections
import functools
import os

import numpy as np

from tfvq import data, zoo
from tfvq.codec import coding, versions
from tfvq.codec.context import read_priors
from tfvq.codec.errors import CodecError
from tfvq.codec.images import any_size_batch
from tfvq.data.tfds_datasets import resize_bilinear
from tfvq.models import as_seed

_MODELS = {}  # (name, weights path or None) -> (model, weights hash)
_SPECS = {}  # name -> ModelSpec

RESIZE_CHOICES = ("auto", "off")
"""`compress(resize=...)`: "auto" resizes an image of the size the model's training images were resized from
(`native_size`) to the model's size, and the file keeps the image's size; "off" codes every image at its size."""
ModelSpec = collections.namedtuple("ModelSpec", ["image_shape", "layout"])
ModelSpec.__doc__ = """What a zoo model's files look like: its `image_shape` (H, W, C) and `CodeLayout` (or None)."""


def weights_hash(model):
    """The 8 bytes naming a model's weights (`tfvq.zoo.weights_hash`)."""
    return zoo.weights_hash(model)


def load_prior(model_name, model, digest):
    """The static prior of `model` (its weights hash `digest`), or the uniform prior when it has none, with
    its context priors attached (`StaticPrior.context`) when it has them: the files
    `tfvq.zoo.prior_paths(model)` names.

    Raises `CodecError` if a file holds counts or networks for other weights or another layout.
    """
    return read_priors(zoo.prior_paths(model), model_name, model.code_layout().num_codes, digest)


def _no_codes(name):
    return CodecError(
        f"{name!r} has no discrete codes (its code_layout() is None: its latents are continuous), so there is "
        "nothing to store in a .tfvq file. Use a model with codes (`tfvq models` lists each model's codes)."
    )


def model_spec(name):
    """The `ModelSpec` of zoo model `name`, from a freshly built model (no weights loaded), cached per name.

    Raises `CodecError` for a name the zoo does not hold.
    """
    if name not in _SPECS:
        try:
            model = zoo.build(name)
        except zoo.UnknownModelError as err:
            raise CodecError(f"The model {name!r} is not in this tfvq's zoo: {err}") from None
        _SPECS[name] = ModelSpec(tuple(int(d) for d in model.image_shape), model.code_layout())
    return _SPECS[name]


def code_layout(name):
    """The `CodeLayout` of zoo model `name`: its code grids, Ks, default layer, and the layers a file holds.

    Raises `CodecError` for an unknown model and for a model without
    discrete codes (`code_layout()` is None).
    """
    layout = model_spec(name).layout
    if layout is None:
        raise _no_codes(name)
    return layout


def load_model(name, weights=None):
    """(model, weights hash) for `name`, a zoo model or a model folder (`tfvq.zoo.refs`), cached per
    (name, weights).

    `weights=None` (or "bundled") means a zoo model's bundled weights and a folder's own; otherwise any path
    `tfvq.zoo.load` accepts. A model folder given as the weights of the zoo model it was trained as (its
    `metadata.json` names it) loads whole: its configuration (an image size trained with `--image_size`)
    and its weights. An unknown name, a model without discrete codes and a model without bundled weights
    raise `CodecError`.
    """
    folder = zoo.refs.is_folder(name)
    if weights is not None and weights != "bundled":
        weights = os.path.abspath(os.fspath(weights))
    else:
        weights = None
    key = (os.path.abspath(name) if folder else name, weights)
    if key not in _MODELS:
        if name in _SPECS and _SPECS[name].layout is None:
            raise _no_codes(name)  # known without building the model again
        try:
            if folder:
                model = zoo.load(name, weights=weights)  # None: the folder's own weights
            elif weights is not None and zoo.refs.is_folder(weights) and zoo.refs.file_name(weights) == name:
                model = zoo.load(weights)  # the folder of a run of this zoo model: configuration and weights
            else:
                model = zoo.load(name, weights="bundled" if weights is None else weights)
        except zoo.UnknownModelError as err:
            raise CodecError(f"The model {name!r} is not in this tfvq's zoo: {err}") from None
        except FileNotFoundError as err:
            if not folder:
                code_layout(name)  # a model without codes: say so rather than that it has no weights
            raise CodecError(f"Cannot load weights for {name!r}: {err}") from None
        if not folder:
            _SPECS.setdefault(name, ModelSpec(tuple(int(d) for d in model.image_shape), model.code_layout()))
        if model.code_layout() is None:
            raise _no_codes(name)
        _MODELS[key] = (model, weights_hash(model))
    return _MODELS[key]


def _layer(layout, layer, name):
    """`layer` checked against the model's layers (None: the default layer); CodecError otherwise."""
    if layer is None:
        return layout.default_layer
    try:
        return layout.check_layer(layer)
    except ValueError:
        raise CodecError(
            f"{name!r} has code layers 1..{layout.num_layers} (layer 1 the finest), got layer={layer!r}; "
            f"omit the layer for the model's default, layer {layout.default_layer}."
        ) from None


def native_size(model_name, weights=None):
    """(h, w) the training images of `model_name` (with `weights`) were resized from to the model's size, or
    None: the dataset the weights learned (`tfvq.zoo.refs.dataset_of`: a folder's own, the bundled weights'
    `weights_dataset`, else the zoo entry's) when it is a named dataset whose images were all resized by
    `tfds_datasets.resize_bilinear` (`DatasetInfo.resized_from`: mnist and mnist10k, 28x28) to the model's
    image size. Your own datasets (a directory, a file) give None.
    """
    return _native_size(load_model(model_name, weights)[0], model_name, weights)


def _native_size(model, model_name, weights):
    try:
        dataset, _ = zoo.refs.dataset_of(model_name, weights)
        facts = data.info(dataset)
    except ValueError:  # a folder that names no dataset, or a dataset of your own
        return None
    if facts.resized_from is None or tuple(facts.image_shape) != tuple(int(d) for d in model.image_shape):
        return None
    return tuple(facts.resized_from)


def compress(images, model_name, layer=None, weights=None, coder="auto", lossless=False, resize="auto"):
    """Compresses images to the bytes of a `.tfvq` file (format version 4, `tfvq.codec.container`).

    Args:
      images: one image [H, W, C] or a batch [N, H, W, C] (1 <= N <= 65535),
        uint8 or float in [0, 1] (rounded to 8 bits), with the model's C and
        any H and W (see `tfvq.codec.coding`: a fully convolutional model
        codes the image whole, padded to a multiple of its stride; another
        model in tiles).
      model_name: a zoo model with discrete codes, or a model folder (a `train` run folder, a
        `tfvq.zoo.save` folder): the file names the folder's zoo name (`tfvq.zoo.refs.file_name`), and
        `decompress(data, weights=FOLDER)` decodes it.
      layer: the layer to encode at, 1..L; None: the model's default layer
        (`code_layout().default_layer`: HQA its top layer, RRVQ-VAE layer 1).
      weights: None for the bundled weights (a folder: its own), or a path `tfvq.zoo.load` accepts.
      coder: "auto" (default: per layer the coder of fewest bits, and of the
        plans a model allows the smallest whole file, its context priors
        within a budget of work, `tfvq.codec.budget`, so it costs at most
        about twice "static"), "smallest" (the same without the budget),
        "static", "progressive" (layers `layer`..L, each given the one above:
        a reader may stop after any layer), "context", or "fixed" (every code
        at the fixed rate, log2 K bits).
      lossless: also code the pixels under the model's p(x | z) (RRVQ-VAE),
        so that `decompress` returns the exact input pixels (uint8 images).
      resize: "auto" (default): images of the size the model's training images were resized from
        (`native_size`: 28x28 for `hqa_mnist` and `vqvae_mnist`) are resized as those were
        (`tfds_datasets.resize_bilinear`) to the model's size and coded there; the file stores their size
        and that they were resized, and `decompress` returns images of that size (resized back by the
        least-squares inverse, `tfvq.codec.images.resize_back`). Lossless files are never resized.
        "off": every image is coded at its own size (padded to the model's stride, or tiled).

    Returns:
      bytes. The codes are `model.encode(images, layer)`, the most probable
      code of every layer sent (HQA: of layer `layer` alone; RRVQ-VAE: of
      layers `layer`..L, each given the codes above it).

    Raises:
      CodecError: an unknown model or one without codes, a bad layer, or
        images the model does not take.
    """
    _check_choices(coder, resize)
    return bytes(Compressor(model_name, weights).compress(images, layer, coder, lossless, resize))


def _check_choices(coder, resize):
    if coder not in coding.CODER_CHOICES:
        raise ValueError(f"coder must be one of {', '.join(coding.CODER_CHOICES)}, got {coder!r}.")
    if resize not in RESIZE_CHOICES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_CHOICES)}, got {resize!r}.")


class Compressor:
    """Compresses images with one model, loaded once with its weights hash (`load_model`) and, on first use, its
    priors (`load_prior`): `tfvq compress` of many images loads them once.

    `Compressor(model_name, weights).compress(images, layer, coder, lossless, resize)` is `compress`'s file, as
    the `tfvq.codec.container.CompactFile` it wrote: `bytes()` of it is the file, and it describes itself
    (`summary`, `describe`) without being read back.

    Attributes:
      model, weights_hash: `load_model(model_name, weights)`.
      name: the zoo name the files name (a model folder's zoo name, `tfvq.zoo.refs.file_name`).
    """

    def __init__(self, model_name, weights=None):
        self.model_name, self.weights = model_name, weights
        self.model, self.weights_hash = load_model(model_name, weights)
        self.name = zoo.refs.file_name(model_name)

    @functools.cached_property
    def prior(self):
        """The static prior, with the context priors (`load_prior`)."""
        return load_prior(self.name, self.model, self.weights_hash)

    @functools.cached_property
    def native_size(self):
        """(h, w) that `resize="auto"` resizes from (`native_size`), or None."""
        return _native_size(self.model, self.model_name, self.weights)

    def compress(self, images, layer=None, coder="auto", lossless=False, resize="auto"):
        """The `CompactFile` of `images` (the arguments of `compress`)."""
        _check_choices(coder, resize)
        layer = _layer(self.model.code_layout(), layer, self.model_name)
        x = any_size_batch(images, self.model.image_shape[2], lossless)
        if not 1 <= len(x) <= 0xFFFF:
            raise CodecError(f"A .tfvq file holds 1..65535 images, got {len(x)}; split the batch into several files.")
        resized_from = None
        if resize == "auto" and not lossless and x.shape[1:3] == self.native_size:
            resized_from = x.shape[1:3]
            x = np.asarray(resize_bilinear(x, *self.model.image_shape[:2]))
        return coding.encode_file(x, self.name, self.model, self.weights_hash, self.prior, layer, coder, lossless,
                                  resized_from)


def decompress(data, seed=None, weights=None, layer=None):
    """Decodes the bytes of a `.tfvq` file (any version) to uint8 images [count, H, W, C].

    The images are `model.decode(codes, first_layer, stochastic=seed is not
    None, seed=seed, dtype="uint8")` for the codes and first layer the file
    holds.

    Args:
      data: the file's bytes.
      seed: None decodes deterministically: every layer below the stored
        ones takes its most probable code, so a file always gives the same
        images. An int (or a pair of ints) samples whatever the model samples
        below the stored layers (HQA: the re-quantisation of each layer
        below, HQA Algorithm 3; RRVQ-VAE: the prior p(z_l | z_>l) of each
        layer below, RRVQ eq. 3), repeatably for a given seed. A file that
        holds every layer has nothing to sample: a seed changes nothing.
      weights: None for the bundled weights of the model the file names, or
        a path `tfvq.zoo.load` accepts: a model folder (the one a file was
        compressed with) decodes with its configuration and weights.
      layer: decode at this layer instead of the finest the file holds (a
        progressive file holds every layer from its finest to the top: a
        reader may stop after any). The images of a lossless file are its
        exact pixels when decoded at its finest layer.

    A file of version 3 or 4 gives images of the size they were compressed at
    (`compress` stores it); a file of images resized to the model's size
    (`compress(resize="auto")`) gives them back at their stored size.

    Raises:
      CodecError: a corrupt, truncated, foreign or future-version file, an
        unknown model, weights other than the file's, or codes that do not
        fit the model.
      ValueError: a seed that is not None, an int or a pair of ints.
    """
    f, decode = versions.read(data)  # a bad file fails before the model loads
    as_seed(seed)  # ... and so does a bad seed
    model, digest = load_model(f.model, weights)
    return decode(f, model, digest, _priors(f.model, model, digest), layer, seed)


def _priors(name, model, digest):
    """A function giving the model's priors, loaded on first call (files of fixed-rate codes need none)."""
    loaded = []

    def prior_for():
        if not loaded:
            loaded.append(load_prior(name, model, digest))
        return loaded[0]

    return prior_for
