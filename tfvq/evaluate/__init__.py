"""How good is a trained model? The evaluation `tfvq evaluate` prints (its command: `tfvq.commands.evaluate`).

`run(model, weights, dataset, ...)` evaluates a zoo name or a model folder (a `tfvq train` run folder, a
`tfvq.zoo.save` folder) on `dataset`, else the dataset the folder (or the weights folder) was trained on,
else the zoo entry's; `evaluate(model, test_images, ...)` a loaded model on given images. (`python -m
tfvq.evaluate` is `tfvq evaluate`.)

For every layer a discrete model can send (`code_layout()`), on a dataset's
test split:

* bits per image at the fixed rate (`CodeLayout.bits`), and for a zoo model
  the payload bits per image of one entropy-coded file of the test split
  (`tfvq.codec.compress`, coder "auto", with the priors beside its weights);
* distortion of the deterministic reconstruction `decode(encode(x, l), l)`:
  MSE, PSNR (10 log10(1 / MSE) per image, averaged, pixels in [0, 1]), SSIM
  (Wang et al. 2004, `tf.image.ssim`), and MS-SSIM (`tf.image.ssim_multiscale`)
  where the images are large enough for its five scales (at least 176 pixels
  a side), else SSIM alone;
* the codes used and their perplexity (exp of the entropy of the codes'
  empirical distribution) at that layer;
* for labelled data (`tfvq.data.load_labels`: digits, swatches, tfds datasets
  with a class label), the accuracy of a classifier fitted on the training
  split's originals (scikit-learn's multinomial logistic regression on the
  pixels), applied to the originals and to each layer's reconstructions.

The model's own report (`model.report`: e.g. an RRVQ-VAE's bits per dim and
KL per layer, RRVQ Table 1) comes with it (`format_table` makes the table the
command prints), and `run(..., out=DIR)` writes `evaluation.json` and a PNG
grid (originals, then each layer's reconstructions).
"""

import json
import math
import os

import numpy as np

from tfvq import codec, data, zoo
from tfvq.codec import container
from tfvq.train.outputs import format_table as table
from tfvq.train.outputs import image_grid, write_png
from tfvq.zoo import refs

LOGISTIC_TRAIN_IMAGES = 8000
"""At most this many training images fit the classifier (every one of `digits` and `mnist10k`; a seeded random
subset of a larger set, so that data stored class by class is not cut to its first classes)."""
MS_SSIM_MIN_SIZE = 176
"""MS-SSIM's five scales with an 11-pixel window need images at least this large (11 * 2^4)."""


def image_quality(originals, reconstructions):
    """Per-image MSE, PSNR, SSIM and (where the size allows) MS-SSIM, averaged: a dict of floats."""
    import tensorflow as tf

    x = tf.constant(np.asarray(originals, np.float32))
    y = tf.constant(np.clip(np.asarray(reconstructions, np.float32), 0.0, 1.0))
    mse = tf.reduce_mean(tf.square(x - y), axis=[1, 2, 3]).numpy().astype(np.float64)
    psnr = 10.0 * np.log10(1.0 / np.maximum(mse, 1e-12))
    out = {"mse": float(mse.mean()), "psnr": float(psnr.mean()),
           "ssim": float(tf.reduce_mean(tf.image.ssim(x, y, max_val=1.0)).numpy())}
    if min(x.shape[1], x.shape[2]) >= MS_SSIM_MIN_SIZE:
        out["ms_ssim"] = float(tf.reduce_mean(tf.image.ssim_multiscale(x, y, max_val=1.0)).numpy())
    return out


