"""Tests of tfvq.data: embedded datasets, the tfds path (mocked and fake-prepared), errors."""

import dataclasses
import time

import numpy as np
import pytest
import tensorflow as tf

from tfvq import data
from tfvq.data import embedded, tfds_datasets

EMBEDDED = ["digits", "mnist10k", "mnist10k_28", "toy_modes", "swatches"]
EMBEDDED_IMAGES = ["digits", "mnist10k", "mnist10k_28", "swatches"]
TFDS_SHAPES = {
    "mnist": (32, 32, 1),
    "celeb_a": (64, 64, 3),
    "cifar10": (32, 32, 3),
    "svhn_cropped": (32, 32, 3),
}


def _batches(ds):
    return [b.numpy() for b in ds]


# --- registry ---------------------------------------------------------------------------------


def test_datasets_lists_tfds_and_embedded_names():
    assert set(data.DATASETS) == set(TFDS_SHAPES) | set(EMBEDDED)
    for name in data.DATASETS:
        dataset_info = data.info(name)
        assert dataset_info.name == name
        assert dataset_info.source == ("tfds" if name in TFDS_SHAPES else "embedded")
        assert "train" in dataset_info.splits and "test" in dataset_info.splits
        assert set(dataset_info.num_examples) == set(dataset_info.splits)
        assert "HQA" in dataset_info.description or "RRVQ" in dataset_info.description
    assert "validation" in data.info("celeb_a").splits
    for name, shape in TFDS_SHAPES.items():
        assert data.info(name).image_shape == shape


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


# --- embedded datasets ------------------------------------------------------------------------


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


def test_embedded_datasets_are_fast_enough_for_training():
    ds = data.load("digits", batch_size=512, shuffle=True, repeat=True, seed=0)
    iterator = iter(ds)
    next(iterator)
    start = time.perf_counter()
    for _ in range(20):
        next(iterator)
    assert (time.perf_counter() - start) / 20 < 0.1  # a training step is ~0.4 s


# --- tfds datasets ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TFDS_SHAPES))
def test_mocked_tfds_dataset_gives_float_images_of_the_documented_shape(name):
    import tensorflow_datasets as tfds

    shape = TFDS_SHAPES[name]
    with tfds.testing.mock_data(num_examples=6):
        ds = data.load(name, "test", batch_size=4, shuffle=True, seed=0)
        batches = _batches(ds)
        array = data.load_numpy(name, "train", limit=5)
    assert [b.shape for b in batches] == [(4,) + shape, (2,) + shape]
    images = np.concatenate(batches)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images * 255, np.round(images * 255))
    assert images.std() > 0  # random mock pixels survive preprocessing
    assert array.shape == (5,) + shape and array.dtype == np.float32


def test_celeb_a_crop_keeps_the_central_148_square():
    image = np.zeros((218, 178, 3), np.uint8)
    image[35:183, 15:163] = 255  # exactly the central 148x148 square
    out = tfds_datasets._preprocess_celeb_a(tf.constant(image)).numpy()
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, 255)
    image[35:183, 15:163] = 0
    image[36:182, 16:162] = 255  # a one-pixel dark frame inside the crop shows at the edges
    out = tfds_datasets._preprocess_celeb_a(tf.constant(image)).numpy()
    assert out[0, 0, 0] < 255 and out[32, 32, 0] == 255


