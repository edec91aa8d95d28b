"""A model is a name or a folder: what the command line and the codec ask of either.

A model reference is a zoo name (`hqa_digits`) or a model folder (a `train`
run folder or a `tfvq.zoo.save` folder: config.json, metadata.json,
model.weights.h5). A folder carries what was trained: its configuration
(image shape included), its weights, their priors (`tfvq.zoo.prior_paths`)
and, in `metadata.json`, its zoo name and the dataset it was trained on.

    >>> refs.file_name("runs/hqa_digits")       # the name a .tfvq file gives it: its zoo name
    'hqa_digits'
    >>> refs.dataset_of("runs/hqa_digits")      # what it was trained on (metadata.json), else the zoo entry's
    '/data/scans'
"""

import json
import os

from tfvq.zoo import folders, registry


def is_folder(model):
    """True for a model folder (a directory with a config.json), False for a name (or anything else)."""
    return folders.is_model_folder(model)


def default_weights(model, weights=None):
    """The weights to load `model` with: `weights` if given, else "bundled" for a name and None (its own) for
    a folder."""
    if weights is not None:
        return weights
    return None if is_folder(model) else "bundled"


def file_name(model):
    """The name a `.tfvq` file (and an export) gives `model`: a name as it is; a folder's zoo name
    (`metadata.json` zoo_name), else the class of the model its configuration describes."""
    if not is_folder(model):
        return model
    meta = folders.read_metadata(model)
    if meta.get("zoo_name"):
        return meta["zoo_name"]
    if meta.get("class_name"):
        return meta["class_name"]
    with open(os.path.join(model, folders.CONFIG_FILE)) as f:
        return json.load(f).get("class_name", os.path.basename(os.path.abspath(model)))


def describe(model, weights=None):
    """'hqa_digits', 'hqa_digits from the folder RUN' (a folder, or weights from one) or 'hqa_digits with the
    weights W': which model a command uses, for its output."""
    if is_folder(model):
        return f"{file_name(model)} from the folder {model}"
    if weights is None or weights == "bundled":
        return model
    if is_folder(weights):
        return f"{model} from the folder {weights}"
    return f"{model} with the weights {weights}"


def trained_dataset(model, weights=None):
    """The dataset a folder's `metadata.json` names for `model` (a folder), else for `weights` (a folder it
    loads its weights from), else None."""
    for path in (model, weights):
        if isinstance(path, (str, os.PathLike)) and os.path.isdir(path):
            dataset = folders.read_metadata(path).get("dataset")
            if dataset:
                return dataset
    return None


def dataset_of(model, weights=None, dataset=None):
    """(dataset, where it comes from) for `model` with `weights`: `dataset` if given; else the dataset the
    folder (the model's, or the one its weights come from) was trained on; else, for a zoo name with its
    bundled weights (`weights` None or "bundled"), the dataset they learned (`ZooEntry.weights_dataset`, e.g.
    `mnist10k` for `hqa_mnist`); else the zoo entry's.

    Raises `ValueError` for a folder that names no dataset and no zoo entry (pass a dataset).
    """
    if dataset is not None:
        return dataset, "given"
    trained = trained_dataset(model, weights)
    if trained is not None:
        return trained, f"the dataset {model if is_folder(model) else weights} was trained on"
    name = file_name(model)
    if name not in registry.list_models():
        raise ValueError(f"{model} names no dataset (its metadata.json has none) and {name!r} is not a zoo model: "
                         "pass --dataset=SOURCE.")
    entry = registry.get(name)
    if weights in (None, "bundled") and entry.weights_dataset and entry.bundled_weights:
        return entry.weights_dataset, f"the dataset the bundled weights of {name!r} learned"
    return entry.dataset, f"the zoo entry {name!r}'s dataset"
