"""The stages and reports of models whose layers each decode alone: HQA and its VQ-VAE baseline.

`greedy_stage` builds one stage of HQA's greedy recipe (HQA Algorithm 2,
App. C.1) for one layer's variables; its data-dependent codebook changes are
`kmeans_plus_plus_codebook` (a codebook seeded where the data is) and
`retire_codes` (a codebook cut to its most used codes). `layer_metrics` and
`layer_report` are the per-layer test metrics both families report. Shared
by the families (`tfvq.models.hqa`; the autoencoders of today's quantizers
train in one such stage, `tfvq.models.quantized_ae`).
"""

import math

import numpy as np
import tensorflow as tf

from tfvq.layers.anneal import linear_anneal
from tfvq.layers.kmeans import kmeans_plus_plus_codebook  # lives in the layers; importable from here as before
from tfvq.models.training import OptimizerRecipe, Stage

__all__ = ["CODEBOOK_INITS", "greedy_stage", "kmeans_plus_plus_codebook", "layer_metrics", "layer_report",
           "retire_codes"]

CODEBOOK_INITS = ("random", "kmeans++")
"""How a greedy stage starts a layer's codebook (`HQARecipe.codebook_init`)."""


_RETIRED_LOGIT_MARGIN = 200.0
"""Nats by which every data point's logit for a retired code falls below its nearest kept code's, at least."""


def retire_codes(quantizer, z_e, keep):
    """Keeps the `keep` codes the quantizer gives most often for `z_e` [..., D]; moves the others out of reach.

    Fixed-rate HQA spends log2 K bits on a code whatever its use, so a large
    codebook costs nothing and the dead-code resets of App. C.4 keep every
    code alive. An entropy-coded file (`tfvq.codec`) pays for every code in
    use: many near-duplicate codes cost bits for detail the decoder barely
    shows. This is the codebook pruning of entropy-constrained VQ (Chou,
    Lookabaugh and Gray 1989, where codes whose probability falls to zero
    leave the codebook), at a fixed K so the layer's shapes and fixed rate
    stay the paper's: the retired codes all move to one point beyond the data
    and the kept codes (ten times the distance from the data's mean to the
    farthest data point plus the farthest kept code, and sqrt(200 / s)
    more), where neither the argmin nor the relaxed sample picks them (their
    logit `-s d^2` is at least 200 nats below the nearest kept code's), and
    the training that follows fits the kept codes and the decoder to each
    other. Returns the kept codes' indices.
    """
    flat = np.asarray(z_e, np.float32).reshape(-1, quantizer.code_dim)
    codes = np.asarray(quantizer.nearest_codes(flat))  # the codes files send
    usage = np.bincount(codes, minlength=quantizer.num_codes)
    kept = np.sort(np.argsort(-usage, kind="stable")[:keep])
    center = flat.mean(axis=0)
    codebook = quantizer.codebook.numpy()
    # Beyond the data and the kept codes, plus a margin in the quantizer's own logit scale: a point of the data
    # is then at least MARGIN nats closer (in -s d^2) to its nearest kept code than to the far point, however
    # small the data's spread (with 10 radii alone, nearly constant z_e left the retired codes within reach of
    # the Gumbel noise).
    radius = float(np.sqrt(((flat - center) ** 2).sum(axis=1).max()))
    reach = radius + float(np.sqrt(((codebook[kept] - center) ** 2).sum(axis=1).max()))
    scale = float(getattr(quantizer, "distance_scale", 1.0))
    far = center.copy()
    far[0] += 10.0 * reach + np.sqrt(_RETIRED_LOGIT_MARGIN / scale)
    codebook[np.setdiff1d(np.arange(quantizer.num_codes), kept)] = far
    quantizer.codebook.assign(codebook)
    return kept


