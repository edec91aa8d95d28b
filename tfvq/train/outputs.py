"""What a training run leaves behind: PNG grids and a metrics JSON.

Greedy (HQA) runs: `write_outputs`. End-to-end (RRVQ-VAE) runs:
`write_end_to_end_outputs`.
"""

import json
import math
import os

import numpy as np
import tensorflow as tf


def image_grid(rows):
    """Tiles a list of equal-length image batches [n, H, W, C] in [0, 1] into one uint8 image.

    Each batch becomes a row, separated by a 2-pixel border.
    """
    rows = [np.clip(np.asarray(r, np.float32), 0.0, 1.0) for r in rows]
    n, h, w, c = rows[0].shape
    pad = 2
    grid = np.ones((len(rows) * (h + pad) + pad, n * (w + pad) + pad, c), np.float32)
    for i, row in enumerate(rows):
        for j in range(n):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = row[j]
    return (grid * 255.0 + 0.5).astype(np.uint8)


def write_png(path, grid):
    """Writes a uint8 [H, W, C] array as a PNG file."""
    tf.io.write_file(path, tf.io.encode_png(grid))
    return path


def evaluate(model, images, layers, batch_size=256, seed=0):
    """Per-layer test metrics: bits per image, MSE (deterministic and stochastic decodes),
    code perplexity and the number of distinct codes used."""
    results = {}
    for layer in layers:
        mse_det, mse_sto, codes_all = [], [], []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            codes = model.encode(batch, layer)
            det = model.decode(codes, layer, stochastic=False)
            sto = model.decode(codes, layer, stochastic=True, seed=[seed, start])
            mse_det.append(np.mean((det.numpy() - batch) ** 2, axis=(1, 2, 3)))
            mse_sto.append(np.mean((sto.numpy() - batch) ** 2, axis=(1, 2, 3)))
            codes_all.append(codes.numpy().ravel())
        codes_all = np.concatenate(codes_all)
        counts = np.bincount(codes_all, minlength=model.quantizer(layer).num_codes).astype(np.float64)
        p = counts / counts.sum()
        nz = p[p > 0]
        results[layer] = {
            "bits_per_image": model.bits(layer),
            "code_shape": list(model.code_shape(layer)),
            "mse": float(np.mean(np.concatenate(mse_det))),
            "mse_stochastic": float(np.mean(np.concatenate(mse_sto))),
            "perplexity": float(math.exp(-(nz * np.log(nz)).sum())),
            "codes_used": int((counts > 0).sum()),
        }
    return results


def write_outputs(model, images, layers, out_dir, num_show=8, num_decodes=8, seed=0):
    """Writes `reconstructions.png`, `stochastic_decodes.png` and `metrics.json`.

    reconstructions.png: the originals in the first row, then one row per
    layer with the deterministic reconstruction from that layer's codes.
    stochastic_decodes.png: per row, an original then `num_decodes`
    stochastic decodes (HQA Algorithm 3) from the top trained layer.
    """
    os.makedirs(out_dir, exist_ok=True)
    show = images[:num_show]
    rows = [show] + [model.reconstruct(show, l, stochastic=False).numpy() for l in layers]
    paths = {"reconstructions": write_png(os.path.join(out_dir, "reconstructions.png"), image_grid(rows))}
    top = max(layers)
    codes = model.encode(show[: min(len(show), 6)], top)
    decodes = [model.decode(codes, top, stochastic=True, seed=[seed, i]).numpy() for i in range(num_decodes)]
    grid_rows = [np.concatenate([show[i : i + 1]] + [d[i : i + 1] for d in decodes]) for i in range(len(codes))]
    paths["stochastic_decodes"] = write_png(os.path.join(out_dir, "stochastic_decodes.png"), image_grid(grid_rows))
    metrics = evaluate(model, images, layers, seed=seed)
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump({"layers": {str(k): v for k, v in metrics.items()}}, f, indent=2)
    paths["metrics"] = os.path.join(out_dir, "metrics.json")
    return metrics, paths


def make_elbo_fn(model):
    """`model.elbo(images, seed=seed)` as one `tf.function` (for repeated evaluations)."""
    return tf.function(lambda x, s: model.elbo(x, seed=s), reduce_retracing=True)


