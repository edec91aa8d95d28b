"""The zoo's registry: the families found in their folders, presets registered and unregistered, names and
weights."""

import pkgutil
import re
import types

import numpy as np
import pytest

import tfvq.models
from tfvq import zoo
from tfvq.models.hqa import VQVAE
from tfvq.zoo import ZooEntry


def test_list_models_takes_wildcards():
    assert zoo.list_models("hqa*") == ["hqa_celeba64", "hqa_digits", "hqa_mnist", "hqa_mnist_hams",
                                       "hqa_mnist_hams_gs", "hqa_mnist_hams_gs_mse", "hqa_mnist_hams_mse"]
    assert zoo.list_models("*mnist") == ["fsq_mnist", "hqa_mnist", "rfsq_mnist", "rrvq_mnist", "simvq_mnist", "vq_mnist",
                                         "vqvae_mnist"]
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


def test_a_duplicate_family_name_raises():
    from tfvq.models import HQA

    zoo.register_family("hqa", HQA)  # the same class again is harmless
    with pytest.raises(ValueError, match="family named 'hqa' is already registered"):
        zoo.register_family("hqa", VQVAE)


def test_every_family_folder_is_found_and_the_registry_names_none():
    folders = sorted(m.name for m in pkgutil.iter_modules(tfvq.models.__path__) if m.ispkg)
    assert folders == ["hqa", "quantized_ae", "rrvq"]
    assert [m.__name__ for m in zoo.registry.FAMILY_PRESETS] == [f"tfvq.models.{f}.presets" for f in folders]
    families = {f for m in zoo.registry.FAMILY_PRESETS for f in m.FAMILIES}
    assert families == {"hqa", "vqvae", "fsq_ae", "lfq_ae", "rvq_ae", "vq_ae", "composed_ae", "rrvq_vae", "spatial_vae"}
    entries = [e for m in zoo.registry.FAMILY_PRESETS for e in m.PRESETS]
    assert {e.family for e in entries} == families and all(zoo.get(e.name).family == e.family for e in entries)
    source = open(zoo.registry.__file__).read()  # the registry knows the families only by finding them
    names = "|".join(folders)
    assert not re.search(rf"models\.({names})\b|\b({names})\.presets|import HQA", source)


def test_a_presets_module_registers_its_families_and_entries_and_unregisters_them():
    module = types.ModuleType("my_presets")
    module.FAMILIES = {"my_vqvae": VQVAE}
    module.PRESETS = (ZooEntry(name="my_vqvae_digits", family="my_vqvae",
                               config=dict(image_shape=(8, 8, 1), num_downsamples=1, num_codes=4, code_dim=2),
                               train={"steps": (5,)}, dataset="digits", paper="none", table="none",
                               description="a VQ-VAE of one's own"),)
    (entry,) = zoo.register_presets(module)
    try:
        assert zoo.list_models("my_*") == ["my_vqvae_digits"] and zoo.get("my_vqvae_digits") == entry
        assert entry.train == tfvq.models.VQVAERecipe(steps=(5,))  # read as the family's recipe
        assert isinstance(zoo.build("my_vqvae_digits"), VQVAE)
        with pytest.raises(ValueError, match="already registered"):
            zoo.register_presets(module)
    finally:
        zoo.unregister_presets(module)
    assert zoo.list_models("my_*") == [] and "my_vqvae" not in zoo.registry._FAMILIES
    with pytest.raises(KeyError):
        zoo.get("my_vqvae_digits")
    zoo.unregister_presets(module)  # twice: nothing left to remove
    assert "hqa_mnist" in zoo.list_models()


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
