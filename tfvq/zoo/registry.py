"""The model registry: named models with the papers' configurations.

An entry is a frozen `ZooEntry`: the model family and its constructor
arguments (data, not code), the training recipe, and where the numbers come
from (paper, table). `load(name)` builds the model; `list_models("hqa*")`
lists names by wildcard; `info(name)` describes an entry.

The registry knows names, not model classes. Each family of `tfvq.models`
is a folder whose `presets` module holds its data beside its code
(`FAMILIES`: family name -> model class; `PRESETS`: its entries); the
registry finds every such module when it is imported (`FAMILY_PRESETS`) and
registers it, so adding a family touches its own folder only. User code adds
its own the same way (`register_presets(module)`, undone by
`unregister_presets`), or entry by entry (`register_family`, `register`). An
entry's recipe is typed: a mapping given as one is read as the family's
recipe class when the entry is registered (or, for a family registered later,
when the entry is looked up), so an unknown key raises.
"""

import dataclasses
import difflib
import fnmatch
import importlib
import importlib.util
import json
import os
import pkgutil

import keras
import tensorflow as tf

from tfvq import models
from tfvq.models.preset import ZooEntry  # noqa: F401  (the entries it holds: registry.ZooEntry, tfvq.zoo.ZooEntry)
from tfvq.zoo import folders, priors, run_folder

_REGISTRY = {}
_FAMILIES = {}
WEIGHTS_DIR = os.path.join(os.path.dirname(__file__), "weights")


class UnknownModelError(ValueError, KeyError):
    """Raised for a model name the registry does not hold."""

    def __str__(self):  # KeyError would quote the message
        return self.args[0] if self.args else ""


def register_family(name, model_class):
    """Registers a model family: the class that `ZooEntry.config` is passed to. A duplicate name raises."""
    if name in _FAMILIES and _FAMILIES[name] is not model_class:
        raise ValueError(f"A model family named {name!r} is already registered ({_FAMILIES[name].__name__}); "
                         "family names must be unique.")
    _FAMILIES[name] = model_class


def register(entry):
    """Adds `entry` to the registry and returns it as registered; a duplicate name raises ValueError.

    A recipe given as a mapping is read as the family's recipe class (if the family is registered): an
    unknown key raises `UnknownRecipeKeyError` (a ValueError and a TypeError) naming the known keys.
    """
    if entry.name in _REGISTRY:
        raise ValueError(f"A model named {entry.name!r} is already registered; names must be unique.")
    entry = _typed(entry)
    _REGISTRY[entry.name] = entry
    return entry


def _typed(entry):
    """`entry` with its recipe as its family's recipe class (as it is if the family is not known yet)."""
    as_recipe = getattr(_FAMILIES.get(entry.family), "as_recipe", None)
    if as_recipe is None:
        return entry
    recipe = as_recipe(entry.train)
    weights_recipe = None if entry.weights_recipe is None else as_recipe(entry.weights_recipe)
    if recipe is entry.train and weights_recipe is entry.weights_recipe:
        return entry
    return dataclasses.replace(entry, train=recipe, weights_recipe=weights_recipe)


def register_presets(module):
    """Registers a presets module: every family of its `FAMILIES` (name -> model class, `register_family`), then
    every entry of its `PRESETS` (`register`). `module` is a module or its dotted name. Returns the entries as
    registered. A family's folder in `tfvq.models` is found and registered on import; this takes any other."""
    module = importlib.import_module(module) if isinstance(module, str) else module
    for family, model_class in getattr(module, "FAMILIES", {}).items():
        register_family(family, model_class)
    return tuple(register(entry) for entry in getattr(module, "PRESETS", ()))


def unregister_presets(module):
    """Undoes `register_presets(module)`: removes its entries and its families (those registered to its classes)."""
    module = importlib.import_module(module) if isinstance(module, str) else module
    for entry in getattr(module, "PRESETS", ()):
        _REGISTRY.pop(entry.name, None)
    for family, model_class in getattr(module, "FAMILIES", {}).items():
        if _FAMILIES.get(family) is model_class:
            del _FAMILIES[family]


def recipe(name):
    """The training recipe of `name` (its family's recipe dataclass, e.g. `HQARecipe`)."""
    return _entry(name).train


def _entry(name):
    if name not in _REGISTRY:
        near = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Known models: {', '.join(sorted(_REGISTRY))}. "
            "(A model registered by your own code is known only after its module is imported.)"
        )
    return _typed(_REGISTRY[name])  # an entry registered before its family gets its recipe typed now


def get(name):
    """The `ZooEntry` for `name` (its `train` the family's recipe dataclass)."""
    return _entry(name)


