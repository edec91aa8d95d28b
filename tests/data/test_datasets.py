"""Tests of `tfvq.data.datasets`: the registry of datasets and `load` / `load_numpy` (splits, shuffling,
batching, repeating, errors); the datasets' contents are tested beside their sources."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from tfvq import data

EMBEDDED = ["digits", "mnist10k", "mnist10k_28", "toy_modes", "swatches"]
TFDS = ["mnist", "celeb_a", "cifar10", "svhn_cropped"]


def _batches(ds):
    return [b.numpy() for b in ds]


# --- registry ---------------------------------------------------------------------------------


def test_datasets_lists_tfds_and_embedded_names():
    assert set(data.DATASETS) == set(TFDS) | set(EMBEDDED)
    for name in data.DATASETS:
        dataset_info = data.info(name)
        assert dataset_info.name == name
        assert dataset_info.source == ("tfds" if name in TFDS else "embedded")
        assert "train" in dataset_info.splits and "test" in dataset_info.splits
        assert set(dataset_info.num_examples) == set(dataset_info.splits)
        assert "HQA" in dataset_info.description or "RRVQ" in dataset_info.description
    assert "validation" in data.info("celeb_a").splits


def test_info_is_frozen_hashable_and_read_only():
    dataset_info = data.info("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset_info.name = "other"
    with pytest.raises(TypeError):
        dataset_info.num_examples["train"] = 1
    assert hash(dataset_info) == hash(data.info("digits"))


def test_unknown_name_suggests_near_matches():
    with pytest.raises(ValueError, match="'mnist'") as err:
        data.load("mnsit")
    assert "Known datasets" in str(err.value)
    with pytest.raises(ValueError, match="'celeb_a'"):
        data.info("celeba")
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load_numpy("imagenet")


@pytest.mark.parametrize("name", ["digits", "mnist", "celeb_a"])
def test_bad_split_names_the_valid_splits(name):
    with pytest.raises(ValueError, match="valid splits: 'train'") as err:
        data.load(name, split="validaton")
    assert "'test'" in str(err.value)
    with pytest.raises(ValueError, match="no split 'training'"):
        data.load_numpy(name, split="training")


@pytest.mark.parametrize("batch_size", [0, -3, 2.5, True, "64"])
def test_bad_batch_size_raises(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        data.load("digits", batch_size=batch_size)


def test_bad_limit_raises():
    with pytest.raises(ValueError, match="limit must be a non-negative int"):
        data.load_numpy("digits", limit=-1)


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EMBEDDED)
@pytest.mark.parametrize("split", ["train", "test"])
def test_embedded_split_has_documented_size_shape_and_dtype(name, split):
    dataset_info = data.info(name)
    array = data.load_numpy(name, split)
    assert array.dtype == np.float32
    assert array.shape == (dataset_info.num_examples[split],) + dataset_info.image_shape
    assert np.all(np.isfinite(array))
    element = next(iter(data.load(name, split)))
    assert element.dtype == tf.float32
    assert tuple(element.shape) == dataset_info.image_shape


@pytest.mark.parametrize("name", EMBEDDED)
def test_unshuffled_load_matches_load_numpy_in_order(name):
    expected = data.load_numpy(name, "test")
    got = np.concatenate(_batches(data.load(name, "test", batch_size=64)))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", EMBEDDED)
def test_shuffle_is_deterministic_given_a_seed(name):
    def first_batches(seed):
        ds = data.load(name, "test", batch_size=32, shuffle=True, seed=seed)
        return np.concatenate(_batches(ds.take(2)))

    a, b, c = first_batches(7), first_batches(7), first_batches(8)
    np.testing.assert_array_equal(a, b)
    if name != "swatches":  # swatches repeat 9 images: two orders can coincide in content
        assert not np.array_equal(a, c)


def test_shuffle_is_a_permutation_of_the_split():
    expected = data.load_numpy("digits", "test")
    got = np.concatenate(_batches(data.load("digits", "test", batch_size=100, shuffle=True, seed=0)))
    assert not np.array_equal(got, expected)
    key = lambda x: np.lexsort(x.reshape(len(x), -1).T)  # noqa: E731
    np.testing.assert_array_equal(got[key(got)], expected[key(expected)])


def test_batching_keeps_or_drops_the_remainder():
    sizes = [len(b) for b in _batches(data.load("digits", "test", batch_size=100))]
    assert sizes == [100, 100, 97]
    ds = data.load("digits", "test", batch_size=100, drop_remainder=True)
    assert ds.element_spec.shape.as_list() == [100, 32, 32, 1]
    assert [len(b) for b in _batches(ds)] == [100, 100]
    unbatched = data.load("swatches", "test")
    assert unbatched.element_spec.shape.as_list() == [32, 32, 3]


def test_repeat_goes_on_forever_and_reshuffles_each_epoch():
    ds = data.load("swatches", "test", batch_size=30, repeat=True, shuffle=True, seed=3)
    assert ds.cardinality() == tf.data.INFINITE_CARDINALITY
    batches = _batches(ds.take(12))  # 4 epochs of 90 images
    assert len(batches) == 12 and all(len(b) == 30 for b in batches)
    epochs = np.concatenate(batches).reshape(4, 90, 32, 32, 3)
    colours = np.round(epochs[:, :, 0, 0, :] * 255).astype(int)  # [epoch, i, rgb]
    for epoch in colours:  # every epoch holds each colour 10 times
        _, counts = np.unique(epoch, axis=0, return_counts=True)
        assert sorted(counts) == [10] * 9
    assert not np.array_equal(colours[0], colours[1])
    plain = data.load("digits", "test", repeat=True)
    assert len(_batches(plain.take(300))) == 300


def test_load_numpy_returns_a_fresh_writable_copy():
    a = data.load_numpy("digits", "test", limit=5)
    assert a.shape == (5, 32, 32, 1)
    a[:] = -1.0
    assert data.load_numpy("digits", "test", limit=5).min() >= 0.0
    assert data.load_numpy("digits", "test", limit=0).shape == (0, 32, 32, 1)
