"""Compression with zoo models: images -> `.tfvq` files of bit-packed codes -> images.

    >>> from tfvq import codec
    >>> data = codec.compress(image_uint8, "hqa_digits", layer=5)   # bytes
    >>> codec.read_header(data).model
    'hqa_digits'
    >>> images = codec.decompress(data, seed=0)                    # uint8 [1, 32, 32, 1]

    >>> data = codec.compress(image_uint8, "rrvq_digits")           # every latent layer's codes
    >>> codec.decompress(data).shape
    (1, 32, 32, 1)

A file is self-describing (see `tfvq.codec.format` for the layout): it names
the zoo model and carries a hash of its weights, so `decompress` needs no
model argument and refuses codes made with other weights. What a file holds
depends on the model's family:

- HQA and VQ-VAE ("hqa", "vqvae"): only layer `layer`'s codes,
  `ceil(count * h * w * ceil(log2 K) / 8)` bytes of them; decoding goes down
  the HQA stack (HQA Algorithm 3).
- RRVQ-VAE ("rrvq_vae"): the codes of every latent layer (RRVQ App. F), each
  layer at its own ceil(log2 K_l) bits, `ceil(count * code_bits / 8)` bytes;
  there is no layer to choose, and decoding is deterministic
  (`RRVQVAE.decode`, equal to `reconstruct`).
- Spatial-VAE ("spatial_vae") has Gaussian latents: no codes, no files.

Command line: `tfvq models`, `tfvq compress`, `tfvq decompress`, `tfvq info`
(see `tfvq.codec.cli`).

This module imports TensorFlow only when a function needs it, so
`tfvq.codec.format` (and `CodecError`) stay TensorFlow-free.
"""

import hashlib
import os

import numpy as np

from tfvq.codec.format import (
    ALL_LAYERS,
    HASH_BYTES,
    MAGIC,
    VERSION,
    CodecError,
    Container,
    Header,
    bits_per_code,
    header_bytes,
    layers_payload_bytes,
    pack_codes,
    pack_layers,
    payload_bytes,
    read,
    read_header,
    unpack_codes,
    unpack_layers,
    write,
    write_layers,
)

__all__ = [
    "CodecError", "Container", "Header", "MAGIC", "VERSION", "compress", "decompress", "decode_codes",
    "load_model", "load_png", "rate_table", "read", "read_header", "save_png", "weights_hash", "write",
    "pack_codes", "unpack_codes", "bits_per_code", "payload_bytes", "header_bytes", "ALL_LAYERS", "write_layers",
    "pack_layers", "unpack_layers", "layers_payload_bytes", "code_layout", "format_rate_table", "ONE_LAYER",
    "ALL_LAYERS_LAYOUT",
]

ONE_LAYER = "one layer"
"""`code_layout` of HQA and VQ-VAE models: a file holds the codes of one chosen layer."""
ALL_LAYERS_LAYOUT = "all layers"
"""`code_layout` of RRVQ-VAE models: a file holds the codes of every latent layer."""

_LAYOUTS = {"hqa": ONE_LAYER, "vqvae": ONE_LAYER, "rrvq_vae": ALL_LAYERS_LAYOUT}

_MODELS = {}  # (name, weights) -> (model, weights hash)


def weights_hash(model):
    """The first 8 bytes of the SHA-256 of the model's weight arrays (in `model.weights` order, raw bytes)."""
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.digest()[:HASH_BYTES]


def _zoo_entry(name):
    from tfvq import zoo

    try:
        return zoo.get(name)
    except zoo.UnknownModelError as err:
        raise CodecError(f"The model {name!r} is not in this tfvq's zoo: {err}") from None


def code_layout(name):
    """What a file of zoo model `name` holds: `ONE_LAYER` (HQA, VQ-VAE) or `ALL_LAYERS_LAYOUT` (RRVQ-VAE).

    Raises `CodecError` for an unknown model and for a model without
    discrete codes (Spatial-VAE).
    """
    family = _zoo_entry(name).family
    if family == "spatial_vae":
        raise CodecError(
            f"{name!r} is a Spatial-VAE: its latents are continuous (Gaussian), so it has no discrete codes "
            "to store in a .tfvq file. Use an HQA, VQ-VAE or RRVQ-VAE model (see `tfvq models`)."
        )
    if family not in _LAYOUTS:
        raise CodecError(
            f"{name!r} is a {family!r} model; .tfvq files hold codes of {', '.join(sorted(_LAYOUTS))} models only."
        )
    return _LAYOUTS[family]