def list_models(pattern="*"):
    """Sorted names matching a shell-style wildcard, e.g. `list_models("hqa*")`."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def build(name, **overrides):
    """A fresh model for `name`, with freshly initialised weights.

    Keyword arguments override the entry's configuration (e.g. a narrower
    `channels` for a quick experiment); the model then is no longer the
    paper's, and `zoo_name` is None.
    """
    entry = _entry(name)
    if entry.family not in _FAMILIES:
        raise ValueError(f"{name!r} belongs to the model family {entry.family!r}, which is not registered "
                         "(register_family); did you import the module that defines it?")
    model = _FAMILIES[entry.family](**{**entry.config, **overrides})
    model.zoo_name = None if overrides else entry.name
    return model


def bundled_weights_path(name):
    entry = _entry(name)
    if not entry.bundled_weights:
        return None
    path = os.path.join(WEIGHTS_DIR, entry.bundled_weights)
    return path if os.path.exists(path) else None


def load(name, weights=None, sha256=None):
    """A model by zoo name or from a model folder, optionally with weights.

    Args:
      name: a registered name (see `list_models()`), or a model folder written
        by `tfvq.zoo.save` or by `train.py` (config.json, metadata.json,
        model.weights.h5): it loads with no zoo entry, with its weights.
      weights: None for fresh weights (a folder: its own); "bundled" for the
        weights shipped with the package; a path: a `.keras` file, a
        `.weights.h5` file, a `train.py` model directory (its final weights,
        else its latest checkpoint) or a checkpoint prefix; or an https URL
        of a `.weights.h5` / `.keras` file with its SHA-256
        (`https://.../m.weights.h5#sha256=HEX`), downloaded once into a cache.
      sha256: the SHA-256 of a URL's file, if not in the URL.

    Returns:
      A Keras model. One whose weights were read from a file knows where from (`model.weights_file`),
      so its priors can be found (`tfvq.zoo.prior_paths`) and travel with it (`save`).
    """
    if folders.is_model_folder(name):
        model = folders.load_folder(name)
        if weights is None:
            return priors.record_weights(model, os.path.join(name, folders.WEIGHTS_FILE))
    else:
        model = build(name)
    if weights is None:
        return model
    return load_weights_into(model, weights, name=getattr(model, "zoo_name", None) or name, sha256=sha256)


def save(model, directory, metadata=None):
    """Writes a self-contained model folder (`tfvq.zoo.folders`): config.json, metadata.json, model.weights.h5.

    The priors of the weights the model was loaded with (`tfvq.zoo.priors`: `model.prior.json`,
    `model.context.npz`) go into the folder too, if they exist and the weights have not changed since.
    """
    folders.save(model, directory, metadata)
    priors.copy_priors(model, directory)
    return directory


def load_weights_into(model, weights, name=None, sha256=None):
    """Loads `weights` (see `load`) into `model`; returns the model (a `.keras` file gives its own model)."""
    label = name or type(model).__name__
    if weights == "bundled":
        path = bundled_weights_path(name) if name in list_models() else None
        if path is None:
            raise FileNotFoundError(
                f"Model {label!r} has no bundled weights. Train it with `python train.py --model={label}` "
                f"and pass the model directory as weights=."
            )
        model.load_weights(path)
        return priors.record_weights(model, path)
    if folders.is_url(weights):
        weights = folders.download(weights, sha256)
    return _load_path(model, label, os.fspath(weights))


def _load_path(model, label, path):
    if path.endswith(".keras"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such .keras file: {path}")
        try:
            loaded = keras.saving.load_model(path)
        except Exception as err:  # a corrupt or foreign file
            raise ValueError(f"Could not read {path} as a .keras model file: {err}") from err
        if not _same_config(loaded, model):
            raise ValueError(f"{path} holds a model whose configuration is not that of {label!r}.")
        return priors.record_weights(loaded, path)
    if path.endswith(".weights.h5"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"No such weights file: {path}")
        try:
            model.load_weights(path)
        except Exception as err:
            raise ValueError(f"Could not load {path} into {label!r}: {err}") from err
        return priors.record_weights(model, path)
    source = path  # a run folder with checkpoints only: its priors are the folder's (`tfvq.zoo.priors`)
    if os.path.isdir(path):
        final, prefix = run_folder.final_weights(path), run_folder.latest_checkpoint(path)
        if final is not None:
            return _load_path(model, label, final)
        if prefix is None:
            raise FileNotFoundError(
                f"{path} holds neither model.weights.h5 nor a checkpoint: is it a train.py --model_dir?"
            )
        path = prefix
    if tf.io.gfile.exists(path + ".index"):
        try:
            run_folder.restore_model_variables(model, path)
        except (AssertionError, ValueError, tf.errors.OpError) as err:
            raise ValueError(f"The checkpoint {path} does not hold {label!r}'s weights: {err}") from err
        return priors.record_weights(model, source)
    raise FileNotFoundError(
        f"Cannot load weights from {path!r}: expected 'bundled', a .keras file, a .weights.h5 file, "
        "a train.py model directory or a checkpoint prefix."
    )


def _same_config(a, b):
    """Model configurations equal up to the model's name and list/tuple spelling."""
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
        "recipe": type(entry.train).__name__,
        "train": entry.train.to_dict() if hasattr(entry.train, "to_dict") else dict(entry.train),
        "parameters": int(sum(int(tf.size(v)) for v in model.trainable_variables)),
        "bundled_weights": bundled_weights_path(name) is not None,
        "weights_command": entry.weights_command,
    }
    if entry.weights_recipe is not None:
        out["weights_recipe"] = entry.weights_recipe.to_dict()
    if entry.weights_dataset:
        out["weights_dataset"] = entry.weights_dataset
    out.update(model.describe())
    return out


def _family_names(package):
    """The subpackages of `package` that have a `presets` module: its families, in name order."""
    return [info.name for info in pkgutil.iter_modules(package.__path__)
            if info.ispkg and importlib.util.find_spec(f"{package.__name__}.{info.name}.presets") is not None]


FAMILY_PRESETS = tuple(importlib.import_module(f"{models.__name__}.{name}.presets") for name in _family_names(models))
"""The presets module of every family folder of `tfvq.models`, registered below."""

for _module in FAMILY_PRESETS:
    register_presets(_module)
