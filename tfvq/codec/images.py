"""Images in and out of the codec: PNG files and arrays checked against a model's `image_shape`.

TensorFlow is imported only inside the functions that need it, so importing
`tfvq.codec` stays TensorFlow-free.

It shares its name with `tfvq.images` because it is the same idea one level
down: that module says what images tfvq accepts, this one applies it to the
codec's files and arrays (and turns its errors into `CodecError`).
"""

import functools
import os

import numpy as np

from tfvq.codec.errors import CodecError
from tfvq.images import any_size_batch as images_any_size_batch
from tfvq.images import as_uint8, fixed_size_batch

_KINDS = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}


def _takes(image_shape):
    h, w, c = image_shape
    return f"{h}x{w} images with {c} channel{'s' if c > 1 else ''}"


def _checked(check, *args, **kwargs):
    """`check(...)` of `tfvq.images` with its TypeError / ValueError raised as the codec's CodecError."""
    try:
        return check(*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise CodecError(str(err)) from None


def as_batch(images, image_shape):
    """One image [H, W, C] or a batch [N, H, W, C] as a batch the model takes (the contract's images).

    uint8 images (0..255) are returned as uint8; float images must have
    values in [0, 1] and are returned as float32. The model divides uint8
    pixels by 255 itself (`tfvq.models.pixels.to_float_images`). The checks are
    `tfvq.images.fixed_size_batch`.

    Raises:
      CodecError: another shape than the model's, float values outside
        [0, 1] (or not finite), or another dtype; the message says what the
        model takes.
    """
    images = _checked(fixed_size_batch, images, image_shape, single=True,
                      hint="Resize or convert the image first.")
    return images if images.dtype == np.uint8 else images.astype(np.float32)


def load_png(path, image_shape):
    """A PNG file as uint8 [H, W, C]; a size or channel count other than `image_shape` raises CodecError."""
    import tensorflow as tf

    try:
        raw = tf.io.read_file(os.fspath(path))
        image = tf.io.decode_png(raw, channels=0, dtype=tf.uint8).numpy()
    except tf.errors.NotFoundError:
        raise FileNotFoundError(f"No such file: {path}") from None
    except tf.errors.InvalidArgumentError as err:
        raise CodecError(f"{path} is not a readable PNG image: {err.message.splitlines()[0]}") from None
    h, w, c = image_shape
    if image.shape != (h, w, c):
        raise CodecError(
            f"{path} is {image.shape[0]}x{image.shape[1]} {_KINDS.get(image.shape[2], '')} "
            f"({image.shape[2]} channels); the model takes {_takes(image_shape)} ({_KINDS.get(c, '')}). "
            "Convert or resize it first (this tool does not resize)."
        )
    return image


def save_png(path, image):
    """Writes a uint8 [H, W, C] image as PNG."""
    import tensorflow as tf

    tf.io.write_file(os.fspath(path), tf.io.encode_png(np.asarray(image, dtype=np.uint8)))


# ------------------------------------------------------------------------------------- image files, any size
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
"""The image files `tfvq compress` reads (Pillow), matched case-insensitively."""


def load_image(path, channels, convert=None):
    """An image file (PNG, JPEG, BMP, GIF (first frame), WebP) as uint8 [H, W, C], of any size.

    Args:
      path: the file.
      channels: the model's C (1 or 3).
      convert: None (the file must already have C channels), "grayscale"
        or "rgb" (Pillow's conversion, ITU-R 601-2 luma for grayscale).

    Raises:
      FileNotFoundError: no such file. CodecError: not an image Pillow reads,
      or another number of channels than the model's (saying how to convert).
    """
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path}")
    try:
        with Image.open(path) as image:
            image.seek(0)
            if convert is not None:
                image = image.convert({"grayscale": "L", "rgb": "RGB"}[convert])
            elif image.mode in ("P", "PA"):
                image = image.convert("RGBA" if "transparency" in image.info or image.mode == "PA" else "RGB")
            elif image.mode in ("I;16", "I", "F", "1"):
                image = image.convert("L")
            elif image.mode == "CMYK":
                image = image.convert("RGB")
            array = np.asarray(image)
    except UnidentifiedImageError:
        raise CodecError(f"{path} is not an image file this tool reads (PNG, JPEG, BMP, GIF, WebP).") from None
    except (OSError, ValueError) as err:
        raise CodecError(f"{path} could not be read as an image: {err}") from None
    if array.ndim == 2:
        array = array[..., None]
    c = array.shape[2]
    if c != channels:
        hint = "--grayscale" if channels == 1 else "--rgb"
        raise CodecError(f"{path} is {_KINDS.get(c, f'{c}-channel')} ({c} channel{'s' if c > 1 else ''}); the model "
                         f"takes {_KINDS.get(channels, '')} images ({channels} channel{'s' if channels > 1 else ''}). "
                         f"Pass {hint} to convert it, or convert it first.")
    return np.ascontiguousarray(array.astype(np.uint8))