def load_model(name, weights=None):
    """(model, weights hash) for zoo model `name`, cached per (name, weights).

    `weights=None` means the model's bundled weights; otherwise any path
    `tfvq.zoo.load` accepts. An unknown name or a model without bundled
    weights raises `CodecError`.
    """
    from tfvq import zoo

    if weights is not None and weights != "bundled":
        weights = os.path.abspath(os.fspath(weights))
    else:
        weights = None
    key = (name, weights)
    if key not in _MODELS:
        code_layout(name)  # an unknown model or one without codes: a clear error before loading weights
        try:
            model = zoo.load(name, weights="bundled" if weights is None else weights)
        except zoo.UnknownModelError as err:
            raise CodecError(f"The model {name!r} is not in this tfvq's zoo: {err}") from None
        except FileNotFoundError as err:
            raise CodecError(f"Cannot load weights for {name!r}: {err}") from None
        _MODELS[key] = (model, weights_hash(model))
    return _MODELS[key]


def _as_float_images(images, image_shape):
    images = np.asarray(images)
    if images.ndim == len(image_shape):
        images = images[None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        h, w, c = image_shape
        raise CodecError(
            f"The model takes {h}x{w} images with {c} channel{'s' if c > 1 else ''} "
            f"(shape [{h}, {w}, {c}] or [N, {h}, {w}, {c}]), got shape {list(images.shape)}; "
            "resize or convert the image first."
        )
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    if images.dtype.kind == "f":
        if images.size and not (np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0):
            raise CodecError("Float images must have values in [0, 1].")
        return images.astype(np.float32)
    raise CodecError(f"Images must be uint8 (0..255) or float (0..1), got dtype {images.dtype}.")


def compress(images, model_name, layer=None, weights=None):
    """Compresses images to the bytes of a `.tfvq` file.

    Args:
      images: one image [H, W, C] or a batch [N, H, W, C] (N < 65536), uint8
        or float in [0, 1], of the model's `image_shape`.
      model_name: a zoo model name.
      layer: for HQA and VQ-VAE models, the layer whose codes to store
        (1..model.num_layers). For RRVQ-VAE models, None (omitted): the file
        holds every latent layer's codes, and an explicit layer raises.
      weights: None for the bundled weights, or a path `tfvq.zoo.load` accepts.

    Returns:
      bytes: the header, the codes bit-packed, and a CRC-32. HQA: the codes
      of layer `layer` (most probable code per position, HQA's deterministic
      encoder). RRVQ-VAE: the codes of every layer, each layer's most
      probable code given the codes above it (`encode(stochastic=False)`).
    """
    layout = code_layout(model_name)
    if layout == ALL_LAYERS_LAYOUT:
        if layer is not None:
            raise CodecError(
                f"{model_name!r} is an RRVQ-VAE: a .tfvq file holds the codes of every latent layer, so there is "
                f"no layer to choose; omit layer (got layer={layer!r})."
            )
        model, digest = load_model(model_name, weights)
        x = _as_float_images(images, model.image_shape)
        codes = [np.asarray(c) for c in model.encode(x, stochastic=False)]
        return write_layers(codes, model_name, digest, model.num_codes)
    model, digest = load_model(model_name, weights)
    if layer is None:
        raise CodecError(f"{model_name!r} needs the layer whose codes to store: layer=1..{model.num_layers}.")
    if not isinstance(layer, (int, np.integer)) or not 1 <= int(layer) <= model.num_layers:
        raise CodecError(f"{model_name!r} has layers 1..{model.num_layers}, got layer={layer!r}.")
    x = _as_float_images(images, model.image_shape)
    codes = np.asarray(model.encode(x, int(layer)))
    return write(codes, model_name, digest, int(layer), model.quantizer(int(layer)).num_codes)


def decode_codes(data, weights=None):
    """Checks a file against its model: (container, model). Raises `CodecError`."""
    container = read(data)
    header = container.header
    model, digest = load_model(header.model, weights)
    if header.weights_hash != digest:
        raise CodecError(
            f"The file was made with other weights of {header.model!r} (weights hash {header.weights_hash.hex()}, "
            f"these weights have {digest.hex()}); pass the weights it was made with (--weights=PATH)."
        )
    layout = code_layout(header.model)
    if header.all_layers != (layout == ALL_LAYERS_LAYOUT):
        held = "every latent layer's codes" if header.all_layers else f"the codes of layer {header.layer} only"
        want = "every latent layer's codes" if layout == ALL_LAYERS_LAYOUT else "the codes of one layer"
        raise CodecError(f"The file holds {held}, but {header.model!r} files hold {want}.")
    if header.all_layers:
        _check_all_layers(header, model)
        return container, model
    if header.layer > model.num_layers:
        raise CodecError(f"The file holds layer {header.layer} codes, but {header.model!r} has {model.num_layers} layers.")
    if tuple(model.code_shape(header.layer)) != header.code_shape:
        raise CodecError(
            f"The file's code grid is {header.code_shape}, but layer {header.layer} of {header.model!r} has "
            f"{tuple(model.code_shape(header.layer))}."
        )
    k = model.quantizer(header.layer).num_codes
    if header.num_codes != k:
        raise CodecError(f"The file's K is {header.num_codes}, but layer {header.layer} of {header.model!r} has K={k}.")
    return container, model


def _check_all_layers(header, model):
    grids = tuple(tuple(int(d) for d in g) for g in model.latent_shapes)
    if len(header.code_shapes) != len(grids):
        raise CodecError(f"The file holds codes of {len(header.code_shapes)} layers, but {header.model!r} has "
                         f"{len(grids)} latent layers.")
    if header.code_shapes != grids:
        raise CodecError(f"The file's code grids are {list(header.code_shapes)}, but {header.model!r}'s latent grids "
                         f"are {list(grids)}.")
    ks = tuple(int(k) for k in model.num_codes)
    if header.layer_num_codes != ks:
        raise CodecError(f"The file's Ks are {list(header.layer_num_codes)}, but {header.model!r} has K={list(ks)}.")


def decompress(data, seed=None, weights=None):
    """Decodes the bytes of a `.tfvq` file to uint8 images [count, H, W, C].

    Args:
      data: the file's bytes.
      seed: None decodes deterministically (every layer below takes the most
        probable code: the same image every time). An int samples the
        re-quantisation at each layer below (HQA Algorithm 3), repeatably
        for a given seed. All-layers (RRVQ-VAE) files hold every code and
        decode deterministically: a seed raises `CodecError`.
      weights: None for the bundled weights of the model the file names, or
        a path `tfvq.zoo.load` accepts.

    Raises:
      CodecError: a corrupt, truncated, foreign or future-version file, an
        unknown model, or weights other than the file's.
    """
    container, model = decode_codes(data, weights)
    if container.header.all_layers:
        if seed is not None:
            raise CodecError(f"{container.header.model!r} files hold every layer's codes and decode deterministically: "
                             "there is nothing to sample, drop the seed.")
        return _to_uint8(model.decode(container.codes))
    stochastic = seed is not None
    images = model.decode(container.codes, container.header.layer, stochastic=stochastic,
                          seed=None if seed is None else int(seed))
    return _to_uint8(images)


def _to_uint8(images):
    return np.clip(np.round(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


def load_png(path, image_shape):
    """A PNG file as uint8 [H, W, C]; a size or channel count other than `image_shape` raises CodecError."""
    import tensorflow as tf

    try:
        raw = tf.io.read_file(os.fspath(path))
        image = tf.io.decode_png(raw, channels=0, dtype=tf.uint8).numpy()
    except tf.errors.NotFoundError:
        raise FileNotFoundError(f"No such file: {path}") from None
    except tf.errors.InvalidArgumentError as err:
        raise CodecError(f"{path} is not a readable PNG image: {err.message.splitlines()[0]}") from None
    h, w, c = image_shape
    if image.shape != (h, w, c):
        kind = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}
        raise CodecError(
            f"{path} is {image.shape[0]}x{image.shape[1]} {kind.get(image.shape[2], '')} "
            f"({image.shape[2]} channels); the model takes {h}x{w} images with {c} channel{'s' if c > 1 else ''} "
            f"({kind.get(c, '')}). Convert or resize it first (this tool does not resize)."
        )
    return image


def save_png(path, image):
    """Writes a uint8 [H, W, C] image as PNG."""
    import tensorflow as tf

    tf.io.write_file(os.fspath(path), tf.io.encode_png(np.asarray(image, dtype=np.uint8)))


def rate_table(model_name):
    """The rates of a zoo model, one image per file.

    Returns:
      a list of dicts, one per file layout the model offers. HQA and VQ-VAE:
      one per layer, with layer, code_grid (h, w), num_codes (K), bits
      (h * w * ceil(log2 K)), payload_bytes (ceil(bits / 8)), file_bytes
      (with header and CRC), ratio (raw H*W*C*8 bits / bits) and file_ratio
      (raw bytes / file bytes). RRVQ-VAE: one row, layer None ("all"), with
      code_grid and num_codes tuples (one entry per latent layer, layer 1
      first), layer_bits (each layer's h_l * w_l * ceil(log2 K_l)) and bits
      their sum (`code_bits()`), then the same byte counts and ratios.

    Raises `CodecError` for a model without discrete codes (Spatial-VAE).
    """
    from tfvq import zoo

    layout = code_layout(model_name)
    model = zoo.build(model_name)
    h, w, c = model.image_shape
    raw_bits = h * w * c * 8
    if layout == ALL_LAYERS_LAYOUT:
        grids = tuple(tuple(int(d) for d in g) for g in model.latent_shapes)
        ks = tuple(int(k) for k in model.num_codes)
        layer_bits = tuple(gh * gw * bits_per_code(k) for (gh, gw), k in zip(grids, ks))
        bits = sum(layer_bits)
        payload = layers_payload_bytes([gh * gw for gh, gw in grids], ks)
        file_bytes = payload + header_bytes(model_name, len(grids))
        return [dict(layer=None, code_grid=grids, num_codes=ks, layer_bits=layer_bits, bits=bits,
                     payload_bytes=payload, file_bytes=file_bytes, ratio=raw_bits / bits,
                     file_ratio=raw_bits / 8 / file_bytes)]
    rows = []
    for layer in range(1, model.num_layers + 1):
        grid = tuple(model.code_shape(layer))
        k = model.quantizer(layer).num_codes
        bits = grid[0] * grid[1] * bits_per_code(k)
        payload = payload_bytes(grid[0] * grid[1], k)
        file_bytes = payload + header_bytes(model_name)
        rows.append(dict(layer=layer, code_grid=grid, num_codes=k, bits=bits, payload_bytes=payload,
                         file_bytes=file_bytes, ratio=raw_bits / bits, file_ratio=raw_bits / 8 / file_bytes))
    return rows


def format_rate_table(model_name, rows=None):
    """`rate_table` as a Markdown table."""
    rows = rate_table(model_name) if rows is None else rows
    lines = [
        f"{model_name}:",
        "| layer | code grid | K | bits | payload bytes | file bytes | ratio (bits) | ratio (file) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["layer"] is None:
            layer = "all"
            grid = " + ".join(f"{gh}x{gw}" for gh, gw in r["code_grid"])
            k = ", ".join(str(k) for k in r["num_codes"])
        else:
            layer, grid, k = r["layer"], f"{r['code_grid'][0]}x{r['code_grid'][1]}", r["num_codes"]
        lines.append(
            f"| {layer} | {grid} | {k} | {r['bits']} | "
            f"{r['payload_bytes']} | {r['file_bytes']} | {r['ratio']:.1f}:1 | {r['file_ratio']:.1f}:1 |"
        )
    return "\n".join(lines)
