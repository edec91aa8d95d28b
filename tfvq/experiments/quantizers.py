"""Today's quantizers against each other at matched bits: one network, one recipe, the digits.

`vq_digits`, `fsq_digits`, `lfq_digits` and `rvq_digits` share HQA layer 1's
encoder and decoder (HQA Table 10) and its training recipe (3000 steps of
HQA's optimiser, `VQVAERecipe`): only the bottleneck differs. At 2560 bits
per 32x32 image (a 16x16 grid of 10-bit codes) they meet:

* VQ-VAE (van den Oord et al. 2017), 1024 learned codes, gradients straight
  through, and the same with the rotation trick (Fifty et al. 2024, §4);
* FSQ (Mentzer et al. 2023), levels (8, 5, 5, 5): 1000 implicit codes;
* LFQ (MAGVIT-v2, Yu et al. 2023), 10 sign bits: 1024 implicit codes;
* residual VQ (SoundStream, Zeghidour et al. 2021) at depth 2 of 4 (two
  stages of 32 codes); its other depths give 1280, 3840 and 5120 bits;

and `hqa_digits` (HQA, Williams et al. 2020) adds its five layers' rates
(2048 bits at layer 1, down to 8 bits at layer 5) from a greedy stack.

Measured on the digits' test split (297 images), per model and rate (`tfvq.evaluate.evaluate`): the fixed
bits, the payload bits of one entropy-coded file of the test split (`tfvq.codec`, the static priors of the
model's weights, fitted on the training split), MSE, PSNR, SSIM, the accuracy of a logistic regression fitted
on the training originals when it reads the reconstructions, and the codes used and their perplexity (of the
layer's own codes: for RVQ the deepest stage sent, for HQA that layer's).

Run: `python -m tfvq.experiments.quantizers [--weights=bundled|train] [--out=runs/quantizers]`.
`--weights=bundled` (the default) evaluates the bundled weights and trains only the variant that has none
(VQ without the rotation trick, `tfvq train --model=vq_digits --config=rotation_trick=false`): about 10
minutes on a 2-core CPU. `--weights=train` trains every model into `--out` with its entry's recipe (resuming
there if run again). It prints a markdown table and writes `quantizers.json` into `--out`.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from typing import Any, Mapping

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator)

from tfvq import data, evaluate, train, zoo
from tfvq.codec import fit

DATASET = "digits"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One model of the comparison: a zoo entry, optionally with configuration changes (trained then)."""

    key: str
    label: str
    entry: str
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def layer_label(self, model, layer):
        """The row's name for `layer` (RVQ: its depth; HQA: the layer)."""
        layout = model.code_layout()
        if layout.num_layers == 1:
            return self.label
        if layout.cumulative:
            return f"{self.label}, depth {len(layout.layers_sent(layer))}"
        return f"{self.label}, layer {layer}"


VARIANTS = (
    Variant("vq", "VQ, straight-through", "vq_digits", {"rotation_trick": False}),
    Variant("vq_rotation", "VQ, rotation trick", "vq_digits"),
    Variant("fsq", "FSQ (8,5,5,5)", "fsq_digits"),
    Variant("lfq", "LFQ (10 bits)", "lfq_digits"),
    Variant("rvq", "RVQ (32 codes per stage)", "rvq_digits"),
    Variant("hqa", "HQA", "hqa_digits"),
)


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m tfvq.experiments.quantizers",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", choices=("bundled", "train"), default="bundled",
                        help="evaluate the bundled weights and train only the variants without (default), or "
                        "train every model into --out")
    parser.add_argument("--out", default="runs/quantizers", help="run folders and quantizers.json")
    parser.add_argument("--models", default=",".join(v.key for v in VARIANTS),
                        help="comma-separated variants to compare (default: all: "
                        f"{', '.join(v.key for v in VARIANTS)})")
    parser.add_argument("--steps", type=int, default=None, help="training steps (default: each entry's recipe)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N test images (default: all)")
    parser.add_argument("--train_limit", type=int, default=None, help="fit the classifier on the first N "
                        "training images (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training runs and the classifier")
    args = parser.parse_args(argv)
    known = {v.key for v in VARIANTS}
    args.models = [m for m in args.models.split(",") if m]
    unknown = [m for m in args.models if m not in known]
    if unknown or not args.models:
        parser.error(f"--models must name some of {', '.join(sorted(known))}, got {','.join(args.models) or '(none)'}")
    for flag in ("steps", "limit", "train_limit"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f"--{flag} must be >= 1, got {getattr(args, flag)}")
    return args


def trained_folder(variant, out, seed=0, steps=None):
    """Trains `variant` into `out/<key>` (`tfvq.train`, resuming there) and fits the static priors of its
    weights on the training split (`tfvq.codec.fit.fit_prior`), so its files are entropy-coded. Returns the
    run folder and the seconds it took."""
    folder = os.path.join(out, variant.key)
    start = time.time()
    train.train(train.TrainOptions(model=variant.entry, config=dict(variant.config) or None, model_dir=folder,
                                   seed=seed, steps=steps, verbose=False))
    model = zoo.load(folder)
    fit.fit_prior(folder).save(zoo.prior_paths(model)["static"])
    return folder, time.time() - start


