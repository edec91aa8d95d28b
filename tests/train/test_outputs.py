"""What a training run leaves behind (`tfvq.train.outputs`): image grids, PNG files, TensorBoard images, a text
table and metrics.json."""

import json

import numpy as np
import tensorflow as tf

from tfvq.train import outputs


class Previewing:
    """A stand-in for a model: `previews` gives one grid of two rows (the images, then their negatives), `report`
    one metric; both record what they were asked."""

    def __init__(self):
        self.calls = []

    def previews(self, images, seed=0, stages=None):
        self.calls.append(("previews", len(images), seed, stages))
        return {"reconstructions": [images, 1.0 - images]}

    def report(self, test_images, train_images, batch_size=64, seed=0, stages=None):
        self.calls.append(("report", len(test_images), len(train_images), batch_size, seed, stages))
        return {"metrics": {"mse": 0.25, "steps": 7}}


def test_a_grid_tiles_each_batch_as_a_row_inside_a_2_pixel_white_border():
    rows = [np.full((3, 2, 2, 1), 0.5, np.float32), np.array([-1.0, 0.0, 2.0]).reshape(3, 1, 1, 1) * np.ones((2, 2, 1))]
    grid = outputs.image_grid(rows)
    assert grid.dtype == np.uint8 and grid.shape == (2 * (2 + 2) + 2, 3 * (2 + 2) + 2, 1)
    want = np.full(grid.shape, 255, np.uint8)
    for j, value in enumerate([0, 0, 255]):  # the second row, clipped to [0, 1]
        want[2:4, 2 + 4 * j: 4 + 4 * j] = 128  # round(0.5 * 255)
        want[6:8, 2 + 4 * j: 4 + 4 * j] = value
    np.testing.assert_array_equal(grid, want)


def test_a_png_holds_the_grid(tmp_path):
    grid = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    path = outputs.write_png(str(tmp_path / "grid.png"), grid)
    assert path == str(tmp_path / "grid.png")
    np.testing.assert_array_equal(tf.io.decode_png(tf.io.read_file(path)).numpy(), grid)


def test_a_table_is_right_aligned_under_its_columns():
    assert outputs.format_table(["layer", "bits", "MSE"], [[1, 2048, 0.0011], [10, 8, "-"]]) == (
        "layer bits    MSE\n"
        "    1 2048 0.0011\n"
        "   10    8      -")


def test_run_outputs_are_a_png_per_grid_and_the_metrics_over_the_extra_facts(tmp_path):
    model, images = Previewing(), np.linspace(0, 1, 10 * 4 * 4).reshape(10, 4, 4, 1).astype(np.float32)
    out = tmp_path / "run" / "outputs"
    report, paths = outputs.write_run_outputs(model, images, images[:6], str(out), extra={"model": "x", "mse": 1.0},
                                              stages=[1], batch_size=5, seed=3)
    assert report == {"metrics": {"mse": 0.25, "steps": 7}}
    assert paths == {"reconstructions": str(out / "reconstructions.png"), "metrics": str(out / "metrics.json")}
    assert json.loads((out / "metrics.json").read_text()) == {"model": "x", "mse": 0.25, "steps": 7}
    png = tf.io.decode_png(tf.io.read_file(paths["reconstructions"])).numpy()
    np.testing.assert_array_equal(png, outputs.image_grid([images[:8], 1.0 - images[:8]]))
    assert model.calls == [("previews", 8, 3, [1]), ("report", 10, 6, 5, 3, [1])]  # the grids show 8 images


def test_tensorboard_gets_one_image_per_grid_at_the_step(tmp_path):
    model, images = Previewing(), np.zeros((2, 4, 4, 1), np.float32)
    writer = tf.summary.create_file_writer(str(tmp_path))
    outputs.write_image_summaries(writer, model, images, step=5, seed=2, stages=[3])
    events = [e for f in tmp_path.iterdir() for e in tf.compat.v1.train.summary_iterator(str(f)) if e.summary.value]
    assert [(e.step, v.tag) for e in events for v in e.summary.value] == [(5, "reconstructions")]
    width, height, png = events[0].summary.value[0].tensor.string_val
    np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), outputs.image_grid([images, 1.0 - images]))
    assert (int(width), int(height)) == (2 * 6 + 2, 2 * 6 + 2) and model.calls == [("previews", 2, 2, [3])]