def pad_reflect(images, height, width):
    """uint8 [N, h, w, C] -> [N, height, width, C], padded at the bottom and right by reflection
    (edge replication along an axis of one pixel, which has nothing to reflect)."""
    _, h, w, _ = images.shape
    pads = [(0, 0), (0, height - h), (0, width - w), (0, 0)]
    if (h == 1 and height > 1) or (w == 1 and width > 1):
        return np.pad(images, pads, mode="edge")
    return np.pad(images, pads, mode="reflect")


# ------------------------------------------------------------------------------------ resizing and back
def bilinear_matrix(size, source):
    """The [size, source] matrix of bilinear resampling along one axis from `source` pixels to `size`, as
    `tf.image.resize(method="bilinear")` does it (half-pixel centres: output pixel i samples the input at
    (i + 1/2) source / size - 1/2, clamped to the first and last pixel; no antialiasing): row i holds the
    weights of the two input pixels around that point (`tfvq.data.tfds_datasets.resize_bilinear` resizes
    an image [h, w] to [H, W] as `U_H x U_W^T`, U_H = bilinear_matrix(H, h), before rounding)."""
    size, source = int(size), int(source)
    at = np.clip((np.arange(size) + 0.5) * (source / size) - 0.5, 0, source - 1)
    lo = np.floor(at).astype(np.int64)
    hi = np.minimum(lo + 1, source - 1)
    frac = at - lo
    out = np.zeros((size, source))
    np.add.at(out, (np.arange(size), lo), 1 - frac)
    np.add.at(out, (np.arange(size), hi), frac)
    return out


@functools.lru_cache(maxsize=64)
def _inverse(size, resized):
    """The least-squares inverse [size, resized] of `bilinear_matrix(resized, size)` (its pseudo-inverse)."""
    return np.linalg.pinv(bilinear_matrix(resized, size))


def resize_back(images, height, width):
    """uint8 images [N, h, w, C] that were resized bilinearly from height x width (`bilinear_matrix`) ->
    uint8 [N, height, width, C]: the least-squares inverse of that resize, per axis (the pseudo-inverse P of
    its matrix U, `np.linalg.pinv`; P U = I when h >= height, so an image resized up and not changed comes back
    exact), rounded to the 8-bit grid.

    The codec's choice for files of resized images (`tfvq.codec.container.RESIZED`): against
    `tf.image.resize`'s filters (bilinear, area, bicubic, Lanczos 3 and 5, Mitchell, Gaussian, nearest, with
    and without antialiasing) on the 32x32 `hqa_mnist` images of real 28x28 digits, it gives the highest PSNR
    against the 28x28 originals at layers 1 and 2, by 2.1 and 0.7 dB over Lanczos, the next best
    (`python benchmarks/real_digit_files.py`, docs/compression.md).
    """
    images = np.asarray(images)
    _, h, w, _ = images.shape
    rows, cols = _inverse(int(height), h), _inverse(int(width), w)
    out = np.einsum("ij,njkc,lk->nilc", rows, images.astype(np.float64), cols)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def to_tiles(images, tile):
    """[N, a th, b tw, C] -> [N a b, th, tw, C]: tiles in row-major order per image."""
    n, h, w, c = images.shape
    th, tw = tile
    x = images.reshape(n, h // th, th, w // tw, tw, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, th, tw, c)


def from_tiles(tiles, images, height, width):
    """The inverse of `to_tiles`: [N a b, th, tw, C] -> [N, height, width, C]."""
    _, th, tw, c = tiles.shape
    a, b = height // th, width // tw
    x = tiles.reshape(images, a, b, th, tw, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(images, height, width, c)


def save_image_png(path, image):
    """Writes a uint8 [H, W, C] (C = 1 or 3, or 2/4 with alpha) image as PNG with Pillow."""
    from PIL import Image

    image = np.asarray(image, np.uint8)
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(os.fspath(path), format="PNG")


def any_size_batch(images, channels, exact=False):
    """One image [H, W, C] or a batch [N, H, W, C] of any size with the model's C, as uint8.

    Float images in [0, 1] are rounded to 8 bits (`round(255 x)`); with
    `exact` (lossless files) they must already be uint8. The checks are
    `tfvq.images.any_size_batch`.

    Raises:
      CodecError: another rank or channel count, an empty image, float
        values outside [0, 1], another dtype; the message says what is taken.
    """
    images = _checked(images_any_size_batch, images, channels, exact=exact,
                      hint="Convert the image first (`tfvq compress` does it with --grayscale or --rgb).")
    return as_uint8(images)
