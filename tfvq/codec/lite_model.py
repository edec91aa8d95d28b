"""A model that decodes `.tfvq` files from TFLite decoders: NumPy and ai-edge-litert, no TensorFlow.

`LiteModel` answers the part of the model contract the decoder asks (`tfvq.codec.coding`): `code_layout()`,
`image_shape`, `code_stride(l)`, `with_image_shape(shape)`, `decode(codes, l, stochastic, seed, dtype)`,
`code_logits(codes, l)`, `top_code_logits(n)` and `pixel_likelihood(codes, l)`, each from a signature of a
bundle `tfvq.export.tflite_decoders` wrote (`tfvq.decoder_bundle`): whole batches of 16 images (tiles)
through the batched signatures of a model of fixed image size, the rest one image per invoke. What a bundle
cannot do raises `NotServed`, and the caller decodes with TensorFlow instead
(`tfvq.codec.decoding.decompress`):

* images of another size than the bundle's when its networks were converted at that size only: a model that
  is not fully convolutional, or a bundle written before fully convolutional models' networks were converted
  at any size (its manifest has no `any_size`). A fully convolutional model's bundle takes any size the Keras
  model's `with_image_shape` takes (`LiteModel.with_image_shape`);
* a seeded decode that samples the layers below the stored ones (the samples are TensorFlow's stateless
  random streams, HQA Algorithm 3 / RRVQ eq. 3: a file decodes to the same images with a seed everywhere).

Decoded images are `round(255 clip(x, 0, 1))` of the float decode, as the model's `decode(..., dtype="uint8")`.

`find_decoder(model_name, weights)` finds the bundle of the weights `tfvq.codec.load_model` would load
(the bundled weights, a model folder's, a weights file) beside them, checked against the SHA-256 of the
weights file's bytes, so a bundle of other weights is never used. `load_priors` reads the weights' priors
from the paths its manifest names.
"""

import contextlib
import copy
import dataclasses
import glob
import json
import os
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter

import tfvq
from tfvq import decoder_bundle as bundle
from tfvq.code_layout import CodeLayout, check_image_shape
from tfvq.codec.context import read_priors

BUNDLED_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(tfvq.__file__)), "zoo", "weights")
"""Where the zoo's bundled weights, and the decoders shipped with them, live."""


@contextlib.contextmanager
def _quiet_descriptor_2():
    """Points file descriptor 2 at the null device for a while: the runtime logs to it from C++ when it applies
    its CPU delegate (a signature's first invoke), a line no option turns off."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        for fd in (saved, null):
            os.close(fd)


class NotServed(Exception):
    """What a `LiteModel` cannot decode (another image size for a bundle converted at one size, a seeded decode that
    samples): TensorFlow's part."""


