"""The model registry: named models with the papers' configurations.

An entry is a frozen `ZooEntry`: the model family and its constructor
arguments (data, not code), the training recipe, and where the numbers come
from (paper, table). `load(name)` builds the model; `list_models("hqa*")`
lists names by wildcard; `info(name)` describes an entry.
"""

import dataclasses
import difflib
import fnmatch
import os
from typing import Any, Mapping, Optional

import keras
import tensorflow as tf

_REGISTRY = {}
_FAMILIES = {}
WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")


class UnknownModelError(ValueError, KeyError):
    """Raised for a model name the registry does not hold."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0] if self.args else ""


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """One named model.

    Attributes:
      name: registry name, e.g. "hqa_mnist".
      family: model family key (see `register_family`), e.g. "hqa".
      config: constructor arguments of the family's model class.
      train: training recipe (dataset, batch size, steps per layer, optimiser
        and schedule settings) used by `tfvq.train`.
      dataset: the `tfvq.data` dataset the entry is made for.
      paper: the paper the configuration comes from.
      table: where in the paper (e.g. "HQA Table 10").
      description: one line for `list_models` / `info`.
      bundled_weights: file name under `tfvq/zoo/weights/`, if weights ship
        with the package.
      weights_command: the command that produced the bundled weights.
    """

    name: str
    family: str
    config: Mapping[str, Any]
    train: Mapping[str, Any]
    dataset: str
    paper: str
    table: str
    description: str
    bundled_weights: Optional[str] = None
    weights_command: Optional[str] = None


def register_family(name, builder):
    """Registers a model family: `builder(config) -> keras.Model`."""
    _FAMILIES[name] = builder


def register(entry):
    """Adds `entry` to the registry; a duplicate name raises ValueError."""
    if entry.name in _REGISTRY:
        raise ValueError(f"A model named {entry.name!r} is already registered; names must be unique.")
    _REGISTRY[entry.name] = entry
    return entry


def _entry(name):
    _ensure_entries()
    if name not in _REGISTRY:
        near = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Known models: {', '.join(sorted(_REGISTRY))}. "
            "(A model registered by your own code is known only after its module is imported.)"
        )
    return _REGISTRY[name]


def get(name):
    """The `ZooEntry` for `name`."""
    return _entry(name)


def list_models(pattern="*"):
    """Sorted names matching a shell-style wildcard, e.g. `list_models("hqa*")`."""
    _ensure_entries()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def build(name):
    """A fresh model for `name`, with freshly initialised weights."""
    entry = _entry(name)
    model = _FAMILIES[entry.family](entry.config)
    model.zoo_name = entry.name
    return model


def bundled_weights_path(name):
    entry = _entry(name)
    if not entry.bundled_weights:
        return None
    path = os.path.join(WEIGHTS_DIR, entry.bundled_weights)
    return path if os.path.exists(path) else None


def checkpoint_variables(model):
    """The variables `tfvq.train` checkpoints for `model`: `model.weights`, in order.

    `tf.train.Checkpoint(model=...)` saves no variable of a Keras 3 model, so
    checkpoints name the weights by their position instead.
    """
    return list(model.weights)


def load(name, weights=None):
    """Builds the model `name` and optionally loads weights.

    Args:
      name: a registered name (see `list_models()`).
      weights: None for fresh weights; "bundled" for the weights shipped with
        the package; or a path: a `.keras` file, a `.weights.h5` file, a
        `train.py` model directory (its final weights, else its latest
        checkpoint) or a checkpoint prefix.

    Returns:
      A Keras model.
    """
    entry = _entry(name)
    model = build(name)
    if weights is None:
        return model
    if weights == "bundled":
        path = bundled_weights_path(name)
        if path is None:
            raise FileNotFoundError(
                f"Model {name!r} has no bundled weights. Train it with `python train.py --model={name}` "
                f"and pass the model directory as weights=."
            )
        model.load_weights(path)
        return model
    return _load_path(model, entry, os.fspath(weights))


def _load_path(model, entry, path):
    if path.endswith(".keras"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such .keras file: {path}")
        try:
            loaded = keras.saving.load_model(path)
        except Exception as err:  # a corrupt or foreign file
            raise ValueError(f"Could not read {path} as a .keras model file: {err}") from err
        if not _same_config(loaded, model):
            raise ValueError(f"{path} holds a model whose configuration is not that of {entry.name!r}.")
        return loaded
    if path.endswith(".weights.h5"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such weights file: {path}")
        try:
            model.load_weights(path)
        except Exception as err:
            raise ValueError(f"Could not load {path} into {entry.name!r}: {err}") from err
        return model
    if os.path.isdir(path):
        final = os.path.join(path, "model.weights.h5")
        if os.path.exists(final):
            return _load_path(model, entry, final)
        prefix = tf.train.latest_checkpoint(os.path.join(path, "checkpoints")) or tf.train.latest_checkpoint(path)
        if prefix is None:
            raise FileNotFoundError(
                f"{path} holds neither model.weights.h5 nor a checkpoint: is it a train.py --model_dir?"
            )
        path = prefix
    if tf.io.gfile.exists(path + ".index"):
        ckpt = tf.train.Checkpoint(model_variables=checkpoint_variables(model))
        try:
            ckpt.restore(path).expect_partial().assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as err:
            raise ValueError(f"The checkpoint {path} does not hold {entry.name!r}'s weights: {err}") from err
        return model
    raise FileNotFoundError(
        f"Cannot load weights from {path!r}: expected 'bundled', a .keras file, a .weights.h5 file, "
        "a train.py model directory or a checkpoint prefix."
    )


def _same_config(a, b):
    """Model configurations equal up to the model's name and list/tuple spelling."""
    import json

    def norm(model):
        config = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable", "dtype")}
        return json.dumps(config, sort_keys=True, default=str)

    return type(a) is type(b) and norm(a) == norm(b)


def info(name):
    """A dict describing `name`: config, paper, table, dataset, rates, weights."""
    entry = _entry(name)
    model = build(name)
    out = {
        "name": entry.name,
        "family": entry.family,
        "description": entry.description,
        "paper": entry.paper,
        "table": entry.table,
        "dataset": entry.dataset,
        "config": dict(entry.config),
        "train": dict(entry.train),
        "parameters": int(sum(int(tf.size(v)) for v in model.trainable_variables)),
        "bundled_weights": bundled_weights_path(name) is not None,
        "weights_command": entry.weights_command,
    }
    if hasattr(model, "bits") and hasattr(model, "num_layers"):
        out["bits_per_layer"] = {l: model.bits(l) for l in range(1, model.num_layers + 1)}
        out["code_shape_per_layer"] = {l: model.code_shape(l) for l in range(1, model.num_layers + 1)}
    if hasattr(model, "latent_shapes"):  # hierarchical VAEs (RRVQ-VAE, Spatial-VAE)
        out["num_latent_layers"] = model.num_latent_layers
        out["latent_shapes"] = model.latent_shapes
        if entry.family == "rrvq_vae":
            out["num_codes"] = list(model.num_codes)
            out["code_dim"] = model.code_dim
            out["code_bits"] = model.code_bits()
    return out


_LOADED = False


def _ensure_entries():
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from tfvq.zoo import entries  # noqa: F401  (registers the named models)
