"""Tests of HQA's MNIST sample figures (`tfvq.experiments.hqa_samples`: HQA Figures 4, 6, 7, Tables 4, 8)."""

import numpy as np
import pytest
from PIL import Image

from tfvq.experiments import hqa_samples

CELL = 32 + 2
"""A 32x32 digit and the 2-pixel border of `tfvq.train.outputs.image_grid`."""


def grid_size(rows, columns):
    """(width, height) in pixels of an `image_grid` of 32x32 images."""
    return columns * CELL + 2, rows * CELL + 2


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`main(["all", "--quick"])` once, keeping what `vae_samples` returned."""
    out = tmp_path_factory.mktemp("hqa_samples")
    returned = []

    def recording(*args, **kwargs):
        returned.append(vae_samples(*args, **kwargs))
        return returned[-1]

    vae_samples = hqa_samples.vae_samples
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hqa_samples, "vae_samples", recording)
        assert hqa_samples.main(["all", "--quick", "--out", str(out)]) == 0
    return out, returned


@pytest.mark.slow
def test_every_figure_is_a_png_of_its_grid(quick_run):
    out, _ = quick_run
    quick = hqa_samples.QUICK
    expected = {
        "free_samples": grid_size(16, 16),  # HQA Figure 4: all 256 codes of the 1x1 top layer
        "interpolations": grid_size(5, quick.interpolation_steps + 2),  # Tables 4, 8: a row per layer
        "stochastic_decodes_fig6": grid_size(quick.stochastic_rows, quick.stochastic_decodes + 2),  # Figure 6
        "vae_samples": grid_size(quick.vae_grid, quick.vae_grid),  # Figure 7
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(f"hqa_mnist_{name}.png" for name in expected)
    for name, size in expected.items():
        with Image.open(out / f"hqa_mnist_{name}.png") as image:
            assert (image.format, image.size, image.mode) == ("PNG", size, "L")


@pytest.mark.slow
def test_vae_samples_decode_to_images_of_the_model(quick_run):
    _, returned = quick_run
    ((images, stats),) = returned
    count = hqa_samples.QUICK.vae_grid ** 2
    assert images.shape == (count, 32, 32, 1) and images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert stats["layer"] == 4 and stats["dims"] == 2 * 2 * 64 and stats["steps"] == hqa_samples.QUICK.vae_steps
    assert np.isfinite([stats["loss"], stats["nll"], stats["kl"]]).all() and stats["kl"] >= 0.0
    assert 1 <= stats["codes_used"] <= stats["num_codes"] == 256


def test_stochastic_rows_end_with_the_mean_of_the_decodes():
    images = np.zeros([2, 4, 4, 1], np.float32)
    samples = np.stack([np.full([3, 4, 4, 1], v, np.float32) for v in (0.2, 0.6)])
    samples[1, 0] = 0.0
    rows = hqa_samples.stochastic_rows(images, samples)
    assert [r.shape for r in rows] == [(5, 4, 4, 1)] * 2
    np.testing.assert_allclose(rows[0][-1], 0.2)
    np.testing.assert_allclose(rows[1][-1], 0.4)
    np.testing.assert_array_equal(rows[1][0], images[1])


def test_held_out_digits_are_the_first_of_each_class():
    images = np.arange(6, dtype=np.float32).reshape(6, 1, 1, 1)
    labels = np.array([9, 2, 2, 9, 0, 1])
    np.testing.assert_array_equal(hqa_samples.held_out_digits(images, labels, (2, 9)).ravel(), [1, 0])
    np.testing.assert_array_equal(hqa_samples.held_out_digits(images, None, (2, 9)).ravel(), [0, 1])


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        hqa_samples.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ("free", "interpolations", "stochastic", "vae", "--out", "--model", "--seed", "--quick",
                 "Figure 4", "Table 8"):
        assert word in out
