"""A TFLite decoder bundle on disk: what `tfvq.export.tflite_decoders` writes and `tfvq.codec.lite_model` reads.

A bundle is a manifest (JSON) and the files it names, paths relative to the manifest's folder:

    decoder.json                  the manifest (`read_manifest`)
    decoders_float32.tflite       one .tflite file per variant, every signature in it
    decoders_float16.tflite
    top_code_logits.npy           log p(z_L) [1, h_L, w_L, K_L], when the model has a top prior
    encoders_float32.tflite       the encoders (`ENCODER_KINDS`), when the bundle has them

The signatures of a model with L code layers (batch 1, the manifest's `image_shape`; with `any_size` true, a
fully convolutional model's, any height and width: images [1, None, None, C], codes [1, None, None]):

    decode_layer_l            codes -> {images: float32 [1, H, W, C] in [0, 1]}, `decode(codes, l)`
    code_logits_layer_l       codes -> {log_probs: float32 [1, h, w, K]} of layer l-1, `code_logits(codes, l)`
                              (l in 2..L, where the model gives them)
    pixel_likelihood_layer_l  codes -> {loc, log_scale: float32 [1, H, W, C]}, `pixel_likelihood(codes, l)`
                              (where the model has one)

each taking the codes of `layout.layers_sent(l)` as int32 inputs `codes_layer_j` [1, h_j, w_j]. The top prior
takes no input, so the bundle keeps its values (`top_code_logits.npy`) instead of a signature. A model that
takes images of its own size only (an RRVQ-VAE, which codes a large image in tiles) also has every signature
at a fixed batch of `BATCH` (`<name>_batch_16`, the manifest's `batch`: 16), the same function of each image
to float rounding, and 1.4x faster a tile than one per invoke; a bundle without them (`batch` null or absent) runs
one image per invoke.

The encoders, in a file of their own (a decompress never loads them), take `images` float32 [1, H, W, C] in
[0, 1] and give the int32 codes `codes_layer_j` [1, h_j, w_j] of the layers `encode(x, l)` sends:

    encode_layer_l            `encode(images, l)`, the most probable codes (`CodeModel.tflite_encoder(l)`)
    encode_biased_layer_l     `encode_biased(images, bias, l)` with the manifest's `encoder_bias` {layer: [K]}
                              as constants (the rate weights of the weights' static prior when converted)

The manifest names them (`encoders`: {variant: file}, only float32: a code is an argmax over close scores) with
their signatures (`encoder_signatures`), the bias (`encoder_bias`, or null) and `native_size`, the (h, w) an
image is resized from to the model's size before coding (`tfvq.codec.compress(resize="auto")`), or null.

The manifest says what the codec asks a model for without building one: the model's zoo name, `image_shape`,
code layout, `code_strides` (None for a model that is not fully convolutional), `any_size` (true: the networks
take images of every size whose height and width are multiples of the top stride, the code layout's grids then
that size over the strides; false or absent, as in bundles written before it: `image_shape` only), the layers
whose seeded decode samples (`samples_at`), `weights_hash` (the 8 bytes `tfvq.zoo.weights_hash` names the
weights by in `.tfvq` files), the weights file it was converted from with its SHA-256, and the prior files of
those weights.

Beside a model's weights (`X.weights.h5`, or a folder's `model.weights.h5`) a bundle lives in the folder
`X.decoders-D` (`bundle_dir`), D the first 16 hex digits of the SHA-256 of the weights file's bytes: other
weights in the same place never meet a stale decoder, they have another name.
"""

import hashlib
import json
import os

MANIFEST = "decoder.json"
FORMAT = 1
"""The manifest's format version (`read_manifest` refuses others)."""
KINDS = ("decode", "code_logits", "pixel_likelihood")
"""The decoder signatures' kinds, each per layer (`signature`)."""
ENCODER_KINDS = ("encode", "encode_biased")
"""The encoder signatures' kinds, each per layer (`signature`)."""
IMAGES = "images"
"""The name of the encoders' input."""
VARIANTS = ("float32", "float16")
"""What a bundle's .tflite files may be: float32 weights and activations, or float16 weights."""
WEIGHTS_SUFFIXES = (".weights.h5", ".keras")
DIGEST_HEX = 16


BATCH = 16
"""The batch of a tiled model's second set of signatures (`signature(..., batch=BATCH)`): a fixed shape, so
XNNPACK runs it whole (a batch of `None` becomes shape arithmetic it does not take)."""


def signature(kind, layer, batch=1):
    """The name of the signature of `kind` (one of `KINDS` or `ENCODER_KINDS`) for layer `layer`, taking one image
    (or its codes), or `batch` of them (`BATCH`: a model of fixed image size's batched signatures)."""
    if kind not in KINDS + ENCODER_KINDS:
        raise ValueError(f"kind must be one of {KINDS + ENCODER_KINDS}, got {kind!r}.")
    return batched(f"{kind}_layer_{int(layer)}", batch)


def batched(name, batch):
    """The name of the signature `name` (of one image) at a fixed batch of `batch` (itself for 1)."""
    return name if batch == 1 else f"{name}_batch_{int(batch)}"


def code_input(layer):
    """The name of the input that takes layer `layer`'s codes."""
    return f"codes_layer_{int(layer)}"


def file_sha256(path):
    """The SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_stem(weights_file):
    """`X` of `X.weights.h5` or `X.keras` (the file's name without its suffix)."""
    name = os.path.basename(os.fspath(weights_file))
    return next((name[: -len(s)] for s in WEIGHTS_SUFFIXES if name.endswith(s)), name)


def bundle_dir(weights_file, sha256=None):
    """Where the bundle of the weights in `weights_file` lives: `X.decoders-D` beside it (the module's doc)."""
    sha256 = sha256 or file_sha256(weights_file)
    folder = os.path.dirname(os.path.abspath(os.fspath(weights_file)))
    return os.path.join(folder, f"{weights_stem(weights_file)}.decoders-{sha256[:DIGEST_HEX]}")


def read_manifest(path):
    """The manifest at `path` (a manifest file, or a bundle folder holding `decoder.json`) as a dict, with
    `path` set to its absolute file path.

    Raises `ValueError` for a file that is not a manifest of this format.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a TFLite decoder manifest: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path} is not a TFLite decoder manifest of format {FORMAT}.")
    manifest["path"] = path
    return manifest


def write_manifest(folder, manifest, name=MANIFEST):
    """Writes `manifest` (a dict) as `folder/name`, its format version added; returns the path."""
    path = os.path.join(folder, name)
    with open(path, "w") as f:
        json.dump({"format": FORMAT, **manifest}, f, indent=1)
        f.write("\n")
    return path


def resolve(manifest, relative):
    """The absolute path of a file the manifest names (relative to its folder), or None for None."""
    if relative is None:
        return None
    return os.path.normpath(os.path.join(os.path.dirname(manifest["path"]), relative))
