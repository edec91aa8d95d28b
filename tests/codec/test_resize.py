"""Images of the size a model's training images were resized from (28x28 MNIST digits for hqa_mnist) are resized
to the model's size before coding and back after, and the file says so (the container's RESIZED flag)."""

import numpy as np
import pytest
import tensorflow as tf

from tfvq import cli, codec, data
from tfvq.codec import container, files
from tfvq.codec.errors import CodecError
from tfvq.codec.images import bilinear_matrix, resize_back
from tfvq.data.embedded import mnist10k_raw
from tfvq.data.tfds_datasets import mnist_to_32

KEPT_28 = "hqa_mnist_layer2_v4_28x28"
"""Two real 28x28 digits coded padded, before the RESIZED flag (data/README.md)."""


@pytest.fixture(scope="module")
def digits28():
    """The first two real test digits of mnist10k as stored, uint8 [2, 28, 28, 1] (the kept file's digits)."""
    return mnist10k_raw("test")[0][:2, ..., None]


@pytest.fixture(scope="module")
def resized_file(digits28):
    return codec.compress(digits28[:1], "hqa_mnist", layer=2)


# ------------------------------------------------------------------------------------------------ the resize
@pytest.mark.parametrize("size,source", [(32, 28), (28, 32), (32, 8), (7, 5), (1, 4), (4, 1)])
def test_bilinear_matrix_is_tf_image_resize_bilinear(size, source):
    identity = np.eye(source, dtype=np.float32)[None, :, :, None]  # each column of the identity resized alone
    want = tf.image.resize(identity, (size, source), method="bilinear").numpy()[0, :, :, 0]
    np.testing.assert_allclose(bilinear_matrix(size, source), want, atol=1e-5)  # TF computes in float32


def test_resize_back_inverts_the_resize_up_exactly():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (3, 28, 20, 1)).astype(np.uint8)
    up = np.einsum("ij,njkc,lk->nilc", bilinear_matrix(32, 28), x.astype(np.float64), bilinear_matrix(24, 20))
    np.testing.assert_array_equal(resize_back(up, 28, 20), x)
    same = rng.integers(0, 256, (1, 32, 32, 1)).astype(np.uint8)
    np.testing.assert_array_equal(resize_back(same, 32, 32), same)


def test_mnist_datasets_name_the_size_they_were_resized_from():
    assert data.info("mnist").resized_from == data.info("mnist10k").resized_from == (28, 28)
    assert data.info("digits").resized_from is None and data.info("cifar10").resized_from is None
    assert files.native_size("hqa_mnist") == files.native_size("vqvae_mnist") == (28, 28)
    assert files.native_size("hqa_digits") is None  # the 8x8 digits: not resized (docs/compression.md)


# ------------------------------------------------------------------------------------------------ the codec
def test_a_28x28_digit_is_coded_at_32x32_and_decodes_to_28x28(digits28, resized_file):
    f = codec.read_header(resized_file)
    assert (f.image_size, f.resized, f.lossless, f.first_layer) == ((28, 28), True, False, 2)
    assert resized_file[2] == 0x40 | container.SIZED | container.RESIZED
    decoded = codec.decompress(resized_file)
    assert decoded.dtype == np.uint8 and decoded.shape == (1, 28, 28, 1)
    # The model's images of the digit as it learned them (mnist_to_32), resized back.
    model = codec.load_model("hqa_mnist")[0]
    x32 = mnist_to_32(digits28[:1]).numpy()
    np.testing.assert_array_equal(decoded, resize_back(model.reconstruct(x32, 2).numpy(), 28, 28))
    seeded = codec.decompress(resized_file, seed=3)
    assert seeded.shape == (1, 28, 28, 1)
    np.testing.assert_array_equal(seeded, codec.decompress(resized_file, seed=3))


