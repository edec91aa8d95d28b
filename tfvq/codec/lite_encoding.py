"""`compress` with TFLite encoders where the weights have them: NumPy, `constriction` and ai-edge-litert.

A bundle of the weights (`tfvq.decoder_bundle`, found as `decompress` finds its decoders:
`lite_model.find_decoder`) may hold the encoders of every layer beside the decoders: the bundled models ship
theirs, and `tfvq export` caches a model folder's. A file is then written as `tfvq.codec.files.compress`
writes it, by `tfvq.codec.coding.encode_file`, with a `LiteModel` in the place of the Keras model:

* `fixed`, `static` and `context` code the encoder's codes under tables that do not depend on the float
  model (uniform, counts, integer networks): the file is the one TensorFlow writes for the same codes;
* `progressive` and `auto`'s model-coded layers take the decoders' `code_logits`, and lossless files their
  `pixel_likelihood`: the encoder escapes every position within the entropy coder's margins of a rounding
  boundary, TFLite's probabilities stay within them of TensorFlow's (docs/deployment.md), so both round to the
  same tables and a file decodes through either (`tfvq.codec.entropy`); `auto` builds every plan it builds with
  TensorFlow, all of them through TFLite;
* a static prior's rate weights (`StaticPrior.code_bias`) take the bundle's `encode_biased` signatures, which
  hold the bias they were converted with; a prior refitted since is not theirs (`NotServed`);
* an image of the size the weights' training images were resized from (the manifest's `native_size`) is
  resized as `tfvq.data.tfds_datasets.resize_bilinear` resizes it (`resize_bilinear`, the same float32
  arithmetic: the same pixels).

The codes are the float32 encoder's argmax, which TFLite's kernels may take on the other side of a near tie
(two codes within float rounding): there the file holds the other code, and both backends decode it to the
same images as each decodes any file (docs/deployment.md measures how often).

An image of any size is coded as the Keras model codes it (`tfvq.codec.coding.Geometry`): a model that is not
fully convolutional in tiles of its own size; a fully convolutional one whole, padded to a multiple of its
stride, or in row bands above `tfvq.codec.bands.BAND_PIXELS` pixels, through the bundle's view at that size
(`LiteModel.with_image_shape`): its networks are converted at any size (`any_size`), and give the Keras
model's codes at other sizes as at its own, but for near ties (docs/deployment.md measures them).

`BackendCompressor(model_name, weights, backend)` picks: TFLite where a bundle with encoders is there
(`backend="auto"`, the default), else TensorFlow (`tfvq.codec.files.Compressor`, imported then), said once on
stderr; `backend="tflite"` makes that an error, `"tensorflow"` always takes the Keras model. What the encoders
cannot encode (another image size for a bundle of a fully convolutional model written before its networks
were converted at any size, whose manifest has no `any_size`) takes TensorFlow the same way, per image.
"""

import importlib
import json
import os

import numpy as np

from tfvq.codec import coding, lite_model
from tfvq.codec.decoding import BACKENDS, say_once
from tfvq.codec.errors import CodecError
from tfvq.codec.images import any_size_batch

RESIZE_CHOICES = ("auto", "off")
"""`compress(resize=...)`, as `tfvq.codec.files.RESIZE_CHOICES`."""


