"""Compression with zoo models: images -> `.tfvq` files of bit-packed codes -> images.

    >>> from tfvq import codec
    >>> data = codec.compress(image_uint8, "hqa_digits", layer=5)   # bytes
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
F), and `decompress` returns `model.decode(codes, l)` as uint8. Without a
layer, `compress` uses the model's default layer. A file is self-describing
(`tfvq.codec.format` gives the layout): it names the zoo model and carries
a hash of its weights, so `decompress` needs no model argument and refuses
codes made with other weights.

By default (`coder="auto"`) files are entropy-coded (format version 3,
`tfvq.codec.coded`): each layer's codes are range-coded under the layer's
static prior, under the model's own probabilities given the layers above
(`CodeModel.code_logits`) or under learned context priors
(`tfvq.codec.context`), whichever is smaller, and images of any size are
taken; `coder="fixed"` writes the bit-packed format version 2.

Modules: `format` (the version 1/2 container, TensorFlow-free), `coded`
(the version 3 container), `entropy` (integer frequency tables and the range
coder), `prior` (static priors, `fit_prior`), `context` (learned context
priors, `fit_context`), `coding` (entropy-coded files
with a model), `files` (compress, decompress, models), `images` (image files
and arrays), `rates` (fixed bits per image), `cli` (the `tfvq` command:
`tfvq models`, `compress`, `decompress`, `info`, `fit-priors`).

This package imports TensorFlow only when a function needs it, so
`tfvq.codec.format` (and `CodecError`) stay TensorFlow-free.
"""

from tfvq.codec.files import (
    ModelSpec,
    code_layout,
    compress,
    decode_codes,
    decompress,
    load_model,
    model_spec,
    weights_hash,
)
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
    write_v1,
)
from tfvq.codec.context import ContextPriors, context_path_for, fit_context
from tfvq.codec.images import load_image, load_png, save_png
from tfvq.codec.prior import StaticPrior, fit_prior, prior_path_for
from tfvq.codec.rates import format_rate_table, rate_table

__all__ = [
    "ALL_LAYERS", "CodecError", "Container", "HASH_BYTES", "Header", "MAGIC", "ModelSpec", "VERSION",
    "bits_per_code", "code_layout", "compress", "decode_codes", "decompress", "format_rate_table", "header_bytes",
    "layers_payload_bytes", "load_model", "load_png", "model_spec", "pack_codes", "pack_layers", "payload_bytes",
    "rate_table", "read", "read_header", "save_png", "unpack_codes", "unpack_layers", "weights_hash", "write",
    "write_v1", "StaticPrior", "fit_prior", "prior_path_for", "load_image",
    "ContextPriors", "context_path_for", "fit_context",
]
