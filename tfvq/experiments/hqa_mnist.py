"""HQA's MNIST experiment on real digits (HQA §6.2): Table 3 with every row, Figure 3, and the sample figures.

    python -m tfvq.experiments.hqa_mnist table3  [--seeds=3] [--out=runs/hqa_mnist] [--collect]
    python -m tfvq.experiments.hqa_mnist figure3 [--seeds=3] [--out=runs/hqa_mnist] [--collect]
    python -m tfvq.experiments.hqa_mnist samples [...]      (Figures 4, 6, 7 and Tables 4, 8: `hqa_samples`)

Every system is an ordinary zoo model trained by `tfvq train`'s own loop
(`tfvq.train.train`) on the 7996 training digits of `mnist10k` and measured on
its 2004 test digits (never tuned on them):

    Table 3 row                 zoo model                 switches (`tfvq.models.hqa`)
    No compression              -                         -
    VQ-VAE                      vqvae_mnist               HQA Table 14, L5 (8 bits)
    + hierarchy (HAMs)          hqa_mnist_hams            vq, codes
    HAMs + GS                   hqa_mnist_hams_gs         gumbel, codes, no probabilistic loss
    HAMs + MSE                  hqa_mnist_hams_mse        vq, z_e
    HAMs + GS + MSE             hqa_mnist_hams_gs_mse     gumbel, z_e, no probabilistic loss
    + probabilistic loss (HQA)  hqa_mnist                 gumbel, z_e, HQA eq. 4

Figure 3 adds the rates 2048, 512, 128 and 32 bits: HQA's and HAMs' lower
layers (the same runs), and a VQ-VAE trained directly to each rate (`vqvae_mnist`
configured as HQA Table 14's columns L1-L4).

The budget. Every system trains with the same updates: batch 128 in
mixed_bfloat16 at learning rate 2e-3 with k-means++ codebooks, 4600 updates in all
(a stack: 800, 400, 400, 600 and 2400 steps for layers 1 to 5, the top layer
most, as `hqa_mnist`'s bundled recipe; a VQ-VAE: 4600 steps end to end). The
paper trains 18000 steps per layer at batch 512 (Tables 10, 12, 14); this is a
fifth of `hqa_mnist`'s bundled recipe, so the absolute numbers are worse than
the bundled model's and the table is about the ordering. Equal updates are not
equal CPU: a VQ-VAE step runs the whole network, a stack's upper layers are
cheap, so each run's wall and CPU seconds are kept with its result and the table
shows the CPU seconds per run of every row.

The columns (`evaluate_layer`): MSE of the reconstruction (pixels in [0, 1],
32x32); the classification error of tfvq's MNIST classifier
(`tfvq.metrics.digit_classifier`, a small CNN trained on the training digits);
and an rFID, the Fréchet distance between the classifier's penultimate features
of the test originals and of their reconstructions (`tfvq.metrics.fid`). This
rFID lives in an MNIST classifier's feature space, not Inception's: its values do
not compare with the paper's rFID, only its orderings do. Reconstructions take
each layer's most probable code (`reconstruct`); the Gumbel systems are also
decoded stochastically (HQA Algorithm 3, one seeded decode per run).

Resumable: each (system, seed) is a run folder `OUT/runs/SYSTEM/seedN` (the
training resumes where it stopped) whose `result.json` is written when it is
measured, and kept as `docs/hqa_mnist_runs/SYSTEM/seedN.json` (`--record`);
a command trains and measures what is missing, seed by seed, so that an
interrupted sitting leaves whole runs, a kept result counts as done without its
run folder, and `--collect` only gathers the results there are. The table says how many seeds each row has; intervals are
Student's t 95% intervals of the mean over seeds (the paper's: 10 training runs).

Full run on a 2-core CPU (AMD EPYC, AVX512-BF16, shared with a second training
job): about 7 minutes per stack and 16 per VQ-VAE, so Table 3 at 3 seeds is
about 2.5 hours, and Figure 3's four more VQ-VAEs per seed about an hour more
(`docs/results.md` keeps the measured times).
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, Mapping, Optional, Tuple

import tfvq  # noqa: F401  (first: selects TensorFlow's CPU allocator)

import numpy as np
from scipy.stats import t as student_t

from tfvq import train, zoo
from tfvq.experiments import hqa_samples
from tfvq.experiments.judge import DATASET, Judge
from tfvq.experiments.runs import (add_run_flags, check_run_flags, cpu_seconds, is_done, json_value, read_done,
                                   run_paths, write_json)

RATES = (2048, 512, 128, 32, 8)
"""Figure 3's rates: bits per image of HQA's layers 1..5 (16x16 .. 1x1 codes of 256)."""

STACK_BUDGET = dict(batch_size=128, steps=(800, 400, 400, 600, 2400), learning_rate=2e-3,
                    codebook_init=("kmeans++",) * 5)
"""The recipe changes of every stack (`HQARecipe`): 4600 updates at batch 128."""
VQVAE_BUDGET = dict(batch_size=128, steps=(4600,), learning_rate=2e-3, codebook_init=("kmeans++",))
"""The recipe changes of every VQ-VAE (`VQVAERecipe`): as many updates as a stack, and the stacks' k-means++
codebook start (with the paper's random codebook, one VQ-VAE seed in two ended on a single code)."""
QUICK = dict(batch_size=8, steps=(1,))
"""`--quick` replaces these keys of every budget (a test of the command, not of the systems)."""

# HQA Table 14's VQ-VAE columns L1..L5 (MNIST): downsamples, encoder and decoder widths.
RECORD = os.path.join("docs", "hqa_mnist_runs")
"""Where the command keeps every (system, seed)'s result.json by default: the results `docs/results.md` shows,
committed, so that the tables survive the run folders (which hold weights and are never committed)."""

_VQVAE_COLUMNS = {1: (22, 16), 2: (40, 18), 3: (50, 20), 4: (62, 22), 5: (78, 22)}


@dataclasses.dataclass(frozen=True)
class System:
    """One trained system: a zoo model with configuration changes, and the layers it is measured at."""

    key: str
    label: str
    model: Optional[str]
    config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    layers: Tuple[int, ...] = (5,)
    """The model's layers measured, each at `RATES[layer - 1]` bits (a one-layer VQ-VAE: its own rate)."""
    rate: Optional[int] = None
    """A one-layer system's bits per image."""
    stochastic: bool = False
    paper: Optional[Tuple[float, float, float]] = None
    """HQA Table 3's (MSE, rFID, class. error %)."""

    @property
    def budget(self):
        return VQVAE_BUDGET if self.model == "vqvae_mnist" else STACK_BUDGET

    def budget_for(self, quick=False):
        """The recipe changes of a run: `budget`, with `QUICK`'s keys under `--quick`."""
        return dict(self.budget, **QUICK) if quick else self.budget


VQVAE_OUTPUT = "linear"
"""The VQ-VAEs' last conv predicts pixels without a sigmoid (`VQVAE.output_activation`). With a sigmoid, 3 of the
first 7 runs (8 bits, seeds 1 and 2; 32 bits, seed 0) ended with every pre-activation of the sigmoid below -2
(mean -34) within a few hundred updates, as the first updates pushed the background to 0:
the sigmoid's gradient vanishes there, the output stays a blank digit (MSE 0.105, 89% error) and no code
reaches the decoder. HQA names the output of none of its networks ("predictions are made in pixel space", App.
C.3); a linear output cannot saturate."""


def _vqvae(level):
    enc, dec = _VQVAE_COLUMNS[level]
    return System(f"vqvae_l{level}", f"VQ-VAE at {RATES[level - 1]} bits", "vqvae_mnist",
                  dict(num_downsamples=level, encoder_hidden=enc, decoder_hidden=dec,
                       output_activation=VQVAE_OUTPUT), layers=(1,),
                  rate=RATES[level - 1])


_ALL_LAYERS = (1, 2, 3, 4, 5)
TABLE3 = (
    System("originals", "No compression", None, paper=(0.000, 0.0, 3.13)),
    dataclasses.replace(_vqvae(5), key="vqvae", label="VQ-VAE", paper=(0.040, 85.9, 21.6)),
    System("hams", "+ hierarchy (HAMs)", "hqa_mnist_hams", layers=_ALL_LAYERS, paper=(0.090, 45.6, 29.9)),
    System("hams_gs", "HAMs + GS", "hqa_mnist_hams_gs", stochastic=True, paper=(0.108, 38.6, 51.1)),
    System("hams_mse", "HAMs + MSE", "hqa_mnist_hams_mse", paper=(0.052, 36.0, 11.1)),
    System("hams_gs_mse", "HAMs + GS + MSE", "hqa_mnist_hams_gs_mse", stochastic=True, paper=(0.054, 21.0, 10.6)),
    System("hqa", "+ probabilistic loss (HQA)", "hqa_mnist", layers=_ALL_LAYERS, stochastic=True,
           paper=(0.053, 22.8, 12.4)),
)
"""HQA Table 3's rows, in the paper's order."""
FIGURE3_EXTRA = tuple(_vqvae(level) for level in (1, 2, 3, 4))
"""The VQ-VAEs trained directly to Figure 3's other rates (the 8-bit one is Table 3's)."""
SYSTEMS = {s.key: s for s in TABLE3 + FIGURE3_EXTRA}


# ------------------------------------------------------------------------------------------ measuring
def _t_interval(values):
    """(mean, half width of Student's t 95% interval of the mean) of a list of floats (0 for one value)."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float(values.mean()), 0.0
    return float(values.mean()), float(student_t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values)))


def evaluate_layer(model, layer, judge, stochastic=False, seed=0):
    """`judge.measure` of the model's reconstructions from layer `layer`: the most probable codes, or with
    `stochastic` one stochastic decode (HQA Algorithm 3) seeded by `seed` and the batch."""
    if stochastic:
        return judge.measure(judge.batched(lambda x, i: model.reconstruct(x, layer, stochastic=True,
                                                                          seed=[seed, i])))
    return judge.measure(judge.batched(lambda x, i: model.reconstruct(x, layer)))


def measure_system(model, system, judge, seed=0):
    """{layer: {"bits", "mse", "rfid", "error", and for a Gumbel system "stochastic": {...}}} at `system.layers`."""
    layers = {}
    for layer in system.layers:
        result = {"bits": system.rate or RATES[layer - 1], **evaluate_layer(model, layer, judge)}
        if system.stochastic:
            result["stochastic"] = evaluate_layer(model, layer, judge, stochastic=True, seed=seed)
        layers[str(layer)] = result
    return layers


def bundled_results(judge):
    """Results of the systems with bundled weights (`hqa_mnist`, `vqvae_mnist`, trained on `mnist10k` with
    their own longer recipes, `zoo.info(name)["weights_recipe"]`), as one seed each."""
    results = {}
    for system in TABLE3:
        if system.model is not None and zoo.info(system.model).get("bundled_weights"):
            model = zoo.load(system.model, weights="bundled")
            results[system.key] = [{"system": system.key, "seed": "bundled", "test_images": len(judge.images),
                                    "layers": measure_system(model, system, judge)}]
    return results


def run_system(system, seed, out, judge, quick=False, precision="mixed_bfloat16", remeasure=False, record=None):
    """Trains (or resumes) one (system, seed) in `out/runs/KEY/seedN` and measures it; returns its result dict.

    A folder with a `result.json` is done: its result is read back and nothing is trained; with `remeasure`
    a done folder's model is measured again (its training times kept). `record`: a folder that keeps a copy
    of every result (`record/KEY/seedN.json`, small files to commit, where run folders are not): a result
    kept there counts as done too, so a table survives the run folders."""
    folder, path, kept = run_paths(system.key, seed, out, record)
    budget = system.budget_for(quick)
    done, source = read_done(system.key, seed, out, record, budget=budget, config=system.config)
    if done is not None:
        if not remeasure or source != path:  # a kept result without its run folder cannot be measured again
            return done
        wall, cpu = done["wall_seconds"], done["cpu_seconds"]
    else:
        wall, cpu = time.time(), cpu_seconds()
        train.train(train.TrainOptions(model=system.model, dataset=DATASET, config=dict(system.config) or None,
                                       recipe=dict(budget), seed=seed, model_dir=folder, precision=precision,
                                       eval_examples=8 if quick else 256, log_every=50, verbose=not quick))
        wall, cpu = time.time() - wall, cpu_seconds() - cpu
    result = {"system": system.key, "model": system.model, "config": dict(system.config), "seed": seed,
              "budget": json_value(budget),
              "precision": precision, "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
              "test_images": len(judge.images), "layers": measure_system(zoo.load(folder), system, judge, seed)}
    write_json(path, result)
    if kept is not None:
        write_json(kept, result)
    return result


def run_all(systems, seeds, out, judge, quick=False, collect=False, precision="mixed_bfloat16", remeasure=False,
            record=None, log=print):
    """Results {system key: [result per seed]} for `systems`, seed by seed (all systems of seed 0 first), training
    what is missing unless `collect` (then only the results there are); `remeasure`, `record`: see
    `run_system`."""
    results = {s.key: [] for s in systems}
    for seed in range(seeds):
        for system in systems:
            if system.model is None:
                continue
            done = is_done(system.key, seed, out, record)
            if collect and not done:
                continue
            if not done:
                log(f"== {system.label} ({system.key}), seed {seed}")
            results[system.key].append(run_system(system, seed, out, judge, quick, precision,
                                                  remeasure=remeasure and done, record=record))
    return results


def aggregate(values):
    mean, half = _t_interval(values)
    return {"mean": mean, "ci95": half, "values": [float(v) for v in values]}


def table3_rows(results, judge):
    """Table 3's rows: {key: {"label", "seeds", "mse", "rfid", "error" (each aggregated), "paper", ...}}."""
    rows = {}
    for system in TABLE3:
        if system.model is None:
            measured = [judge.measure(judge.images)]
        else:
            measured = [r["layers"][str(max(system.layers))] for r in results.get(system.key, [])]
        row = {"label": system.label, "model": system.model, "seeds": len(measured) if system.model else 0,
               "paper": dict(zip(("mse", "rfid", "error_percent"), system.paper))}
        if measured:
            for metric in ("mse", "rfid", "error"):
                row[metric] = aggregate([m[metric] for m in measured])
            if system.stochastic:
                row["stochastic"] = {metric: aggregate([m["stochastic"][metric] for m in measured])
                                     for metric in ("mse", "rfid", "error")}
            runs = [r for r in results.get(system.key, []) if "cpu_seconds" in r]
            if runs:
                row["cpu_seconds"] = aggregate([r["cpu_seconds"] for r in runs])
        rows[system.key] = row
    return rows


def _cell(agg, scale=1.0, digits=3):
    if agg is None:
        return "-"
    text = f"{scale * agg['mean']:.{digits}f}"
    return text + (f" ± {scale * agg['ci95']:.{digits}f}" if len(agg["values"]) > 1 else "")


def table3_markdown(rows):
    lines = ["| system | seeds | MSE | rFID (MNIST features) | class. error (%) | CPU s per run | paper MSE | "
             "paper rFID | paper error (%) |", "|---|---|---|---|---|---|---|---|---|"]
    for key, r in rows.items():
        p = r["paper"]
        cpu = f"{r['cpu_seconds']['mean']:.0f}" if "cpu_seconds" in r else "-"
        lines.append(f"| {r['label']} | {r['seeds'] if r['model'] else '-'} | {_cell(r.get('mse'), digits=4)} | "
                     f"{_cell(r.get('rfid'), digits=1)} | {_cell(r.get('error'), 100.0, 1)} | {cpu} | "
                     f"{p['mse']:.3f} | {p['rfid']:.1f} | {p['error_percent']:.2f} |")
    return "\n".join(lines)


def figure3_series(results):
    """Figure 3's curves: {"HQA" | "HAMs" | "VQ-VAE": {metric: [(bits, aggregated) per rate]}}."""
    series = {}
    for name, keys in (("HQA", ["hqa"]), ("HAMs", ["hams"]),
                       ("VQ-VAE", [f"vqvae_l{l}" for l in (1, 2, 3, 4)] + ["vqvae"])):
        points = {}
        for key in keys:
            for r in results.get(key, []):
                for layer, m in r["layers"].items():
                    points.setdefault(m["bits"], []).append(m)
        series[name] = {metric: [(bits, aggregate([m[metric] for m in ms])) for bits, ms in
                                 sorted(points.items(), reverse=True)] for metric in ("mse", "rfid", "error")}
        series[name]["seeds"] = {bits: len(ms) for bits, ms in points.items()}
    return series


def plot_figure3(series, out_dir, prefix="hqa_mnist_figure3"):
    """One PNG per metric (rate against MSE, rFID, class. error; error bars: 95% intervals over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    titles = {"mse": "distortion (MSE)", "rfid": "rFID (MNIST classifier features)", "error": "classification error (%)"}
    for metric, title in titles.items():
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for name, marker in (("HQA", "o"), ("HAMs", "s"), ("VQ-VAE", "^")):
            pts = series.get(name, {}).get(metric, [])
            if not pts:
                continue
            scale = 100.0 if metric == "error" else 1.0
            ax.errorbar([b for b, _ in pts], [scale * a["mean"] for _, a in pts],
                        yerr=[scale * a["ci95"] for _, a in pts], marker=marker, capsize=3, label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(RATES)
        ax.set_xticklabels([str(r) for r in RATES])
        ax.set_xlabel("rate (bits per image)")
        ax.set_title(f"Real MNIST test digits: {title}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = os.path.join(out_dir, f"{prefix}_{metric}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def figure3_markdown(series):
    lines = ["| rate (bits) | system | seeds | MSE | rFID | class. error (%) |", "|---|---|---|---|---|---|"]
    for bits in RATES:
        for name in ("HQA", "HAMs", "VQ-VAE"):
            s = series.get(name, {})
            got = {metric: dict(s.get(metric, [])).get(bits) for metric in ("mse", "rfid", "error")}
            if got["mse"] is None:
                continue
            lines.append(f"| {bits} | {name} | {s['seeds'][bits]} | {_cell(got['mse'], digits=4)} | "
                         f"{_cell(got['rfid'], digits=1)} | {_cell(got['error'], 100.0, 1)} |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- commands
def _parse(argv):
    parser = argparse.ArgumentParser(prog="python -m tfvq.experiments.hqa_mnist",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("artefact", choices=("table3", "figure3", "samples"),
                        help="table3: HQA Table 3; figure3: HQA Figure 3 (and Table 3's runs); samples: Figures 4, "
                             "6, 7 and Tables 4, 8 (python -m tfvq.experiments.hqa_samples --help)")
    add_run_flags(parser, out="runs/hqa_mnist", seeds=3, record=RECORD)
    parser.add_argument("--weights", choices=("train", "bundled"), default="train",
                        help="train every system (default), or measure the bundled hqa_mnist and vqvae_mnist "
                             "alone (their own recipes; a few minutes)")
    parser.add_argument("--systems", default=None,
                        help=f"train and measure only these systems (comma-separated keys: {', '.join(SYSTEMS)})")
    parser.add_argument("--remeasure", action="store_true",
                        help="measure the finished runs again (e.g. after a change of the classifier)")
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
    args, rest = parser.parse_known_args(argv)
    if args.artefact != "samples" and rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.systems is not None:
        unknown = [k for k in args.systems.split(",") if k not in SYSTEMS]
        if unknown:
            parser.error(f"unknown systems {', '.join(unknown)}; known: {', '.join(SYSTEMS)}")
    check_run_flags(parser, args)
    return args, rest


def main(argv=None):
    args, rest = _parse(argv)
    if args.artefact == "samples":
        return hqa_samples.main(rest)
    start = time.time()
    seeds = 1 if args.quick else args.seeds
    limit = 64 if args.quick and args.limit is None else args.limit
    os.makedirs(args.out, exist_ok=True)
    judge = Judge(limit=limit)
    systems = TABLE3 + (FIGURE3_EXTRA if args.artefact == "figure3" else ())
    if args.systems is not None:
        systems = tuple(s for s in systems if s.key in args.systems.split(","))
    if args.weights == "bundled":
        results = bundled_results(judge)
    else:
        record = args.record if args.record is not None or args.quick else RECORD
        results = run_all(systems, seeds, args.out, judge, quick=args.quick, collect=args.collect,
                          precision=args.precision, remeasure=args.remeasure, record=record)
    report = {"args": vars(args), "test_images": len(judge.images)}
    if args.artefact == "table3":
        report["rows"] = rows = table3_rows(results, judge)
        text = table3_markdown(rows)
        title = f"HQA Table 3 on {len(judge.images)} real MNIST test digits ({DATASET}), 8-bit 1x1 codes"
    else:
        series = figure3_series(results)
        report["series"] = {name: {metric: [[b, a] for b, a in pts] if metric != "seeds" else pts
                                   for metric, pts in s.items()} for name, s in series.items()}
        report["plots"] = plot_figure3(series, args.out)
        text = figure3_markdown(series)
        title = f"HQA Figure 3 on {len(judge.images)} real MNIST test digits ({DATASET})"
    path = os.path.join(args.out, f"{args.artefact}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(args.out, f"{args.artefact}.md"), "w") as f:
        f.write(f"{title}\n\n{text}\n")
    print(title)
    print(text)
    print(f"{time.time() - start:.0f} s in all. Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