def _axis(size, source):
    """(lower index, upper index, float32 weight of the upper) of each output pixel along one axis: half-pixel
    centres, in float32 as TensorFlow's CPU kernel computes them."""
    scale = np.float32(source) / np.float32(size)
    at = (np.arange(size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    low = np.floor(at)
    lerp = (at - low).astype(np.float32)
    low = low.astype(np.int64)
    return np.clip(low, 0, source - 1), np.clip(low + 1, 0, source - 1), lerp


def resize_bilinear(images, height, width):
    """uint8 images [N, h, w, C] -> uint8 [N, height, width, C]: `tfvq.data.tfds_datasets.resize_bilinear`
    (`tf.image.resize` bilinear, half-pixel centres, of pixels / 255, rounded to the 8-bit grid) in NumPy, with
    the kernel's float32 operations in its order (top and bottom rows interpolated along x, then along y), so
    the pixels are the same (tested on every `mnist10k` digit and on random images)."""
    x = np.asarray(images).astype(np.float32) / np.float32(255)
    _, h, w, _ = x.shape
    y0, y1, ylerp = _axis(int(height), h)
    x0, x1, xlerp = _axis(int(width), w)
    xlerp, ylerp = xlerp[None, None, :, None], ylerp[None, :, None, None]
    top, bottom = x[:, y0], x[:, y1]
    top = top[:, :, x0] + (top[:, :, x1] - top[:, :, x0]) * xlerp
    bottom = bottom[:, :, x0] + (bottom[:, :, x1] - bottom[:, :, x0]) * xlerp
    out = top + (bottom - top) * ylerp
    return np.clip(np.round(out * np.float32(255)), 0, 255).astype(np.uint8)


def check_choices(coder, resize):
    """ValueError for a coder or resize `compress` does not take."""
    if coder not in coding.CODER_CHOICES:
        raise ValueError(f"coder must be one of {', '.join(coding.CODER_CHOICES)}, got {coder!r}.")
    if resize not in RESIZE_CHOICES:
        raise ValueError(f"resize must be one of {', '.join(RESIZE_CHOICES)}, got {resize!r}.")


def _folder_zoo_name(folder):
    """The zoo name a model folder's files name (its metadata.json's `zoo_name`), or None."""
    try:
        with open(os.path.join(folder, "metadata.json")) as f:
            name = json.load(f).get("zoo_name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


def find_encoder(model_name, weights=None):
    """(manifest, None) of the bundle with encoders of `model_name` (a zoo name or a model folder) with
    `weights` (as `tfvq.codec.compress` takes them), or (None, why there is none)."""
    if os.path.isdir(model_name):
        name = _folder_zoo_name(model_name)
        if name is None:
            return None, f"the model folder {model_name} names no zoo model in its metadata.json"
        weights = model_name if weights in (None, "bundled") else weights
    else:
        name = model_name
    manifest = lite_model.find_decoder(name, weights)
    if manifest is None:
        return None, f"these weights of {name!r} have no TFLite encoder"
    if not lite_model.lite_model(manifest).has_encoders():
        return None, (f"the TFLite bundle of these weights of {name!r} has decoders but no encoders "
                      "(`tfvq export --format=decoders` adds them)")
    return manifest, None


class LiteCompressor:
    """Compresses images with the TFLite bundle `manifest` (`find_encoder`): `tfvq.codec.files.Compressor`
    without TensorFlow. `compress` raises `lite_model.NotServed` for what the bundle cannot encode.

    Attributes:
      model: the `LiteModel`; weights_hash: its weights' 8 bytes; name: the zoo name the files name.
    """

    def __init__(self, manifest, model_name=None):
        self.model = lite_model.lite_model(manifest)
        self.weights_hash, self.name = self.model.weights_hash, self.model.name
        self.model_name = model_name or self.name
        self._prior = None

    @property
    def prior(self):
        """The static prior with its context priors, read on first use (`lite_model.load_priors`)."""
        if self._prior is None:
            self._prior = lite_model.load_priors(self.model)
        return self._prior

    def compress(self, images, layer=None, coder="auto", lossless=False, resize="auto"):
        """The `CompactFile` of `images` (the arguments of `tfvq.codec.compress`)."""
        check_choices(coder, resize)
        layout = self.model.code_layout()
        if layer is not None:
            try:
                layer = layout.check_layer(layer)
            except ValueError:
                raise CodecError(
                    f"{self.model_name!r} has code layers 1..{layout.num_layers} (layer 1 the finest), got "
                    f"layer={layer!r}; omit the layer for the model's default, layer {layout.default_layer}."
                ) from None
        layer = layout.default_layer if layer is None else layer
        x = any_size_batch(images, self.model.image_shape[2], lossless)
        resized_from = None
        if resize == "auto" and not lossless and x.shape[1:3] == self.model.native_size:
            resized_from = x.shape[1:3]
            x = resize_bilinear(x, *self.model.image_shape[:2])
        return coding.encode_file(x, self.name, self.model, self.weights_hash, self.prior, layer, coder, lossless,
                                  resized_from)


class BackendCompressor:
    """Compresses images with one model through TFLite encoders where its weights have them, else through
    TensorFlow (the module's doc): `tfvq compress` of many images loads the model once.

    Args:
      model_name, weights: as `tfvq.codec.compress` takes them.
      backend: "auto", "tflite" (a `CodecError` where the encoders are missing or cannot encode an image) or
        "tensorflow".

    Attributes:
      lite: the `LiteCompressor`, or None (TensorFlow encodes).
    """

    def __init__(self, model_name, weights=None, backend="auto"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
        self.model_name, self.weights, self.backend = model_name, weights, backend
        self.lite, self._tensorflow, self._why = None, None, None
        if backend != "tensorflow":
            manifest, self._why = find_encoder(model_name, weights)
            if manifest is not None:
                self.lite = LiteCompressor(manifest, model_name)
            elif backend == "tflite":
                raise CodecError(f"Cannot compress with TFLite alone: {self._why}.")
            else:
                self.tensorflow  # the model loads now (an unknown one fails now), and the line says why

    @property
    def tensorflow(self):
        """The Keras model's compressor (`tfvq.codec.files.Compressor`), loaded on first use."""
        if self._tensorflow is None:
            files = importlib.import_module("tfvq.codec.files")
            self._tensorflow = files.Compressor(self.model_name, self.weights)
            if self._why is not None:
                say_once(f"tfvq: encoding with TensorFlow: {self._why}.")
        return self._tensorflow

    @property
    def name(self):
        """The zoo name the files name."""
        return self.lite.name if self.lite is not None else self.tensorflow.name

    @property
    def image_shape(self):
        """The model's (H, W, C)."""
        return self.lite.model.image_shape if self.lite is not None else tuple(self.tensorflow.model.image_shape)

    def compress(self, images, layer=None, coder="auto", lossless=False, resize="auto"):
        """The `CompactFile` of `images` (the arguments of `tfvq.codec.compress`)."""
        check_choices(coder, resize)
        if self.lite is not None:
            try:
                return self.lite.compress(images, layer, coder, lossless, resize)
            except lite_model.NotServed as err:
                reason = f"the TFLite encoders of {self.lite.name!r} cannot encode these images: {err}"
                if self.backend == "tflite":
                    raise CodecError(f"Cannot compress with TFLite alone: {reason}.") from None
                say_once(f"tfvq: encoding with TensorFlow: {reason}.")
        return self.tensorflow.compress(images, layer, coder, lossless, resize)


def compress(images, model_name, layer=None, weights=None, coder="auto", lossless=False, resize="auto",
             backend="auto"):
    """Compresses images to the bytes of a `.tfvq` file: `tfvq.codec.files.compress` (its arguments, what it
    returns and raises), through the weights' TFLite encoders where they have them (`backend`: "auto",
    "tflite" or "tensorflow", `BackendCompressor`)."""
    check_choices(coder, resize)
    return bytes(BackendCompressor(model_name, weights, backend).compress(images, layer, coder, lossless, resize))
