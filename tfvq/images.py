"""The one image normaliser: what every part of tfvq accepts as images, and the messages when it is not that.

Images are uint8 pixels (0..255) or floats with values in [0, 1], NHWC.
The models (`tfvq.models.pixels.to_float_images`), the codec
(`tfvq.codec.images`), data loading (`tfvq.data.sources`) and the TFLite
export (`tfvq.export.tflite`) all check their images here, so the same bad
input gets the same message everywhere. The checks are small functions:

* `check_dtype`: uint8 or float (or, for lossless coding, uint8 only);
  another dtype is a `TypeError`.
* `check_shape` (a model's fixed `[N, H, W, C]`) and `check_any_size`
  (`[H, W, C]` or `[N, H, W, C]` of any size with the model's C, or one of
  several C): another rank, size or channel count, or an empty image, is a
  `ValueError` saying the shape expected and what to do.
* `check_values`: float images must be finite with values in [0, 1]
  (`ValueError`).

and the conversions `as_uint8` (floats rounded, `round(255 x)`) and
`as_float32` (uint8 divided by 255). `fixed_size_batch` and
`any_size_batch` run the checks in order (dtype, shape, values) on NumPy
arrays. `tensor_images` is the variant for tensors inside a model (values
checked by assertion ops when traced).

NumPy only at import: TensorFlow is imported inside `tensor_images`, so the
TensorFlow-free parts of tfvq (the codec's NumPy side) can use this module.
`tfvq.codec.images` shares its name as the same idea one level down: the
codec's image files and arrays, checked here.
"""

import math

import numpy as np

SHAPE_HINT = "Resize or crop the images to the model's image shape first (tfvq.data converts them)."
"""What to do about a fixed-size shape mismatch, unless the caller says better."""
VALUES_HINT = "Pass 8-bit pixels as uint8, or scale them by 1/255."


def _plural(n):
    return f"{n} channel{'s' if n != 1 else ''}"


def _channels_text(channels):
    if isinstance(channels, int):
        return _plural(channels)
    channels = tuple(channels)
    return ", ".join(map(str, channels[:-1])) + f" or {channels[-1]} channels"


def _shape_text(shape):
    return "unknown" if shape is None else str([None if d is None else int(d) for d in shape])


def dtype_kind(dtype):
    """"uint8", "float" or None (anything else) for a NumPy dtype, a TensorFlow `DType` or a dtype name."""
    if hasattr(dtype, "is_floating") and hasattr(dtype, "name"):  # a tf.DType, without importing TensorFlow
        return "uint8" if dtype.name == "uint8" else "float" if dtype.is_floating else None
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        return None
    if dtype == np.uint8:
        return "uint8"
    if dtype.kind == "f" or dtype.name == "bfloat16":  # ml_dtypes' bfloat16 is not of kind "f"
        return "float"
    return None


def check_dtype(dtype, name="images", exact=False):
    """"uint8" or "float" for an accepted dtype; a `TypeError` saying how to convert otherwise.

    With `exact` (lossless coding) only uint8 is accepted: a file that codes
    8-bit pixels exactly cannot take floats.
    """
    kind = dtype_kind(dtype)
    shown = getattr(dtype, "name", dtype)
    if exact and kind != "uint8":
        raise TypeError(f"{name} must be uint8 (0..255), got dtype {shown}; a lossless file codes 8-bit pixels "
                        "exactly, so pass uint8.")
    if kind is None:
        raise TypeError(f"{name} must be uint8 (0..255) or float (0..1), got dtype {shown}. Convert 8-bit pixels "
                        "with `.astype('uint8')` (NumPy) or `tf.cast(x, tf.uint8)`, or scale them to [0, 1].")
    return kind


def check_shape(shape, image_shape, name="images", context="", hint=SHAPE_HINT):
    """Checks that `shape` (a list, None for unknown dims; None for an unknown rank) is `[N, H, W, C]` of
    `image_shape`; a `ValueError` naming the shape expected and the one given otherwise. `context` is
    appended to what is expected (e.g. ": this encoder was exported for 32x32x1 images")."""
    h, w, c = (int(d) for d in image_shape)
    ok = shape is not None and len(shape) == 4 and all(
        got is None or int(got) == want for got, want in zip(list(shape)[1:], (h, w, c)))
    if not ok:
        raise ValueError(f"{name} must be [N, {h}, {w}, {c}] (a batch of {h}x{w} images with {_plural(c)}: "
                         f"uint8 pixels or floats in [0, 1]){context}, got shape {_shape_text(shape)}. {hint}")