class LiteModel:
    """The decoding half of a zoo model from its TFLite decoders (the module's doc).

    Args:
      manifest: a bundle's manifest (a path to it or to its folder, or the dict `read_manifest` gave).
      variant: the .tflite file to run: "float32" (what the codec's tables need) or "float16".
      num_threads: the interpreter's threads.

    Attributes:
      name: the zoo model the bundle decodes.
      image_shape: (H, W, C) of the images it decodes.
      any_size: whether its networks take images of any size (`with_image_shape`): a fully convolutional model's
        bundle that says so (`any_size` in its manifest).
      weights_hash: the 8 bytes naming the weights it was converted from (`tfvq.zoo.weights_hash`).
      native_size: (h, w) the codec resizes an image of that size from to `image_shape` (`compress(resize=
        "auto")`), or None.
      manifest: the manifest (a dict).

    The interpreters load on first use: a decompress never loads the encoders, and a compress of static or
    fixed-rate codes never loads the decoders.
    """

    def __init__(self, manifest, variant="float32", num_threads=1):
        self.manifest = manifest if isinstance(manifest, dict) else bundle.read_manifest(manifest)
        m = self.manifest
        if variant not in m["files"]:
            raise ValueError(f"The decoders {m['path']} have the variants {sorted(m['files'])}, not {variant!r}.")
        self.name, self.variant = m["model"], variant
        self.image_shape = tuple(int(d) for d in m["image_shape"])
        self.weights_hash = bytes.fromhex(m["weights_hash"])
        self._layout = CodeLayout.from_dict(m["layout"])
        self._strides = m["code_strides"]
        self.any_size = bool(m.get("any_size")) and self._strides is not None
        self._batch = int(m.get("batch") or 1)
        self._samples_at = {int(l) for l in m["samples_at"]}
        self._num_threads = num_threads
        self._interpreters = {}
        self._signatures = set(m["signatures"])
        self._runners = {}
        top = bundle.resolve(m, m.get("top_code_logits"))
        self._top = None if top is None else np.load(top).astype(np.float32)
        self._encoder_file = bundle.resolve(m, m.get("encoders", {}).get("float32"))
        self._encoder_signatures = set(m.get("encoder_signatures", ()))
        self._encoder_bias = {int(j): np.asarray(b, np.float32) for j, b in (m.get("encoder_bias") or {}).items()}
        self.native_size = None if m.get("native_size") is None else tuple(int(d) for d in m["native_size"])

    def __repr__(self):
        return f"LiteModel({self.name!r}, {self.variant}, {self.manifest['path']!r})"

    # ---- what the codec asks
    def code_layout(self):
        """The `CodeLayout` of the model's codes (at its `image_shape`)."""
        return self._layout

    def code_stride(self, layer=None):
        """Pixels per code of layer `layer` (a fully convolutional model), else None (`CodeModel.code_stride`)."""
        layer = self._layout.check_layer(layer)
        return None if self._strides is None else int(self._strides[layer - 1])

    def with_image_shape(self, image_shape):
        """This model for images of `image_shape` (H, W, C) (`CodeModel.with_image_shape`): itself at its own
        shape; for a bundle that takes any size (`any_size`), a view of it with that `image_shape` and the code
        layout of that size (layer l's grid H / s_l x W / s_l), running the same interpreters.

        Raises:
          NotServed: the bundle's networks take its own size only.
          ValueError: H and W are not positive multiples of the top layer's stride, or C is not the model's.
        """
        shape = tuple(int(d) for d in image_shape)
        if shape == self.image_shape:
            return self
        if not self.any_size or self._top is not None:
            raise NotServed(f"its TFLite networks take {'x'.join(map(str, self.image_shape[:2]))} images, not "
                            f"{'x'.join(map(str, shape[:2]))}")
        shape = check_image_shape(shape, self.image_shape, max(int(s) for s in self._strides))
        view = copy.copy(self)  # the interpreters and their runners are shared: they take any size
        view.image_shape = shape
        view._layout = dataclasses.replace(self._layout, grids=tuple((shape[0] // int(s), shape[1] // int(s))
                                                                     for s in self._strides))
        return view

    def decodes_stochastically(self, layer):
        """Whether `decode(codes, layer, stochastic=True)` samples anything (the layers below `layer`)."""
        return self._layout.check_layer(layer) in self._samples_at

    def decode(self, codes, layer=None, stochastic=False, seed=None, dtype="float32"):
        """Images from the codes of `code_layout().layers_sent(layer)`: float32 in [0, 1], or uint8 pixels
        (`dtype="uint8"`), every layer below `layer` at its most probable code (`CodeModel.decode`).

        Raises `NotServed` for a stochastic decode that samples (`decodes_stochastically`)."""
        layer = self._layout.check_layer(layer)
        if dtype not in ("float32", "uint8"):
            raise ValueError(f"dtype must be 'float32' (images in [0, 1]) or 'uint8' (pixels), got {dtype!r}.")
        if stochastic and layer in self._samples_at:
            raise NotServed(f"a seeded decode at layer {layer} samples the layers below it with TensorFlow's "
                            "random streams")
        x = np.clip(self._run("decode", codes, layer)["images"], np.float32(0), np.float32(1))
        return np.round(x * np.float32(255)).astype(np.uint8) if dtype == "uint8" else x

    def code_logits(self, codes, layer):
        """log p of layer `layer - 1`'s codes given the codes of a file of layer `layer`, float32 [B, h, w, K],
        or None where the model gives none (`CodeModel.code_logits`); `layer` in 2..L."""
        layer = self._layout.check_layer(layer)
        if layer == 1:
            raise ValueError("Layer 1 is the finest layer: there are no codes below it to give probabilities for; "
                             f"code_logits takes a layer in 2..{self._layout.num_layers}.")
        out = self._run("code_logits", codes, layer)
        return None if out is None else out["log_probs"]

    def top_code_logits(self, batch):
        """log p(codes of the top layer) float32 [batch, h_L, w_L, K_L], or None (no top prior)."""
        return None if self._top is None else np.repeat(self._top, int(batch), axis=0)

    def pixel_likelihood(self, codes, layer=None):
        """(loc, log_scale) float32 [B, H, W, C] of p(x | z), or None (`CodeModel.pixel_likelihood`)."""
        out = self._run("pixel_likelihood", codes, self._layout.check_layer(layer))
        return None if out is None else (out["loc"], out["log_scale"])

    def has_encoders(self):
        """Whether the bundle holds encoders (`encode`, `encode_biased`)."""
        return self._encoder_file is not None and os.path.isfile(self._encoder_file)

    def encode(self, images, layer=None, stochastic=False, seed=None):
        """The most probable codes of the layers `code_layout().layers_sent(layer)` (`CodeModel.encode`): int32
        [B, h, w], a list of them for several layers; images uint8 or float32 in [0, 1] of `image_shape`.

        Raises `NotServed` for a stochastic encode or a bundle without encoders."""
        layer = self._layout.check_layer(layer)
        if stochastic:
            raise NotServed("a stochastic encode samples with TensorFlow's random streams")
        return self._encode(bundle.signature("encode", layer), images, layer)

    def encode_biased(self, images, code_bias, layer=None):
        """`encode` with the layers of `code_bias` {layer: [K]} taking `argmax log q + bias` (`CodeModel.
        encode_biased`), from the bundle's `encode_biased` signature, whose bias is constant: `NotServed` unless
        `code_bias` is that bias on the layers sent (a prior refitted since the conversion)."""
        layer = self._layout.check_layer(layer)
        sent = self._layout.layers_sent(layer)
        held = {j: b for j, b in self._encoder_bias.items() if j in sent}
        given = {int(j): np.asarray(b, np.float32) for j, b in code_bias.items() if int(j) in sent}
        name = bundle.signature("encode_biased", layer)
        if name not in self._encoder_signatures or held.keys() != given.keys() or not all(
                np.array_equal(held[j], given[j]) for j in held):
            raise NotServed("its TFLite encoders were converted without these rate weights (the static prior's "
                            "code bias); `tfvq export --format=decoders` converts them again")
        return self._encode(name, images, layer)

    def _encode(self, name, images, layer):
        if not self.has_encoders() or name not in self._encoder_signatures:
            raise NotServed("it has no TFLite encoders; `tfvq export --format=decoders` writes them")
        x = np.asarray(images)
        if x.ndim != 4 or x.shape[1:] != self.image_shape:
            raise ValueError(f"images must be [batch, {', '.join(map(str, self.image_shape))}], got {list(x.shape)}.")
        if x.dtype == np.uint8:
            x = x.astype(np.float32) / np.float32(255)
        x = x.astype(np.float32)
        sent = self._layout.layers_sent(layer)
        batched = bundle.batched(name, self._batch)
        outs = self._invokes("encoders", name, batched if batched in self._encoder_signatures else None, len(x),
                             lambda a, b: {bundle.IMAGES: x[a:b]})
        codes = [np.concatenate([np.asarray(o[bundle.code_input(j)]) for o in outs]).astype(np.int32) if outs else
                 np.zeros((0, *self._layout.grids[j - 1]), np.int32) for j in sent]
        return codes[0] if len(codes) == 1 else codes

    # ---- running the signatures
    def _invokes(self, which, name, batched, count, inputs):
        """The outputs ({name: array}) of the signature `name` of `which` interpreter on images 0..count-1, the
        inputs of images a..b-1 `inputs(a, b)`: whole batches of `_batch` images through `batched` (that
        signature at the manifest's `batch`; None: none), the rest one image per invoke."""
        outs, a = [], 0
        while a < count:
            step = self._batch if batched is not None and count - a >= self._batch else 1
            runner, fresh = self._runner(which, batched if step > 1 else name)
            # A runner's first invoke applies the CPU delegate, which says "INFO: Created TensorFlow Lite XNNPACK
            # delegate".
            with _quiet_descriptor_2() if fresh else contextlib.nullcontext():
                outs.append({k: np.array(v) for k, v in runner(**inputs(a, a + step)).items()})
            a += step
        return outs

    def _runner(self, which, name):
        """(the signature runner `name` of the decoders' or the encoders' interpreter, whether it is new)."""
        if which not in self._interpreters:
            path = self._encoder_file if which == "encoders" else bundle.resolve(self.manifest,
                                                                                 self.manifest["files"][self.variant])
            self._interpreters[which] = Interpreter(model_path=path, num_threads=self._num_threads)
        fresh = (which, name) not in self._runners
        if fresh:
            self._runners[which, name] = self._interpreters[which].get_signature_runner(name)
        return self._runners[which, name], fresh

    def _checked(self, codes, layer):
        """The codes of the layers sent as int32 arrays [B, h, w] (one array for one layer sent)."""
        sent = self._layout.layers_sent(layer)
        codes = list(codes) if isinstance(codes, (list, tuple)) else [codes]
        if len(codes) != len(sent):
            raise ValueError(f"Expected the codes of layers {list(sent)} ({len(sent)} arrays), got {len(codes)}.")
        out = []
        for l, c in zip(sent, codes):
            c = np.asarray(c)
            h, w = self._layout.grids[l - 1]
            k = self._layout.num_codes[l - 1]
            if c.dtype.kind not in "iu":
                raise TypeError(f"Layer {l} codes must be integers (int32), got dtype {c.dtype}.")
            if c.ndim != 3 or c.shape[1:] != (h, w):
                raise ValueError(f"Layer {l} codes must have shape [batch, {h}, {w}], got {list(c.shape)}.")
            if c.size and (c.min() < 0 or c.max() >= k):
                raise ValueError(f"Layer {l} codes must be in [0, {k - 1}], got values in [{c.min()}, {c.max()}].")
            out.append(c.astype(np.int32))
        if len({len(c) for c in out}) > 1:
            raise ValueError(f"Every layer's codes must have the same batch size, got {[len(c) for c in out]}.")
        return sent, out

    def _run(self, kind, codes, layer):
        """{output: float32 [B, ...]} of signature `kind` of `layer` on the codes (`_invokes`); None
        when the bundle has no such signature."""
        name = bundle.signature(kind, layer)
        if name not in self._signatures:
            self._checked(codes, layer)
            return None
        sent, codes = self._checked(codes, layer)
        if not len(codes[0]):
            raise ValueError("Expected codes of at least one image.")
        batched = bundle.batched(name, self._batch)
        parts = self._invokes("decoders", name, batched if batched in self._signatures else None, len(codes[0]),
                              lambda a, b: {bundle.code_input(l): c[a:b] for l, c in zip(sent, codes)})
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def load_priors(model):
    """The static prior (with its context priors attached) of a `LiteModel`'s weights, from the files its
    manifest names (`read_priors`: the uniform prior where there is none)."""
    m = model.manifest
    paths = {kind: bundle.resolve(m, path) for kind, path in m.get("priors", {}).items()}
    return read_priors(paths, model.name, model.code_layout().num_codes, model.weights_hash)


def _candidates(model_name, weights):
    """(folder, stem pattern) where the bundle of the weights `load_model(model_name, weights)` loads would be;
    None for weights that are no file a bundle sits beside (a URL, a checkpoint prefix)."""
    if weights is None or weights == "bundled":
        return BUNDLED_WEIGHTS, "*"
    path = os.path.abspath(os.fspath(weights))
    if os.path.isdir(path):
        return path, "*"
    if os.path.isfile(path) and path.endswith(bundle.WEIGHTS_SUFFIXES):
        return os.path.dirname(path), glob.escape(bundle.weights_stem(path))
    return None


def find_decoder(model_name, weights=None):
    """The manifest (a dict) of the TFLite decoders of zoo model `model_name` with `weights` (None or
    "bundled": its bundled weights; a model folder; a `.weights.h5` / `.keras` file), or None.

    A bundle counts only when the weights file it names is there and its bytes have the SHA-256 the bundle
    was converted from (and is named by, `tfvq.decoder_bundle.bundle_dir`).
    """
    where = _candidates(model_name, weights)
    if where is None:
        return None
    folder, stem = where
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), f"{stem}.decoders-*"))):
        try:
            manifest = bundle.read_manifest(path)
        except ValueError:
            continue
        weights_file = bundle.resolve(manifest, manifest.get("weights", {}).get("file"))
        if manifest.get("model") != model_name or weights_file is None or not os.path.isfile(weights_file):
            continue
        sha256 = bundle.file_sha256(weights_file)
        if sha256 == manifest["weights"].get("sha256") and path.endswith(sha256[: bundle.DIGEST_HEX]):
            return manifest
    return None


def lite_model(manifest, variant="float32"):
    """A `LiteModel` of `manifest`, cached per (manifest, variant): a directory of files loads it once."""
    key = (json.dumps(manifest, sort_keys=True), variant)  # a bundle given encoders since is another model
    if key not in _LOADED:
        _LOADED[key] = LiteModel(manifest, variant)
    return _LOADED[key]


_LOADED = {}
