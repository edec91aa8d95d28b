"""TFLite decoders of the discrete models: codes to pixels, and the probabilities the codec decodes with.

The encoders (`tfvq.export.tflite`) are half of what a device needs; this is the other half. It asks the
model only through the model contract (`tfvq.models.contract.CodeModel`), so every family with discrete codes
(HQA, VQ-VAE, RRVQ-VAE, the FSQ / LFQ / RVQ / VQ autoencoders) converts the same way:

* `decode(codes, l)`: images from layer l's codes (HQA Algorithm 3 down the stack; RRVQ eq. 3 top-down),
  every layer below l at its most probable code.
* `code_logits(codes, l)`: log p of layer l-1 given the codes of a file of layer l (HQA eq. 3 on the predicted
  z_e; RRVQ eq. 7), what the codec's model-coded layers are decoded with.
* `pixel_likelihood(codes, l)`: the discretised logistic's (loc, log_scale) (RRVQ App. C), for lossless files.
* `top_code_logits(1)`: RRVQ's top prior. It takes no input, so its values are kept as data.

One `.tflite` file per variant holds every signature (`tfvq.decoder_bundle` names them; the converter shares
the weights between them), with a manifest that tells `tfvq.codec.lite_model.LiteModel` the code layout, the
image shape and the weights hash. The batch is 1; a model that takes images of its own size only
(`code_stride()` None) is converted at that size, its signatures also at a fixed batch of `BATCH` (its tiles
of a large image, 1.4x faster a tile than one per invoke); a fully convolutional one at any size (`any_size`): images
[1, None, None, C] and codes [1, None, None], the manifest's `any_size` true, so one bundle codes an image of
every size the Keras model's `with_image_shape` takes. Two things of the Keras graph do not convert at an
unknown height and width, and the conversion changes them (`_any_size_graph`): nearest 2x upsampling
(`keras.layers.UpSampling2D`'s `tf.repeat` reshapes to a shape of unknown channels, which a Conv2D after it
cannot take) runs as TFLite's RESIZE_NEAREST_NEIGHBOR, the same copies of the same values; and the encoders'
codes, reshaped by the models to their own grid, are reshaped to the image's (the same values in the same
order).

Variants: `float32` (what `tfvq decompress` runs: its probabilities must round to the encoder's tables,
`tfvq.codec.entropy`) and `float16` (float16 weights, half the bytes, for a device that decodes lossy
files of fixed-rate or static-prior codes).

`export_decoders` writes a bundle next to the encoders (`tfvq export`); `cache_decoders` writes the float32
bundle beside the weights file the model was loaded from (`tfvq.decoder_bundle.bundle_dir`), where
`tfvq decompress` finds it (and removes the bundles of the file's earlier contents), with the float32
encoders of every layer (`EncoderConversion`: `tflite_encoder(l)` and, for a static prior with rate weights,
`encode_biased` with its bias as constants) that `tfvq compress` runs (`tfvq.codec.lite_encoding`).
"""

import contextlib
import glob
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tfvq import decoder_bundle as bundle
from tfvq import zoo
from tfvq.export.tflite import check_model
from tfvq.zoo.priors import priors_match

VARIANTS = bundle.VARIANTS


def any_size(model):
    """Whether `model`'s networks are converted for images of any size: a fully convolutional model
    (`code_stride()` not None)."""
    return model.code_stride() is not None


def batches(model):
    """The batches of `model`'s signatures: 1, and for a model of fixed image size `bundle.BATCH` as well (a large
    image is many tiles of it; a fully convolutional model codes it whole, in bands)."""
    return (1,) if any_size(model) else (1, bundle.BATCH)


def _manifest_batch(model):
    """The manifest's `batch` for `model`: `bundle.BATCH` when it has batched signatures (`batches`), else None."""
    return None if batches(model) == (1,) else bundle.BATCH


def _code_spec(model, layout, layer, batch=1):
    """The input spec of layer `layer`'s codes: [batch, h, w] of the model's grid, or [1, None, None]
    (`any_size`)."""
    grid = (None, None) if any_size(model) else layout.grids[layer - 1]
    return tf.TensorSpec((batch, *grid), tf.int32, name=bundle.code_input(layer))


def _image_spec(model, batch=1):
    """The input spec of the encoders' images: [batch, H, W, C], or [1, None, None, C] (`any_size`)."""
    h, w, c = (int(d) for d in model.image_shape)
    return tf.TensorSpec((1, None, None, c) if any_size(model) else (batch, h, w, c), tf.float32,
                         name=bundle.IMAGES)


def _nearest_2x(layer):
    """`layer`'s (a `keras.layers.UpSampling2D`) call as a nearest-neighbour resize of any height and width."""
    def call(x, *args, **kwargs):
        shape = tf.shape(x)
        return tf.image.resize(x, tf.stack([shape[1] * layer.size[0], shape[2] * layer.size[1]]), method="nearest")

    return call