def test_resize_off_writes_the_files_of_before(digits28, old_files):
    kept = (old_files / f"{KEPT_28}.tfvq").read_bytes()
    off = codec.compress(digits28, "hqa_mnist", layer=2, resize="off")
    assert off == kept and not codec.read_header(off).resized
    both = codec.compress(digits28, "hqa_mnist", layer=2)
    f = codec.read_header(both)
    assert f.resized and f.images == 2 and codec.decompress(both).shape == (2, 28, 28, 1)


def test_only_lossy_images_of_the_native_size_are_resized(digits28):
    other = codec.compress(digits28[:1, :27], "hqa_mnist", layer=5)  # 27x28: coded at its size, padded
    assert (codec.read_header(other).image_size, codec.read_header(other).resized) == ((27, 28), False)
    own = codec.compress(mnist_to_32(digits28[:1]).numpy(), "hqa_mnist", layer=5)
    assert (codec.read_header(own).image_size, codec.read_header(own).resized) == (None, False)
    with pytest.raises(ValueError, match="resize must be one of auto, off"):
        codec.compress(digits28[:1], "hqa_mnist", resize="on")


def test_a_corrupt_or_contradictory_size_field_is_a_codec_error(resized_file):
    f = codec.read_header(resized_file)
    at = len(f.header) - 2  # the size's two varints end the header of a one-image file
    assert resized_file[at: at + 2] == bytes([28, 28])
    for size in (bytes([27, 28]), bytes([28, 99])):  # a size that parses: the CRC says no
        with pytest.raises(CodecError, match="CRC-32"):
            codec.decompress(resized_file[:at] + size + resized_file[at + 2:])
    with pytest.raises(CodecError, match=f"1..{container.MAX_IMAGE_PIXELS} pixels"):
        codec.decompress(resized_file[:at] + bytes([0, 28]) + resized_file[at + 2:])
    no_size = bytes([resized_file[2] & ~container.SIZED])
    with pytest.raises(CodecError, match="resized, but stores no image size"):
        codec.read_header(resized_file[:2] + no_size + resized_file[3:at] + resized_file[at + 2:])
    lossless = bytes([resized_file[2] | container.LOSSLESS])
    with pytest.raises(CodecError, match="resized, but is lossless"):
        codec.read_header(resized_file[:2] + lossless + resized_file[3:])
    with pytest.raises(ValueError, match="stores their size"):
        container.write_header("hqa_mnist", b"\0\0", 5, {5: container.STATIC}, resized=True)


# ------------------------------------------------------------------------------------------------ the command
def test_cli_resizes_by_default_and_not_with_resize_off(tmp_path, digits28, resized_file, capsys):
    from PIL import Image

    Image.fromarray(digits28[0, ..., 0]).save(tmp_path / "d.png")
    assert cli.main(["compress", str(tmp_path / "d.png"), "--model=hqa_mnist", "--layer=2"]) == 0
    assert "28x28 coded resized to the model's size" in capsys.readouterr().out
    assert (tmp_path / "d.tfvq").read_bytes() == resized_file
    assert cli.main(["info", str(tmp_path / "d.tfvq")]) == 0
    assert "1 image(s) of 28x28 pixels (coded resized to the model's size" in capsys.readouterr().out
    assert cli.main(["decompress", str(tmp_path / "d.tfvq"), "-o", str(tmp_path / "out.png")]) == 0
    out = np.asarray(Image.open(tmp_path / "out.png"))
    np.testing.assert_array_equal(out, codec.decompress(resized_file)[0, ..., 0])
    assert cli.main(["compress", str(tmp_path / "d.png"), "--model=hqa_mnist", "--layer=2", "--resize=off", "-o",
                     str(tmp_path / "off.tfvq")]) == 0
    off = (tmp_path / "off.tfvq").read_bytes()
    assert off == codec.compress(digits28[:1], "hqa_mnist", layer=2, resize="off")
    assert not codec.read_header(off).resized
    capsys.readouterr()
    with pytest.raises(SystemExit):
        cli.main(["compress", "--help"])
    assert "--resize {auto,off}" in capsys.readouterr().out
