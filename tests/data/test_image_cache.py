"""Tests of tfvq.data.image_cache through tfvq.data.load: images decoded once, kept in memory or in a file under
the data directory, streamed in the same order as decoding them every epoch; the clear errors."""

import argparse
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfvq import data
from tfvq.commands import data as data_command
from tfvq.data import image_cache


def _images(ds):
    return np.concatenate([b.numpy() for b in ds])


@pytest.fixture
def mocked():
    """tfds' mock data (20 random images a split), as the tfds tests of tfvq.data use it."""
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        yield


@pytest.fixture(scope="module")
def digit_folder(tmp_path_factory):
    """A folder of 40 PNGs: shipped real digits (mnist10k's first test images), in train/ and test/."""
    from PIL import Image

    root = tmp_path_factory.mktemp("digits")
    pixels = np.round(data.load_numpy("mnist10k_28", "test", limit=40)[..., 0] * 255).astype(np.uint8)
    for i, digit in enumerate(pixels):
        split = "test" if i % 4 == 0 else "train"
        os.makedirs(root / split, exist_ok=True)
        Image.fromarray(digit).save(root / split / f"{i:03d}.png")
    return str(root)


# --- the same images, in the same order ----------------------------------------------------------------


@pytest.mark.parametrize("mode", ["file", "memory"])
def test_cached_celeb_a_gives_the_decoded_images_in_stored_order(mocked, tmp_path, mode):
    decoded = _images(data.load("celeb_a", "test", batch_size=8, data_dir=tmp_path, cache="off"))
    cached = _images(data.load("celeb_a", "test", batch_size=8, data_dir=tmp_path, cache=mode))
    assert decoded.shape == (20, 64, 64, 3) and decoded.dtype == np.float32 and decoded.std() > 0
    np.testing.assert_array_equal(cached, decoded)
    written = os.path.exists(data.cache_file("celeb_a", "test", tmp_path))
    assert written == (mode == "file")


def test_a_cache_file_is_written_once_and_read_by_later_loads_without_the_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=20):
        decoded = _images(data.load("celeb_a", "train", batch_size=6, data_dir=tmp_path, cache="off"))
        path, kept = data.write_cache("celeb_a", "train", tmp_path)
    assert path == str(tmp_path / "tfvq_cache" / "celeb_a" / "train-64x64x3.npy") == data.cache_file(
        "celeb_a", "train", tmp_path)
    np.testing.assert_array_equal(np.load(path), np.round(decoded * 255).astype(np.uint8))
    assert kept.shape == (20, 64, 64, 3) and kept.dtype == np.uint8
    meta = json.load(open(tmp_path / "tfvq_cache" / "celeb_a" / "train-64x64x3.json"))
    assert meta["source"] == "celeb_a" and meta["split"] == "train" and meta["image_shape"] == [64, 64, 3]
    assert meta["count"] == 20 and meta["version"].startswith("tfds celeb_a ")
    # no tfds data in tmp_path now: the default cache="auto" reads the file, and decodes nothing
    again = _images(data.load("celeb_a", "train", batch_size=6, data_dir=tmp_path))
    np.testing.assert_array_equal(again, decoded)
    np.testing.assert_array_equal(data.load_numpy("celeb_a", "train", data_dir=tmp_path, limit=5), decoded[:5])
    with pytest.raises(data.DatasetNotPreparedError):
        data.load("celeb_a", "train", data_dir=tmp_path, cache="off")
    assert sorted(os.listdir(os.path.dirname(path))) == ["train-64x64x3.json", "train-64x64x3.npy"]  # no leftovers


def test_shuffled_cached_streams_follow_the_seeds_permutation_in_memory_and_from_a_file(mocked, tmp_path):
    stored = _images(data.load("celeb_a", "train", batch_size=8, data_dir=tmp_path, cache="off"))

    def epochs(mode, seed):
        ds = data.load("celeb_a", "train", batch_size=8, data_dir=tmp_path, cache=mode, shuffle=True, seed=seed,
                       repeat=True)
        return _images(ds.take(5)).reshape(2, 20, 64, 64, 3)  # two epochs of 20, batches across the boundary

    first = epochs("file", 3)  # writes the file
    np.testing.assert_array_equal(epochs("auto", 3), first)  # a later run reading it
    np.testing.assert_array_equal(epochs("memory", 3), first)
    for epoch in range(2):
        np.testing.assert_array_equal(first[epoch], stored[image_cache.epoch_order(20, 3, epoch)])
    assert not np.array_equal(first[0], first[1])  # each epoch afresh
    assert not np.array_equal(epochs("memory", 4)[0], first[0])
    unshuffled = _images(data.load("celeb_a", "train", batch_size=8, data_dir=tmp_path, shuffle=False))
    np.testing.assert_array_equal(unshuffled, stored)


