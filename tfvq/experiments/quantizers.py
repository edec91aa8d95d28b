"""Quantizers against each other at matched bits: one network, one recipe, only the bottleneck differs.

Two comparisons, one command (`--dataset`):

`--dataset=mnist10k`: every quantizer of `tfvq.layers` on real digits. One network (HQA layer 1's encoder and
decoder, HQA Table 10: 32x32x1 -> a 16x16 grid of codes -> 32x32x1, `ComposedAutoencoder`) and one recipe
(`MNIST_BUDGET`: 2000 steps at batch 64 of HQA's optimiser, RAdam 2e-3 cosine-annealed over the final third,
float32, on the 7996 training digits of `mnist10k`); only the bottleneck differs:

* VQ-VAE (van den Oord et al. 2017) with gradients straight through, and with the rotation trick (Fifty et
  al. 2024, §4), codebooks by k-means on the first batch (SoundStream §3.3);
* FSQ (Mentzer et al. 2023, §3.1, Table 1's levels); LFQ (MAGVIT-v2, Yu et al. 2023, §3.1, exact codebook
  entropy up to 2^8 codes, its factorised bound at 2^14); BSQ (Zhao et al. 2024, §3, eq. 8);
* SimVQ (Zhu et al. 2024: a frozen random codebook through one learned linear map);
* residual VQ (SoundStream, Zeghidour et al. 2021, §3.3), residual FSQ, and grouped residual VQ
  (HiFi-Codec, Yang et al. 2023), two stages each (two groups of two for the grouped one).

Two matched rates, `RATES`: 1024 and 2048 bits per image (4 and 8 bits per grid position; 2048 is HQA layer
1's rate). Powers of two, so that every composition has whole bits per code: a grouped residual quantizer of
G groups and S stages spends G S log2(K) bits per position, which 5 or 10 bits (1280 or 2560 per image)
cannot split for G = S = 2. And one large codebook, K = 2^14 (3584 bits), for VQ, SimVQ, FSQ, LFQ and BSQ:
where codes die and which quantizers keep them. Every row trains `SEEDS` seeds.

Columns, measured on the 2004 test digits (never tuned on): MSE, and PSNR of the mean MSE; rFID and
classification error with tfvq's MNIST classifier (`tfvq.metrics.digit_classifier`; the rFID is the Fréchet
distance in that classifier's penultimate features, `tfvq.metrics.fid`, as `tfvq.experiments.hqa_mnist`);
codes used and perplexity (per code slot: a residual or grouped quantizer has one codebook per stage and
group); coded bits: the payload of one `tfvq.codec` file of the whole test split under the static priors of
the run's weights fitted on the training split (`tfvq.codec.fit.fit_prior`); and, with `--timing`, one
training step's forward and backward time in float32 and in mixed bfloat16, each row as a ratio to plain VQ
at its rate, all rows measured in one process (`docs/quantizer_runs/step_times.json`).

Resumable: one run folder per (row, seed), `OUT/runs/ROW/seedN` (training resumes there), whose result.json is
written when it is measured and kept as `docs/quantizer_runs/ROW/seedN.json`; a kept result counts as done
without its run folder, `--collect` trains nothing and tabulates what there is, and `--quick` (a few steps, 64
test digits, no record) tests the command. One run takes 2-3 minutes on a 2-core CPU (AMD EPYC, 25-60 ms per
step, plus a minute of measuring); the K = 2^14 rows of VQ and SimVQ take about 0.5 s a step.

    python -m tfvq.experiments.quantizers --dataset=mnist10k [--seeds=3] [--rows=KEY,...] [--collect]
    python -m tfvq.experiments.quantizers --dataset=mnist10k --timing

`--dataset=digits` (the default): today's zoo entries at matched bits on the embedded digits.
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
import math
import os
import sys
import time
from typing import Any, Mapping

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator)

import numpy as np
import tensorflow as tf

from tfvq import codec, data, evaluate, train, zoo
from tfvq.codec import fit
from tfvq.experiments.judge import Judge
from tfvq.experiments.runs import (add_run_flags, check_run_flags, cpu_seconds, is_done, json_value, read_done,
                                   run_paths, write_json)
from tfvq.layers.precision import precision_scope

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


def _parse_digits(argv):
    parser = argparse.ArgumentParser(prog="python -m tfvq.experiments.quantizers",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=("digits",), default="digits", help="the embedded digits")
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


def digits_main(argv=None):
    """The comparison of today's zoo entries on the embedded digits (`--dataset=digits`)."""
    args = _parse_digits(argv)
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