def check_any_size(shape, channels, name="images", hint="Convert the images first.", single=True):
    """Checks `[N, H, W, C]` (or `[H, W, C]` with `single`) of any positive H, W, with C `channels`
    (an int, or the tuple of those accepted); a `ValueError` saying what is taken otherwise."""
    shape = list(shape)
    accepted = (channels,) if isinstance(channels, int) else tuple(channels)
    ranks = (3, 4) if single else (4,)
    c = "C" if len(accepted) > 1 else str(accepted[0])
    if len(shape) not in ranks or shape[-1] not in accepted or 0 in shape[-3:-1]:
        expected = f"[H, W, {c}] or [N, H, W, {c}]" if single else f"[N, H, W, {c}]"
        raise ValueError(f"{name}: expected images {expected} of any size with {_channels_text(channels)}, got "
                         f"shape {_shape_text(shape)}. {hint}")


def check_range(lo, hi, finite=True, name="images"):
    """A `ValueError` unless `finite` and lo >= 0 and hi <= 1 (the extremes of float images)."""
    if not finite or math.isnan(lo) or math.isnan(hi) or lo < 0.0 or hi > 1.0:
        extra = "" if finite and not (math.isnan(lo) or math.isnan(hi)) else " and NaN or infinite values"
        raise ValueError(f"{name}: float images must have values in [0, 1], got values in [{lo:g}, {hi:g}]{extra}. "
                         f"{VALUES_HINT}")


def check_values(images, name="images"):
    """Float images: finite with values in [0, 1] (`check_range`). uint8 and empty arrays pass."""
    images = np.asarray(images)
    if images.dtype == np.uint8 or not images.size:
        return
    finite = bool(np.isfinite(images).all())
    values = images[np.isfinite(images)] if not finite else images
    lo, hi = (float(values.min()), float(values.max())) if values.size else (math.nan, math.nan)
    check_range(lo, hi, finite, name)


def as_array(images, name="images", exact=False):
    """`images` as a NumPy array of an accepted dtype (`check_dtype`), unchanged otherwise."""
    try:
        array = np.asarray(images)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be an array [N, H, W, C], got {type(images).__name__} ({err}).") from None
    check_dtype(array.dtype, name, exact)
    return array


def as_uint8(images):
    """Checked images -> uint8: uint8 unchanged, floats in [0, 1] rounded, `round(255 x)`."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.round(images.astype(np.float64) * 255.0).astype(np.uint8)


def as_float32(images):
    """Checked images -> float32 in [0, 1]: uint8 divided by 255, floats cast."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    return images.astype(np.float32)


def fixed_size_batch(images, image_shape, name="images", single=False, context="", hint=SHAPE_HINT):
    """A batch `[N, H, W, C]` of the model's `image_shape`, checked (dtype, shape, values), dtype kept.

    With `single`, one image `[H, W, C]` is taken as a batch of one.
    """
    images = as_array(images, name)
    if single and images.ndim == 3:
        images = images[None]
    check_shape(images.shape, image_shape, name, context, hint)
    check_values(images, name)
    return images


def any_size_batch(images, channels, name="images", exact=False, single=True, hint="Convert the images first."):
    """A batch `[N, H, W, C]` of any size with C in `channels`, checked (dtype, shape, values), dtype kept.

    With `single`, one image `[H, W, C]` is taken as a batch of one. With
    `exact` only uint8 is accepted.
    """
    images = as_array(images, name, exact)
    check_any_size(images.shape, channels, name, hint, single)
    if images.ndim == 3:
        images = images[None]
    check_values(images, name)
    return images


def tensor_images(images, image_shape, name="images"):
    """Images as the model computes with them: `(float32 tensor [N, H, W, C] in [0, 1], was_uint8)`.

    Takes NumPy arrays, lists and tensors (symbolic ones inside a
    `tf.function` too: unknown dims pass the shape check, and the values are
    checked by assertion ops). Same checks and messages as `fixed_size_batch`.
    """
    import tensorflow as tf

    if not tf.is_tensor(images):
        images = tf.convert_to_tensor(as_array(images, name))
    kind = check_dtype(images.dtype, name)
    shape = images.shape
    check_shape(shape.as_list() if shape.rank is not None else None, image_shape, name)
    if kind == "uint8":
        return tf.cast(images, tf.float32) / 255.0, True
    if tf.executing_eagerly():
        if images.shape[0] != 0:
            finite = bool(tf.reduce_all(tf.math.is_finite(images)))
            values = images if finite else tf.boolean_mask(images, tf.math.is_finite(images))
            lo, hi = ((float(tf.reduce_min(values)), float(tf.reduce_max(values))) if tf.size(values) > 0
                      else (math.nan, math.nan))
            check_range(lo, hi, finite, name)
    else:
        images = tf.debugging.assert_all_finite(images, f"{name}: float images must be finite")
        with tf.control_dependencies([
            tf.debugging.assert_greater_equal(images, tf.cast(0.0, images.dtype),
                                              message=f"{name}: float images must have values in [0, 1] (< 0)"),
            tf.debugging.assert_less_equal(images, tf.cast(1.0, images.dtype),
                                           message=f"{name}: float images must have values in [0, 1] (> 1)"),
        ]):
            images = tf.identity(images)
    return tf.cast(images, tf.float32), False