def test_cached_batches_match_the_decoded_pipeline_in_shape_and_count(mocked, tmp_path):
    kwargs = dict(batch_size=8, data_dir=tmp_path, drop_remainder=True)
    decoded, cached = data.load("celeb_a", "test", cache="off", **kwargs), data.load("celeb_a", "test", cache="file",
                                                                                      **kwargs)
    assert cached.element_spec == decoded.element_spec == tf.TensorSpec((8, 64, 64, 3), tf.float32)
    assert [len(b) for b in cached] == [8, 8]
    single = data.load("celeb_a", "test", data_dir=tmp_path, cache="auto")
    assert single.element_spec.shape.as_list() == [64, 64, 3] and len(list(single)) == 20
    repeated = data.load("celeb_a", "test", data_dir=tmp_path, batch_size=8, shuffle=True, repeat=True)
    assert repeated.cardinality() == tf.data.INFINITE_CARDINALITY


def test_a_folder_of_shipped_digits_is_cached_under_the_data_dir(digit_folder, tmp_path):
    shape = (32, 32, 3)
    decoded = _images(data.load(digit_folder, "train", batch_size=7, image_shape=shape, cache="off"))
    cached = _images(data.load(digit_folder, "train", batch_size=7, image_shape=shape, data_dir=tmp_path,
                               cache="file"))
    assert decoded.shape == (30, 32, 32, 3)
    np.testing.assert_array_equal(cached, decoded)
    path = data.cache_file(digit_folder, "train", tmp_path, shape)
    assert path.startswith(str(tmp_path / "tfvq_cache")) and path.endswith("train-32x32x3.npy")
    assert json.load(open(image_cache.description_path(path)))["version"].startswith("30 files")
    shuffled = _images(data.load(digit_folder, "train", batch_size=7, image_shape=shape, data_dir=tmp_path,
                                 shuffle=True, seed=0))
    np.testing.assert_array_equal(shuffled, decoded[image_cache.epoch_order(30, 0, 0)])
    # a new file in the folder: the cache no longer describes it
    from PIL import Image

    Image.fromarray(np.zeros((28, 28), np.uint8)).save(os.path.join(digit_folder, "train", "new.png"))
    try:
        with pytest.raises(data.ImageCacheError, match="was written from '30 files.*now '31 files"):
            data.load(digit_folder, "train", image_shape=shape, data_dir=tmp_path)
    finally:
        os.remove(os.path.join(digit_folder, "train", "new.png"))


def test_the_cached_stream_outpaces_decoding(mocked, tmp_path):
    import time

    ds = data.load("celeb_a", "train", batch_size=256, data_dir=tmp_path, cache="file", shuffle=True, seed=0,
                   repeat=True)
    iterator = iter(ds)
    next(iterator)
    start = time.perf_counter()
    for _ in range(10):
        next(iterator)
    assert 10 * 256 / (time.perf_counter() - start) > 1000  # about 20,000/s on 2 shared cores


# --- errors ----------------------------------------------------------------------------------------


def test_a_cache_file_of_another_dataset_or_shape_is_refused(mocked, tmp_path):
    path = str(tmp_path / "faces.npy")
    data.load("celeb_a", "test", data_dir=tmp_path, cache=path)
    with pytest.raises(data.ImageCacheError, match=r"holds 'celeb_a' split 'test' at 64x64x3, not 'cifar10' split "
                       r"'test' at 32x32x3.*delete .*faces.npy"):
        data.load("cifar10", "test", data_dir=tmp_path, cache=path)
    with pytest.raises(data.ImageCacheError, match="not 'celeb_a' split 'test' at 32x32x3"):
        data.load("celeb_a", "test", data_dir=tmp_path, cache=path, image_shape=(32, 32, 3))
    with pytest.raises(data.ImageCacheError, match="not 'celeb_a' split 'train'"):
        data.load("celeb_a", "train", data_dir=tmp_path, cache=path)
    meta_path = image_cache.description_path(path)
    meta = json.load(open(meta_path))
    json.dump(dict(meta, version="tfds celeb_a 0.0.1"), open(meta_path, "w"))
    with pytest.raises(data.ImageCacheError, match="written from 'tfds celeb_a 0.0.1'.*the data is now 'tfds celeb_a"):
        data.load("celeb_a", "test", data_dir=tmp_path, cache=path)


