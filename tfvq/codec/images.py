"""Images in and out of the codec: PNG files and arrays checked against a model's `image_shape`.

TensorFlow is imported only inside the functions that need it, so importing
`tfvq.codec` stays TensorFlow-free.
"""

import os

import numpy as np

from tfvq.codec.format import CodecError

_KINDS = {1: "grayscale", 2: "grayscale+alpha", 3: "RGB", 4: "RGBA"}


def _takes(image_shape):
    h, w, c = image_shape
    return f"{h}x{w} images with {c} channel{'s' if c > 1 else ''}"


def as_batch(images, image_shape):
    """One image [H, W, C] or a batch [N, H, W, C] as a batch the model takes (the contract's images).

    uint8 images (0..255) are returned as uint8; float images must have
    values in [0, 1] and are returned as float32. The model divides uint8
    pixels by 255 itself (`tfvq.models.base.to_float_images`).

    Raises:
      CodecError: another shape than the model's, float values outside
        [0, 1] (or not finite), or another dtype; the message says what the
        model takes.
    """
    images = np.asarray(images)
    if images.ndim == len(image_shape):
        images = images[None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(image_shape):
        h, w, c = image_shape
        raise CodecError(
            f"The model takes {_takes(image_shape)} (shape [{h}, {w}, {c}] or [N, {h}, {w}, {c}]), got shape "
            f"{list(images.shape)}; resize or convert the image first."
        )
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind == "f":
        if images.size and not (np.isfinite(images).all() and images.min() >= 0.0 and images.max() <= 1.0):
            raise CodecError(f"Float images must have values in [0, 1], got values in [{images.min():g}, "
                             f"{images.max():g}]; pass 8-bit pixels as uint8, or scale them by 1/255.")
        return images.astype(np.float32)
    raise CodecError(f"Images must be uint8 (0..255) or float (0..1), got dtype {images.dtype}; convert them "
                     "with `.astype(np.uint8)` or scale them to [0, 1].")


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
