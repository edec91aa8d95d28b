"""Compression with zoo models: images -> small `.tfvq` files of entropy-coded codes -> images.

    >>> from tfvq import codec
    >>> data = codec.compress(image_uint8, "hqa_digits", layer=5)   # bytes: about 23 for one digit
    >>> codec.read_header(data).layers
    (5,)
    >>> images = codec.decompress(data, seed=0)                    # uint8 [1, 32, 32, 1]

    >>> data = codec.compress(image_uint8, "rrvq_digits")           # its default layer 1: layers 1..5
    >>> codec.decompress(data).shape
    (1, 32, 32, 1)

Any zoo model with discrete codes works the same way: a file of layer l
holds the codes `model.encode(x, l)` gives, the layers
`model.code_layout().layers_sent(l)` (HQA and VQ-VAE: layer l alone, decoded
down the stack, HQA Algorithm 3; RRVQ-VAE: layers l..L, RRVQ eq. 3 and App.
F), or the chain l..L when that makes the smaller file, and `decompress`
returns `model.decode(codes, l)` as uint8. A file names its zoo model and a
short digest of the weights and priors its tables come from, so
`decompress` needs no model argument and refuses a file made with other
weights.

The codec has two parts. The container and the coding are NumPy only (no
TensorFlow): `container` (format version 4, what `compress` writes),
`entropy` (integer tables and the range coder, through `constriction`),
`integer_net` (context networks on integers), `prior` and `context` (the
priors as data), `coding` (which layers and coders, the model's
probabilities, through the model contract), `budget` (what `auto` may
spend on context networks for a large image), `bands` and `lazy_tables`
(large images in bands, their tables made when the stream is written),
`images` (image files and arrays), and `versions`: `read_header` reads a file of any version into the
same kind of header (`header.FileHeader`), version 4 in front and the
older ones through `legacy` (versions 1, 0x81 and 2: `legacy.v1_v2`;
version 3: `legacy.v3`). The part that loads models: `files` (compress,
`Compressor`, decompress, the models, weights and priors), `fit` (fit_prior,
fit_context), `rates` (fixed bits per image). The `tfvq` command's
compress, decompress, info, models and fit-priors live above the codec, in
`tfvq.commands`.

Importing `tfvq.codec` loads only the first part; the names of the second
(`compress`, `fit_prior`, ...) load it, and with it TensorFlow and the zoo,
on first use (PEP 562), so reading a header or fuzzing the container never
starts TensorFlow. `decompress` (`decoding`) starts it only for a file
whose weights have no TFLite decoders, and `compress` (`lite_encoding`)
only for weights without TFLite encoders: where they have them
(`lite_model`: the bundled models ship theirs, `tfvq export` writes a model
folder's), the model is a `LiteModel` of ai-edge-litert interpreters, and
neither needs TensorFlow at all. `Compressor` is the Keras model's.
"""

import importlib

from tfvq.codec.container import MAGIC, VERSION, CompactFile
from tfvq.codec.context import ContextPriors
from tfvq.codec.errors import CodecError
from tfvq.codec.header import FileHeader
from tfvq.codec.images import load_image, load_png, save_png
from tfvq.codec.prior import StaticPrior
from tfvq.codec.versions import read_header

_MODEL_PART = {
    "Compressor": "files", "ModelSpec": "files", "code_layout": "files", "compress": "lite_encoding",
    "BackendCompressor": "lite_encoding", "find_encoder": "lite_encoding",
    "decompress": "decoding", "LiteModel": "lite_model", "find_decoder": "lite_model",
    "load_model": "files", "load_prior": "files", "model_spec": "files", "weights_hash": "files",
    "count_codes": "fit", "fit_context": "fit", "fit_prior": "fit",
    "format_rate_table": "rates", "rate_table": "rates",
}
"""The names of the part that asks the model, and their modules."""


def __getattr__(name):
    if name in _MODEL_PART:
        return getattr(importlib.import_module(f"tfvq.codec.{_MODEL_PART[name]}"), name)
    raise AttributeError(f"module 'tfvq.codec' has no attribute {name!r}")


__all__ = [
    "CodecError", "CompactFile", "ContextPriors", "FileHeader", "MAGIC", "StaticPrior", "VERSION", "load_image",
    "load_png", "read_header", "save_png", *_MODEL_PART,
]
