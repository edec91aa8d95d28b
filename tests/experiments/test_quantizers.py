"""Tests of tfvq.experiments.quantizers (today's quantizers at matched bits on the digits)."""

import json

import numpy as np
import pytest

from tfvq import codec, data, zoo
from tfvq.experiments import quantizers
from tfvq.experiments.quantizers import Variant


def test_rows_are_the_evaluation_of_each_layer_with_the_bits_of_a_coded_file():
    limit = 24
    rows, original, trained, images = quantizers.compare([quantizers.VARIANTS[4]], limit=limit, train_limit=300)
    assert trained == {} and images == limit and 0.7 < original <= 1.0  # rvq_digits, bundled weights
    model = zoo.load("rvq_digits", weights="bundled")
    test = data.load_numpy("digits", "test", limit=limit)
    assert [r["bits_per_image"] for r in rows] == [5120, 3840, 2560, 1280]  # highest first
    assert [r["label"] for r in rows] == [f"RVQ (32 codes per stage), depth {d}" for d in (4, 3, 2, 1)]
    pixels = np.round(test * 255).astype(np.uint8)
    for r in rows:
        recon = np.clip(model.reconstruct(test, r["layer"]).numpy(), 0, 1)
        assert r["mse"] == pytest.approx(np.mean((recon - test) ** 2), rel=1e-4)
        stream = codec.read_header(codec.compress(pixels, "rvq_digits", r["layer"])).stream
        assert r["coded_bits_per_image"] == pytest.approx(8 * len(stream) / limit)
        assert r["coded_bits_per_image"] < r["bits_per_image"]  # the static prior beats the fixed rate
        assert 0 < r["accuracy"] <= 1 and 1 <= r["codes_used"] <= 32


def test_a_variant_without_bundled_weights_is_trained_with_its_config_and_gets_priors(tmp_path):
    variant = Variant("vq", "VQ, straight-through", "vq_digits", {"rotation_trick": False, "num_codes": 16})
    folder, _ = quantizers.trained_folder(variant, str(tmp_path), steps=2)
    model = zoo.load(folder)
    assert model.get_config()["rotation_trick"] is False and model.code_layout().num_codes == (16,)
    assert zoo.prior_paths(model)["static"].startswith(folder)
    pixels = np.round(data.load_numpy("digits", "test", limit=2) * 255).astype(np.uint8)
    blob = codec.compress(pixels, folder)
    assert codec.read_header(blob).coders[1] != 0  # entropy-coded under the fitted prior, not the fixed rate
    np.testing.assert_array_equal(codec.decompress(blob, weights=folder), model.reconstruct(pixels).numpy())


def test_markdown_marks_the_best_of_each_shared_rate():
    def row(label, bits, mse, ssim, accuracy):
        return dict(label=label, bits_per_image=bits, coded_bits_per_image=bits / 2, mse=mse, psnr=30.0,
                    ssim=ssim, accuracy=accuracy, codes_used=10, perplexity=5.0)

    rows = [row("A", 2560, 1e-4, 0.9, 0.8), row("B", 2560, 2e-4, 0.95, 0.7), row("C", 8, 0.05, 0.3, 0.5)]
    lines = quantizers.markdown(rows, 0.95).splitlines()
    assert lines[2] == "| A | 2560 | 1280 | **1.00e-04** | 30.00 | 0.9000 | **0.800** | 10 | 5.0 |"
    assert lines[3] == "| B | 2560 | 1280 | 2.00e-04 | 30.00 | **0.9500** | 0.700 | 10 | 5.0 |"
    assert lines[4] == "| C | 8 | 4 | 5.00e-02 | 30.00 | 0.3000 | 0.500 | 10 | 5.0 |"  # alone at its rate
    assert lines[-1] == "| originals | | | | | | 0.950 | | |"


def test_bad_arguments_are_refused():
    for argv in (["--models=vq,pq"], ["--models="], ["--steps=0"], ["--limit=0"], ["--train_limit=0"], ["--weights=other"]):
        with pytest.raises(SystemExit):
            quantizers.main(argv)


def test_the_command_writes_its_table_and_json(tmp_path, capsys):
    assert quantizers.main(["--models=fsq", f"--out={tmp_path}", "--limit=8", "--train_limit=100"]) == 0
    saved = json.loads((tmp_path / "quantizers.json").read_text())
    assert [r["entry"] for r in saved["rows"]] == ["fsq_digits"] and saved["trained"] == {}
    out = capsys.readouterr().out
    assert "Quantizers on 8 digits test images, weights: bundled" in out and "| FSQ (8,5,5,5) | 2560 |" in out
