"""Where a model's entropy-coding priors live: beside its weights file, with the same stem.

The priors of some weights are files fitted for exactly those weights (the
codec writes and reads them, `tfvq.codec.prior` and `tfvq.codec.context`; to
the zoo they are opaque files):

    X.weights.h5        the weights
    X.prior.json        their static prior (code counts of each layer)
    X.context.npz       their context priors (small networks per layer)

So the bundled `tfvq/zoo/weights/hqa_digits.weights.h5` has
`hqa_digits.prior.json` and `hqa_digits.context.npz` beside it, a model
folder's `model.weights.h5` has `model.prior.json` and `model.context.npz`
in the folder, a `.keras` file `P.keras` has `P.prior.json`, and a
checkpoint prefix `ckpt-3` has `ckpt-3.prior.json`.

`tfvq.zoo.load` records on the model where its weights came from
(`model.weights_file`) and their hash at that moment
(`model.loaded_weights_hash`, `weights_hash`); `prior_paths(model)` then
names the model's prior files, and `tfvq.zoo.save(model, DIR)` copies those
that exist into DIR while the weights are still the ones loaded, so a model
folder carries its priors wherever it goes.

    >>> model = tfvq.zoo.load("hqa_digits", weights="bundled")
    >>> tfvq.zoo.prior_paths(model)["static"]          # .../tfvq/zoo/weights/hqa_digits.prior.json
    >>> tfvq.zoo.save(model, "my_digits")              # my_digits/model.prior.json, model.context.npz
"""

import hashlib
import os
import shutil

import numpy as np

from tfvq.zoo import folders

SUFFIXES = {"static": ".prior.json", "context": ".context.npz"}
"""Each kind of prior and the suffix its file takes in place of the weights file's `.weights.h5` / `.keras`."""
WEIGHTS_SUFFIXES = (".weights.h5", ".keras")
HASH_BYTES = 8


def weights_hash(model):
    """The first 8 bytes of the SHA-256 of the model's weight arrays (in `model.weights` order, raw bytes).

    What names a model's weights in its prior files and in the `.tfvq` files coded with them.
    """
    digest = hashlib.sha256()
    for variable in model.weights:
        digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
    return digest.digest()[:HASH_BYTES]


def prior_paths_for_weights(weights_file):
    """{"static": path, "context": path}: where the priors of the weights in `weights_file` live (absolute).

    `weights_file` is a `.weights.h5` or `.keras` file (`X.weights.h5` / `X.keras` -> `X.prior.json`,
    `X.context.npz`), a model folder or `train.py` run folder (its `model.prior.json`, `model.context.npz`),
    or a checkpoint prefix (`ckpt-3` -> `ckpt-3.prior.json`). The files need not exist.
    """
    path = os.path.abspath(os.fspath(weights_file)).rstrip(os.sep)
    if os.path.isdir(path):
        path = os.path.join(path, folders.WEIGHTS_FILE)
    stem = next((path[: -len(ext)] for ext in WEIGHTS_SUFFIXES if path.endswith(ext)), path)
    return {kind: stem + suffix for kind, suffix in SUFFIXES.items()}


def record_weights(model, weights_file):
    """Notes on `model` that its weights were just read from `weights_file` (and their hash); returns `model`.

    Sets `model.weights_file` (absolute path) and `model.loaded_weights_hash` (`weights_hash`, 8 bytes).
    """
    model.weights_file = os.path.abspath(os.fspath(weights_file)).rstrip(os.sep)
    model.loaded_weights_hash = weights_hash(model)
    return model


def prior_paths(model):
    """{"static": path, "context": path} of the weights `model` was loaded from (`tfvq.zoo.load`), or None.

    None for a model whose weights were not read from a file (`tfvq.zoo.build`, `tfvq.zoo.load(name)`
    with fresh weights). The paths are absolute and named whether or not the files exist; they name the
    priors of the weights as loaded, even if the model has been trained since (`priors_match`).
    """
    weights_file = getattr(model, "weights_file", None)
    return None if weights_file is None else prior_paths_for_weights(weights_file)


def priors_match(model):
    """True if `model` was loaded from a weights file and its weights are still the ones loaded."""
    loaded = getattr(model, "loaded_weights_hash", None)
    return loaded is not None and getattr(model, "weights_file", None) is not None and loaded == weights_hash(model)


def copy_priors(model, directory):
    """Copies the prior files of `model`'s weights (those that exist) into the model folder `directory`.

    Only while the model's weights are the ones it was loaded with (`priors_match`): priors of other
    weights would be stale. Returns {kind: path} of the files the folder now holds for these weights.
    """
    if not priors_match(model):
        return {}
    source, target = prior_paths(model), prior_paths_for_weights(os.path.join(directory, folders.WEIGHTS_FILE))
    copied = {}
    for kind, path in source.items():
        if not os.path.isfile(path):
            continue
        if os.path.realpath(path) != os.path.realpath(target[kind]):  # saved back into its own folder: in place
            shutil.copyfile(path, target[kind])
        copied[kind] = target[kind]
    return copied