def rows_of(variant, model, ref, weights, test, labels, train_images, train_labels, seed=0):
    """The comparison's rows of one model: `tfvq.evaluate.evaluate` per layer, with the coded bits of a file
    of the test split (`evaluate.add_coded_bits`, `ref`/`weights` as `tfvq.codec.compress` takes them)."""
    result = evaluate.evaluate(model, test, labels, train_images, train_labels, seed=seed)
    evaluate.add_coded_bits(result, ref, weights, test)
    rows = []
    for layer, r in sorted(result["layers"].items()):
        rows.append({"model": variant.key, "entry": variant.entry, "layer": layer,
                     "label": variant.layer_label(model, layer),
                     **{k: r[k] for k in ("bits_per_image", "coded_bits_per_image", "mse", "psnr", "ssim",
                                          "accuracy", "codes_used", "perplexity")}})
    return rows, result["original_accuracy"]


def compare(variants, weights="bundled", out="runs/quantizers", steps=None, limit=None, seed=0, train_limit=None):
    """Evaluates every variant (training the ones `weights` asks for) on the first `limit` test images, the
    classifier fitted on the first `train_limit` training images; returns the rows sorted by fixed bits (highest
    first), the classifier's accuracy on the originals, what was trained (seconds), and how many test images."""
    test, labels = data.load_numpy(DATASET, "test", limit=limit), data.load_labels(DATASET, "test", limit=limit)
    train_images = data.load_numpy(DATASET, "train", limit=train_limit)
    train_labels = data.load_labels(DATASET, "train", limit=train_limit)
    rows, trained, original = [], {}, None
    for variant in variants:
        if weights == "bundled" and not variant.config and zoo.bundled_weights_path(variant.entry):
            model, ref, model_weights = zoo.load(variant.entry, weights="bundled"), variant.entry, None
        else:
            ref, seconds = trained_folder(variant, out, seed=seed, steps=steps)
            model, model_weights = zoo.load(ref), None
            trained[variant.key] = round(seconds)
        variant_rows, original = rows_of(variant, model, ref, model_weights, test, labels, train_images,
                                         train_labels, seed)
        rows.extend(variant_rows)
    rows.sort(key=lambda r: (-r["bits_per_image"], r["label"]))
    return rows, original, trained, len(test)


def markdown(rows, original_accuracy):
    """The rows as a markdown table; the best MSE, SSIM and accuracy among rows of equal fixed bits in bold."""
    best = {}
    for r in rows:
        b = best.setdefault(r["bits_per_image"], {"mse": r["mse"], "ssim": r["ssim"], "accuracy": r["accuracy"]})
        b["mse"], b["ssim"] = min(b["mse"], r["mse"]), max(b["ssim"], r["ssim"])
        b["accuracy"] = max(b["accuracy"], r["accuracy"])
    shared = {bits for bits in best if sum(r["bits_per_image"] == bits for r in rows) > 1}

    def mark(text, r, key):
        return f"**{text}**" if r["bits_per_image"] in shared and r[key] == best[r["bits_per_image"]][key] else text

    lines = ["| model | bits | coded bits | MSE | PSNR (dB) | SSIM | accuracy | codes used | perplexity |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        mse = mark(format(r["mse"], ".2e"), r, "mse")
        ssim = mark(format(r["ssim"], ".4f"), r, "ssim")
        accuracy = mark(format(r["accuracy"], ".3f"), r, "accuracy")
        lines.append(f"| {r['label']} | {r['bits_per_image']} | {r['coded_bits_per_image']:.0f} | {mse} | "
                     f"{r['psnr']:.2f} | {ssim} | {accuracy} | {r['codes_used']} | {r['perplexity']:.1f} |")
    lines.append(f"| originals | | | | | | {original_accuracy:.3f} | | |")
    return "\n".join(lines)


def main(argv=None):
    args = _parse(argv)
    start = time.time()
    os.makedirs(args.out, exist_ok=True)
    variants = [v for v in VARIANTS if v.key in args.models]
    rows, original, trained, images = compare(variants, args.weights, args.out, args.steps, args.limit, args.seed,
                                              args.train_limit)
    seconds = time.time() - start
    path = os.path.join(args.out, "quantizers.json")
    with open(path, "w") as f:
        json.dump({"args": vars(args), "rows": rows, "original_accuracy": original, "trained": trained,
                   "seconds": round(seconds)}, f, indent=2)
    print(f"Quantizers on {images} {DATASET} test images, weights: {args.weights}")
    print(markdown(rows, original))
    if trained:
        print("Trained: " + ", ".join(f"{key} {s} s" for key, s in trained.items()))
    print(f"{seconds:.0f} s in all. Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
