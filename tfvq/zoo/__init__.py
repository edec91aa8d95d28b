"""The model zoo: `load("hqa_celeba64")`, `list_models("hqa*")`, `info(name)`."""

from tfvq.zoo.registry import (
    UnknownModelError,
    ZooEntry,
    build,
    get,
    info,
    list_models,
    load,
    register,
    register_family,
)

__all__ = ["UnknownModelError", "ZooEntry", "build", "get", "info", "list_models", "load", "register",
           "register_family"]
