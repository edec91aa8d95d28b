"""A model is a name or a folder (`tfvq.zoo.refs`): the name a file gives it, the weights it loads, how a command
names it, and the dataset it was trained on."""

import json

import pytest

from tfvq.zoo import refs


@pytest.fixture
def run(tmp_path):
    """A model folder (config.json, metadata.json) of `vqvae_mnist` trained on `digits`."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"class_name": "VQVAE", "config": {}}))
    (folder / "metadata.json").write_text(json.dumps({"zoo_name": "vqvae_mnist", "dataset": "digits"}))
    return folder


def test_a_folder_names_its_zoo_model_and_dataset_and_a_weights_folder_counts_too(run, tmp_path):
    assert refs.file_name(str(run)) == "vqvae_mnist" and refs.file_name("hqa_digits") == "hqa_digits"
    assert refs.default_weights(str(run)) is None and refs.default_weights("hqa_digits") == "bundled"
    # The bug of `export.py --model=vqvae_mnist --weights=RUN`: the run's dataset, not the zoo entry's (mnist).
    assert refs.dataset_of("vqvae_mnist", str(run))[0] == "digits"
    assert refs.dataset_of(str(run))[0] == "digits" and refs.dataset_of(str(run), dataset="swatches")[0] == "swatches"
    # A zoo name with its bundled weights: the dataset they learned; other weights: the entry's (the paper's).
    assert refs.dataset_of("vqvae_mnist")[0] == "mnist10k" == refs.dataset_of("vqvae_mnist", "bundled")[0]
    assert refs.dataset_of("vqvae_mnist", str(tmp_path / "w.weights.h5"))[0] == "mnist"
    assert refs.dataset_of("hqa_celeba64")[0] == "celeb_a"
    (run / "metadata.json").write_text(json.dumps({"class_name": "VQVAE"}))
    assert refs.file_name(str(run)) == "VQVAE"
    with pytest.raises(ValueError, match="--dataset"):
        refs.dataset_of(str(run))


def test_a_folder_is_a_directory_with_a_config(run, tmp_path):
    assert refs.is_folder(str(run)) and not refs.is_folder("hqa_digits") and not refs.is_folder(str(tmp_path))
    (run / "config.json").unlink()
    assert not refs.is_folder(str(run))


def test_given_weights_win_over_the_default(run):
    assert refs.default_weights("hqa_digits", "w.weights.h5") == "w.weights.h5"
    assert refs.default_weights(str(run), "bundled") == "bundled"


def test_a_folder_without_metadata_names_the_class_of_its_configuration_or_else_itself(run):
    (run / "metadata.json").unlink()
    assert refs.file_name(str(run)) == "VQVAE"
    (run / "config.json").write_text(json.dumps({"config": {}}))
    assert refs.file_name(str(run)) == "run"


def test_a_command_says_which_model_and_which_weights_it_uses(run):
    assert refs.describe("hqa_digits") == "hqa_digits" == refs.describe("hqa_digits", "bundled")
    assert refs.describe(str(run)) == f"vqvae_mnist from the folder {run}"
    assert refs.describe("vqvae_mnist", str(run)) == f"vqvae_mnist from the folder {run}"
    assert refs.describe("hqa_digits", "w.weights.h5") == "hqa_digits with the weights w.weights.h5"


def test_the_trained_dataset_comes_from_the_models_folder_first_then_the_weights_folder(run, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "metadata.json").write_text(json.dumps({"dataset": "swatches"}))
    assert refs.trained_dataset(str(run), str(other)) == "digits"
    assert refs.trained_dataset("vqvae_mnist", str(other)) == "swatches"
    assert refs.trained_dataset("vqvae_mnist") is None and refs.trained_dataset("vqvae_mnist", "bundled") is None
    # Where it comes from, for the command's output.
    assert refs.dataset_of("vqvae_mnist", str(other)) == ("swatches", f"the dataset {other} was trained on")
    assert refs.dataset_of(str(run)) == ("digits", f"the dataset {run} was trained on")
    assert refs.dataset_of("vqvae_mnist", dataset="x.npz") == ("x.npz", "given")
    assert refs.dataset_of("hqa_celeba64") == ("celeb_a", "the zoo entry 'hqa_celeba64''s dataset")


def test_a_folder_of_an_unknown_model_that_names_no_dataset_asks_for_one(run):
    (run / "metadata.json").write_text(json.dumps({"zoo_name": "no_such_model"}))
    with pytest.raises(ValueError, match=r"names no dataset .* 'no_such_model' is not a zoo model: pass --dataset"):
        refs.dataset_of(str(run))
