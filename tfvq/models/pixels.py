"""Images in and out of a model: the one check at the door, and images given back as they came.

Every public method of a model that takes images accepts uint8 `[B, H, W, C]`
(0..255) or float `[B, H, W, C]` in [0, 1] (`to_float_images`); a method that
returns images returns the kind it was given (`like_input`), as TensorFlow
Compression's models do. A method that makes images from codes or noise takes
`dtype="float32" | "uint8"` (`output_is_uint8`).
"""

import tensorflow as tf

from tfvq.images import tensor_images


def to_float_images(images, image_shape, name="images"):
    """Checks a batch of images and returns `(float32 [B, H, W, C] in [0, 1], was_uint8)`.

    The one place where images enter a model. Accepts uint8 (0..255, divided
    by 255) and float images with values in [0, 1] (any float dtype, cast to
    float32), as NumPy arrays, lists or tensors. The checks and their
    messages are `tfvq.images` (`tensor_images`), shared with the codec,
    data loading and the TFLite export.

    Raises:
      TypeError: another dtype (int32, bool, strings), saying how to convert.
      ValueError: not [batch, H, W, C] with the model's H, W and C, or float
        values outside [0, 1] or not finite (checked eagerly when the values
        are known, by an assertion op inside a `tf.function`).
    """
    return tensor_images(images, image_shape, name)


def to_uint8(images):
    """Float images in [0, 1] -> uint8 pixels: `round(255 * clip(x, 0, 1))`."""
    return tf.cast(tf.round(tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0) * 255.0), tf.uint8)


def like_input(images, was_uint8):
    """Returns float images in [0, 1] as the caller gave them: uint8 if `was_uint8`, else float32."""
    return to_uint8(images) if was_uint8 else tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0)


def output_is_uint8(dtype):
    """`dtype=` of the methods that make images from codes or noise: "float32" or "uint8" (or tf dtypes)."""
    try:
        name = dtype if isinstance(dtype, str) else tf.as_dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "uint8"):
        raise ValueError(f"dtype must be 'float32' (images in [0, 1]) or 'uint8' (pixels), got {dtype!r}.")
    return name == "uint8"
