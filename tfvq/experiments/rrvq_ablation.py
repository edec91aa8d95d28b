"""RRVQ Table G.1 at CPU scale: the four ablation cells and two baselines, several seeds.

RRVQ Table G.1 trains L = 5 hierarchies of discrete latents on CIFAR-10 and
SVHN with p given directly by a net (Direct-Cat) or through responsibilities
in the embedding space (Embed-Cat), and with the variances of the codebook
fixed to one (sigma = 1) or learnt. Only the combination of the two (RRVQ)
improves on the naive model, by about half a bit per dim. Table 1 adds the
rVQ-VAE (one layer, RRVQ eq. 2) and the Spatial-VAE (the same hierarchy with
Gaussian latents) as baselines.

Here the same six models are trained with `tfvq.train` on the embedded
`digits` dataset (32x32x1, 1500 train / 297 test images), with the L = 5
latent layout of RRVQ App. F (latents 16x16, 8x8, 4x4, 2x2, 1x1) sized for a
CPU: `--channels` backbone channels (16), K = `--codes` (32), d_e =
`--code_dim` (16), one ResNet block between latents, single-convolution
ladders and straps; the rVQ-VAE has one 16x16 layer with the same backbone;
the Spatial-VAE has `--code_dim`-dimensional Gaussian latents. Every run uses
the RRVQ recipe (AdaMax, lr 8e-4 with reduce-on-plateau) for `--steps` steps at
batch `--batch_size`. Train and test bits per dim are the -ELBO of
non-relaxed samples (RRVQ Table 1) on the train split's first `--eval_examples`
images and on the whole test split.

A run whose loss becomes non-finite is stopped by the trainer
(`FloatingPointError`) and reported in the table as unstable, never dropped.

`--dataset=mnist10k_28` reruns the table on real MNIST digits at their own 28x28 size (7996 train / 2004
test, `rrvq_mnist`'s data) with `rrvq_mnist`'s layout (latents 14x14 twice and 7x7 three times: 28 cannot halve
to 1x1; the rVQ-VAE one 14x14 layer). There the learning rate is never lowered (`--patience` defaults to
beyond the run), since RRVQ's plateau schedule reads the test split and the real digits' test split tunes
nothing.

Run: `python -m tfvq.experiments.rrvq_ablation [--dataset digits|mnist10k_28] [--seeds 0,1,2] [--steps N]
[--out DIR]`.
It prints a markdown table of mean +- sd over seeds and writes `ablation.json`
(every run) into `--out`. Every finished (cell, seed) is also kept in `--record` (default
`docs/rrvq_ablation_runs/DATASET/CELL_seedN.json`, committed), and a kept run trained with the same settings
counts as done: a sweep longer than a sitting resumes where it stopped, from a fresh checkout too.
"""

import argparse
import json
import math
import os
import sys
import time

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator)

import numpy as np

from tfvq import data, zoo
from tfvq.models.rrvq import presets as entries
from tfvq.train import loop

CELLS = {
    # name: (family, description, config overrides)
    "direct_sigma1": ("rrvq_vae", "Direct-Cat, sigma = 1", dict(prior="direct", covariance="unit")),
    "direct_learnt": ("rrvq_vae", "Direct-Cat, sigma learnt", dict(prior="direct", covariance="diagonal")),
    "embed_sigma1": ("rrvq_vae", "Embed-Cat, sigma = 1", dict(prior="embedding", covariance="unit")),
    "rrvq": ("rrvq_vae", "Embed-Cat, sigma learnt (RRVQ)", dict(prior="embedding", covariance="diagonal")),
    "rvqvae": ("rrvq_vae", "rVQ-VAE (L = 1)", dict(latent_sizes=(16,), covariance="unit", prior="embedding")),
    "spatial_vae": ("spatial_vae", "Spatial-VAE (Gaussian)", dict()),
}


LAYOUTS = {
    # dataset: (image shape, the L = 5 latent grids, the rVQ-VAE's one grid, training images)
    "digits": ((32, 32, 1), (16, 8, 4, 2, 1), (16,), 1500),
    "mnist10k_28": ((28, 28, 1), (14, 14, 7, 7, 7), (14,), 7996),
}


