"""The model zoo: `load("hqa_celeba64")`, `list_models("hqa*")`, `info(name)`, `save(model, DIR)` / `load(DIR)`."""

from tfvq.zoo.registry import (
    UnknownModelError,
    ZooEntry,
    build,
    get,
    info,
    list_models,
    load,
    load_weights_into,
    register,
    register_family,
    save,
)

__all__ = ["UnknownModelError", "ZooEntry", "build", "get", "info", "list_models", "load", "load_weights_into", "register",
           "register_family", "save"]
