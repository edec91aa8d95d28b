"""TensorFlow Datasets sources: read prepared tfds data, never download.

Four tfds datasets are used by the papers:

* `mnist` (HQA §6.2): 28x28x1, resized bilinearly to 32x32x1 ("MNIST rescaled
  to 32x32").
* `celeb_a` (HQA §6.1, RRVQ §4): tfds stores 218x178x3 (H x W) aligned faces;
  the central 148x148 square is cropped (rows 35..182, columns 15..162, both
  inclusive; a common choice in CelebA VAE code, which keeps the whole face
  and some hair) and resized to 64x64x3 with antialiased bilinear filtering.
  Neither paper states its crop.
* `cifar10`, `svhn_cropped` (RRVQ §4): 32x32x3, used as they are.

Every resized image is rounded back to uint8, as a resized image file would be,
so all datasets lie on the 8-bit grid (value k means k / 255) and a
discretised likelihood over 256 levels (RRVQ App. C) applies exactly.

tfds is asked with `download=False`: a dataset that is not prepared in
`data_dir` raises `DatasetNotPreparedError` at once, with the commands that
prepare it, instead of a download attempt (tfds otherwise retries network
requests for minutes on a machine without internet).
"""

import os

import tensorflow as tf

CELEB_A_CROP = 148
"""Side of the central square cropped from CelebA's 218x178 images before resizing."""

CELEB_A_SIZE = 64
"""Side of the CelebA images fed to the models (HQA §6.1; RRVQ App. F: 64x64)."""

MNIST_SIZE = 32
"""Side of the resized MNIST images (HQA §6.2)."""

MNIST_NATIVE = 28
"""Side of the MNIST digits as stored (28x28), which `mnist_to_32` resizes."""


class DatasetNotPreparedError(FileNotFoundError):
    """A tfds dataset is not prepared in the data directory it was looked for in.

    tfvq never downloads: prepare the dataset on a machine with internet and
    copy its data directory here (the message says how).
    """


def not_prepared_message(name, data_dir):
    """The message of `DatasetNotPreparedError` for dataset `name` missing from `data_dir`."""
    return (
        f"tfds dataset '{name}' is not prepared in data_dir={data_dir!r}, and tfvq does not "
        "download (it calls tfds with download=False).\n"
        "To prepare it, on a machine with internet run\n"
        f"    tfvq data prepare {name} --data_dir=DIR   (or python -m tfvq.data prepare {name} --data_dir=DIR)\n"
        f"then copy DIR (it holds DIR/{name}/<version>/) to this machine and pass --data_dir=DIR "
        f"(or data_dir=DIR in Python). To run without any download, use an embedded dataset: "
        "'mnist10k' (10,000 real MNIST digits, shipped; `tfvq train --bundled_recipe` trains the MNIST models "
        "on it), 'digits' (8x8 digits), 'swatches' or 'toy_modes'."
    )


def _to_uint8(images):
    """Rounds float images on the [0, 1] scale to uint8 levels 0..255."""
    return tf.cast(tf.clip_by_value(tf.round(images * 255.0), 0.0, 255.0), tf.uint8)


def resize_bilinear(images, height, width):
    """uint8 images [..., h, w, C] -> uint8 [..., height, width, C]: `tf.image.resize` bilinear (half-pixel
    centres, no antialiasing) of pixels / 255, rounded to the 8-bit grid; one image or a batch, in a graph or
    eagerly. The rule `mnist_to_32` applies, and so the one the codec applies to an image of the size a model's
    training images were resized from (`DatasetInfo.resized_from`, `tfvq.codec.compress(resize="auto")`)."""
    images = tf.cast(images, tf.float32) / 255.0
    return _to_uint8(tf.image.resize(images, (height, width), method="bilinear"))


def mnist_to_32(images):
    """uint8 MNIST digits [..., 28, 28, 1] -> uint8 [..., 32, 32, 1], bilinear, rounded to the 8-bit grid
    (HQA §6.2: "MNIST rescaled to 32x32"; `resize_bilinear`); one image or a batch. The tfds `mnist` and the
    embedded `mnist10k` both go through it."""
    return resize_bilinear(images, MNIST_SIZE, MNIST_SIZE)


def _preprocess_mnist(image):
    """uint8 [28, 28, 1] -> uint8 [32, 32, 1] (`mnist_to_32`)."""
    return tf.ensure_shape(mnist_to_32(image), (MNIST_SIZE, MNIST_SIZE, 1))


def _crop_offsets(height, width):
    """Top-left corner of the central `CELEB_A_CROP` square of a height x width image."""
    return (height - CELEB_A_CROP) // 2, (width - CELEB_A_CROP) // 2


def _crop_celeb_a(image):
    """uint8 [218, 178, 3] -> its central 148x148 square (rows 35..182, columns 15..162)."""
    shape = tf.shape(image)
    top, left = _crop_offsets(shape[0], shape[1])
    return tf.image.crop_to_bounding_box(image, top, left, CELEB_A_CROP, CELEB_A_CROP)


