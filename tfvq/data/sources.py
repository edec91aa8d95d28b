"""Your own images: a folder of image files, a NumPy array file, or any tfds image dataset.

`tfvq.data.load(source, split, image_shape=...)` takes, beside the named
datasets (`tfvq.data.DATASETS`):

* a directory of images (PNG, JPEG, BMP, GIF, WebP; searched recursively).
  `train/` and `test/` subdirectories are the splits when both are present;
  otherwise a file goes to the test split when the CRC-32 of its path
  relative to the directory, modulo 100, is below `TEST_PERCENT` (10): a
  deterministic split that does not change when files are added elsewhere.
* a `.npz` or `.npy` file of uint8 images (0..255) or float images in [0, 1],
  `[N, H, W]` or `[N, H, W, C]`. A `.npz` with `train` and `test` arrays has
  those splits; otherwise (a `.npy`, or a `.npz` of one array) image i goes
  to the test split when the CRC-32 of its index is below `TEST_PERCENT`
  modulo 100.
* `tfds:NAME` (e.g. `tfds:beans`): any tfds dataset with an image feature
  (found by type), read with `download=False` from `data_dir`.

Every image is converted to the model's `image_shape` (H, W, C) by one rule,
in the `tf.data` pipeline, in parallel: its channels to C (grayscale to RGB by
repetition, RGB to grayscale by ITU-R 601 luma, alpha dropped), then a
centre crop to the aspect ratio W / H, then an area resize to H x W (the
average of the source pixels each output pixel covers), rounded to uint8.

Files are decoded by Pillow (every format above, any mode). A file that
cannot be read is skipped, counted, and its name logged (the first
`LOG_FIRST` of them): a bad file never stops an epoch. An empty source, or
one where no file could be read, is a `ValueError`.
"""

import os
import threading
import zlib

import numpy as np
import tensorflow as tf
from absl import logging

from tfvq.data.tfds_datasets import DatasetNotPreparedError
from tfvq.images import as_uint8, check_any_size, check_dtype, check_values

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
TEST_PERCENT = 10
"""The share of a source without explicit splits that goes to the test split (by a hash, see the module doc)."""
LOG_FIRST = 5
"""How many unreadable files are named in the log (all are counted)."""
TFDS_PREFIX = "tfds:"


def is_user_source(source):
    """True for a path to a directory / .npz / .npy file, or a `tfds:NAME` source."""
    source = os.fspath(source) if isinstance(source, os.PathLike) else source
    if not isinstance(source, str):
        return False
    return source.startswith(TFDS_PREFIX) or os.path.isdir(source) or source.endswith((".npz", ".npy"))


def _in_test(key):
    return zlib.crc32(key.encode("utf-8")) % 100 < TEST_PERCENT


class UnreadableFiles:
    """Counts the files a pipeline could not decode, and logs the first few names."""

    def __init__(self):
        self.count = 0
        self.names = []
        self._lock = threading.Lock()

    def add(self, path, error):
        with self._lock:
            self.count += 1
            if len(self.names) < LOG_FIRST:
                self.names.append(path)
                logging.warning("Skipping unreadable image %s (%s); %d skipped so far.", path, error, self.count)
            elif self.count % 100 == 0:
                logging.warning("%d unreadable images skipped so far.", self.count)


# ------------------------------------------------------------------------------------------ conversion
def _channels_of(mode_channels):
    return "L" if mode_channels == 1 else "RGB"


def decode_file(path, channels):
    """The image file at `path` as uint8 [h, w, channels] (Pillow: any format and mode; GIFs: first frame)."""
    from PIL import Image

    with Image.open(path) as image:
        image.seek(0)
        return np.asarray(image.convert(_channels_of(channels)), np.uint8).reshape(
            image.size[1], image.size[0], channels)


def to_channels(images, channels):
    """uint8 or float images [..., h, w, c] -> `channels` (1 or 3): luma (ITU-R 601), repetition, alpha dropped."""
    c = images.shape[-1]
    if c in (2, 4):  # grayscale + alpha, RGBA: drop the alpha channel
        images = images[..., : c - 1]
        c -= 1
    if c == channels:
        return images
    if channels == 1 and c == 3:
        return tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(images, tf.float32))), images.dtype) \
            if images.dtype == tf.uint8 else tf.image.rgb_to_grayscale(images)
    if channels == 3 and c == 1:
        return tf.repeat(images, 3, axis=-1)
    raise ValueError(f"Cannot convert images with {c} channels to {channels}: expected 1 (grayscale), 3 (RGB) "
                     "or 4 (RGBA) channels.")


