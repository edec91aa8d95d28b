"""Your own images: folders of image files, array files, tfds:NAME; conversion to the model's shape."""

import logging
import os

import numpy as np
import pytest
from PIL import Image

from tfvq import data
from tfvq.data import sources


def _write(path, array, fmt=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, format=fmt)


def _gray(seed, h, w):
    return np.random.default_rng(seed).integers(0, 256, size=(h, w), dtype=np.uint8)


def test_a_wide_image_is_centre_cropped_and_area_resized_as_a_block_mean(tmp_path):
    image = _gray(0, 64, 96)
    _write(str(tmp_path / "train" / "a.png"), image)
    _write(str(tmp_path / "test" / "b.png"), image)
    got = data.load_numpy(str(tmp_path), "train", image_shape=(32, 32, 1))
    # Oracle: the centred 64x64 window, then the mean of each 2x2 block (an area resize by 2), rounded.
    window = image[:, 16:80].astype(np.float64)
    want = np.round(window.reshape(32, 2, 32, 2).mean(axis=(1, 3)))
    np.testing.assert_array_equal(np.round(got[0, :, :, 0] * 255), want)


def test_every_image_format_and_mode_is_read_and_converted_to_the_models_channels(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    _write(str(tmp_path / "train" / "x.png"), rgb)
    _write(str(tmp_path / "train" / "deep" / "y.jpg"), rgb, "JPEG")
    _write(str(tmp_path / "train" / "z.bmp"), rgb, "BMP")
    _write(str(tmp_path / "train" / "w.webp"), rgb, "WEBP")
    Image.fromarray(rgb).convert("P").save(tmp_path / "train" / "v.gif")
    Image.fromarray(np.dstack([rgb, np.full((40, 40), 255, np.uint8)])).save(tmp_path / "train" / "u.png")  # RGBA
    _write(str(tmp_path / "test" / "t.png"), rgb)
    gray = data.load_numpy(str(tmp_path), "train", image_shape=(20, 20, 1))
    colour = data.load_numpy(str(tmp_path), "train", image_shape=(20, 20, 3))
    assert gray.shape == (6, 20, 20, 1) and colour.shape == (6, 20, 20, 3)
    # The PNG and its RGBA twin give the same RGB image; luma follows ITU-R 601 (Pillow's "L").
    files = sources.image_files(str(tmp_path), "train")
    png, rgba = files.index(str(tmp_path / "train" / "x.png")), files.index(str(tmp_path / "train" / "u.png"))
    np.testing.assert_array_equal(colour[png], colour[rgba])
    luma = np.asarray(Image.fromarray(rgb).convert("L"), np.float64).reshape(20, 2, 20, 2).mean(axis=(1, 3))
    np.testing.assert_array_equal(np.round(gray[png, :, :, 0] * 255), np.round(luma))


def test_without_split_folders_a_hash_of_the_path_splits_the_files_deterministically(tmp_path):
    for i in range(60):
        _write(str(tmp_path / f"g{i % 3}" / f"{i}.png"), _gray(i, 8, 8))
    train = sources.image_files(str(tmp_path), "train")
    test = sources.image_files(str(tmp_path), "test")
    assert set(train).isdisjoint(test) and len(train) + len(test) == 60 and 0 < len(test) < 20
    assert test == sources.image_files(str(tmp_path), "test")
    import zlib

    for path in test:
        assert zlib.crc32(os.path.relpath(path, tmp_path).encode()) % 100 < sources.TEST_PERCENT


def test_unreadable_files_are_skipped_counted_and_named_never_a_crash(tmp_path, caplog):
    for i in range(4):
        _write(str(tmp_path / "train" / f"{i}.png"), _gray(i, 16, 16))
    (tmp_path / "train" / "broken.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "train" / "empty.jpg").write_bytes(b"")
    _write(str(tmp_path / "test" / "t.png"), _gray(9, 16, 16))
    with caplog.at_level(logging.WARNING):
        ds = data.load(str(tmp_path), "train", batch_size=2, image_shape=(16, 16, 1), repeat=True)
        batches = [b.numpy() for b, _ in zip(ds, range(5))]  # several epochs of the 4 good images
    assert all(b.shape == (2, 16, 16, 1) for b in batches)
    assert "broken.png" in caplog.text and "empty.jpg" in caplog.text


def test_an_empty_source_and_an_unreadable_one_are_clear_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No .*images for split 'train'"):
        data.load(str(tmp_path / "empty"), "train", image_shape=(8, 8, 1))
    bad = tmp_path / "bad" / "train"
    bad.mkdir(parents=True)
    (bad / "x.png").write_bytes(b"junk")
    (tmp_path / "bad" / "test").mkdir()
    (tmp_path / "bad" / "test" / "y.png").write_bytes(b"junk")
    with pytest.raises(ValueError, match="could be read: 1 unreadable"):
        data.load_numpy(str(tmp_path / "bad"), "train", image_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="needs the model's image_shape"):
        data.load(str(tmp_path / "bad"), "train")


def test_npy_and_npz_files_of_uint8_or_float_images(tmp_path):
    images = np.random.default_rng(3).integers(0, 256, size=(50, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "a.npy", images)
    train = data.load_numpy(str(tmp_path / "a.npy"), "train", image_shape=(8, 8, 1))
    test = data.load_numpy(str(tmp_path / "a.npy"), "test", image_shape=(8, 8, 1))
    assert len(train) + len(test) == 50 and len(test) > 0
    np.testing.assert_array_equal(np.round(np.concatenate([train, test]) * 255).astype(np.uint8)[..., 0].sum(),
                                  images.sum())
    np.savez(tmp_path / "b.npz", train=images[:40, :, :, None] / 255.0, test=images[40:, :, :, None] / 255.0)
    got = data.load_numpy(str(tmp_path / "b.npz"), "test", image_shape=(8, 8, 1))
    np.testing.assert_allclose(got[..., 0], images[40:] / 255.0, atol=1e-6)
    np.save(tmp_path / "c.npy", np.full((4, 8, 8), 2.0))
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        data.load_numpy(str(tmp_path / "c.npy"), "train", image_shape=(8, 8, 1))
    with pytest.raises(FileNotFoundError, match="No such array file"):
        data.load_numpy(str(tmp_path / "missing.npy"), "train", image_shape=(8, 8, 1))


def test_any_tfds_image_dataset_is_found_by_its_image_feature():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        images = data.load_numpy("tfds:beans", "train", image_shape=(16, 16, 1))
        ds = data.load("tfds:beans", "test", batch_size=3, image_shape=(16, 16, 3))
        batch = next(iter(ds)).numpy()
    assert images.shape == (6, 16, 16, 1) and batch.shape == (3, 16, 16, 3)
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_a_named_dataset_is_converted_when_another_shape_is_asked():
    got = data.load_numpy("digits", "test", limit=3, image_shape=(16, 16, 3))
    full = data.load_numpy("digits", "test", limit=3)
    assert got.shape == (3, 16, 16, 3)
    levels = np.round(full[..., 0] * 255).reshape(3, 16, 2, 16, 2).mean(axis=(2, 4))  # 2x2 block means of pixels
    np.testing.assert_array_equal(np.round(got[..., 0] * 255), np.round(levels))