# ------------------------------------------------------------------------------ real digits (mnist10k)
MNIST = "mnist10k"
RATES = (1024, 2048)
"""The matched rates, bits per 32x32 image: 4 and 8 bits per position of the 16x16 grid."""
LARGE_K = 2 ** 14
"""The large codebook's size (14 bits per position, 3584 bits per image)."""
SEEDS = 3
MNIST_BUDGET = dict(batch_size=64, steps=(2000,), learning_rate=2e-3)
"""The one recipe (`VQVAERecipe` changes): 2000 steps at batch 64 (16 epochs of the 7996 training digits),
RAdam at 2e-3 (the zoo's CPU recipe's rate)."""
QUICK = dict(batch_size=8, steps=(3,))
"""`--quick` replaces these keys of the budget (a test of the command, not of the quantizers)."""
PRECISION = "float32"
RECORD = os.path.join("docs", "quantizer_runs")
"""Where every (row, seed)'s result is kept (committed; run folders are not)."""
BASE_ENTRY = "fsq_mnist"
"""The zoo entry every row trains from (`ComposedAutoencoder` on `mnist10k`), its bottleneck replaced."""

_FSQ_LEVELS = {4: [5, 3], 8: [8, 6, 5], 14: [8, 8, 8, 6, 5]}
"""FSQ Table 1's levels at 2^8 and 2^14 codes (and (5, 3) for 2^4): prod(levels) <= 2^b, ceil(log2) = b."""
_RFSQ_LEVELS = {4: [4], 8: [5, 3]}
"""Each of the two residual FSQ stages' levels: b / 2 bits."""
_LABELS = {"vq": "VQ, straight-through", "vq_rotation": "VQ, rotation trick", "fsq": "FSQ", "lfq": "LFQ",
           "bsq": "BSQ", "simvq": "SimVQ", "rvq": "residual VQ", "rfsq": "residual FSQ",
           "grvq": "grouped residual VQ"}
"""The quantizers of the comparison, in the table's order."""


