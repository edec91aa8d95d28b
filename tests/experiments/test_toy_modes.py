"""Tests of the HQA §4 / Figure 1 experiment (`tfvq.experiments.toy_modes`) on the toy density of
`tfvq.data.toy_modes` (tested in tests/data/test_toy_modes.py)."""

import json
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfvq.data import toy_modes
from tfvq.experiments import toy_modes as experiment

ROW_KEYS = {"system", "label", "rate_bits", "modes_covered", "unrealistic_fraction", "mse", "mode_fractions"}


# ------------------------------------------------------------------ metrics
def _repeat(values, counts):
    return np.repeat(np.asarray(values, np.float32), counts)[:, None]


def test_metrics_of_perfect_four_mode_reconstructions():
    recon = _repeat(toy_modes.MODES, [25, 25, 25, 25])
    assert experiment.modes_covered(recon) == 4
    assert experiment.unrealistic_fraction(recon) == 0.0
    np.testing.assert_allclose(experiment.mode_fractions(recon), 0.25)


def test_metrics_of_mode_covering_reconstructions():
    # A 2-code quantizer that merges modes (0, 1) and (2, 3): the midpoints.
    recon = _repeat([-2.25, 2.25], [50, 50])
    assert experiment.modes_covered(recon) == 0
    assert experiment.unrealistic_fraction(recon) == 1.0


def test_metrics_of_mode_dropping_reconstructions():
    recon = _repeat([-1.5, 1.5], [50, 50])
    assert experiment.modes_covered(recon) == 2
    assert experiment.unrealistic_fraction(recon) == 0.0
    np.testing.assert_allclose(experiment.mode_fractions(recon), [0.0, 0.5, 0.5, 0.0])


def test_mode_coverage_threshold_is_five_percent_inclusive():
    assert experiment.modes_covered(_repeat([-3.0, 3.0], [96, 4])) == 1
    assert experiment.modes_covered(_repeat([-3.0, 3.0], [95, 5])) == 2


def test_points_beyond_three_std_do_not_cover_their_nearest_mode():
    # 50 points 3.5 std from mode 0: unrealistic, and mode 0 is not covered.
    recon = _repeat([-3.35, 1.5], [50, 50])
    assert experiment.modes_covered(recon) == 1
    assert experiment.unrealistic_fraction(recon) == 0.5
    np.testing.assert_allclose(experiment.mode_fractions(recon), [0.0, 0.0, 0.5, 0.0])


def test_evaluate_row():
    inputs = np.zeros([4, 1], np.float32)
    recon = _repeat([1.0, -1.0, 1.0, -1.0], [1, 1, 1, 1])
    row = experiment.evaluate(inputs, recon, rate_bits=1)
    assert row["mse"] == pytest.approx(1.0)
    assert row["rate_bits"] == 1.0
    assert row["unrealistic_fraction"] == 1.0
    assert set(row) == ROW_KEYS - {"system", "label"}
    with pytest.raises(ValueError, match="shape"):
        experiment.evaluate(inputs, recon[:3], rate_bits=1)


def test_rates_count_only_the_transmitted_top_codes():
    assert experiment.RATES == {
        "vqvae_4": 2.0,
        "vqvae_2": 1.0,
        "hqa_deterministic": 1.0,
        "hqa_stochastic": 1.0,
    }


# --------------------------------------------------------------- the models
@pytest.fixture(scope="module")
def trained():
    """All five layers, briefly trained (enough to exercise every code path)."""
    return experiment.train_systems(steps=40, seed=0, log=lambda *a: None)