def cell_config(cell, channels, codes, code_dim, dataset="digits"):
    """The model config of `cell` on `dataset` (see the module docstring)."""
    family, _, overrides = CELLS[cell]
    image_shape, latents, single, _ = LAYOUTS[dataset]
    base = dict(image_shape=image_shape, latent_sizes=latents, channels=channels, blocks_per_layer=1,
                strap_blocks=0, top_prior="uniform")
    # The cells are configurations of two families: the Gaussian one has a latent size, the discrete one codes.
    if family == "spatial_vae":
        base["latent_dim"] = code_dim
    else:
        base.update(num_codes=codes, code_dim=code_dim)
    base.update(overrides)
    if "latent_sizes" in overrides:  # the one-layer baseline
        base["latent_sizes"] = single
    return family, base


def register_cells(args):
    """Registers one zoo entry per cell (idempotent) and returns their names."""
    names = {}
    for cell in CELLS:
        family, config = cell_config(cell, args.channels, args.codes, args.code_dim, args.dataset)
        suffix = "" if args.dataset == "digits" else f"_{args.dataset}"
        name = f"ablation_{cell}_c{args.channels}_k{args.codes}_d{args.code_dim}{suffix}"
        test_size = data.info(args.dataset).num_examples["test"]
        recipe = entries.rrvq_recipe(LAYOUTS[args.dataset][3], 1, args.patience, steps=(args.steps,),
                                      batch_size=args.batch_size, eval_every=args.eval_every,
                                      eval_examples=test_size)
        if name not in zoo.list_models():
            zoo.register(zoo.ZooEntry(
                name=name, family=family, config=config, train=recipe, dataset=args.dataset,
                paper=entries.RRVQ_PAPER, table="RRVQ Table G.1 / Table 1 at CPU scale",
                description=f"Table G.1 ablation cell: {CELLS[cell][1]}"))
        names[cell] = name
    return names


def run_one(name, seed, steps, out_dir, eval_examples):
    """Trains one cell with one seed; returns a record (bpd, or the instability)."""
    model_dir = os.path.join(out_dir, f"{name}_seed{seed}")
    start = time.perf_counter()
    record = {"model": name, "seed": seed}
    try:
        summary = loop.train(loop.TrainOptions(model=name, seed=seed, model_dir=model_dir, steps=steps,
                                               eval_examples=eval_examples, verbose=False, log_every=100,
                                               checkpoint_every=10**9))
        metrics = summary["report"]["metrics"]
        record.update(status="ok", train_bpd=float(metrics["train_bpd"]), test_bpd=float(metrics["test_bpd"]))
        if not (math.isfinite(record["train_bpd"]) and math.isfinite(record["test_bpd"])):
            record["status"] = "non-finite evaluation"
    except FloatingPointError as err:
        record.update(status="unstable", error=str(err))
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


RECORD = os.path.join("docs", "rrvq_ablation_runs")
"""Where every finished (cell, seed) is kept by default, one JSON file each, under the dataset's name."""
SETTINGS = ("dataset", "steps", "batch_size", "channels", "codes", "code_dim", "eval_every", "patience",
            "eval_examples")
"""The arguments a kept run must share with the sweep to count as done."""


def read_kept(path, settings):
    """The record kept at `path` if it exists and was trained with `settings`, else None; a kept run of other
    settings raises (delete it, or keep the sweep's records elsewhere with --record)."""
    if not path or not os.path.exists(path):
        return None
    with open(path) as f:
        record = json.load(f)
    if record.get("settings") != settings:
        raise ValueError(f"{path} was trained with other settings ({record.get('settings')}, this sweep "
                         f"{settings}): delete it, or pass --record=DIR (or none) for this sweep.")
    return record


def summarise(records):
    """{cell: (train mean, train sd, test mean, test sd, ok runs, unstable runs)} over seeds."""
    table = {}
    for cell in CELLS:
        runs = [r for r in records if r["cell"] == cell]
        ok = [r for r in runs if r["status"] == "ok"]
        train = np.array([r["train_bpd"] for r in ok])
        test = np.array([r["test_bpd"] for r in ok])
        sd = lambda a: float(a.std(ddof=1)) if len(a) > 1 else float("nan")  # noqa: E731
        table[cell] = dict(
            train_mean=float(train.mean()) if len(ok) else float("nan"), train_sd=sd(train),
            test_mean=float(test.mean()) if len(ok) else float("nan"), test_sd=sd(test),
            runs=len(runs), unstable=len(runs) - len(ok),
        )
    return table