def quantizer_config(quantizer, bits):
    """The `ComposedAutoencoder` configuration changes of `quantizer` at `bits` per image (a 16x16 grid)."""
    b = bits // 256
    vq = {"name": "vq", "num_codes": 2 ** b, "code_dim": 16, "codebook_init": "kmeans"}
    lfq = {"name": "lfq", "code_dim": b, "entropy_weight": 1e-3, "commitment_cost": 1e-3,
           "codebook_entropy": "exact" if b <= 10 else "factorized"}
    one = dict(num_quantizers=1, groups=1)
    configs = {
        "vq": dict(quantizer=vq, **one),
        "vq_rotation": dict(quantizer=dict(vq, rotation_trick=True), **one),
        "fsq": dict(quantizer={"name": "fsq", "levels": _FSQ_LEVELS.get(b)}, **one),
        "lfq": dict(quantizer=lfq, **one),
        "bsq": dict(quantizer={"name": "bsq", "code_dim": b, "entropy_weight": 1e-3}, **one),
        "simvq": dict(quantizer={"name": "simvq", "num_codes": 2 ** b, "code_dim": 16}, **one),
        "rvq": dict(quantizer=dict(vq, num_codes=2 ** (b // 2)), num_quantizers=2, groups=1),
        "rfsq": dict(quantizer={"name": "fsq", "levels": _RFSQ_LEVELS.get(b)}, num_quantizers=2, groups=1),
        "grvq": dict(quantizer=dict(vq, num_codes=2 ** (b // 4), code_dim=8), num_quantizers=2, groups=2),
    }
    return configs[quantizer]


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the real-digit table: a quantizer at a rate, `ComposedAutoencoder` configured so."""

    quantizer: str
    bits: int

    @property
    def key(self):
        return f"{self.quantizer}_{self.bits}"

    @property
    def label(self):
        return _LABELS[self.quantizer]

    @property
    def config(self):
        return quantizer_config(self.quantizer, self.bits)

    @property
    def baseline(self):
        """The plain VQ row at this rate (the step times' unit)."""
        return Row("vq", self.bits)


LARGE_K_QUANTIZERS = ("vq", "simvq", "fsq", "lfq", "bsq")
ROWS = tuple(Row(q, bits) for bits in RATES for q in _LABELS) + tuple(
    Row(q, 14 * 256) for q in LARGE_K_QUANTIZERS)
"""Every row: each quantizer at 1024 and 2048 bits, then the K = 2^14 rows (3584 bits)."""
ROW_KEYS = {row.key: row for row in ROWS}


def _usage(codes, num_codes):
    """(codes used, perplexity) of int codes."""
    counts = np.bincount(np.asarray(codes).ravel(), minlength=num_codes).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return int((counts > 0).sum()), float(math.exp(-(p * np.log(p)).sum()))


def measure_run(model, folder, judge):
    """The row's figures of a trained model at full rate (layer 1): `judge.measure` (MSE, rFID, class. error),
    PSNR of the MSE, codes used and perplexity per slot, and the coded bits per image of one file of the test
    digits under the static priors of the folder's weights (fitted here on the training split)."""
    out = judge.measure(judge.batched(lambda x, i: model.reconstruct(x, 1)))
    out["psnr"] = float(10.0 * math.log10(1.0 / max(out["mse"], 1e-12)))
    slots = [np.concatenate(s) for s in zip(*[[np.asarray(c) for c in tf.nest.flatten(model.encode(x, 1))]
                                              for x in np.array_split(judge.images, -(-len(judge.images) // 500))])]
    usage = [_usage(c, model.code_layout().num_codes[0]) for c in slots[::-1]]  # slot order
    out["codes_used"] = [u for u, _ in usage]
    out["perplexity"] = [p for _, p in usage]
    fit.fit_prior(folder).save(zoo.prior_paths(model)["static"])
    pixels = np.round(judge.images * 255).astype(np.uint8)
    out["coded_bits_per_image"] = 8 * len(codec.Compressor(folder).compress(pixels, 1).stream) / len(pixels)
    out["bits_per_image"] = model.bits(1)
    return out


def run_row(row, seed, out, judge, quick=False, record=None, log=print):
    """Trains (or resumes) one (row, seed) in `out/runs/ROW/seedN`, measures it (`measure_run`) and returns the
    result; a result there (or kept in `record`) is read back instead, if it is of the same budget and
    configuration (else a `ValueError`: results of two recipes do not share a table)."""
    folder, path, kept = run_paths(row.key, seed, out, record)
    budget = dict(MNIST_BUDGET, **QUICK) if quick else MNIST_BUDGET
    done, _ = read_done(row.key, seed, out, record, budget=budget, config=row.config)
    if done is not None:
        return done
    log(f"== {row.key} ({row.label}, {row.bits} bits), seed {seed}")
    wall, cpu = time.time(), cpu_seconds()
    train.train(train.TrainOptions(model=BASE_ENTRY, dataset=MNIST, config=dict(row.config), recipe=dict(budget),
                                   seed=seed, model_dir=folder, precision=PRECISION,
                                   eval_examples=8 if quick else 64, log_every=500, verbose=False))
    wall, cpu = time.time() - wall, cpu_seconds() - cpu
    result = {"row": row.key, "quantizer": row.quantizer, "config": json_value(row.config), "seed": seed,
              "budget": json_value(budget), "precision": PRECISION, "wall_seconds": round(wall, 1),
              "cpu_seconds": round(cpu, 1), "test_images": len(judge.images),
              **measure_run(zoo.load(folder), folder, judge)}
    write_json(path, result)
    if kept is not None:
        write_json(kept, result)
    log(f"   MSE {result['mse']:.5f}, rFID {result['rfid']:.1f}, error {100 * result['error']:.1f}%, "
        f"coded bits {result['coded_bits_per_image']:.0f}, {wall:.0f} s")
    return result


def run_rows(rows, seeds, out, judge, quick=False, collect=False, record=None, log=print):
    """{row key: [result per seed]}, seed by seed (every row of seed 0 first), training what is missing unless
    `collect` (then only the results there are)."""
    results = {row.key: [] for row in rows}
    for seed in range(seeds):
        for row in rows:
            if collect and not is_done(row.key, seed, out, record):
                continue
            results[row.key].append(run_row(row, seed, out, judge, quick, record, log))
    return results


def step_times(rows, precisions=("float32", "mixed_bfloat16"), steps=10, batch_size=64, log=print):
    """{row key: {precision: ms per training step}}: the loss and its gradients (forward and backward, no
    optimiser update) of each row's model at `batch_size` real training digits, the fastest of `steps` timed
    steps after two untimed ones (on a shared CPU the other processes only ever slow a step), every row and
    precision in this one process."""
    images = tf.constant(data.load_numpy(MNIST, "train", limit=batch_size))
    times = {}
    for row in rows:
        for precision in precisions:
            with precision_scope(precision):
                model = zoo.build(BASE_ENTRY, **dict(row.config))

            @tf.function
            def step(x):
                with tf.GradientTape() as tape:
                    loss = model.training_loss(x, training=True)["loss"]
                grads = tape.gradient(loss, model.trainable_variables)
                # One number that needs every gradient, so that none is pruned from the graph.
                return tf.add_n([tf.reduce_sum(g.values if isinstance(g, tf.IndexedSlices) else g)
                                 for g in grads if g is not None])

            for _ in range(2):
                step(images)
            seconds = []
            for _ in range(steps):
                start = time.perf_counter()
                step(images).numpy()
                seconds.append(time.perf_counter() - start)
            times.setdefault(row.key, {})[precision] = 1000.0 * float(np.min(seconds))
        log(f"   {row.key}: " + ", ".join(f"{p} {ms:.1f} ms" for p, ms in times[row.key].items()))
    return times


def step_ratios(times):
    """{row key: {precision: ms / ms of plain VQ at the row's rate}} of `step_times`' output."""
    return {key: {p: ms / times[ROW_KEYS[key].baseline.key][p] for p, ms in by_precision.items()}
            for key, by_precision in times.items() if ROW_KEYS[key].baseline.key in times}


def _mean_sd(values):
    values = np.asarray(values, np.float64)
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else 0.0)


def row_summary(row, results):
    """Means (and standard deviations over seeds) of one row's results; None without results."""
    if not results:
        return None
    summary = {"key": row.key, "label": row.label, "bits": row.bits, "seeds": len(results)}
    for metric in ("mse", "psnr", "rfid", "error", "coded_bits_per_image"):
        summary[metric] = _mean_sd([r[metric] for r in results])
    summary["codes_used"] = _mean_sd([np.mean(r["codes_used"]) for r in results])
    summary["perplexity"] = _mean_sd([np.mean(r["perplexity"]) for r in results])
    summary["slots"] = row.config["num_quantizers"] * row.config["groups"]
    summary["num_codes"] = ROW_CODES[row.key]
    return summary


def _codes_per_slot(row):
    config = row.config["quantizer"]
    if config["name"] == "fsq":
        return int(np.prod(config["levels"]))
    return 2 ** config["code_dim"] if config["name"] in ("lfq", "bsq") else config["num_codes"]


ROW_CODES = {row.key: _codes_per_slot(row) for row in ROWS}
"""Codes per slot of every row (the codebook size K of each stage and group)."""


def mnist_markdown(summaries, ratios=None):
    """The table: one line per row with results, each rate's best MSE, rFID and error in bold."""
    def cell(pair, fmt, scale=1.0):
        """mean ± sd over the seeds (the mean alone for one seed)."""
        mean, sd = pair
        return f"{scale * mean:{fmt}}" + (f" ± {scale * sd:{fmt}}" if s["seeds"] > 1 else "")

    best = {}
    for s in summaries:
        b = best.setdefault(s["bits"], {})
        for metric in ("mse", "rfid", "error"):
            b[metric] = min(b.get(metric, math.inf), s[metric][0])
    lines = ["| bits | quantizer | K per slot | seeds | MSE | PSNR (dB) | rFID | class. error (%) | coded bits | "
             "codes used per slot | perplexity | step time f32 / bf16 (x VQ) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        marked = {m: (lambda text, m=m: f"**{text}**" if s[m][0] == best[s["bits"]][m] else text)
                  for m in ("mse", "rfid", "error")}
        slots = f" x {s['slots']}" if s["slots"] > 1 else ""
        ratio = (ratios or {}).get(s["key"])
        speed = f"{ratio['float32']:.2f} / {ratio['mixed_bfloat16']:.2f}" if ratio else "-"
        lines.append(f"| {s['bits']} | {s['label']} | {s['num_codes']}{slots} | {s['seeds']} | "
                     f"{marked['mse'](cell(s['mse'], '.5f'))} | {cell(s['psnr'], '.2f')} | "
                     f"{marked['rfid'](cell(s['rfid'], '.2f'))} | {marked['error'](cell(s['error'], '.1f', 100.0))} | "
                     f"{cell(s['coded_bits_per_image'], '.0f')} | "
                     f"{cell(s['codes_used'], '.0f' if s['codes_used'][0] >= 100 else '.1f')} | "
                     f"{cell(s['perplexity'], '.1f')} | {speed} |")
    return "\n".join(lines)


def _parse_mnist(argv):
    parser = argparse.ArgumentParser(prog="python -m tfvq.experiments.quantizers --dataset=mnist10k",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=(MNIST,), required=True, help="real digits (mnist10k)")
    add_run_flags(parser, out="runs/quantizers", seeds=SEEDS, record=RECORD)
    parser.add_argument("--rows", default=None,
                        help=f"only these rows (comma-separated keys: {', '.join(ROW_KEYS)})")
    parser.add_argument("--timing", action="store_true",
                        help="measure the step times of every row (float32, mixed_bfloat16) and keep them in the "
                             "record as step_times.json, then tabulate")
    parser.add_argument("--threads", type=int, default=None,
                        help="TensorFlow's intra- and inter-op threads (default: TensorFlow's, every core)")
    args = parser.parse_args(argv)
    if args.rows is not None:
        keys = [k for k in args.rows.split(",") if k]
        unknown = [k for k in keys if k not in ROW_KEYS]
        if unknown or not keys:
            parser.error(f"--rows must name some of {', '.join(ROW_KEYS)}, got {args.rows!r}")
        args.rows = keys
    check_run_flags(parser, args)
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    return args


def mnist_main(argv=None):
    """The comparison on real digits (`--dataset=mnist10k`)."""
    args = _parse_mnist(argv)
    if args.threads is not None:  # before TensorFlow runs anything
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    start = time.time()
    rows = ROWS if args.rows is None else tuple(ROW_KEYS[k] for k in args.rows)
    record = args.record if args.record is not None or args.quick else RECORD
    os.makedirs(args.out, exist_ok=True)
    ratios = None
    timing_path = os.path.join(record if record is not None else args.out, "step_times.json")
    if args.timing:
        timed = tuple(dict.fromkeys(rows + tuple(r.baseline for r in rows)))
        times = step_times(timed, steps=2 if args.quick else 20, batch_size=8 if args.quick else 64)
        write_json(timing_path, {"batch_size": 8 if args.quick else 64, "ms_per_step": times,
                                  "ratio_to_vq": step_ratios(times)})
    if os.path.exists(timing_path):
        with open(timing_path) as f:
            ratios = json.load(f)["ratio_to_vq"]
    judge = Judge(limit=64 if args.quick and args.limit is None else args.limit)
    seeds = 1 if args.quick else args.seeds
    if not args.timing or args.collect:
        results = run_rows(rows, seeds, args.out, judge, quick=args.quick, collect=args.collect, record=record)
    else:
        results = run_rows(rows, seeds, args.out, judge, collect=True, record=record)
    summaries = [s for s in (row_summary(row, results.get(row.key, [])) for row in rows) if s is not None]
    text = mnist_markdown(summaries, ratios)
    title = (f"Quantizers on {len(judge.images)} real MNIST test digits ({MNIST}), mean ± sd over seeds; "
             f"originals: class. error {100 * judge.measure(judge.images)['error']:.1f}%")
    write_json(os.path.join(args.out, "quantizers_mnist.json"),
                {"args": vars(args), "rows": summaries, "step_ratios": ratios})
    print(title)
    print(text)
    print(f"{time.time() - start:.0f} s in all.")
    return 0


def main(argv=None):
    """`--dataset=digits` (the default) or `--dataset=mnist10k`: see the module docstring."""
    argv = sys.argv[1:] if argv is None else list(argv)
    dataset = argparse.ArgumentParser(add_help=False)
    dataset.add_argument("--dataset", default="digits")
    known, _ = dataset.parse_known_args(argv)
    if known.dataset == MNIST:
        return mnist_main(argv)
    return digits_main(argv)


if __name__ == "__main__":
    sys.exit(main())
