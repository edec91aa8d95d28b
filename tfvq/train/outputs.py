"""What a training run leaves behind: PNG grids and a metrics JSON."""

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
