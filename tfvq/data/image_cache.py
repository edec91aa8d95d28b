"""Images decoded once: a split's uint8 images, decoded, cropped and resized a single time, then streamed.

Decoding is the cost of an image pipeline: CelebA's 178x218 JPEGs decode at a few hundred images/s per CPU
core, far below what an accelerator consumes, while the 64x64 images the models see are 12 KB each (CelebA's
162,770 training images: 2.0 GB). So `tfvq.data.load(..., cache=...)` can keep the decoded images:

* `"file"`: one pass decodes the split and writes `<data_dir>/tfvq_cache/<source>/<split>-HxWxC.npy` (uint8
  `[N, H, W, C]`, a plain NumPy file) with `<split>-HxWxC.json` beside it (what it holds: the source, split,
  shape, count and the version of the data it came from). Every later epoch, and every later run, reads that
  file memory-mapped (from the page cache when it fits in memory, else from disk, 12 KB a read).
  `tfvq data cache NAME --data_dir=DIR` writes it ahead of training.
* `"memory"`: the same one pass into a NumPy array, kept by the dataset (nothing on disk; once per `load`).
* `"auto"` (the default): the file under `data_dir` when one was written, else decode every epoch.
* `"off"`: decode every epoch.
* a path ending in `.npy`: that file, written on first use.

A cached stream is a stream of indices into the array: in stored order, or shuffled by a permutation of
the whole split drawn afresh for each epoch from `numpy.random.default_rng([seed, epoch])` (the same seed
gives the same order, in memory or from a file, in any process); the indices are batched and each batch
gathered in one read, so the images stay uint8 until the batch is cast to float.

A file of another source, split or shape, one written from another version of the data, a truncated file or
a `.npy` without its description is refused with `ImageCacheError`, which says what it holds and what to do.
"""

import io
import json
import os
import re

import numpy as np
import tensorflow as tf

MODES = ("auto", "off", "file", "memory")
"""The values of `cache` besides a path ending in `.npy` (see the module doc)."""

CACHE_FOLDER = "tfvq_cache"
"""The folder under a data directory that holds the cache files."""

FORMAT = 1
"""The version of the cache files' description (`describe`)."""

WRITE_BATCH = 256
"""Images decoded per batch while a cache is written (and gathered per read of an unbatched stream)."""


class ImageCacheError(ValueError):
    """A cache file that does not hold what was asked for (another source, split, shape or version of the
    data), or that cannot be read; the message says which and what to do."""


def check_mode(cache):
    """`cache` as given, if it is one of `MODES` or a path ending in `.npy` (str or os.PathLike)."""
    if isinstance(cache, os.PathLike):
        cache = os.fspath(cache)
    if isinstance(cache, str) and (cache in MODES or cache.endswith(".npy")):
        return os.path.expanduser(cache) if cache.endswith(".npy") else cache
    raise ValueError(f"cache must be one of {', '.join(repr(m) for m in MODES)} or a path ending in .npy, "
                     f"got {cache!r}.")


def default_path(source, split, image_shape, root):
    """`<root>/tfvq_cache/<source, as a folder name>/<split>-HxWxC.npy`."""
    folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(source)).strip("_.") or "source"
    shape = "x".join(str(int(d)) for d in image_shape)
    return os.path.join(os.path.expanduser(os.fspath(root)), CACHE_FOLDER, folder, f"{split}-{shape}.npy")


def describe(source, split, image_shape, version):
    """What a cache file holds (its `.json`, without the count): the source, split, image shape, and the version
    of the data (e.g. the tfds version), which a file written from other data does not match."""
    return {"format": FORMAT, "source": str(source), "split": str(split),
            "image_shape": [int(d) for d in image_shape], "version": version}


def description_path(path):
    """The `.json` beside cache file `path` (`X.npy` -> `X.json`)."""
    return path[: -len(".npy")] + ".json"


def _what(meta):
    shape = "x".join(str(d) for d in meta.get("image_shape") or ()) or "?"
    return f"{meta.get('source')!r} split {meta.get('split')!r} at {shape}"