def crop_and_resize(image, height, width):
    """uint8 [h, w, C] -> uint8 [height, width, C]: centre crop to the aspect ratio, then an area resize.

    Images already of the target size are returned unchanged.
    """
    shape = tf.shape(image)
    h, w = shape[0], shape[1]
    # The largest centred window of aspect width / height: crop the longer side.
    crop_h = tf.minimum(h, tf.cast(tf.math.round(tf.cast(w, tf.float64) * height / width), tf.int32))
    crop_w = tf.minimum(w, tf.cast(tf.math.round(tf.cast(h, tf.float64) * width / height), tf.int32))
    crop_h, crop_w = tf.maximum(crop_h, 1), tf.maximum(crop_w, 1)
    top, left = (h - crop_h) // 2, (w - crop_w) // 2
    window = image[top: top + crop_h, left: left + crop_w]
    resized = tf.image.resize(tf.cast(window, tf.float32), (height, width), method="area")
    out = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return tf.ensure_shape(out, (height, width, None))


def conform(image, image_shape):
    """uint8 [h, w, c] -> uint8 `image_shape` by the module's rule (channels, centre crop, area resize)."""
    height, width, channels = image_shape
    return tf.ensure_shape(crop_and_resize(to_channels(image, channels), height, width), tuple(image_shape))


# --------------------------------------------------------------------------------------------- sources
def image_files(directory, split):
    """The image files of one split of a directory source, sorted (see the module doc for the split rule)."""
    directory = os.fspath(directory)
    if split not in ("train", "test"):
        raise ValueError(f"A directory source has the splits 'train' and 'test', got {split!r}.")
    split_dirs = all(os.path.isdir(os.path.join(directory, s)) for s in ("train", "test"))
    root = os.path.join(directory, split) if split_dirs else directory
    found = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(os.path.join(folder, name))
    found.sort()
    if not split_dirs:
        found = [f for f in found if _in_test(os.path.relpath(f, directory)) == (split == "test")]
    if not found:
        raise ValueError(
            f"No {' or '.join(IMAGE_EXTENSIONS)} images for split {split!r} in {directory} (searched "
            f"{'its ' + split + '/ folder' if split_dirs else 'recursively'}). Put images there, or train/ and "
            "test/ subfolders."
        )
    return found


