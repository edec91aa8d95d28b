"""Tests of `tfvq.data.embedded`: the datasets shipped inside the package, their contents and sizes."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq import data
from tfvq.data import embedded

EMBEDDED_IMAGES = ["digits", "mnist10k", "mnist10k_28", "swatches"]


def test_embedded_split_sizes():
    assert data.info("digits").num_examples == {"train": 1500, "test": 297}
    assert data.info("toy_modes").num_examples == {"train": 20000, "test": 5000}
    assert data.info("swatches").num_examples == {"train": 900, "test": 90}


@pytest.mark.parametrize("name", EMBEDDED_IMAGES)
def test_embedded_images_are_in_unit_range_on_the_8bit_grid(name):
    images = data.load_numpy(name, "train")
    assert images.min() >= 0.0 and images.max() <= 1.0
    levels = images * 255.0
    np.testing.assert_array_equal(levels, np.round(levels))  # k / 255 exactly recovers k


def test_digits_are_the_sklearn_digits_resized_bilinearly():
    from sklearn.datasets import load_digits

    raw = load_digits().images.astype(np.float32) / 16.0
    train, test = data.load_numpy("digits", "train"), data.load_numpy("digits", "test")
    for images, offset in ((train, 0), (test, 1500)):
        for i in (0, 123, len(images) - 1):
            reference = tf.image.resize(raw[offset + i][..., None], (32, 32), method="bilinear").numpy()
            np.testing.assert_allclose(images[i], reference, atol=0.5 / 255 + 1e-6)
            assert abs(images[i].mean() - raw[offset + i].mean()) < 0.02
    np.testing.assert_allclose(train.mean(), raw[:1500].mean(), atol=0.01)


def test_swatches_are_uniform_blocks_of_nine_fixed_colours():
    images = data.load_numpy("swatches", "train")
    assert embedded.SWATCH_COLOURS.shape == (9, 3)
    assert len(np.unique(embedded.SWATCH_COLOURS, axis=0)) == 9
    expected = embedded.SWATCH_COLOURS[np.arange(900) % 9].astype(np.float32) / 255.0
    np.testing.assert_array_equal(images, np.broadcast_to(expected[:, None, None, :], images.shape))
    _, counts = np.unique(images[:, 0, 0, :], axis=0, return_counts=True)
    assert sorted(counts) == [100] * 9


def test_toy_modes_are_toy_modes_samples_with_seeds_0_and_1():
    from tfvq.data import toy_modes

    np.testing.assert_array_equal(data.load_numpy("toy_modes", "train"), toy_modes.sample(20000, seed=0))
    np.testing.assert_array_equal(data.load_numpy("toy_modes", "test"), toy_modes.sample(5000, seed=1))
    batch = next(iter(data.load("toy_modes", batch_size=512, shuffle=True, seed=0)))
    assert batch.shape == (512, 1) and batch.dtype == tf.float32


def test_mnist10k_28_is_mnist10k_at_its_own_size_with_the_same_labels():
    from tfvq.data.embedded import mnist10k_raw

    for split in ("train", "test"):
        images = data.load_numpy("mnist10k_28", split, limit=50)
        assert images.shape == (50, 28, 28, 1)
        np.testing.assert_array_equal(np.round(images[..., 0] * 255).astype(np.uint8), mnist10k_raw(split)[0][:50])
        np.testing.assert_array_equal(data.load_labels("mnist10k_28", split, limit=50),
                                      data.load_labels("mnist10k", split, limit=50))


@pytest.mark.parametrize("source", [embedded.digits, embedded.mnist10k, embedded.mnist10k_28, embedded.swatches,
                                    embedded.toy_modes])
def test_embedded_arrays_are_read_only_so_a_caller_cannot_change_the_next_load(source):
    array = source("test")
    with pytest.raises(ValueError, match="read-only"):
        array[0] = 0
    assert source("test").flags.writeable is False


def test_mnist10k_labels_are_every_digit_aligned_with_their_images():
    for split in ("train", "test"):
        images, labels = embedded.mnist10k_raw(split)
        assert images.dtype == np.uint8 and images.shape[1:] == (28, 28)
        assert labels.shape == (len(images),) and set(np.unique(labels)) == set(range(10))
    assert len(embedded.mnist10k_raw("train")[0]) + len(embedded.mnist10k_raw("test")[0]) == 10000


def test_mnist10k_at_32_is_the_raw_digits_resized_bilinearly_to_the_8bit_grid():
    raw, _ = embedded.mnist10k_raw("test")
    resized = tf.image.resize(raw[:20, :, :, None].astype(np.float32) / 255.0, (32, 32), method="bilinear")
    expected = np.clip(np.round(resized.numpy() * 255.0), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(embedded.mnist10k("test")[:20], expected)