def evaluate_end_to_end(model, images, batch_size=64, seed=0, elbo_fn=None):
    """Negative ELBO and per-layer KL of an end-to-end model over `images`.

    Uses `model.elbo` (non-relaxed latents, one sample of q per image) in
    batches, with stateless seeds `[seed, 2_000_003 + batch index]`. Pass the
    same `elbo_fn` (`make_elbo_fn(model)`) to repeated calls so the graph is
    traced once.

    Returns:
      dict: `bpd` (mean -ELBO in bits per dim), `recon_bpd` (mean -log p(x|z)
      in bits per dim) and `kl_bits_per_layer` (mean KL of each latent layer
      in bits per image, layer 1 first).
    """
    images = np.asarray(images, np.float32)
    dims = float(np.prod(images.shape[1:]))
    elbo_fn = elbo_fn or make_elbo_fn(model)
    elbo, log_lik, kl = [], [], []
    for i, start in enumerate(range(0, len(images), batch_size)):
        out = elbo_fn(tf.constant(images[start : start + batch_size]), tf.constant([seed, 2_000_003 + i], tf.int32))
        elbo.append(out["elbo"].numpy())
        log_lik.append(out["log_likelihood"].numpy())
        kl.append(out["kl"].numpy())
    elbo, log_lik, kl = (np.concatenate(a).astype(np.float64) for a in (elbo, log_lik, kl))
    return {
        "bpd": float(-elbo.mean() / (dims * math.log(2.0))),
        "recon_bpd": float(-log_lik.mean() / (dims * math.log(2.0))),
        "kl_bits_per_layer": [float(v) for v in kl.mean(axis=0) / math.log(2.0)],
    }


def write_end_to_end_outputs(model, train_images, test_images, out_dir, num_show=8, num_samples=64, batch_size=64,
                             seed=0, extra=None, elbo_fn=None):
    """Writes `reconstructions.png`, `samples.png` and `metrics.json` for an end-to-end model.

    reconstructions.png: `num_show` test originals in the first row, their
    reconstructions (`model.reconstruct`) in the second.
    samples.png: `num_samples` ancestral samples (`model.sample`), in rows of 8.
    metrics.json: `train_bpd` (on `train_images`), `test_bpd`, `test_recon_bpd`,
    `kl_bits_per_layer` (test images, bits per image, layer 1 first),
    `latent_shapes`, the numbers of images, and `extra` (e.g. the final
    `learning_rate`).

    Returns:
      (metrics dict, dict of paths: reconstructions, samples, metrics).
    """
    os.makedirs(out_dir, exist_ok=True)
    show = np.asarray(test_images[:num_show], np.float32)
    recon = model.reconstruct(show, seed=[seed, 0]).numpy()
    paths = {"reconstructions": write_png(os.path.join(out_dir, "reconstructions.png"), image_grid([show, recon]))}
    samples = model.sample(num_samples, seed=[seed, 1]).numpy().astype(np.float32) / 255.0
    per_row = min(8, num_samples)
    rows = [samples[i : i + per_row] for i in range(0, num_samples - num_samples % per_row, per_row)]
    paths["samples"] = write_png(os.path.join(out_dir, "samples.png"), image_grid(rows))
    elbo_fn = elbo_fn or make_elbo_fn(model)
    test = evaluate_end_to_end(model, test_images, batch_size=batch_size, seed=seed, elbo_fn=elbo_fn)
    train = evaluate_end_to_end(model, train_images, batch_size=batch_size, seed=seed, elbo_fn=elbo_fn)
    metrics = {
        **(extra or {}),
        "train_bpd": train["bpd"],
        "test_bpd": test["bpd"],
        "test_recon_bpd": test["recon_bpd"],
        "kl_bits_per_layer": test["kl_bits_per_layer"],
        "latent_shapes": [list(s) for s in model.latent_shapes],
        "train_examples": int(len(train_images)),
        "test_examples": int(len(test_images)),
    }
    paths["metrics"] = os.path.join(out_dir, "metrics.json")
    with open(paths["metrics"], "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics, paths