def _array_splits(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such array file: {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise ValueError(f"Could not read {path} as a NumPy .npy/.npz file of images: {err}") from None
    if isinstance(loaded, np.ndarray):
        arrays = {"images": loaded}
    else:
        with loaded:
            arrays = {k: loaded[k] for k in loaded.files}
    if {"train", "test"} <= set(arrays):
        return {"train": arrays["train"], "test": arrays["test"]}
    if len(arrays) != 1:
        raise ValueError(f"{path} holds arrays {sorted(arrays)}: expected one array of images, or 'train' and "
                         "'test' arrays.")
    (images,) = arrays.values()
    test = np.array([_in_test(str(i)) for i in range(len(images))], bool)
    return {"train": images[~test], "test": images[test]}


def array_images(path, split):
    """uint8 [N, h, w, c] images of one split of a .npz / .npy source."""
    splits = _array_splits(path)
    if split not in splits:
        raise ValueError(f"An array source has the splits 'train' and 'test', got {split!r}.")
    images = splits[split]
    name = os.fspath(path)
    try:
        check_dtype(images.dtype, name)
    except TypeError as err:  # a data file's content: ValueError, as every other problem of a source
        raise ValueError(str(err)) from None
    if images.ndim == 3:
        images = images[..., None]
    check_any_size(images.shape, (1, 2, 3, 4), name, single=False,
                   hint="An array [N, H, W] is taken as grayscale.")
    if len(images) == 0:
        raise ValueError(f"{path} has no images in its {split!r} split.")
    check_values(images, name)
    return as_uint8(images)


def _tfds_image_feature(builder):
    import tensorflow_datasets as tfds

    for key, feature in builder.info.features.items():
        if isinstance(feature, tfds.features.Image):
            return key
    raise ValueError(f"tfds dataset {builder.name!r} has no image feature (features: {list(builder.info.features)}).")


def tfds_source(name, split, data_dir=None, shuffle_files=False, seed=None):
    """uint8 images [h, w, c] of a tfds dataset's split (`download=False`), its image feature found by type."""
    import tensorflow_datasets as tfds  # noqa: PLC0415  (slow import, only for tfds data)

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001  (tfds raises several kinds for an unknown name)
        raise ValueError(f"Unknown tfds dataset {name!r}: {str(err).splitlines()[0]}") from None
    key = _tfds_image_feature(builder)
    try:
        ds = tfds.load(name, split=split, data_dir=data_dir, download=False, shuffle_files=shuffle_files,
                       read_config=tfds.ReadConfig(shuffle_seed=seed))
    except (AssertionError, FileNotFoundError) as err:
        where = data_dir or "tfds' default data directory"
        raise DatasetNotPreparedError(
            f"tfds dataset {name!r} is not prepared in {where} ({str(err).splitlines()[0]}). Prepare it with "
            f"`python -m tfvq.data prepare {name} --data_dir=DIR` on a machine with internet, copy DIR here and "
            "pass data_dir=DIR (train.py --data_dir=DIR)."
        ) from None
    except ValueError as err:
        raise ValueError(f"tfds dataset {name!r} has no split {split!r}: {str(err).splitlines()[0]}") from None
    return ds.map(lambda example: example[key], num_parallel_calls=tf.data.AUTOTUNE)


def user_source(source, split, image_shape, data_dir=None, shuffle=False, seed=None, unreadable=None):
    """A `tf.data.Dataset` of uint8 images of `image_shape` from a user source, and its size (None if unknown).

    Raises `ValueError` for an empty source or a bad split, `FileNotFoundError`
    for a missing file.
    """
    if image_shape is None:
        raise ValueError(f"Loading {source!r} needs the model's image_shape (H, W, C) to convert the images to.")
    image_shape = tuple(int(d) for d in image_shape)
    source = os.fspath(source)
    if source.startswith(TFDS_PREFIX):
        ds = tfds_source(source[len(TFDS_PREFIX):], split, data_dir, shuffle_files=shuffle, seed=seed)
        return ds.map(lambda x: conform(x, image_shape), num_parallel_calls=tf.data.AUTOTUNE), None
    if os.path.isdir(source):
        files = image_files(source, split)
        unreadable = unreadable if unreadable is not None else UnreadableFiles()
        channels = image_shape[-1]

        def read(path):
            path = path.decode("utf-8") if isinstance(path, bytes) else str(path)
            try:
                return decode_file(path, channels), True
            except Exception as err:  # noqa: BLE001  (any decoding failure: skip the file, never stop the epoch)
                unreadable.add(path, f"{type(err).__name__}: {err}")
                return np.zeros((1, 1, channels), np.uint8), False

        def decode(path):
            image, ok = tf.numpy_function(read, [path], (tf.uint8, tf.bool), stateful=False)
            return tf.ensure_shape(image, (None, None, channels)), tf.ensure_shape(ok, ())

        ds = tf.data.Dataset.from_tensor_slices(files)
        ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE).filter(lambda image, ok: ok)
        ds = ds.map(lambda image, ok: conform(image, image_shape), num_parallel_calls=tf.data.AUTOTUNE)
        return ds, len(files)
    if source.endswith((".npz", ".npy")):
        images = array_images(source, split)
        ds = tf.data.Dataset.from_tensor_slices(images)
        if images.shape[1:] != image_shape:
            ds = ds.map(lambda x: conform(x, image_shape), num_parallel_calls=tf.data.AUTOTUNE)
        return ds, len(images)
    raise ValueError(f"Unknown data source {source!r}: expected a dataset name, a directory of images, a .npz/.npy "
                     "file or tfds:NAME.")


def user_numpy(source, split, image_shape, limit=None, data_dir=None):
    """uint8 images [N, H, W, C] of a user source, in stored order (unreadable files skipped and logged)."""
    unreadable = UnreadableFiles()
    ds, _ = user_source(source, split, image_shape, data_dir=data_dir, unreadable=unreadable)
    if limit is not None:
        ds = ds.take(int(limit))
    batches = [b.numpy() for b in ds.batch(256)]
    if not batches:
        raise ValueError(f"No image of {source!r} ({split}) could be read: {unreadable.count} unreadable "
                         f"(first: {', '.join(unreadable.names)}).")
    return np.concatenate(batches)


def tfds_labels(name, split, data_dir=None, limit=None):
    """The integer class labels of a tfds split in stored order, or None without a `ClassLabel` feature."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    keys = [k for k, f in builder.info.features.items() if isinstance(f, tfds.features.ClassLabel)]
    if not keys:
        return None
    ds = tfds.load(name, split=split, data_dir=data_dir, download=False,
                   decoders={k: tfds.decode.SkipDecoding() for k, f in builder.info.features.items()
                             if isinstance(f, tfds.features.Image)})
    ds = ds.map(lambda example: example[keys[0]])
    if limit is not None:
        ds = ds.take(int(limit))
    return np.concatenate([b.numpy() for b in ds.batch(4096)]).astype(np.int64)
