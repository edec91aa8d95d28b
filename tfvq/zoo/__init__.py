"""The model zoo: `load("hqa_celeba64")`, `list_models("hqa*")`, `info(name)`, `save(model, DIR)` / `load(DIR)`,
and where a loaded model's entropy-coding priors live (`prior_paths(model)`, `tfvq.zoo.priors`). A model is a
name or a folder everywhere (`tfvq.zoo.refs`). The entries are the presets of the families of `tfvq.models`,
found in their folders; `register_presets(module)` adds a family of one's own."""

from tfvq.models.preset import ZooEntry
from tfvq.zoo import refs
from tfvq.zoo.priors import prior_paths, prior_paths_for_weights, weights_hash

from tfvq.zoo.registry import (
    UnknownModelError,
    build,
    bundled_weights_path,
    get,
    info,
    list_models,
    load,
    load_weights_into,
    recipe,
    register,
    register_family,
    register_presets,
    save,
    unregister_presets,
)

__all__ = ["UnknownModelError", "ZooEntry", "build", "bundled_weights_path", "get", "info", "list_models", "load",
           "load_weights_into", "prior_paths", "prior_paths_for_weights", "recipe", "refs", "register",
           "register_family", "register_presets", "save", "unregister_presets", "weights_hash"]
