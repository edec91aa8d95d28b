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


# ------------------------------------------------------------------------------ real digits (mnist10k)
def test_every_row_has_its_rate_and_only_the_bottleneck_differs():
    assert len(quantizers.ROWS) == 9 * 2 + 5 and len(quantizers.ROW_KEYS) == len(quantizers.ROWS)
    base = dict(zoo.get(quantizers.BASE_ENTRY).config)
    for row in quantizers.ROWS:
        assert set(row.config) == {"quantizer", "num_quantizers", "groups"}
        model = zoo.build(quantizers.BASE_ENTRY, **row.config)
        assert model.bits() == row.bits, row.key  # 16x16 positions of bits / 256 bits
        assert model.code_layout().num_codes[0] == quantizers.ROW_CODES[row.key] <= 2 ** (row.bits // 256)
        config = model.get_config()
        for key in ("image_shape", "encoder_hidden", "decoder_hidden"):  # one network
            assert config[key] == list(base[key]) if key == "image_shape" else config[key] == base[key]
    grvq = quantizers.ROW_KEYS["grvq_2048"].config
    assert (grvq["groups"], grvq["num_quantizers"], grvq["quantizer"]["num_codes"]) == (2, 2, 4)  # 2*2*2 bits
    assert {r.quantizer for r in quantizers.ROWS if r.bits == 3584} == {"vq", "simvq", "fsq", "lfq", "bsq"}


def test_the_bundled_real_digit_entries_are_rows_of_the_comparison():
    for name in zoo.list_models("*_mnist"):
        entry = zoo.get(name)
        if entry.family != "composed_ae":
            continue
        config = {k: entry.config[k] for k in ("quantizer", "num_quantizers", "groups")}
        assert any(json.dumps(config, sort_keys=True) == json.dumps(r.config, sort_keys=True)
                   for r in quantizers.ROWS), name
        assert entry.dataset == quantizers.MNIST
        recipe = entry.train
        assert (recipe.batch_size, tuple(recipe.steps), recipe.learning_rate) == tuple(
            quantizers.MNIST_BUDGET[k] for k in ("batch_size", "steps", "learning_rate"))


def test_quick_runs_are_kept_read_back_and_refused_under_another_configuration(tmp_path, capsys):
    out, record = tmp_path / "out", tmp_path / "record"
    argv = ["--dataset=mnist10k", "--quick", "--rows=fsq_1024,grvq_1024", f"--out={out}", f"--record={record}"]
    assert quantizers.main(argv) == 0
    text = capsys.readouterr().out
    assert "| 1024 | FSQ | 15 | 1 |" in text and "| 1024 | grouped residual VQ | 2 x 4 | 1 |" in text
    kept = json.loads((record / "grvq_1024" / "seed0.json").read_text())
    assert kept["config"] == json.loads(json.dumps(quantizers.ROW_KEYS["grvq_1024"].config))
    assert kept["bits_per_image"] == 1024 and len(kept["codes_used"]) == 4 and kept["test_images"] == 64
    assert 0 <= kept["error"] <= 1 and kept["mse"] > 0 and kept["rfid"] >= 0
    assert 0 < kept["coded_bits_per_image"] and all(1 <= u <= 2 for u in kept["codes_used"])
    # The file it counted: the same test digits compressed again with the run's weights and priors.
    folder = str(out / "runs" / "grvq_1024" / "seed0")
    pixels = np.round(data.load_numpy("mnist10k", "test", limit=64) * 255).astype(np.uint8)
    assert kept["coded_bits_per_image"] == pytest.approx(8 * len(codec.read_header(codec.compress(
        pixels, folder, 1)).stream) / 64)
    # A kept result without its run folder counts as done: --collect tabulates it, nothing is trained.
    (out / "runs" / "grvq_1024" / "seed0" / "result.json").unlink()
    assert quantizers.main(argv + ["--collect"]) == 0
    assert "| 1024 | grouped residual VQ |" in capsys.readouterr().out
    kept["config"]["groups"] = 1
    (record / "grvq_1024" / "seed0.json").write_text(json.dumps(kept))
    with pytest.raises(ValueError, match="remove it"):
        quantizers.main(argv)


def test_step_times_are_ratios_to_plain_vq_at_the_same_rate():
    rows = [quantizers.ROW_KEYS[k] for k in ("vq_1024", "fsq_1024")]
    times = quantizers.step_times(rows, steps=2, batch_size=4, log=lambda *_: None)
    assert set(times) == {"vq_1024", "fsq_1024"} and all(set(t) == {"float32", "mixed_bfloat16"}
                                                         for t in times.values())
    ratios = quantizers.step_ratios(times)
    assert ratios["vq_1024"] == {"float32": 1.0, "mixed_bfloat16": 1.0}
    assert ratios["fsq_1024"]["float32"] == pytest.approx(times["fsq_1024"]["float32"] / times["vq_1024"]["float32"])


def test_the_table_shows_seeds_spread_and_the_best_of_each_rate():
    def result(mse, rfid, error):
        return dict(mse=mse, psnr=10 * np.log10(1 / mse), rfid=rfid, error=error, coded_bits_per_image=900.0,
                    codes_used=[15, 13], perplexity=[10.0, 8.0])

    rvq = quantizers.row_summary(quantizers.ROW_KEYS["rvq_1024"], [result(0.01, 5.0, 0.02), result(0.03, 7.0, 0.04)])
    fsq = quantizers.row_summary(quantizers.ROW_KEYS["fsq_1024"], [result(0.015, 4.0, 0.05)])
    lines = quantizers.mnist_markdown([rvq, fsq], {"rvq_1024": {"float32": 1.5, "mixed_bfloat16": 1.25}}).splitlines()
    assert lines[2] == ("| 1024 | residual VQ | 4 x 2 | 2 | 0.02000 ± 0.01414 | 17.61 ± 3.37 | 6.00 ± 1.41 | **3.0 ± 1.4** | "
                        "900 ± 0 | 14.0 ± 0.0 | 9.0 ± 0.0 | 1.50 / 1.25 |")  # a spread of 0 over 2 seeds shows
    assert lines[3] == "| 1024 | FSQ | 15 | 1 | **0.01500** | 18.24 | **4.00** | 5.0 | 900 | 14.0 | 9.0 | - |"
    many = dict(result(0.01, 5.0, 0.02), codes_used=[237.7])
    vq = quantizers.row_summary(quantizers.ROW_KEYS["vq_2048"], [many])
    assert quantizers.mnist_markdown([vq]).splitlines()[2].split(" | ")[9] == "238"  # whole codes from 100 up
    assert quantizers.row_summary(quantizers.ROW_KEYS["fsq_1024"], []) is None


def test_bad_real_digit_arguments_are_refused():
    for argv in (["--rows=fsq_999"], ["--rows="], ["--seeds=0"], ["--limit=0"], ["--threads=0"]):
        with pytest.raises(SystemExit):
            quantizers.main(["--dataset=mnist10k"] + argv)