def _nearest_codes(points, codebook):
    d = ((points[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return d.argmin(-1)


@pytest.mark.slow
def test_deterministic_hqa_requantises_through_layer_one(trained):
    """Algorithm 1: every reconstruction is one of layer 1's 4 code outputs, and
    the layer-1 code is the nearest code to Decoder2(top code)."""
    layer1, layer2 = trained["vq4"], trained["hqa_det_l2"]
    x = toy_modes.sample(2000, seed=5)
    x_hat, codes2, codes1 = experiment.reconstruct_hqa(layer1, layer2, x, stochastic=False)
    outputs = layer1.code_outputs()  # [4, 1]
    np.testing.assert_allclose(x_hat, outputs[codes1], atol=1e-6)
    # NumPy oracle of lines 6-7: decode the top code, take the nearest layer-1 code.
    z_e1_hat = layer2.decode(layer2.quantizer.lookup(tf.constant(codes2))).numpy()
    np.testing.assert_array_equal(codes1, _nearest_codes(z_e1_hat, layer1.quantizer.codebook.numpy()))
    # Deterministic: the layer-1 code is a function of the transmitted code.
    for c in np.unique(codes2):
        assert len(np.unique(codes1[codes2 == c])) == 1
    assert set(np.unique(codes2)) <= {0, 1}


@pytest.mark.slow
def test_stochastic_hqa_samples_layer_one_codes_and_decodes_them(trained):
    layer1, layer2 = trained["sto_l1"], trained["sto_l2"]
    x = toy_modes.sample(2000, seed=6)
    x_hat, codes2, codes1 = experiment.reconstruct_hqa(layer1, layer2, x, stochastic=True)
    np.testing.assert_allclose(x_hat, layer1.code_outputs()[codes1], atol=1e-6)
    assert set(np.unique(codes2)) <= {0, 1}
    assert set(np.unique(codes1)) <= {0, 1, 2, 3}


@pytest.mark.slow
def test_vqvae_reconstructions_are_decoded_codes(trained):
    stage = trained["vq2"]
    x = toy_modes.sample(500, seed=7)
    x_hat = experiment.reconstruct_vqvae(stage, x)
    codes, _ = stage.quantize(stage.encode(x))
    np.testing.assert_allclose(x_hat, stage.code_outputs()[codes.numpy()], atol=1e-6)


# --------------------------------------------------------------------- run
def _check_result(result, out_dir):
    table = result["table"]
    assert [row["system"] for row in table] == list(experiment.SYSTEMS)
    for row in table:
        assert set(row) == ROW_KEYS
        assert 0 <= row["modes_covered"] <= 4
        assert 0.0 <= row["unrealistic_fraction"] <= 1.0
        assert np.isfinite(row["mse"])
        assert len(row["mode_fractions"]) == 4
    with open(out_dir / "toy_modes.json") as f:
        saved = json.load(f)
    assert saved["table"] == table
    assert result["files"]["json"] == str(out_dir / "toy_modes.json")


@pytest.mark.slow
def test_short_run_returns_the_table_and_writes_outputs(tmp_path):
    logs = []
    result = experiment.run(steps=20, seed=0, out_dir=str(tmp_path), log=logs.append)
    _check_result(result, tmp_path)
    text = "\n".join(logs)
    for row in result["table"]:
        assert row["label"] in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert result["files"]["figure"] is None
        assert 'pip install -e ".[viz]"' in text
    else:
        png = tmp_path / "toy_modes.png"
        assert result["files"]["figure"] == str(png)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_run_without_matplotlib_prints_the_table_and_says_how_to_get_the_figure(
    tmp_path, monkeypatch, trained
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` now raises ImportError
    monkeypatch.setattr(experiment, "train_systems", lambda **kwargs: trained)
    logs = []
    result = experiment.run(steps=1, seed=0, out_dir=str(tmp_path), log=logs.append)
    _check_result(result, tmp_path)
    assert result["files"]["figure"] is None
    assert not (tmp_path / "toy_modes.png").exists()
    text = "\n".join(logs)
    assert "figure skipped" in text and 'pip install -e ".[viz]"' in text
    assert "modes covered" in text


def test_run_rejects_zero_steps():
    with pytest.raises(ValueError, match="steps"):
        experiment.train_systems(steps=0)


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        experiment.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--steps", "--out", "--seed"):
        assert flag in out