def read(path, expected):
    """The images of cache file `path`, memory-mapped read-only, after checking its description against
    `expected` (`describe`).

    Raises:
      ImageCacheError: no description beside it, another source, split, shape or version, or a file whose
        array is not the `[count, H, W, C]` uint8 its description says (e.g. truncated).
    """
    meta_path = description_path(path)
    redo = f"delete {path} (and {os.path.basename(meta_path)}) to cache the data again"
    try:
        with open(meta_path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise ImageCacheError(f"{path} is not a tfvq image cache: {os.path.basename(meta_path)}, which says what it "
                              f"holds, is not beside it; {redo}, or pass another cache path.") from None
    except (OSError, ValueError) as err:
        raise ImageCacheError(f"Cannot read {meta_path} ({err}); {redo}.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ImageCacheError(f"{meta_path} is not a description of format {FORMAT}; {redo}.")
    for key in ("source", "split", "image_shape"):
        if meta.get(key) != expected[key]:
            raise ImageCacheError(f"The image cache {path} holds {_what(meta)}, not {_what(expected)}: pass another "
                                  f"cache path, or {redo}.")
    if meta.get("version") != expected["version"]:
        raise ImageCacheError(f"The image cache {path} was written from {meta.get('version')!r} of {_what(meta)}, "
                              f"and the data is now {expected['version']!r}; {redo}.")
    try:
        images = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise ImageCacheError(f"Cannot read the image cache {path} ({err}); {redo}.") from None
    shape = (meta.get("count"),) + tuple(expected["image_shape"])
    if images.dtype != np.uint8 or images.shape != shape:
        raise ImageCacheError(f"The image cache {path} holds {images.dtype} {images.shape}, and its description "
                              f"says uint8 {shape}; {redo}.")
    return images


def _header(shape):
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": "|u1", "fortran_order": False, "shape": tuple(shape)})
    return out.getvalue()


def _batches(images, image_shape):
    """uint8 `[n, H, W, C]` batches of an unbatched dataset of images of `image_shape`."""
    for batch in images.batch(WRITE_BATCH).prefetch(tf.data.AUTOTUNE):
        batch = batch.numpy()
        if batch.dtype != np.uint8 or batch.shape[1:] != tuple(image_shape):
            raise ValueError(f"Cannot cache images of {batch.dtype} {batch.shape[1:]}: expected uint8 {image_shape}.")
        yield batch


def write(path, images, expected, progress=None):
    """Decodes the unbatched uint8 dataset `images` once into cache file `path` and its description, and
    returns the file's images (`read`).

    The array is written to a temporary file beside `path` and renamed when complete, so an interrupted
    write leaves no cache behind. `progress(count)` is called after each batch.

    Raises:
      ValueError: the dataset has no image, or images of another dtype or shape than `expected` says.
      ImageCacheError: the cache cannot be written there (the message says where else to put it).
    """
    image_shape = tuple(expected["image_shape"])
    folder = os.path.dirname(os.path.abspath(path))
    part = f"{path}.{os.getpid()}.part"
    meta_part = f"{description_path(path)}.{os.getpid()}.part"
    header = _header((0,) + image_shape)
    count = 0
    try:
        os.makedirs(folder, exist_ok=True)
        with open(part, "wb") as f:
            f.write(header)  # a placeholder of the final header's length (numpy pads it so the count fits)
            for batch in _batches(images, image_shape):
                f.write(batch.tobytes())
                count += len(batch)
                if progress is not None:
                    progress(count)
            if count == 0:
                raise ValueError(f"No image to cache for {_what(expected)}: the split is empty.")
            final = _header((count,) + image_shape)
            if len(final) != len(header):
                raise ValueError(f"{count} images do not fit the cache header of {len(header)} bytes.")
            f.seek(0)
            f.write(final)
        with open(meta_part, "w") as f:
            json.dump(dict(expected, count=count), f, indent=1)
        os.replace(part, path)
        os.replace(meta_part, description_path(path))
    except OSError as err:
        raise ImageCacheError(f"Cannot write the image cache {path} ({err.strerror or err}): pass a writable "
                              "data_dir, a cache path elsewhere (cache=PATH.npy), or cache='memory'.") from None
    finally:
        for leftover in (part, meta_part):
            if os.path.exists(leftover):
                os.remove(leftover)
    return read(path, dict(expected))


def to_memory(images, image_shape):
    """The unbatched uint8 dataset `images` decoded once into one array `[N, H, W, C]`."""
    batches = list(_batches(images, image_shape))
    if not batches:
        raise ValueError("No image to cache: the split is empty.")
    return np.concatenate(batches)


def epoch_order(count, seed, epoch):
    """The permutation of `count` images that a stream shuffled with `seed` reads in epoch `epoch` (from 0)."""
    return np.random.default_rng([int(seed), int(epoch)]).permutation(count).astype(np.int64)


def stream(images, batch_size=None, shuffle=False, repeat=False, seed=None, drop_remainder=False):
    """A `tf.data.Dataset` of uint8 images (batches `[B, H, W, C]`, or single images when `batch_size` is None)
    read from the array `images`: in stored order, or shuffled by `epoch_order(len(images), seed, epoch)`;
    repeated epochs run on without a break at their boundaries, as `shuffle().repeat().batch()` would.

    Args:
      images: uint8 `[N, H, W, C]`, a NumPy array or memory map (`read`, `to_memory`).
      batch_size: images per batch, or None for single images.
      shuffle: a fresh permutation of the whole array every epoch.
      repeat: repeat forever.
      seed: the shuffle's seed (None: drawn once, at random).
      drop_remainder: drop a last batch smaller than `batch_size`.
    """
    count, shape = len(images), tuple(images.shape[1:])
    if shuffle:
        seed = int(np.random.SeedSequence().generate_state(1)[0]) if seed is None else int(seed)

        def order(epoch):
            return tf.ensure_shape(tf.numpy_function(lambda e: epoch_order(count, seed, e), [epoch], tf.int64,
                                                     stateful=False), [count])

        epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
        indices = epochs.flat_map(lambda e: tf.data.Dataset.from_tensor_slices(order(e)))
        indices = indices.apply(tf.data.experimental.assert_cardinality(
            tf.data.INFINITE_CARDINALITY if repeat else count))
    else:
        indices = tf.data.Dataset.range(count)
        indices = indices.repeat() if repeat else indices
    fixed = batch_size is not None and drop_remainder
    indices = indices.batch(batch_size or WRITE_BATCH, drop_remainder=fixed)

    def gather(batch):
        out = tf.numpy_function(lambda i: np.asarray(images[i]), [batch], tf.uint8, stateful=False)
        out.set_shape((batch_size if fixed else None,) + shape)
        return out

    ds = indices.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.unbatch() if batch_size is None else ds
