"""Tests of tfvq.experiments.hqa_mnist (HQA Table 3 and Figure 3 on real MNIST digits)."""

import dataclasses
import json
import os

import numpy as np
import pytest
from scipy import stats

from tfvq import train
from tfvq.experiments import hqa_mnist


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """`table3 --quick` of one stack (HAMs: the "vq" quantizer and the "codes" target), into a fresh folder."""
    out = tmp_path_factory.mktemp("hqa_mnist")
    assert hqa_mnist.main(["table3", "--quick", "--systems=hams", f"--out={out}"]) == 0
    return out


def test_a_quick_table3_run_writes_a_resumable_run_folder_and_the_table(quick_run, capsys):
    folder = quick_run / "runs" / "hams" / "seed0"
    result = json.loads((folder / "result.json").read_text())
    assert result["model"] == "hqa_mnist_hams" and result["seed"] == 0 and result["test_images"] == 64
    assert sorted(result["layers"]) == ["1", "2", "3", "4", "5"]
    assert [result["layers"][str(l)]["bits"] for l in range(1, 6)] == list(hqa_mnist.RATES)
    assert json.loads((folder / "config.json").read_text())["config"]["target"] == "codes"
    report = json.loads((quick_run / "table3.json").read_text())
    rows = report["rows"]
    assert list(rows) == [s.key for s in hqa_mnist.TABLE3]
    assert rows["hams"]["seeds"] == 1 and rows["hqa"]["seeds"] == 0 and "mse" not in rows["hqa"]
    assert rows["originals"]["mse"]["mean"] == 0.0 and abs(rows["originals"]["rfid"]["mean"]) < 1e-6
    assert rows["hams"]["mse"]["values"] == [result["layers"]["5"]["mse"]]
    assert "| + hierarchy (HAMs) | 1 |" in (quick_run / "table3.md").read_text()


def test_a_finished_run_is_read_back_and_not_trained_again(quick_run, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(train, "train", refuse)
    assert hqa_mnist.main(["table3", "--quick", "--systems=hams", f"--out={quick_run}"]) == 0
    assert hqa_mnist.main(["table3", "--collect", "--quick", f"--out={quick_run}"]) == 0
    rows = json.loads((quick_run / "table3.json").read_text())["rows"]
    assert rows["hams"]["seeds"] == 1 and rows["vqvae"]["seeds"] == 0


def test_intervals_are_students_t_over_seeds_and_the_figure_groups_rates():
    values = [0.1, 0.13, 0.12]
    mean, half = hqa_mnist._t_interval(values)
    want = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / np.sqrt(3)
    assert mean == pytest.approx(np.mean(values)) and half == pytest.approx(want)
    assert hqa_mnist._t_interval([0.2]) == (0.2, 0.0)

    def run(bits_and_mse):
        return {"layers": {str(i + 1): {"bits": b, "mse": m, "rfid": 10 * m, "error": m / 2}
                           for i, (b, m) in enumerate(bits_and_mse)}}

    results = {"hqa": [run([(2048, 0.01), (8, 0.05)]), run([(2048, 0.03), (8, 0.07)])],
               "vqvae_l1": [run([(2048, 0.02)])], "vqvae": [run([(8, 0.04)])]}
    series = hqa_mnist.figure3_series(results)
    hqa = dict(series["HQA"]["mse"])
    assert hqa[2048]["mean"] == pytest.approx(0.02) and hqa[8]["values"] == [0.05, 0.07]
    assert series["HQA"]["seeds"] == {2048: 2, 8: 2} and series["HAMs"]["mse"] == []
    assert [b for b, _ in series["VQ-VAE"]["mse"]] == [2048, 8]
    text = hqa_mnist.figure3_markdown(series)
    assert "| 2048 | HQA | 2 | 0.0200 ±" in text and "| 8 | VQ-VAE | 1 | 0.0400 |" in text


def test_figure3_plots_one_png_per_metric(tmp_path):
    agg = hqa_mnist.aggregate
    series = {"HQA": {m: [(2048, agg([0.1, 0.2])), (8, agg([0.3]))] for m in ("mse", "rfid", "error")}}
    paths = hqa_mnist.plot_figure3(series, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == [f"hqa_mnist_figure3_{m}.png" for m in ("mse", "rfid", "error")]
    assert all(os.path.getsize(p) > 1000 for p in paths)


def test_the_table3_rows_are_the_papers_systems_with_their_switches():
    from tfvq import zoo

    switches = {s.key: zoo.info(s.model)["config"] for s in hqa_mnist.TABLE3 if s.model and s.key != "vqvae"}
    assert {k: (c.get("quantizer", "gumbel"), c.get("target", "z_e"), c.get("probabilistic_loss", True))
            for k, c in switches.items()} == {
        "hams": ("vq", "codes", False), "hams_gs": ("gumbel", "codes", False), "hams_mse": ("vq", "z_e", False),
        "hams_gs_mse": ("gumbel", "z_e", False), "hqa": ("gumbel", "z_e", True)}


@pytest.mark.parametrize("argv", [["table3", "--seeds=0"], ["table3", "--limit=0"], ["figure3", "--systems=nope"],
                                  ["table4"], ["table3", "--bogus"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        hqa_mnist.main(argv)


def test_a_run_folder_of_another_budget_is_refused(quick_run, monkeypatch):
    monkeypatch.setattr(hqa_mnist, "QUICK", dict(hqa_mnist.QUICK, steps=(2,)))
    with pytest.raises(ValueError, match="budget"):
        hqa_mnist.main(["table3", "--quick", "--systems=hams", f"--out={quick_run}"])


def test_a_kept_result_counts_as_done_without_its_run_folder(quick_run, tmp_path, monkeypatch):
    record = tmp_path / "kept"
    # The quick run's result, kept by a collect run that names the record; then its run folder is gone.
    assert hqa_mnist.main(["table3", "--collect", "--quick", f"--out={quick_run}", f"--record={record}"]) == 0
    kept = json.loads((record / "hams" / "seed0.json").read_text())
    assert kept == json.loads((quick_run / "runs" / "hams" / "seed0" / "result.json").read_text())
    out = tmp_path / "fresh"
    monkeypatch.setattr(train, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    assert hqa_mnist.main(["table3", "--quick", "--systems=hams", f"--out={out}", f"--record={record}"]) == 0
    assert json.loads((out / "table3.json").read_text())["rows"]["hams"]["mse"]["values"] == [
        kept["layers"]["5"]["mse"]]


def test_a_result_of_another_configuration_is_refused(quick_run, monkeypatch):
    """A kept result of a system configured otherwise (e.g. a VQ-VAE with the sigmoid output) is not read as done."""
    other = tuple(dataclasses.replace(s, config={"num_codes": 8}) if s.key == "hams" else s for s in hqa_mnist.TABLE3)
    monkeypatch.setattr(hqa_mnist, "TABLE3", other)
    with pytest.raises(ValueError, match=r"config \{\}, not config \{'num_codes': 8\}"):
        hqa_mnist.main(["table3", "--quick", "--systems=hams", f"--out={quick_run}"])


def test_every_vqvae_system_predicts_pixels_linearly():
    vqvaes = [s for s in hqa_mnist.SYSTEMS.values() if s.model == "vqvae_mnist"]
    assert len(vqvaes) == 5 and all(s.config["output_activation"] == "linear" for s in vqvaes)
