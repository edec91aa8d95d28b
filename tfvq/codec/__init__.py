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
TensorFlow): `container` (format version 4, what `compress` writes), `coded`
(version 3) and `format` (versions 1 and 2), read for older files;
`entropy` (integer tables and the range coder, through `constriction`),
`integer_net` (context networks on integers), `prior` and `context` (the
priors as data), `images` (image files and arrays). The part that asks the
model: `coding` (which layers and coders, the model's probabilities),
`files` (compress, decompress, read_header), `fit` (fit_prior,
fit_context), `rates` (fixed bits per image). The `tfvq` command's compress, decompress, info,
models and fit-priors live above the codec, in `tfvq.commands.codec`.

Importing `tfvq.codec` loads only the first part; the names of the second
(`compress`, `decompress`, `fit_prior`, ...) load it, and with it
TensorFlow and the zoo, on first use (PEP 562), so reading a header or
fuzzing the container never starts TensorFlow.
"""

import importlib

from tfvq.codec.container import CompactFile
from tfvq.codec.context import ContextPriors
from tfvq.codec.errors import CodecError
from tfvq.codec.format import (
    ALL_LAYERS,
    HASH_BYTES,
    MAGIC,
    VERSION,
    Container,
    Header,
    bits_per_code,
    header_bytes,
    layers_payload_bytes,
    pack_codes,
    pack_layers,
    payload_bytes,
    read,
    unpack_codes,
    unpack_layers,
    write,
    write_v1,
)
from tfvq.codec.images import load_image, load_png, save_png
from tfvq.codec.prior import StaticPrior

_MODEL_PART = {
    "ModelSpec": "files", "code_layout": "files", "compress": "files", "decode_codes": "files",
    "decompress": "files", "load_model": "files", "load_prior": "files", "model_spec": "files",
    "read_header": "files", "weights_hash": "files",
    "count_codes": "fit", "fit_context": "fit", "fit_prior": "fit",
    "format_rate_table": "rates", "rate_table": "rates",
}
"""The names of the part that asks the model, and their modules."""


def __getattr__(name):
    if name in _MODEL_PART:
        return getattr(importlib.import_module(f"tfvq.codec.{_MODEL_PART[name]}"), name)
    raise AttributeError(f"module 'tfvq.codec' has no attribute {name!r}")


__all__ = [
    "ALL_LAYERS", "CodecError", "CompactFile", "Container", "ContextPriors", "HASH_BYTES", "Header", "MAGIC",
    "StaticPrior", "VERSION", "bits_per_code", "header_bytes", "layers_payload_bytes", "load_image", "load_png",
    "pack_codes", "pack_layers", "payload_bytes", "read", "save_png", "unpack_codes", "unpack_layers", "write",
    "write_v1", *_MODEL_PART,
]
