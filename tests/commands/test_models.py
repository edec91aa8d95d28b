"""Tests of tfvq.commands.models: `tfvq models`, the zoo's models with the layers a file holds and its bits."""

from tfvq import cli, codec, zoo
from tfvq.commands import models


def test_models_lists_the_layers_a_file_holds_and_its_bits_per_image(tmp_path, start_tfvq):
    procs = {name: start_tfvq(["models", name], tmp_path) for name in ("hqa_digits", "rrvq_digits")}
    results = {name: p.result() for name, p in procs.items()}
    for name, (code, out, err) in results.items():
        assert code == 0, f"tfvq models {name} failed: {err}"
    hqa, rrvq = results["hqa_digits"][1], results["rrvq_digits"][1]
    assert "layer 5 (default): 1x1 codes of K=256, 8 bits (1 byte) per image, 1024.0:1" in hqa
    assert "layer 1: 16x16 codes of K=256, 2048 bits (256 bytes) per image" in hqa
    assert "layer 1 (default): layers 1..5, 16x16, 8x8, 4x4, 2x2, 1x1 codes of K=32, 1705 bits (214 bytes)" in rrvq
    assert "layer 3: layers 3..5, 4x4, 2x2, 1x1 codes of K=32, 105 bits (14 bytes) per image" in rrvq


def test_runs_of_equal_items_are_counted_and_one_item_stands_for_all():
    assert models._runs(["8x8"] * 3) == "8x8"
    assert models._runs(["16x16", "16x16", "8x8", "4x4", "4x4", "4x4"]) == "16x16 (x2), 8x8, 4x4 (x3)"
    assert models._runs(["a", "b", "a"]) == "a, b, a"


def test_a_rate_line_says_the_layers_their_grids_and_ks_and_the_bits():
    row = dict(layer=2, layers=(2, 3, 4), default=False, code_grid=((8, 8), (8, 8), (4, 4)), num_codes=(64, 64, 16),
               bits=1088, payload_bytes=136, ratio=7.53)
    assert models._rate_line(row) == ("  layer 2: layers 2..4, 8x8 (x2), 4x4 codes of K=64 (x2)/16, 1088 bits "
                                      "(136 bytes) per image, 7.5:1")
    row = dict(layer=5, layers=(5,), default=True, code_grid=((1, 1),), num_codes=(256,), bits=8, payload_bytes=1,
               ratio=1024.0)
    assert models._rate_line(row) == "  layer 5 (default): 1x1 codes of K=256, 8 bits (1 byte) per image, 1024.0:1"


def test_each_model_that_matches_gets_its_line_and_its_layers(capsys, one_line_error):
    assert cli.main(["models", "hqa_dig*"]) == 0
    out = capsys.readouterr().out.splitlines()
    names = zoo.list_models("hqa_dig*")
    heads = [line for line in out if not line.startswith("  ")]
    assert [line.split("  ")[0] for line in heads] == names and "hqa_digits" in names
    assert heads[names.index("hqa_digits")] == (f"hqa_digits  (32x32x1, bundled weights): "
                                                f"{zoo.get('hqa_digits').description}")
    assert len(out) == len(names) + sum(len(codec.rate_table(n)) for n in names)
    assert cli.main(["models", "spatial_vae_cifar10"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == ("  no discrete codes (continuous latents): cannot make .tfvq "
                                                       "files")
    assert cli.main(["models", "nothing_like_this*"]) == 1
    assert "No zoo model matches 'nothing_like_this*'" in one_line_error(1, capsys.readouterr().err)
