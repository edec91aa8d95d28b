"""Images to `.tfvq` files and back, for any zoo model with discrete codes.

The codec asks the model only what the model contract (`tfvq.models.base`)
says every model answers: `code_layout()` (None for a model without
discrete codes), `encode(images, layer)`, `decode(codes, layer, stochastic,
seed, dtype)` and `image_shape`. A file of layer l holds the codes of
`code_layout().layers_sent(l)` (`tfvq.codec.format`); decoding it is
`model.decode(codes, l)`, which fills in the layers below l (their most
probable codes, or samples given a seed).

TensorFlow is imported only inside the functions that need it.
"""

import collections
import hashlib
import os

import numpy as np

from tfvq.codec import format as fmt
from tfvq.codec.format import CodecError
from tfvq.codec.images import any_size_batch, as_batch

_MODELS = {}  # (name, weights path or None) -> (model, weights hash)
_SPECS = {}  # name -> ModelSpec

ModelSpec = collections.namedtuple("ModelSpec", ["image_shape", "layout"])
ModelSpec.__doc__ = """What a zoo model's files look like: its `image_shape` (H, W, C) and `CodeLayout` (or None)."""


def weights_hash(model):
    """The first 8 bytes of the SHA-256 of the model's weight arrays (in `model.weights` order, raw bytes)."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.digest()[:fmt.HASH_BYTES]


def _no_codes(name):
    return CodecError(
        f"{name!r} has no discrete codes (its code_layout() is None: its latents are continuous), so there is "
        "nothing to store in a .tfvq file. Use a model with codes (`tfvq models` lists each model's codes)."
    )


def model_spec(name):
    """The `ModelSpec` of zoo model `name`, from a freshly built model (no weights loaded), cached per name.

    Raises `CodecError` for a name the zoo does not hold.
    """
    from tfvq import zoo

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
    """(model, weights hash) for zoo model `name`, cached per (name, weights).

    `weights=None` (or "bundled") means the model's bundled weights;
    otherwise any path `tfvq.zoo.load` accepts. An unknown name, a model
    without discrete codes and a model without bundled weights raise
    `CodecError`.
    """
    from tfvq import zoo

    if weights is not None and weights != "bundled":
        weights = os.path.abspath(os.fspath(weights))
    else:
        weights = None
    key = (name, weights)
    if key not in _MODELS:
        if name in _SPECS and _SPECS[name].layout is None:
            raise _no_codes(name)  # known without building the model again
        try:
            model = zoo.load(name, weights="bundled" if weights is None else weights)
        except zoo.UnknownModelError as err:
            raise CodecError(f"The model {name!r} is not in this tfvq's zoo: {err}") from None
        except FileNotFoundError as err:
            code_layout(name)  # a model without codes: say so rather than that it has no weights
            raise CodecError(f"Cannot load weights for {name!r}: {err}") from None
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


def compress(images, model_name, layer=None, weights=None, coder="auto", lossless=False):
    """Compresses images to the bytes of a `.tfvq` file.

    Args:
      images: one image [H, W, C] or a batch [N, H, W, C] (1 <= N <= 65535),
        uint8 or float in [0, 1] (rounded to 8 bits for an entropy-coded
        file), with the model's C. With `coder="fixed"` the images must have
        the model's `image_shape`; otherwise any H and W (see
        `tfvq.codec.coding`: a fully convolutional model codes the image
        whole, padded to a multiple of its stride; another model in tiles).
      model_name: a zoo model with discrete codes.
      layer: the layer to encode at, 1..L; None: the model's default layer
        (`code_layout().default_layer`: HQA its top layer, RRVQ-VAE layer 1).
      weights: None for the bundled weights, or a path `tfvq.zoo.load` accepts.
      coder: "auto" (default: per layer the smallest of fixed, static-prior
        and model-probability coding, format version 3), "static",
        "progressive" (layers `layer`..L, each given the one above: a reader
        may stop after any layer), or "fixed" (format version 2, bit-packed
        codes at ceil(log2 K) bits each, as before entropy coding).
      lossless: also code the pixels under the model's p(x | z) (RRVQ-VAE),
        so that `decompress` returns the exact input pixels (uint8 images).

    Returns:
      bytes. The codes are `model.encode(images, layer)`, the most probable
      code of every layer sent (HQA: of layer `layer` alone; RRVQ-VAE: of
      layers `layer`..L, each given the codes above it).

    Raises:
      CodecError: an unknown model or one without codes, a bad layer, or
        images the model does not take.
    """
    import tensorflow as tf

    from tfvq.codec import coding

    if coder not in coding.CODER_CHOICES:
        raise ValueError(f"coder must be one of {', '.join(coding.CODER_CHOICES)}, got {coder!r}.")
    model, digest = load_model(model_name, weights)
    layout = model.code_layout()
    layer = _layer(layout, layer, model_name)
    shape = tuple(np.shape(images))
    if coder != "fixed" or lossless or len(shape) not in (3, 4) or shape[-3:] != tuple(model.image_shape):
        x = any_size_batch(images, model.image_shape[2], lossless)
        if not 1 <= len(x) <= 0xFFFF:
            raise CodecError(f"A .tfvq file holds 1..65535 images, got {len(x)}; split the batch into several files.")
        from tfvq.codec.prior import load_prior

        return coding.encode_file(x, model_name, model, digest, load_prior(model_name, model, digest, weights), layer,
                                  coder, lossless)
    x = as_batch(images, model.image_shape)
    if not 1 <= len(x) <= 0xFFFF:
        raise CodecError(f"A .tfvq file holds 1..65535 images, got {len(x)}; split the batch into several files.")
    sent = layout.layers_sent(layer)
    codes = [np.asarray(c) for c in tf.nest.flatten(model.encode(x, layer))]
    expected = [(len(x),) + tuple(layout.grids[l - 1]) for l in sent]
    if [c.shape for c in codes] != expected:
        raise ValueError(f"{model_name!r}.encode(x, {layer}) gave codes of shapes {[list(c.shape) for c in codes]}, "
                         f"but its code_layout() promises {[list(s) for s in expected]} (layers {list(sent)}): "
                         "the model breaks the model contract (tfvq.models.base.CodeModel).")
    return fmt.write(codes, model_name, digest, layer, [layout.num_codes[l - 1] for l in sent])


def _span(layers):
    return f"layer {layers[0]}" if len(layers) == 1 else f"layers {layers[0]}..{layers[-1]}"


def decode_codes(data, weights=None):
    """Reads a file and checks it against its model: (container, model).

    The model is the zoo model the file names, with the bundled weights or
    `weights`; its weights hash must be the file's. The stored layers must be
    `code_layout().layers_sent(first_layer)`, with the model's grids and Ks.

    Raises:
      CodecError: an invalid file (`tfvq.codec.format.read`), an unknown
        model or one without codes, other weights, or codes that do not fit
        the model; the message says which.
    """
    container = fmt.read(data)
    return container, _model_for(container.header, weights)


def _model_for(header, weights):
    """The model of a read file, checked against the file's weights hash, layers, grids and Ks."""
    model, digest = load_model(header.model, weights)
    if header.weights_hash != digest:
        raise CodecError(
            f"The file was made with other weights of {header.model!r} (weights hash {header.weights_hash.hex()}, "
            f"these weights have {digest.hex()}); pass the weights it was made with (--weights=PATH)."
        )
    layout = model.code_layout()
    first = header.first_layer
    if first > layout.num_layers:
        raise CodecError(f"The file holds the codes of {_span(header.layers)}, but {header.model!r} has code layers "
                         f"1..{layout.num_layers}: the file was not made by this model.")
    sent = layout.layers_sent(first)
    if header.layers != sent:
        raise CodecError(
            f"The file holds the codes of {_span(header.layers)}, but a {header.model!r} file of layer {first} holds "
            f"the codes of {_span(sent)} (what encode(x, {first}) gives): the file was not made by this model."
        )
    for l, grid, k in zip(sent, header.code_shapes, header.layer_num_codes):
        want_grid, want_k = tuple(layout.grids[l - 1]), layout.num_codes[l - 1]
        if tuple(grid) != want_grid:
            raise CodecError(f"The file's layer {l} code grid is {grid[0]}x{grid[1]}, but layer {l} of "
                             f"{header.model!r} has a {want_grid[0]}x{want_grid[1]} grid: the file was not made "
                             "by this model.")
        if k != want_k:
            raise CodecError(f"The file's layer {l} has K={k} codes, but layer {l} of {header.model!r} has "
                             f"K={want_k}: the file was not made by this model.")
    return model


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
        a path `tfvq.zoo.load` accepts.
      layer: decode at this layer instead of the finest the file holds (a
        progressive file holds every layer from its finest to the top: a
        reader may stop after any). The images of a lossless file are its
        exact pixels when decoded at its finest layer.

    An entropy-coded (version 3) file gives images of the size it was made
    from (`compress` stores it).

    Raises:
      CodecError: a corrupt, truncated, foreign or future-version file, an
        unknown model, weights other than the file's, or codes that do not
        fit the model.
      ValueError: a seed that is not None, an int or a pair of ints.
    """
    if _is_coded(data):
        return _decompress_coded(data, seed, weights, layer)
    container = fmt.read(data)  # a bad file fails before TensorFlow starts
    from tfvq.models.base import as_seed

    as_seed(seed)  # a bad seed fails before the model loads
    model = _model_for(container.header, weights)
    if layer is not None and layer != container.header.first_layer:
        raise CodecError(f"The file holds the codes of layer {container.header.first_layer} (fixed-rate, format "
                         f"version {container.header.version}): it decodes at that layer only, not at {layer}.")
    images = model.decode(container.codes, container.header.first_layer, stochastic=seed is not None, seed=seed,
                          dtype="uint8")
    return np.asarray(images)


def _is_coded(data):
    return isinstance(data, (bytes, bytearray, memoryview)) and len(data) >= 5 and bytes(data[:4]) == fmt.MAGIC \
        and data[4] == fmt.NEWEST_VERSION


def _decompress_coded(data, seed, weights, layer):
    from tfvq.codec import coded, coding
    from tfvq.codec.prior import load_prior
    from tfvq.models.base import as_seed

    f = coded.parse(data)  # a bad file fails before TensorFlow starts
    as_seed(seed)
    model, digest = load_model(f.model, weights)
    if f.weights_hash != digest:
        raise CodecError(
            f"The file was made with other weights of {f.model!r} (weights hash {f.weights_hash.hex()}, "
            f"these weights have {digest.hex()}); pass the weights it was made with (--weights=PATH)."
        )
    prior = []

    def prior_for():
        if not prior:
            prior.append(load_prior(f.model, model, digest, weights))
        return prior[0]

    return coding.decode_file(f, model, prior_for, layer=layer, seed=seed)
