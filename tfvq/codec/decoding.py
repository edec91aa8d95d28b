"""`decompress`: a `.tfvq` file to images, with TFLite decoders where the file's weights have them.

The decoder asks the model only through the contract `tfvq.codec.coding` names, so a model made of TFLite
decoders (`tfvq.codec.lite_model.LiteModel`) decodes a file as the Keras model does, with NumPy,
`constriction` and ai-edge-litert: no TensorFlow, and a fraction of the time and memory. With
`backend="auto"` (the default) a file is decoded so when its weights have decoders
(`lite_model.find_decoder`: the bundled models ship theirs; `tfvq export` writes a model folder's beside its
weights) and they can decode it (a fully convolutional model's bundle decodes any image size,
`LiteModel.with_image_shape`; `NotServed` for a seeded decode that samples, or another size for a bundle
converted at one size); otherwise with
TensorFlow (`tfvq.codec.files.decompress`, imported then), saying why on one line of stderr, once per
model, weights and reason.

What the two give differs only where float arithmetic differs: the codes are the same (the probabilities
of model-coded layers and pixels round to the same integer tables, `tfvq.codec.entropy`'s margins, and
every layer's CRC is checked), a lossless file gives exactly its pixels, and the images of a lossy file
(the model's `decode`) differ from TensorFlow's by at most a grey level in a few pixels, except where the
decode chooses the most probable code of a layer below the file's (HQA Algorithm 3) and two codes tie to
within float rounding (docs/deployment.md measures both; tests/codec/test_lite_model.py tests them), at the
model's own size and at others. Decoders whose probabilities left the margins (another machine's kernels)
would decode other codes: the file's CRC-32 says so (`ChecksumError`), and a file with
model-coded layers or pixels is then decoded again with TensorFlow.

Importing this module imports no TensorFlow (the TensorFlow part is loaded by name when it is needed,
PEP 562 style, as `tfvq.codec` does).
"""

import importlib
import sys

from tfvq import decoder_bundle as bundle
from tfvq.codec import lite_model, versions
from tfvq.codec.container import MODEL
from tfvq.codec.errors import ChecksumError, CodecError
from tfvq.seeds import seed_values

BACKENDS = ("auto", "tflite", "tensorflow")
"""`decompress(backend=...)`: TFLite decoders when there are (auto), only them (tflite), or the Keras model."""
_SAID = set()


def say_once(line):
    """Prints `line` on stderr, unless it was printed before in this process."""
    if line not in _SAID:
        _SAID.add(line)
        print(line, file=sys.stderr)


def _priors(model):
    """A function giving a `LiteModel`'s priors, read on first call (files of fixed-rate codes need none)."""
    loaded = []

    def prior_for():
        if not loaded:
            loaded.append(lite_model.load_priors(model))
        return loaded[0]

    return prior_for


def decompress_lite(data, layer=None, seed=None, weights=None, decoder=None):
    """(images, None), or (None, why not) when no TFLite decoder decodes the file: those of `decoder` (a
    manifest, or a bundle's folder) if given, else those of the file's weights (`find_decoder`)."""
    f, decode = versions.read(data)
    seed_values(seed)  # a bad seed fails before any model loads, as `tfvq.models.as_seed` would
    if decoder is not None:
        try:
            manifest = bundle.read_manifest(decoder)
        except ValueError as err:
            raise CodecError(str(err)) from None
        if manifest["model"] != f.model:
            raise CodecError(f"The file names the model {f.model!r}, but the decoders {manifest['path']} decode "
                             f"{manifest['model']!r}.")
    else:
        manifest = lite_model.find_decoder(f.model, weights)
        if manifest is None:
            return None, f"these weights of {f.model!r} have no TFLite decoder"
    model = lite_model.lite_model(manifest)
    try:
        return decode(f, model, model.weights_hash, _priors(model), layer, seed), None
    except lite_model.NotServed as err:
        return None, f"{f.model!r}'s TFLite decoders cannot decode this file: {err}"
    except ChecksumError:
        if not (f.lossless or MODEL in getattr(f, "coders", {}).values()):
            raise  # no float probabilities decoded it: the file is corrupt, whoever decodes it
        # Probabilities within the entropy coder's margins of TensorFlow's round to its tables; beyond them
        # (another machine's kernels) the codes differ, and the CRC says so: TensorFlow's are the encoder's.
        return None, (f"{f.model!r}'s TFLite decoders' probabilities do not give this file's codes (its CRC-32 "
                      "differs)")


def decompress(data, seed=None, weights=None, layer=None, backend="auto", decoder=None):
    """Decodes the bytes of a `.tfvq` file (any version) to uint8 images [count, H, W, C].

    `seed`, `weights` and `layer` are those of `tfvq.codec.files.decompress` (what the images are, and
    the errors). `backend`: "auto" (TFLite decoders where the file's weights have them, else TensorFlow,
    said on stderr), "tflite" (a `CodecError` where there are none) or "tensorflow" (the Keras model).
    `decoder`: the manifest of the TFLite decoders to use (a `tfvq export` folder's
    `<name>_decoder.json`, or a bundle's folder) instead of the weights' own.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}.")
    if backend != "tensorflow":
        images, reason = decompress_lite(data, layer, seed, weights, decoder)
        if images is not None:
            return images
        if backend == "tflite":
            raise CodecError(f"Cannot decode with TFLite alone: {reason}.")
        say_once(f"tfvq: decoding with TensorFlow: {reason}.")
    return importlib.import_module("tfvq.codec.files").decompress(data, seed=seed, weights=weights, layer=layer)
