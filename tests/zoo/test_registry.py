"""The zoo: every entry builds; small ones run forward and backward; names and weights."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq import zoo
from tfvq.zoo.registry import ZooEntry

SMALL = {"hqa_mnist", "hqa_digits", "vqvae_mnist"}


@pytest.mark.parametrize("name", zoo.list_models("hqa*") + zoo.list_models("vqvae*"))
def test_every_greedy_entry_builds_and_describes_itself(name):
    # The hierarchical VAE entries (rrvq_*, rvqvae_*, spatial_vae_*) are described in test_rrvq_entries.py.
    info = zoo.info(name)
    assert info["paper"] and info["table"] and info["parameters"] > 0
    assert set(info["bits_per_layer"]) == set(range(1, len(info["bits_per_layer"]) + 1))
    if name in SMALL:
        model = zoo.build(name)
        x = np.random.default_rng(0).uniform(size=(2,) + model.image_shape).astype(np.float32)
        assert model(x).shape == x.shape
        for layer in range(1, model.num_layers + 1):
            with tf.GradientTape() as tape:
                loss = model.layer_loss(x, layer, seed=tf.constant([0, layer]))["loss"]
            grads = tape.gradient(loss, model.layer_variables(layer))
            assert np.isfinite(float(loss)) and all(g is not None for g in grads)


def test_list_models_takes_wildcards():
    assert zoo.list_models("hqa*") == ["hqa_celeba64", "hqa_digits", "hqa_mnist", "hqa_mnist_hams",
                                       "hqa_mnist_hams_gs", "hqa_mnist_hams_gs_mse", "hqa_mnist_hams_mse"]
    assert zoo.list_models("*mnist") == ["hqa_mnist", "rrvq_mnist", "vqvae_mnist"]
    assert zoo.list_models("nothing*") == []


def test_unknown_name_lists_near_matches():
    with pytest.raises(ValueError, match="Did you mean 'hqa_mnist'"):
        zoo.load("hqa_mnst")
    with pytest.raises(KeyError):
        zoo.info("no_such_model")


def test_duplicate_registration_raises():
    entry = zoo.get("hqa_digits")
    with pytest.raises(ValueError, match="already registered"):
        zoo.register(ZooEntry(**{**entry.__dict__}))


def test_a_duplicate_family_name_raises_and_the_registry_imports_no_model():
    from tfvq.models import HQA, VQVAE

    zoo.register_family("hqa", HQA)  # the same class again is harmless
    with pytest.raises(ValueError, match="family named 'hqa' is already registered"):
        zoo.register_family("hqa", VQVAE)
    source = open(zoo.registry.__file__).read()
    assert "tfvq.models." not in source and "import HQA" not in source


def test_build_overrides_the_configuration():
    model = zoo.build("hqa_digits", image_shape=(16, 16, 1))
    assert model.image_shape == (16, 16, 1) and model.zoo_name is None
    assert zoo.build("hqa_digits").zoo_name == "hqa_digits"


def test_weights_load_from_weights_file_keras_file_and_bad_paths(tmp_path):
    model = zoo.build("vqvae_mnist")
    for v in model.trainable_variables:
        v.assign(v * 0.5)
    x = np.random.default_rng(1).uniform(size=(2, 32, 32, 1)).astype(np.float32)
    model.save_weights(tmp_path / "m.weights.h5")
    model.save(tmp_path / "m.keras")
    for path in (tmp_path / "m.weights.h5", tmp_path / "m.keras", tmp_path):
        if path == tmp_path:
            (tmp_path / "m.weights.h5").rename(tmp_path / "model.weights.h5")
        loaded = zoo.load("vqvae_mnist", weights=path)
        np.testing.assert_allclose(loaded(x).numpy(), model(x).numpy(), atol=1e-6)
    with pytest.raises(FileNotFoundError, match="expected 'bundled'"):
        zoo.load("vqvae_mnist", weights=tmp_path / "missing")
    (tmp_path / "corrupt.weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(ValueError, match="Could not load"):
        zoo.load("vqvae_mnist", weights=tmp_path / "corrupt.weights.h5")
    with pytest.raises(ValueError, match="configuration"):
        zoo.load("hqa_digits", weights=tmp_path / "m.keras")
    with pytest.raises(FileNotFoundError, match="no bundled weights"):
        zoo.load("hqa_celeba64", weights="bundled")


def test_bundled_hqa_digits_weights_reconstruct_test_digits():
    from tfvq import data

    model = zoo.load("hqa_digits", weights="bundled")
    images = data.load_numpy("digits", "test", limit=64)
    mse = [float(np.mean((model.reconstruct(images, l, stochastic=False).numpy() - images) ** 2)) for l in (1, 5)]
    blank = float(np.mean((images - images.mean()) ** 2))  # predicting the mean pixel
    assert mse[0] < 0.02 and mse[1] < 0.06, mse
    assert mse[1] < 0.6 * blank, (mse, blank)  # 8 bits carry real information about each digit
    codes = model.encode(images, 5)
    assert len(np.unique(codes.numpy())) >= 8  # the 8-bit code distinguishes digits