def code_statistics(codes, num_codes):
    """(codes used, perplexity) of an int array of codes from a codebook of `num_codes`."""
    counts = np.bincount(np.asarray(codes).ravel(), minlength=num_codes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return int((counts > 0).sum()), float(math.exp(-(p * np.log(p)).sum()))


def fit_classifier(images, labels, seed=0):
    """A multinomial logistic regression on flattened pixels (scikit-learn), fitted on `images` (at most
    `LOGISTIC_TRAIN_IMAGES` of them, a seeded random subset): HQA Table 3's classifier of reconstructions."""
    from sklearn.linear_model import LogisticRegression

    images, labels = np.asarray(images, np.float32), np.asarray(labels)
    if len(images) > LOGISTIC_TRAIN_IMAGES:
        keep = np.sort(np.random.default_rng(seed).choice(len(images), LOGISTIC_TRAIN_IMAGES, replace=False))
        images, labels = images[keep], labels[keep]
    classifier = LogisticRegression(max_iter=2000, random_state=seed)
    classifier.fit(images.reshape(len(images), -1), labels)
    return classifier


def _accuracy(classifier, images, labels):
    images = np.asarray(images, np.float32)
    return float(np.mean(classifier.predict(images.reshape(len(images), -1)) == labels))


def evaluate(model, test_images, test_labels=None, train_images=None, train_labels=None, batch_size=256, seed=0):
    """The evaluation of `model` on float test images in [0, 1] (see the module doc).

    Returns:
      dict: `layers` {layer: {bits_per_image, mse, psnr, ssim[, ms_ssim], codes_used, perplexity[, accuracy]}}
      (empty for a model without codes), `original_accuracy` (labelled data), `reconstruction` (the same
      distortion figures for `model.reconstruct`), and `model_report` (`model.report(...)["metrics"]`).
    """
    test_images = np.asarray(test_images, np.float32)
    classifier = None
    result = {"images": int(len(test_images))}
    if test_labels is not None and train_images is not None and train_labels is not None:
        classifier = fit_classifier(train_images, train_labels, seed)
        result["original_accuracy"] = _accuracy(classifier, test_images, test_labels)

    def batched(fn):
        return np.concatenate([np.asarray(fn(test_images[i: i + batch_size]))
                               for i in range(0, len(test_images), batch_size)])

    layout = model.code_layout()
    result["layers"] = {}
    for layer in range(1, (layout.num_layers if layout is not None else 0) + 1):
        codes = batched(lambda x: _first(model.encode(x, layer)))  # layer l's own codes
        recon = batched(lambda x: model.reconstruct(x, layer))
        row = {"bits_per_image": layout.bits(layer), **image_quality(test_images, recon)}
        row["codes_used"], row["perplexity"] = code_statistics(codes, layout.num_codes[layer - 1])
        if classifier is not None:
            row["accuracy"] = _accuracy(classifier, recon, test_labels)
        result["layers"][layer] = row
    result["reconstruction"] = image_quality(test_images, batched(lambda x: model.reconstruct(x)))
    result["model_report"] = model.report(test_images, batch_size=min(batch_size, 64), seed=seed)["metrics"]
    return result


def add_coded_bits(result, model_name, weights, test_images):
    """Adds `coded_bits_per_image` to each layer's row: the stream of one entropy-coded file of the test
    images at that layer (`tfvq.codec.compress`, coder "smallest": the model's priors, every plan, whatever the
    work: a rate measured, not a file made in a hurry), without its container."""
    pixels = np.round(np.clip(np.asarray(test_images), 0.0, 1.0) * 255).astype(np.uint8)
    compressor = codec.Compressor(model_name, weights)
    for layer, row in result["layers"].items():
        f = compressor.compress(pixels, layer, coder="smallest")
        row["coded_bits_per_image"] = 8 * len(f.stream) / len(pixels)
        row["coders"] = {l: container.CODERS[c] for l, c in f.coders.items()}


def _first(codes):
    """The codes of the first layer sent (a tensor, or the first of a list)."""
    return codes[0] if isinstance(codes, (list, tuple)) else codes


def format_table(result):
    """The per-layer figures as a text table."""
    coded_bits = any("coded_bits_per_image" in r for r in result["layers"].values())
    columns = ["layer", "bits"] + (["coded bits"] if coded_bits else []) + ["MSE", "PSNR", "SSIM", "codes used",
                                                                           "perplexity"]
    ms = any("ms_ssim" in r for r in result["layers"].values())
    acc = any("accuracy" in r for r in result["layers"].values())
    columns += (["MS-SSIM"] if ms else []) + (["accuracy"] if acc else [])
    rows = []
    for layer, r in sorted(result["layers"].items()):
        row = [layer, r["bits_per_image"]] + ([f"{r['coded_bits_per_image']:.1f}"] if coded_bits else [])
        row += [f"{r['mse']:.5f}", f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", r["codes_used"], f"{r['perplexity']:.1f}"]
        row += ([f"{r['ms_ssim']:.4f}"] if ms else []) + ([f"{r['accuracy']:.3f}"] if acc else [])
        rows.append(row)
    lines = [table(columns, rows)] if rows else ["(no discrete codes)"]
    if "original_accuracy" in result:
        lines.append(f"classifier accuracy on the originals: {result['original_accuracy']:.3f}")
    rec = result["reconstruction"]
    lines.append(f"reconstruct(x): MSE {rec['mse']:.5f}, PSNR {rec['psnr']:.2f} dB, SSIM {rec['ssim']:.4f}")
    report = result["model_report"]
    if "test_bpd" in report:
        lines.append(f"bits per dim (-ELBO): {report['test_bpd']:.4f}; KL per layer (bits): "
                     + ", ".join(f"{b:.1f}" for b in report["kl_bits_per_layer"]))
    return "\n".join(lines)


def run(model_name_or_dir, weights=None, dataset=None, limit=None, data_dir=None, out=None, seed=0):
    """Loads the model and the data, evaluates, writes `out/evaluation.json` and `out/evaluation.png`."""
    weights = refs.default_weights(model_name_or_dir, weights)
    model = zoo.load(model_name_or_dir, weights=weights)
    dataset, source = refs.dataset_of(model_name_or_dir, weights, dataset)
    shape = model.image_shape
    test = data.load_numpy(dataset, "test", limit=limit, data_dir=data_dir, image_shape=shape)
    test_labels = data.load_labels(dataset, "test", limit=limit, data_dir=data_dir)
    train = train_labels = None
    if test_labels is not None:
        train = data.load_numpy(dataset, "train", limit=LOGISTIC_TRAIN_IMAGES, data_dir=data_dir, image_shape=shape)
        train_labels = data.load_labels(dataset, "train", limit=LOGISTIC_TRAIN_IMAGES, data_dir=data_dir)
    result = evaluate(model, test, test_labels, train, train_labels, seed=seed)
    result.update(model=str(model_name_or_dir), dataset=str(dataset), dataset_source=source)
    if model.code_layout() is not None:
        add_coded_bits(result, model_name_or_dir, None if weights == "bundled" else weights, test)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "evaluation.json"), "w") as f:
            json.dump(result, f, indent=2, default=float)
        show = test[:8]
        layout = model.code_layout()
        rows = [show] + ([model.reconstruct(show, l).numpy() for l in range(1, layout.num_layers + 1)]
                         if layout is not None else [model.reconstruct(show).numpy()])
        result["png"] = write_png(os.path.join(out, "evaluation.png"), image_grid(rows))
    return result