def test_a_truncated_or_foreign_npy_is_refused(mocked, tmp_path):
    path = data.cache_file("celeb_a", "test", tmp_path)
    data.write_cache("celeb_a", "test", tmp_path)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1000)
    with pytest.raises(data.ImageCacheError, match="Cannot read the image cache .*delete"):
        data.load("celeb_a", "test", data_dir=tmp_path)
    data.write_cache("celeb_a", "test", tmp_path, overwrite=True)
    assert len(list(data.load("celeb_a", "test", data_dir=tmp_path))) == 20
    foreign = str(tmp_path / "mine.npy")
    np.save(foreign, np.zeros((20, 64, 64, 3), np.uint8))
    with pytest.raises(data.ImageCacheError, match=r"mine.npy is not a tfvq image cache: mine.json"):
        data.load("celeb_a", "test", data_dir=tmp_path, cache=foreign)


def test_missing_data_dirs_and_bad_modes_say_what_to_do(digit_folder, tmp_path):
    with pytest.raises(data.DatasetNotPreparedError, match="tfvq data prepare celeb_a"):
        data.load("celeb_a", "train", data_dir=tmp_path / "missing", cache="file")
    with pytest.raises(FileNotFoundError, match="data_dir .*missing' does not exist"):
        data.load(digit_folder, "train", image_shape=(8, 8, 1), data_dir=tmp_path / "missing", cache="file")
    with pytest.raises(ValueError, match="pass data_dir=DIR .*cache='memory'"):
        data.load(digit_folder, "train", image_shape=(8, 8, 1), cache="file")
    with pytest.raises(ValueError, match="cache must be one of 'auto', 'off', 'file', 'memory' or a path"):
        data.load("celeb_a", cache="disk")
    with pytest.raises(ValueError, match="held in memory already"):
        data.write_cache("digits", "train", tmp_path)
    # a folder without a data_dir and without a cache asked for decodes as before
    assert _images(data.load(digit_folder, "test", batch_size=5, image_shape=(8, 8, 1))).shape == (10, 8, 8, 1)


def test_an_interrupted_write_leaves_no_cache(tmp_path):
    path = str(tmp_path / "c" / "x.npy")
    expected = image_cache.describe("x", "train", (4, 4, 3), None)

    def image(i):  # a source that fails after 300 images, as a corrupt record would
        with tf.control_dependencies([tf.debugging.assert_less(i, tf.constant(300, tf.int64))]):
            return tf.zeros((4, 4, 3), tf.uint8)

    broken = tf.data.Dataset.range(600).map(image)
    with pytest.raises(tf.errors.InvalidArgumentError):
        image_cache.write(path, broken, expected)
    assert os.listdir(tmp_path / "c") == []
    with pytest.raises(ValueError, match="expected uint8 \\(4, 4, 3\\)"):
        image_cache.write(path, tf.data.Dataset.from_tensors(tf.zeros((4, 4, 1), tf.uint8)), expected)
    with pytest.raises(ValueError, match="split is empty"):
        image_cache.write(path, tf.data.Dataset.from_tensors(tf.zeros((4, 4, 3), tf.uint8)).take(0), expected)
    assert os.listdir(tmp_path / "c") == []


def test_tfvq_data_cache_writes_each_split_and_says_where(mocked, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    data_command.arguments(parser)
    args = parser.parse_args(["cache", "celeb_a", f"--data_dir={tmp_path}", "--splits=train,test",
                              "--image_shape=32,32,3"])
    assert data_command.run(args) == 0
    out = capsys.readouterr().out
    for split in ("train", "test"):
        path = data.cache_file("celeb_a", split, tmp_path, (32, 32, 3))
        assert f"{split}: 20 images 32x32x3 uint8 in {path}" in out
        assert np.load(path).shape == (20, 32, 32, 3)
    bad = parser.parse_args(["cache", "celeb_a", f"--data_dir={tmp_path}", "--image_shape=32,32"])
    with pytest.raises(ValueError, match="--image_shape takes H,W,C"):
        data_command.run(bad)