def greedy_stage(name, title, steps, variables, loss, quantizer, recipe, encode=None, seed=0, temperatures=None,
                 reset_fraction=None, codebook_init="random", keep_codes=None):
    """A stage of HQA's greedy recipe (HQA Algorithm 2, App. C.1) for one layer's variables (HQA, VQ-VAE).

    The optimiser is the recipe's (`HQARecipe`, `VQVAERecipe`): RAdam at
    `recipe.learning_rate` (App. C.1: 4e-4), constant, then cosine-annealed over
    the final `recipe.cosine_fraction` of the steps; gradients clipped to the
    global norm `recipe.clip_norm`. The per-step schedules are the stage's:

    `temperatures`: (initial, final), the quantizer's Gumbel-softmax
    temperature annealed linearly over the steps (HQA §5.1), for a quantizer
    that has a temperature; None: no anneal.

    `reset_fraction`: dead codes are reset during this first fraction of the
    steps (App. C.4), for a quantizer with a code reset; None: no window.

    `codebook_init`: "random" (the layer's initializer, as the paper) or
    "kmeans++": when the stage starts, the codebook is seeded by k-means++ on
    the z_e that `encode(images)` gives for a sample of training images
    (`kmeans_plus_plus_codebook`), so that codes start where the data is
    instead of waiting for the one-code-per-20-batches reset of App. C.4.

    `keep_codes`: None (every code), or a number of codes to keep (K or more:
    every code) when the resets end (step `reset_fraction * steps`):
    `retire_codes` on the z_e of a sample of training images, then the rest of
    the steps without resets.
    """
    if codebook_init not in CODEBOOK_INITS:
        raise ValueError(f"codebook_init must be one of {CODEBOOK_INITS}, got {codebook_init!r}.")
    setup = None
    if codebook_init == "kmeans++" and encode is not None:
        def setup(images):
            z_e = np.asarray(encode(images))
            if not np.all(np.isfinite(z_e)):
                return  # nothing to seed from: the first step stops the run on its non-finite loss
            centers = kmeans_plus_plus_codebook(z_e, quantizer.num_codes, seed)
            codebook = quantizer.codebook.numpy()
            codebook[: len(centers)] = centers  # with fewer distinct points than codes, the rest stay as they were
            quantizer.codebook.assign(codebook)

    at_steps = {}
    if keep_codes is not None and int(keep_codes) < 1:
        raise ValueError(f"keep_codes must be at least 1 (or None: every code), got {keep_codes}.")
    if keep_codes is not None and int(keep_codes) < quantizer.num_codes and encode is not None:  # else all stay
        if reset_fraction is None:
            raise ValueError("keep_codes retires codes when the resets end: it needs a reset_fraction.")
        at_steps[min(steps - 1, math.ceil(float(reset_fraction) * steps))] = (
            lambda images: retire_codes(quantizer, encode(images), int(keep_codes)))

    anneal = temperatures is not None and hasattr(quantizer, "temperature")
    t0, t1 = (float(t) for t in temperatures) if temperatures is not None else (None, None)
    resets = reset_fraction is not None and getattr(quantizer, "code_reset", False)
    reset_until = float(reset_fraction) * steps if resets else None

    def before_step(step):
        shown = {}
        if anneal:
            quantizer.temperature.assign(tf.cast(linear_anneal(step, steps, t0, t1), quantizer.temperature.dtype))
            shown["temperature"] = tf.convert_to_tensor(quantizer.temperature)
        if resets:
            quantizer.reset_enabled.assign(tf.cast(step, tf.float32) < reset_until)
        return shown

    return Stage(
        name=name,
        title=title,
        steps=steps,
        variables=variables,
        loss=loss,
        optimizer=OptimizerRecipe("radam", recipe.learning_rate, cosine_fraction=recipe.cosine_fraction,
                                  clip_norm=recipe.clip_norm),
        before_step=before_step,
        shown=("loss", "mse", "perplexity", "temperature"),
        setup=setup,
        at_steps=at_steps,
    )


def layer_metrics(model, images, layers, batch_size=256, seed=0):
    """Per-layer test metrics of a model whose layers each decode alone (HQA, VQ-VAE).

    For each layer: bits per image (fixed rate), MSE of the deterministic and
    of the stochastic decode (HQA Algorithm 3) of its codes, the perplexity
    of the codes and the number of distinct codes used.
    """
    layout = model.code_layout()
    images = np.asarray(images, np.float32)
    results = {}
    for layer in layers:
        mse_det, mse_sto, codes_all = [], [], []
        for start in range(0, len(images), batch_size):
            batch = images[start: start + batch_size]
            codes = model.encode(batch, layer)
            det = model.decode(codes, layer)
            sto = model.decode(codes, layer, stochastic=True, seed=[seed, start])
            mse_det.append(np.mean((det.numpy() - batch) ** 2, axis=(1, 2, 3)))
            mse_sto.append(np.mean((sto.numpy() - batch) ** 2, axis=(1, 2, 3)))
            codes_all.append(codes.numpy().ravel())
        codes_all = np.concatenate(codes_all)
        counts = np.bincount(codes_all, minlength=layout.num_codes[layer - 1]).astype(np.float64)
        p = counts / counts.sum()
        nz = p[p > 0]
        results[layer] = {
            "bits_per_image": layout.bits(layer),
            "code_shape": list(layout.grids[layer - 1]),
            "mse": float(np.mean(np.concatenate(mse_det))),
            "mse_stochastic": float(np.mean(np.concatenate(mse_sto))),
            "perplexity": float(math.exp(-(nz * np.log(nz)).sum())),
            "codes_used": int((counts > 0).sum()),
        }
    return results


def layer_report(model, images, layers, seed=0):
    """`ImageModel.report` of a model whose layers each decode alone: metrics per layer and a table."""
    metrics = layer_metrics(model, images, layers, seed=seed)
    rows = [[l, m["bits_per_image"], f"{m['mse']:.4f}", f"{m['mse_stochastic']:.4f}", f"{m['perplexity']:.1f}",
             m["codes_used"]] for l, m in sorted(metrics.items())]
    return {
        "metrics": {"layers": {str(l): m for l, m in metrics.items()}},
        "table": (["layer", "bits", "MSE", "MSE stoch.", "perplexity", "codes used"], rows),
        "lines": [],
    }