@pytest.mark.parametrize("encode", [tf.io.encode_jpeg, tf.io.encode_png])
def test_celeb_a_decoding_crops_like_decode_then_crop(encode):
    rows, cols = np.meshgrid(np.arange(218), np.arange(178), indexing="ij")
    image = np.stack([rows, cols, (rows + cols) // 2], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it
    encoded = encode(tf.constant(image))
    got = tfds_datasets._decode_and_crop_celeb_a(encoded).numpy()
    expected = tfds_datasets._crop_celeb_a(tf.io.decode_image(encoded, channels=3)).numpy()
    assert got.shape == (148, 148, 3) and got.dtype == np.uint8
    np.testing.assert_allclose(got.astype(int), expected.astype(int), atol=2)
    np.testing.assert_allclose(got.astype(int), image[35:183, 15:163].astype(int), atol=8)


def test_not_prepared_dataset_fails_fast_with_instructions(tmp_path):
    start = time.perf_counter()
    with pytest.raises(data.DatasetNotPreparedError) as err:
        data.load("mnist", data_dir=tmp_path)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "python -m tfvq.data prepare mnist --data_dir=DIR" in message
    assert str(tmp_path) in message
    assert "--data_dir=DIR" in message
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(data.DatasetNotPreparedError, match="python -m tfvq.data prepare celeb_a"):
        data.load_numpy("celeb_a", data_dir=tmp_path / "missing", limit=2)


def _prepare_fake(tmp_path, name, raw_images, **other_features):
    """Writes `raw_images` (split -> uint8 array) as a prepared tfds dataset `name` with tfds itself.

    The builder is the real one with only its example generator replaced, so the
    files on disk are what `tfds build` writes and `tfds.load` reads them back.
    """
    import tensorflow_datasets as tfds

    real = type(tfds.builder(name))

    class Fake(real, skip_registration=True):
        code_path = None  # no checksums file to look up for a class defined in a test

        def _split_generators(self, dl_manager):
            return {
                split: ((i, {"image": image, **other_features}) for i, image in enumerate(images))
                for split, images in raw_images.items()
            }

    Fake.name = name
    Fake(data_dir=tmp_path).download_and_prepare()


def _by_mean(images):
    """Images sorted by mean value (tfds reorders examples when it writes them)."""
    return images[np.argsort(images.mean(axis=(1, 2, 3)))]


def test_prepared_mnist_is_read_through_tfds_load_and_resized(tmp_path):
    rng = np.random.default_rng(0)
    raw = {
        split: rng.integers(0, 256, (n, 28, 28, 1), dtype=np.uint8)
        for split, n in (("train", 5), ("test", 3))
    }
    _prepare_fake(tmp_path, "mnist", raw, label=0)
    got = data.load_numpy("mnist", "train", data_dir=tmp_path)
    resized = tf.image.resize(raw["train"].astype(np.float32) / 255.0, (32, 32), method="bilinear").numpy()
    np.testing.assert_allclose(_by_mean(got), _by_mean(np.round(resized * 255.0) / 255.0), atol=1e-6)
    batches = _batches(data.load("mnist", "test", data_dir=tmp_path, batch_size=2, drop_remainder=True))
    assert [b.shape for b in batches] == [(2, 32, 32, 1)]


def test_prepared_celeb_a_jpegs_are_cropped_and_resized(tmp_path):
    import tensorflow_datasets as tfds

    features = tfds.builder("celeb_a").info.features
    other = {
        "attributes": {key: False for key in features["attributes"].keys()},
        "identity": {"Identity_No": 0},
        "landmarks": {key: 0 for key in features["landmarks"].keys()},
    }
    rows, cols = np.meshgrid(np.arange(218), np.arange(178), indexing="ij")
    ramp = np.stack([rows, cols, 255 - rows], axis=-1).astype(np.uint8)
    raw = {"train": np.stack([ramp, ramp // 2]), "validation": ramp[None], "test": ramp[None]}
    _prepare_fake(tmp_path, "celeb_a", raw, **other)
    got = data.load_numpy("celeb_a", "train", data_dir=tmp_path)
    expected = np.stack([tfds_datasets._preprocess_celeb_a(tf.constant(x)).numpy() for x in raw["train"]])
    assert got.shape == (2, 64, 64, 3)
    np.testing.assert_allclose(_by_mean(got), _by_mean(expected / 255.0), atol=4 / 255)  # JPEG loss


def test_mnist10k_28_is_mnist10k_at_its_own_size_with_the_same_labels():
    from tfvq.data.embedded import mnist10k_raw

    for split in ("train", "test"):
        images = data.load_numpy("mnist10k_28", split, limit=50)
        assert images.shape == (50, 28, 28, 1)
        np.testing.assert_array_equal(np.round(images[..., 0] * 255).astype(np.uint8), mnist10k_raw(split)[0][:50])
        np.testing.assert_array_equal(data.load_labels("mnist10k_28", split, limit=50),
                                      data.load_labels("mnist10k", split, limit=50))