def _resize_celeb_a(image):
    """uint8 [148, 148, 3] -> uint8 [64, 64, 3], antialiased bilinear (a 2.3x downsampling)."""
    image = tf.cast(image, tf.float32) / 255.0
    image = tf.image.resize(image, (CELEB_A_SIZE, CELEB_A_SIZE), method="bilinear", antialias=True)
    return tf.ensure_shape(_to_uint8(image), (CELEB_A_SIZE, CELEB_A_SIZE, 3))


def _preprocess_celeb_a(image):
    """uint8 [218, 178, 3] -> central 148x148 crop -> uint8 [64, 64, 3] (HQA §6.1, RRVQ §4)."""
    return _resize_celeb_a(_crop_celeb_a(image))


def _decode_and_crop_celeb_a(encoded):
    """Encoded CelebA image bytes -> its central 148x148 square, uint8 [148, 148, 3].

    CelebA is stored as JPEG: `tf.image.decode_and_crop_jpeg` decodes only the
    crop window (about half of the 218x178 pixels), and JPEG decoding is the
    main cost of the CelebA pipeline. Other encodings (PNG, as written by
    `tfds.testing.mock_data`) are decoded whole, then cropped.
    """

    def jpeg():
        shape = tf.image.extract_jpeg_shape(encoded)
        top, left = _crop_offsets(shape[0], shape[1])
        window = tf.stack([top, left, CELEB_A_CROP, CELEB_A_CROP])
        return tf.image.decode_and_crop_jpeg(encoded, window, channels=3)

    def other():
        return _crop_celeb_a(tf.io.decode_image(encoded, channels=3, expand_animations=False))

    image = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    return tf.ensure_shape(image, (CELEB_A_CROP, CELEB_A_CROP, 3))


def _preprocess_32x32x3(image):
    """uint8 [32, 32, 3] as it is (CIFAR-10, SVHN)."""
    return tf.ensure_shape(image, (32, 32, 3))


PREPROCESS = {
    "mnist": _preprocess_mnist,
    "celeb_a": _resize_celeb_a,  # the crop happens while decoding, see `_image_decoder`
    "cifar10": _preprocess_32x32x3,
    "svhn_cropped": _preprocess_32x32x3,
}
"""Per tfds dataset: a map from its decoded uint8 "image" feature to the uint8 image tfvq uses."""


def _image_decoder(name):
    """tfds decoders that decode only the "image" feature (cropped while decoding for celeb_a)."""
    import tensorflow_datasets as tfds  # noqa: PLC0415

    if name != "celeb_a":
        return tfds.decode.PartialDecoding({"image": True})

    @tfds.decode.make_decoder()
    def decode_and_crop(encoded, feature):
        del feature
        return _decode_and_crop_celeb_a(encoded)

    return tfds.decode.PartialDecoding({"image": True}, decoders={"image": decode_and_crop()})


def source(name, split, data_dir=None, shuffle_files=False, seed=None):
    """Unbatched uint8 images of a prepared tfds dataset, preprocessed for tfvq.

    Calls the real `tfds.load(name, split=split, data_dir=data_dir,
    download=False)`, decoding only the "image" feature (celeb_a: only its
    central crop), then maps `PREPROCESS` with `num_parallel_calls=AUTOTUNE`
    (order preserved).

    Args:
      name: one of `PREPROCESS`.
      split: a split of the dataset (already validated by the caller).
      data_dir: tfds data directory; None uses tfds' default (`TFDS_DATA_DIR`
        or ~/tensorflow_datasets).
      shuffle_files: shuffle the order of the tfds shards.
      seed: seed of the shard shuffle.

    Returns:
      `tf.data.Dataset` of uint8 images [H, W, C].

    Raises:
      DatasetNotPreparedError: the dataset is not prepared in `data_dir`.
    """
    import tensorflow_datasets as tfds  # noqa: PLC0415  (slow import, only for tfds data)

    if data_dir is not None:
        data_dir = os.path.expanduser(os.fspath(data_dir))
    try:
        ds = tfds.load(
            name,
            split=split,
            data_dir=data_dir,
            download=False,
            shuffle_files=shuffle_files,
            read_config=tfds.ReadConfig(shuffle_seed=seed),
            decoders=_image_decoder(name),
        )
    except AssertionError as err:
        # tfds' as_dataset raises AssertionError("... could not find data in ...")
        # when download=False and the data directory holds no prepared version.
        builder = tfds.builder(name, data_dir=data_dir)
        if builder.is_prepared():
            raise
        raise DatasetNotPreparedError(not_prepared_message(name, os.fspath(builder.data_dir_root))) from err
    return ds.map(lambda example: PREPROCESS[name](example["image"]), num_parallel_calls=tf.data.AUTOTUNE)
