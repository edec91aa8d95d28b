"""Tests of `tfvq.data.tfds_datasets`: the tfds path (mocked and fake-prepared), its preprocessing and the
error when a dataset is not prepared."""

import time

import numpy as np
import pytest
import tensorflow as tf

from tfvq import data
from tfvq.data import tfds_datasets

TFDS_SHAPES = {
    "mnist": (32, 32, 1),
    "celeb_a": (64, 64, 3),
    "cifar10": (32, 32, 3),
    "svhn_cropped": (32, 32, 3),
}


def _batches(ds):
    return [b.numpy() for b in ds]


def test_tfds_datasets_have_the_papers_image_shapes():
    """The papers' datasets: HQA's MNIST at 32x32 and CelebA at 64x64, RRVQ's CIFAR-10 and SVHN."""
    for name, shape in TFDS_SHAPES.items():
        assert data.info(name).image_shape == shape


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
