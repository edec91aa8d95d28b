"""`python -m tfvq.evaluate`: distortion, codes and classifier accuracy per layer, checked against NumPy."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfvq import codec, data, evaluate, zoo


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    return evaluate.run("hqa_digits", limit=40, out=str(out)), out


def test_per_layer_figures_match_an_independent_computation(result):
    res, _ = result
    model = zoo.load("hqa_digits", weights="bundled")
    x = data.load_numpy("digits", "test", limit=40)
    for layer in (1, 5):
        recon = np.clip(model.reconstruct(x, layer).numpy(), 0, 1)
        mse = ((recon - x) ** 2).mean(axis=(1, 2, 3))
        row = res["layers"][layer]
        assert row["bits_per_image"] == model.bits(layer)
        assert row["mse"] == pytest.approx(mse.mean(), rel=1e-5)
        assert row["psnr"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), rel=1e-5)
        codes = model.encode(x, layer).numpy().ravel()
        p = np.bincount(codes) / codes.size
        p = p[p > 0]
        assert row["codes_used"] == len(np.unique(codes))
        assert row["perplexity"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-6)
        assert 0 < row["ssim"] <= 1 and "ms_ssim" not in row  # 32x32 is too small for MS-SSIM's 5 scales
        assert 0 <= row["accuracy"] <= 1
        pixels = np.round(x * 255).astype(np.uint8)  # the stream of one file of the 40 digits at that layer
        f = codec.read_header(codec.compress(pixels, "hqa_digits", layer))
        assert row["coded_bits_per_image"] == pytest.approx(8 * len(f.stream) / 40)
        assert row["coded_bits_per_image"] <= row["bits_per_image"]
    assert res["original_accuracy"] > 0.8  # the classifier fitted on training digits works on test digits
    assert res["layers"][1]["mse"] < res["layers"][5]["mse"]  # more bits, less distortion


def test_writes_json_and_a_grid_and_the_cli_prints_a_table(result, tmp_path, repo_env):
    res, out = result
    saved = json.load(open(os.path.join(out, "evaluation.json")))
    assert saved["dataset"] == "digits" and set(saved["layers"]) == {"1", "2", "3", "4", "5"}
    assert open(res["png"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    env = repo_env(TF_CPP_MIN_LOG_LEVEL="3")
    bad = subprocess.run([sys.executable, "-m", "tfvq.evaluate", "--model=hqa_digitz"], capture_output=True,
                         text=True, timeout=120, env=env)
    assert bad.returncode == 1 and "Did you mean 'hqa_digits'" in bad.stderr


def test_an_rrvq_vae_reports_its_bits_per_dim():
    res = evaluate.run("rrvq_swatches", limit=18)
    assert 0 < res["model_report"]["test_bpd"] < 8 and len(res["model_report"]["kl_bits_per_layer"]) == 5
    assert res["layers"][1]["bits_per_image"] == zoo.load("rrvq_swatches").code_bits()
    assert "accuracy" in res["layers"][1] and "original_accuracy" in res
