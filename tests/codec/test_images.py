"""Tests of tfvq.codec.images: image files and arrays in and out of the codec, padding, tiles, and the resize of
images coded at a model's size and its least-squares inverse."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq import codec
from tfvq.codec import images
from tfvq.codec.errors import CodecError
from tfvq.codec.images import bilinear_matrix, resize_back


def test_png_files_of_another_size_or_channel_count_are_refused(tmp_path):
    rgb = tmp_path / "rgb.png"
    tf.io.write_file(str(rgb), tf.io.encode_png(np.zeros((32, 32, 3), np.uint8)))
    with pytest.raises(CodecError, match="3 channels.*32x32 images with 1 channel.*does not resize"):
        codec.load_png(rgb, (32, 32, 1))
    big = tmp_path / "big.png"
    tf.io.write_file(str(big), tf.io.encode_png(np.zeros((64, 64, 1), np.uint8)))
    with pytest.raises(CodecError, match="64x64"):
        codec.load_png(big, (32, 32, 1))


@pytest.mark.parametrize("size,source", [(32, 28), (28, 32), (32, 8), (7, 5), (1, 4), (4, 1)])
def test_bilinear_matrix_is_tf_image_resize_bilinear(size, source):
    identity = np.eye(source, dtype=np.float32)[None, :, :, None]  # each column of the identity resized alone
    want = tf.image.resize(identity, (size, source), method="bilinear").numpy()[0, :, :, 0]
    np.testing.assert_allclose(bilinear_matrix(size, source), want, atol=1e-5)  # TF computes in float32


def test_resize_back_inverts_the_resize_up_exactly():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 28, 20, 1)).astype(np.uint8)
    up = np.einsum("ij,njkc,lk->nilc", bilinear_matrix(32, 28), x.astype(np.float64), bilinear_matrix(24, 20))
    np.testing.assert_array_equal(resize_back(up, 28, 20), x)
    same = rng.integers(0, 256, (1, 32, 32, 1)).astype(np.uint8)
    np.testing.assert_array_equal(resize_back(same, 32, 32), same)


def test_padding_reflects_at_the_bottom_and_right_and_repeats_a_single_pixel():
    x = np.arange(6, dtype=np.uint8).reshape(1, 2, 3, 1)
    out = images.pad_reflect(x, 4, 5)
    assert out.shape == (1, 4, 5, 1)
    np.testing.assert_array_equal(out[0, :, :, 0], [[0, 1, 2, 1, 0], [3, 4, 5, 4, 3], [0, 1, 2, 1, 0],
                                                    [3, 4, 5, 4, 3]])
    column = np.array([7, 9], np.uint8).reshape(1, 2, 1, 1)  # one pixel wide: nothing to reflect
    np.testing.assert_array_equal(images.pad_reflect(column, 2, 3)[0, :, :, 0], [[7, 7, 7], [9, 9, 9]])


def test_tiles_are_in_row_major_order_per_image_and_put_back_together():
    x = np.arange(2 * 4 * 6 * 1, dtype=np.uint8).reshape(2, 4, 6, 1)
    tiles = images.to_tiles(x, (2, 3))
    assert tiles.shape == (8, 2, 3, 1)
    np.testing.assert_array_equal(tiles[1], x[0, 0:2, 3:6])  # image 0, tile row 0, column 1
    np.testing.assert_array_equal(tiles[2], x[0, 2:4, 0:3])  # image 0, tile row 1, column 0
    np.testing.assert_array_equal(tiles[4], x[1, 0:2, 0:3])  # image 1's first tile
    np.testing.assert_array_equal(images.from_tiles(tiles, 2, 4, 6), x)


def test_image_files_of_any_format_are_read_at_their_size_converted_when_asked(tmp_path):
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb[..., 0]).save(tmp_path / "b.bmp")
    np.testing.assert_array_equal(codec.load_image(tmp_path / "a.png", 3), rgb)
    gray = codec.load_image(tmp_path / "a.png", 1, convert="grayscale")
    assert gray.shape == (5, 7, 1) and gray.dtype == np.uint8
    np.testing.assert_array_equal(gray[..., 0], np.asarray(Image.fromarray(rgb).convert("L")))
    np.testing.assert_array_equal(codec.load_image(tmp_path / "b.bmp", 1)[..., 0], rgb[..., 0])
    with pytest.raises(CodecError, match=r"a.png is RGB \(3 channels\); the model takes grayscale images \(1 "
                                         r"channel\)\. Pass --grayscale to convert it"):
        codec.load_image(tmp_path / "a.png", 1)
    (tmp_path / "c.png").write_bytes(b"not an image")
    with pytest.raises(CodecError, match="is not an image file this tool reads"):
        codec.load_image(tmp_path / "c.png", 1)
    with pytest.raises(FileNotFoundError, match="No such file"):
        codec.load_image(tmp_path / "none.png", 1)


def test_arrays_of_any_size_become_uint8_batches_and_others_are_refused_saying_what_is_taken():
    x = np.array([[[0.0], [0.5]], [[1.0], [0.25]]], np.float32)  # one image [2, 2, 1] in [0, 1]
    out = images.any_size_batch(x, 1)
    assert out.dtype == np.uint8 and out.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(out[0, ..., 0], np.round(np.array([[0, 0.5], [1, 0.25]]) * 255))
    with pytest.raises(CodecError, match="pass uint8"):
        images.any_size_batch(x, 1, exact=True)
    with pytest.raises(CodecError, match="1 channel"):
        images.any_size_batch(np.zeros((2, 2, 3), np.uint8), 1)
    batch = images.as_batch(np.zeros((32, 32, 1), np.uint8), (32, 32, 1))
    assert batch.shape == (1, 32, 32, 1) and batch.dtype == np.uint8
    assert images.as_batch(np.zeros((2, 32, 32, 1), np.float64), (32, 32, 1)).dtype == np.float32
    with pytest.raises(CodecError, match="Resize or convert the image first"):
        images.as_batch(np.zeros((28, 28, 1), np.uint8), (32, 32, 1))


def test_saved_pngs_read_back_exactly(tmp_path):
    gray = np.random.default_rng(1).integers(0, 256, (6, 5, 1)).astype(np.uint8)
    rgb = np.random.default_rng(2).integers(0, 256, (4, 3, 3)).astype(np.uint8)
    images.save_image_png(tmp_path / "gray.png", gray)
    images.save_image_png(tmp_path / "rgb.png", rgb)
    np.testing.assert_array_equal(codec.load_image(tmp_path / "gray.png", 1), gray)
    np.testing.assert_array_equal(codec.load_image(tmp_path / "rgb.png", 3), rgb)
    codec.save_png(tmp_path / "tf.png", gray)
    np.testing.assert_array_equal(codec.load_png(tmp_path / "tf.png", (6, 5, 1)), gray)
