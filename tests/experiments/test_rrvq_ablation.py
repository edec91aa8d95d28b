"""The Table G.1 ablation driver: its cells switch what Table G.1 names, and unstable runs are reported."""

import tfvq  # noqa: F401

import math

import numpy as np
import pytest

from tfvq.experiments import rrvq_ablation as ab


def test_the_four_cells_cross_the_prior_and_covariance_switches():
    configs = {c: ab.cell_config(c, 16, 32, 16)[1] for c in ("direct_sigma1", "direct_learnt", "embed_sigma1", "rrvq")}
    assert {(c["prior"], c["covariance"]) for c in configs.values()} == {
        ("direct", "unit"), ("direct", "diagonal"), ("embedding", "unit"), ("embedding", "diagonal")}
    # everything else is shared by the four cells
    rest = [{k: v for k, v in c.items() if k not in ("prior", "covariance")} for c in configs.values()]
    assert all(r == rest[0] for r in rest)
    assert rest[0]["latent_sizes"] == (16, 8, 4, 2, 1)


def test_baselines_are_one_layer_rvq_and_a_gaussian_hierarchy():
    family, rvq = ab.cell_config("rvqvae", 16, 32, 16)
    assert family == "rrvq_vae" and rvq["latent_sizes"] == (16,) and rvq["covariance"] == "unit"
    family, spatial = ab.cell_config("spatial_vae", 16, 32, 16)
    assert family == "spatial_vae" and spatial["latent_dim"] == 16 and "num_codes" not in spatial


def test_a_run_that_goes_non_finite_is_reported_as_unstable(monkeypatch, tmp_path):
    from tfvq.train import loop

    def explode(options):
        raise FloatingPointError("Non-finite loss (nan) at step 7.")

    monkeypatch.setattr(loop, "train", explode)
    record = ab.run_one("rrvq_digits", 0, 10, str(tmp_path), 8)
    assert record["status"] == "unstable" and "step 7" in record["error"]


def test_summary_is_mean_and_sample_sd_over_the_stable_runs_and_counts_unstable_ones():
    runs = [dict(cell="rrvq", status="ok", train_bpd=3.0, test_bpd=3.5),
            dict(cell="rrvq", status="ok", train_bpd=4.0, test_bpd=4.5),
            dict(cell="rrvq", status="unstable")]
    row = ab.summarise(runs)["rrvq"]
    assert row["train_mean"] == pytest.approx(3.5) and row["test_mean"] == pytest.approx(4.0)
    assert row["train_sd"] == pytest.approx(np.std([3.0, 4.0], ddof=1))
    assert (row["runs"], row["unstable"]) == (3, 1)
    assert math.isnan(ab.summarise(runs)["spatial_vae"]["train_mean"])
    table = ab.markdown(ab.summarise(runs))
    assert "3.500 ± 0.707" in table and "| 3 (1) |" in table and "Spatial" not in table


def test_bad_arguments_exit_with_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        ab.main(["--cells", "nope"])
    assert "unknown cells" in capsys.readouterr().err


def test_on_real_28x28_digits_the_cells_take_rrvq_mnists_layout():
    configs = {c: ab.cell_config(c, 16, 32, 16, "mnist10k_28")[1] for c in ab.CELLS}
    assert all(c["image_shape"] == (28, 28, 1) for c in configs.values())
    assert configs["rrvq"]["latent_sizes"] == (14, 14, 7, 7, 7) and configs["rvqvae"]["latent_sizes"] == (14,)
    from tfvq import zoo

    assert configs["rrvq"]["latent_sizes"] == tuple(zoo.info("rrvq_mnist")["config"]["latent_sizes"])


def test_a_kept_run_counts_as_done_and_one_of_other_settings_is_refused(monkeypatch, tmp_path):
    calls = []

    def fake_run(name, seed, steps, out_dir, eval_examples):
        calls.append((name, seed))
        return {"model": name, "seed": seed, "status": "ok", "train_bpd": 3.0 + seed, "test_bpd": 3.5,
                "seconds": 1.0}

    monkeypatch.setattr(ab, "run_one", fake_run)
    argv = ["--cells", "rrvq", "--seeds", "0,1", "--steps", "5", "--out", str(tmp_path / "out"),
            "--record", str(tmp_path / "kept")]
    assert ab.main(argv) == 0
    assert len(calls) == 2 and sorted(p.name for p in (tmp_path / "kept").iterdir()) == [
        "rrvq_seed0.json", "rrvq_seed1.json"]
    assert ab.main(argv + ["--seeds", "0,1,2"]) == 0  # seeds 0 and 1 are kept: only seed 2 trains
    assert calls[2:] == [(calls[0][0], 2)]
    with pytest.raises(ValueError, match="trained with other settings"):
        ab.main(argv[:-4] + ["--steps", "6", "--out", str(tmp_path / "out"), "--record", str(tmp_path / "kept")])
