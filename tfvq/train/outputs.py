"""What a training run leaves behind: PNG grids, TensorBoard images and a metrics JSON.

The model says what to show (`model.previews`) and what to measure
(`model.report`); this module writes them.
"""

import json
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
        for j in range(len(row)):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y: y + h, x: x + w] = row[j]
    return (grid * 255.0 + 0.5).astype(np.uint8)


def write_png(path, grid):
    """Writes a uint8 [H, W, C] array as a PNG file."""
    tf.io.write_file(path, tf.io.encode_png(grid))
    return path


def write_image_summaries(writer, model, images, step, seed=0, stages=None):
    """TensorBoard images of `model.previews` (one image per grid)."""
    with writer.as_default(step=step):
        for name, rows in model.previews(images, seed=seed, stages=stages).items():
            tf.summary.image(name, image_grid(rows)[None], max_outputs=1)
    writer.flush()


def format_table(columns, rows):
    """A right-aligned text table."""
    cells = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "\n".join(" ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells)


def write_run_outputs(model, test_images, train_images, out_dir, extra=None, stages=None, batch_size=64, seed=0):
    """Writes `<name>.png` for every grid of `model.previews`, and `metrics.json` (`model.report` + `extra`).

    Returns:
      (report dict of `model.report`, {grid name or "metrics": path}).
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for name, rows in model.previews(test_images[:8], seed=seed, stages=stages).items():
        paths[name] = write_png(os.path.join(out_dir, f"{name}.png"), image_grid(rows))
    report = model.report(test_images, train_images, batch_size=batch_size, seed=seed, stages=stages)
    paths["metrics"] = os.path.join(out_dir, "metrics.json")
    with open(paths["metrics"], "w") as f:
        json.dump({**(extra or {}), **report["metrics"]}, f, indent=2)
    return report, paths
