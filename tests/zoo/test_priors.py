"""A model's priors live beside the weights it was loaded from, and travel with `zoo.save`."""

import hashlib
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfvq import zoo
from tfvq.zoo import registry, run_folder

NAME = "hqa_digits"  # ships with both priors: hqa_digits.prior.json and hqa_digits.context.npz
PACKAGE = pathlib.Path(zoo.__file__).resolve().parent.parent


def _paths(stem):
    return {"static": f"{stem}.prior.json", "context": f"{stem}.context.npz"}


def _perturb(model):
    for v in model.trainable_variables:
        v.assign(v * 0.5)


def test_weights_hash_is_the_first_8_bytes_of_the_sha256_of_the_weight_arrays():
    model = zoo.load(NAME, weights="bundled")
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(np.asarray(v)).tobytes() for v in model.weights))
    assert zoo.weights_hash(model) == digest.digest()[:8]
    assert model.loaded_weights_hash == zoo.weights_hash(model)
    _perturb(model)
    assert zoo.weights_hash(model) != model.loaded_weights_hash


def test_prior_paths_for_weights_replaces_the_weights_suffix_or_names_the_folders_priors(tmp_path, monkeypatch):
    assert zoo.prior_paths_for_weights(tmp_path / "X.weights.h5") == _paths(tmp_path / "X")
    assert zoo.prior_paths_for_weights(str(tmp_path / "P.keras")) == _paths(tmp_path / "P")
    assert zoo.prior_paths_for_weights(str(tmp_path) + os.sep) == _paths(tmp_path / "model")  # a model folder
    prefix = tmp_path / "checkpoints" / "ckpt-3"
    assert zoo.prior_paths_for_weights(prefix) == _paths(prefix)
    monkeypatch.chdir(tmp_path)
    assert zoo.prior_paths_for_weights("m.weights.h5") == _paths(tmp_path / "m")  # absolute


def test_prior_paths_of_the_bundled_weights_are_the_files_beside_them():
    model = zoo.load(NAME, weights="bundled")
    weights = registry.bundled_weights_path(NAME)
    assert model.weights_file == weights and weights.endswith(f"{NAME}.weights.h5")
    paths = zoo.prior_paths(model)
    assert paths == _paths(os.path.join(registry.WEIGHTS_DIR, NAME))
    assert all(os.path.isfile(p) for p in paths.values())


def test_a_model_with_fresh_weights_has_no_prior_paths():
    assert zoo.prior_paths(zoo.build(NAME)) is None
    assert zoo.prior_paths(zoo.load(NAME)) is None
    assert zoo.prior_paths(zoo.load(NAME, weights=None)) is None


def test_prior_paths_follow_every_kind_of_weights_source(tmp_path):
    model = zoo.build(NAME)
    _perturb(model)
    model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.keras")
    prefix = tf.train.Checkpoint(model_variables=run_folder.model_variables(model)).save(
        str(tmp_path / "run" / "checkpoints" / "ckpt"))
    zoo.save(model, tmp_path / "folder")
    cases = [
        (zoo.load(NAME, weights=tmp_path / "m.weights.h5"), tmp_path / "m"),
        (zoo.load(NAME, weights=str(tmp_path / "m.keras")), tmp_path / "m"),
        (zoo.load(str(tmp_path / "folder")), tmp_path / "folder" / "model"),
        (zoo.load(NAME, weights=tmp_path / "folder"), tmp_path / "folder" / "model"),  # a run folder's final weights
        (zoo.load(NAME, weights=prefix), prefix),  # a checkpoint prefix
        (zoo.load(NAME, weights=tmp_path / "run"), tmp_path / "run" / "model"),  # a run folder of checkpoints only
    ]
    expected_hash = zoo.weights_hash(model)
    for loaded, stem in cases:
        assert zoo.prior_paths(loaded) == _paths(stem), stem
        assert loaded.loaded_weights_hash == expected_hash, stem
    # A folder loaded with other weights names the priors of those weights.
    assert zoo.prior_paths(zoo.load(str(tmp_path / "folder"), weights="bundled")) == zoo.prior_paths(
        zoo.load(NAME, weights="bundled"))


def test_saving_the_bundled_model_carries_both_prior_files_into_the_folder(tmp_path):
    model = zoo.load(NAME, weights="bundled")
    bundled = zoo.prior_paths(model)
    zoo.save(model, str(tmp_path / "a"))
    assert sorted(os.listdir(tmp_path / "a")) == ["config.json", "metadata.json", "model.context.npz",
                                                  "model.prior.json", "model.weights.h5"]
    loaded = zoo.load(str(tmp_path / "a"))
    paths = zoo.prior_paths(loaded)
    assert paths == _paths(tmp_path / "a" / "model")
    for kind, path in paths.items():
        assert pathlib.Path(path).read_bytes() == pathlib.Path(bundled[kind]).read_bytes(), kind
    assert loaded.loaded_weights_hash == model.loaded_weights_hash
    # The folder's model carries them on, and saving it back into its own folder keeps them.
    zoo.save(loaded, tmp_path / "b")
    assert (tmp_path / "b" / "model.context.npz").read_bytes() == pathlib.Path(bundled["context"]).read_bytes()
    zoo.save(loaded, tmp_path / "a")
    assert (tmp_path / "a" / "model.prior.json").read_bytes() == pathlib.Path(bundled["static"]).read_bytes()


def test_only_the_prior_files_that_exist_are_carried(tmp_path):
    model = zoo.load("rrvq_digits", weights="bundled")  # a static prior, no context priors
    assert os.path.isfile(zoo.prior_paths(model)["static"]) and not os.path.exists(zoo.prior_paths(model)["context"])
    zoo.save(model, tmp_path)
    assert (tmp_path / "model.prior.json").exists() and not (tmp_path / "model.context.npz").exists()


def test_a_model_whose_weights_changed_since_loading_is_saved_without_priors(tmp_path):
    model = zoo.load(NAME, weights="bundled")
    _perturb(model)
    zoo.save(model, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "metadata.json", "model.weights.h5"]
    assert zoo.prior_paths(zoo.load(str(tmp_path))) == _paths(tmp_path / "model")  # named, not there


def test_the_zoo_imports_neither_the_trainer_nor_the_codec():
    upward = re.compile(r"^\s*(from tfvq\.(train|codec|export)\b|import tfvq\.(train|codec|export)\b|"
                        r"from tfvq import .*\b(train|codec|export)\b)", re.M)
    for path in sorted((PACKAGE / "tfvq" / "zoo").glob("*.py")):
        assert not upward.search(path.read_text()), path.name