@contextlib.contextmanager
def _any_size_graph(model):
    """While tracing a fully convolutional model's signatures, its channels-last nearest `UpSampling2D` layers
    resize with `tf.image.resize(method="nearest")` (half-pixel centres: output pixel i copies input pixel
    floor((i + 0.5) / s) = floor(i / s), what `tf.repeat` copies), which converts at unknown sizes; nothing
    changes for another model, or outside the block."""
    layers = [] if not any_size(model) else [
        layer for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.UpSampling2D) and layer.interpolation == "nearest"
        and layer.data_format == "channels_last"]
    for layer in layers:
        layer.call = _nearest_2x(layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.call


def _zero_codes(layout, layer):
    return [tf.zeros((1, *layout.grids[j - 1]), tf.int32) for j in layout.layers_sent(layer)]


def decoder_signatures(model):
    """[(signature name, function of the codes -> dict of float32 tensors, input specs)] of `model`.

    Every layer's `decode`; `code_logits` of the layers 2..L for which the model gives log-probabilities,
    and `pixel_likelihood` of the layers for which it has one (each asked once, eagerly, with zero codes).
    """
    layout = check_model(model)
    out = []
    for l in range(1, layout.num_layers + 1):
        zeros = _zero_codes(layout, l)
        has_logits = l > 1 and model.code_logits(zeros, l) is not None
        has_likelihood = model.pixel_likelihood(zeros, l) is not None
        for batch in batches(model):
            specs = [_code_spec(model, layout, j, batch) for j in layout.layers_sent(l)]
            out.append((bundle.signature("decode", l, batch), lambda *c, l=l: {"images": model.decode(list(c), l)},
                        specs))
            if has_logits:
                out.append((bundle.signature("code_logits", l, batch),
                            lambda *c, l=l: {"log_probs": model.code_logits(list(c), l)}, specs))
            if has_likelihood:
                out.append((bundle.signature("pixel_likelihood", l, batch),
                            lambda *c, l=l: dict(zip(("loc", "log_scale"), model.pixel_likelihood(list(c), l))),
                            specs))
    return out


def _sent_codes(model, images, sent, codes):
    """{codes_layer_j: codes} of the layers `sent` (`codes` in their order); a fully convolutional model's reshaped
    to [1, H / s_j, W / s_j] of `images` (the models reshape their codes to their own size's grid: the same values
    in the same order)."""
    shape = tf.shape(images) if any_size(model) else None
    out = {}
    for j, c in zip(sent, codes):
        if shape is not None:
            stride = model.code_stride(j)
            c = tf.reshape(c, tf.stack([1, shape[1] // stride, shape[2] // stride]))
        out[bundle.code_input(j)] = c
    return out


def _encoder_function(model, encoder, sent):
    """images -> {codes_layer_j: codes} of `encoder` (`tflite_encoder`: {"codes"} for one layer sent)."""
    def encode(images):
        codes = encoder(images)
        return _sent_codes(model, images, sent, [codes["codes"]] if "codes" in codes else
                           [codes[bundle.code_input(j)] for j in sent])

    return encode


def _biased_function(model, bias, layer, sent):
    """images -> {codes_layer_j: codes} of `model.encode_biased(images, bias, layer)`."""
    def encode(images):
        codes = model.encode_biased(images, bias, layer)
        return _sent_codes(model, images, sent, codes if len(sent) > 1 else [codes])

    return encode


def encoder_signatures(model, code_bias=None):
    """[(signature name, function of float32 images [1, H, W, C] in [0, 1] -> {codes_layer_j: int32}, input
    specs)] of `model`: every layer's `encode` (`model.tflite_encoder(l)`), and where `code_bias` {layer: [K]}
    (a static prior's rate weights, `StaticPrior.code_bias`) touches the layers a file of layer l sends, its
    `encode_biased` with that bias as constants."""
    layout = check_model(model)
    out = []
    for l in range(1, layout.num_layers + 1):
        sent = layout.layers_sent(l)
        bias = {j: np.asarray(b, np.float32) for j, b in (code_bias or {}).items() if j in sent}
        biased = bool(bias) and model.encode_biased(np.zeros((1, *model.image_shape), np.float32), bias, l) is not None
        for batch in batches(model):
            specs = [_image_spec(model, batch)]
            out.append((bundle.signature("encode", l, batch), _encoder_function(model, model.tflite_encoder(l), sent),
                        specs))
            if biased:
                out.append((bundle.signature("encode_biased", l, batch), _biased_function(model, bias, l, sent),
                            specs))
    return out


class _Conversion:
    """Signatures of one model written once as a SavedModel, converted to each variant on first use
    (`content`)."""

    def __init__(self, model, signatures):
        self.model = model
        self.signatures = signatures
        self._tmp = tempfile.TemporaryDirectory()
        archive = keras.export.ExportArchive()
        archive.track(model)
        with _any_size_graph(model):
            for name, fn, specs in self.signatures:
                archive.add_endpoint(name, tf.function(fn, autograph=False), specs)
            archive.write_out(self._tmp.name, verbose=False)
        self._content = {}

    def close(self):
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def content(self, variant):
        """The `.tflite` bytes of `variant` (one of `VARIANTS`)."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}.")
        if variant not in self._content:
            converter = tf.lite.TFLiteConverter.from_saved_model(self._tmp.name,
                                                                 signature_keys=[s[0] for s in self.signatures])
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            if variant == "float16":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
                converter.target_spec.supported_types = [tf.float16]
            self._content[variant] = converter.convert()
        return self._content[variant]


class EncoderConversion(_Conversion):
    """The encoders of one model (`encoder_signatures`), converted to float32 on first use (`content`); `bias`
    is the `code_bias` its `encode_biased` signatures hold (None: none)."""

    def __init__(self, model, code_bias=None):
        super().__init__(model, encoder_signatures(model, code_bias))
        biased = any(name.startswith("encode_biased") for name, _, _ in self.signatures)
        self.bias = {int(j): np.asarray(b, np.float32) for j, b in code_bias.items()} if biased else None

    def write(self, folder, prefix=""):
        """Writes `{prefix}encoders_float32.tflite` into `folder`; returns the manifest's keys for it."""
        name = f"{prefix}encoders_float32.tflite"
        with open(os.path.join(folder, name), "wb") as f:
            f.write(self.content("float32"))
        return {"encoders": {"float32": name}, "encoder_signatures": [s[0] for s in self.signatures],
                "encoder_bias": None if self.bias is None else {str(j): b.tolist() for j, b in self.bias.items()}}


class DecoderConversion(_Conversion):
    """The decoders of one model written once as a SavedModel (every signature), converted to each variant
    on first use (`content`)."""

    def __init__(self, model):
        super().__init__(model, decoder_signatures(model))

    def manifest(self, model_name):
        """The manifest's facts of the model (`tfvq.decoder_bundle`), without its files."""
        model, layout = self.model, self.model.code_layout()
        layers = range(1, layout.num_layers + 1)
        strides = [model.code_stride(l) for l in layers]
        return {"model": model_name, "image_shape": [int(d) for d in model.image_shape], "layout": layout.as_dict(),
                "code_strides": None if strides[0] is None else [int(s) for s in strides],
                "any_size": any_size(model), "batch": _manifest_batch(model),
                "samples_at": [l for l in layers if l > 1 and model.decodes_stochastically(l)],
                "weights_hash": zoo.weights_hash(model).hex(), "signatures": [s[0] for s in self.signatures]}

    def write(self, folder, model_name, variants, prefix="", manifest_name=bundle.MANIFEST, priors=None,
              weights=None, encoders=None, native_size=None):
        """Writes the bundle into `folder`: `{prefix}decoders_<variant>.tflite`, `{prefix}top_code_logits.npy`
        (a model with a top prior), the encoders of `encoders` (an `EncoderConversion`, or None) and the manifest
        `manifest_name`; returns the manifest's path.

        `priors`: {"static", "context": path relative to `folder`}; `weights`: {"file", "sha256"}; `native_size`:
        (h, w) an image of that size is resized from to the model's size (`tfvq.codec.compress(resize="auto")`).
        """
        os.makedirs(folder, exist_ok=True)
        files = {}
        for variant in variants:
            files[variant] = f"{prefix}decoders_{variant}.tflite"
            with open(os.path.join(folder, files[variant]), "wb") as f:
                f.write(self.content(variant))
        top, top_name = self.model.top_code_logits(1), None
        if top is not None:
            top_name = f"{prefix}top_code_logits.npy"
            np.save(os.path.join(folder, top_name), np.asarray(top, np.float32))
        manifest = {**self.manifest(model_name), "files": files, "top_code_logits": top_name,
                    "priors": priors or {}, "weights": weights or {},
                    "native_size": None if native_size is None else [int(d) for d in native_size]}
        if encoders is not None:
            manifest.update(encoders.write(folder, prefix))
        return bundle.write_manifest(folder, manifest, manifest_name)


def _weights_file(model):
    """The file `model`'s weights were loaded from, while they are still those (else None)."""
    path = getattr(model, "weights_file", None)
    return path if path is not None and os.path.isfile(path) and priors_match(model) else None


def export_decoders(model, out_dir, model_name, variants=VARIANTS, conversion=None):
    """Writes `out_dir/<model_name>_decoders_<variant>.tflite`, `<model_name>_decoder.json` (the manifest) and
    copies of the priors of the model's weights (`<model_name>.prior.json`, `.context.npz`, those that
    exist): a folder that decodes the model's files anywhere (`tfvq decompress --decoder=MANIFEST`).
    Returns the manifest's path."""
    owned = conversion is None
    conversion = conversion or DecoderConversion(model)
    try:
        weights, priors = _weights_file(model), {}
        os.makedirs(out_dir, exist_ok=True)
        for kind, path in (zoo.prior_paths(model) or {}).items() if weights else ():
            if os.path.isfile(path):
                priors[kind] = f"{model_name}{zoo.priors.SUFFIXES[kind]}"
                shutil.copyfile(path, os.path.join(out_dir, priors[kind]))
        return conversion.write(out_dir, model_name, variants, prefix=f"{model_name}_",
                                manifest_name=f"{model_name}_decoder.json", priors=priors,
                                weights={"sha256": bundle.file_sha256(weights)} if weights else {})
    finally:
        if owned:
            conversion.close()


def cache_decoders(model, model_name, conversion=None, encoders=None, native_size=None):
    """The float32 bundle of `model`'s decoders beside the weights file it was loaded from (`bundle_dir`: named
    by the file's SHA-256), written unless it is there; returns its folder, or None for a model whose weights
    did not come from a file or have changed since (they have no file to be named by). A fully convolutional
    model's bundle converted at its own size only (no `any_size` in its manifest), or another model's without
    its batched signatures (no `batch`), is converted again.

    `encoders` (an `EncoderConversion` of the model): the bundle also holds the float32 encoders, added to a
    bundle that is there without them or with those of another bias (prior refitted with other rate weights),
    with `native_size` (the manifest's). The manifest names the weights file and the prior files beside it
    (`tfvq.zoo.prior_paths`, relative to the bundle), so priors refitted later are the ones read.
    """
    weights = _weights_file(model)
    if weights is None:
        return None
    sha256 = bundle.file_sha256(weights)
    folder = bundle.bundle_dir(weights, sha256)
    try:
        manifest = bundle.read_manifest(folder)
    except ValueError:
        manifest = None  # none yet, or a damaged one: written anew
    if manifest is not None and manifest["weights"].get("sha256") == sha256 \
            and bool(manifest.get("any_size")) == any_size(model) \
            and manifest.get("batch") == _manifest_batch(model):  # else converted before `any_size` or `batch`
        if encoders is not None and not _has_encoders(manifest, encoders):
            _add_encoders(folder, manifest, encoders, native_size)
        return folder
    owned = conversion is None
    conversion = conversion or DecoderConversion(model)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=os.path.dirname(folder))
    try:
        relative = {kind: os.path.relpath(path, folder) for kind, path in zoo.prior_paths(model).items()}
        conversion.write(staging, model_name, ("float32",), priors=relative,
                         weights={"file": os.path.relpath(weights, folder), "sha256": sha256}, encoders=encoders,
                         native_size=native_size)
        os.chmod(staging, 0o755)  # mkdtemp's folder is the owner's alone; the weights' folder is everyone's
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if owned:
            conversion.close()
    _remove_stale(weights, folder)
    return folder


def _has_encoders(manifest, encoders):
    """Whether a bundle's manifest names encoders converted with `encoders`' bias (and their file is there)."""
    path = bundle.resolve(manifest, manifest.get("encoders", {}).get("float32"))
    current = None if encoders.bias is None else {str(j): b.tolist() for j, b in encoders.bias.items()}
    return path is not None and os.path.isfile(path) and manifest.get("encoder_bias") == current


def _add_encoders(folder, manifest, encoders, native_size):
    """Writes `encoders` into the bundle `folder` and names them in its manifest (`manifest`, read from it)."""
    staging = tempfile.mkdtemp(prefix=".staging-", dir=folder)
    try:
        keys = encoders.write(staging)
        os.replace(os.path.join(staging, keys["encoders"]["float32"]), os.path.join(folder, keys["encoders"]["float32"]))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = {k: v for k, v in manifest.items() if k not in ("path", "format")}
    manifest.update(keys, native_size=None if native_size is None else [int(d) for d in native_size])
    bundle.write_manifest(folder, manifest)


def _remove_stale(weights, current):
    """Removes the bundles beside `weights` other than `current`: those of the file's earlier contents."""
    for path in glob.glob(os.path.join(glob.escape(os.path.dirname(current)),
                                       f"{glob.escape(bundle.weights_stem(weights))}.decoders-*")):
        if os.path.abspath(path) == os.path.abspath(current):
            continue
        try:
            manifest = bundle.read_manifest(path)
        except ValueError:
            continue
        named = bundle.resolve(manifest, manifest.get("weights", {}).get("file"))
        if named is not None and os.path.abspath(named) == os.path.abspath(weights):
            shutil.rmtree(path, ignore_errors=True)