def markdown(table):
    lines = ["| model | train bpd | test bpd | runs (unstable) |", "|---|---|---|---|"]
    for cell, row in table.items():
        if not row["runs"]:
            continue
        lines.append(
            f"| {CELLS[cell][1]} | {row['train_mean']:.3f} ± {row['train_sd']:.3f} | "
            f"{row['test_mean']:.3f} ± {row['test_sd']:.3f} | {row['runs']} ({row['unstable']}) |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits", choices=tuple(LAYOUTS),
                        help="digits (32x32, the default) or mnist10k_28 (real MNIST digits at 28x28)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--cells", default=",".join(CELLS), help=f"cells to run (default all: {','.join(CELLS)})")
    parser.add_argument("--steps", type=int, default=1000, help="training steps per run (default 1000)")
    parser.add_argument("--batch_size", type=int, default=32, help="batch size (default 32)")
    parser.add_argument("--channels", type=int, default=16, help="backbone channels (default 16)")
    parser.add_argument("--codes", type=int, default=32, help="codes per layer K (default 32)")
    parser.add_argument("--code_dim", type=int, default=16, help="embedding / Gaussian latent dimension (default 16)")
    parser.add_argument("--eval_every", type=int, default=250, help="steps between plateau evaluations")
    parser.add_argument("--patience", type=int, default=None,
                        help="plateau patience in evaluations (default 2 on digits, never on mnist10k_28)")
    parser.add_argument("--eval_examples", type=int, default=512, help="train images for the train bpd")
    parser.add_argument("--out", default="runs/rrvq_ablation", help="output directory")
    parser.add_argument("--record", default=None,
                        help="keep every finished run here and count the runs kept here as done (default "
                        "docs/rrvq_ablation_runs/DATASET; 'none': keep nothing)")
    args = parser.parse_args(argv)
    if args.patience is None:
        args.patience = 2 if args.dataset == "digits" else 10**6
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--seeds takes comma-separated integers, got {args.seeds!r}")
    cells = [c for c in args.cells.split(",") if c]
    unknown = [c for c in cells if c not in CELLS]
    if unknown:
        parser.error(f"unknown cells {unknown}; choose from {list(CELLS)}")
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    os.makedirs(args.out, exist_ok=True)
    names = register_cells(args)
    records = []
    path = os.path.join(args.out, "ablation.json")
    record_dir = (os.path.join(RECORD, args.dataset) if args.record is None
                  else None if args.record == "none" else args.record)
    settings = {k: getattr(args, k) for k in SETTINGS}
    for seed in seeds:
        for cell in cells:
            kept = os.path.join(record_dir, f"{cell}_seed{seed}.json") if record_dir else None
            record = read_kept(kept, settings)
            if record is None:
                record = run_one(names[cell], seed, args.steps, args.out, args.eval_examples)
                record.update(cell=cell, settings=settings)
                if kept:
                    os.makedirs(record_dir, exist_ok=True)
                    with open(kept, "w") as f:
                        json.dump(record, f, indent=2)
                        f.write("\n")
            records.append(record)
            status = (f"train {record['train_bpd']:.3f} test {record['test_bpd']:.3f}" if record["status"] == "ok"
                      else record["status"])
            print(f"{CELLS[cell][1]:32s} seed {seed}: {status} ({record['seconds']} s)", flush=True)
            with open(path, "w") as f:  # after every run: an interrupted sweep keeps what it did
                json.dump({"args": vars(args), "runs": records}, f, indent=2)
    table = summarise(records)
    with open(path, "w") as f:
        json.dump({"args": vars(args), "runs": records, "table": table}, f, indent=2)
    print()
    print(markdown(table))
    print(f"\nCommand: python -m tfvq.experiments.rrvq_ablation {' '.join(argv if argv is not None else sys.argv[1:])}")
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
