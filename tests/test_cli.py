"""The one `tfvq` command: a model is a name or a folder, from training on a folder of PNGs to a .tfvq file,
with no tfds dataset prepared (the zoo entry's dataset is never read)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfvq import cli


def _tfvq(*args, env, cwd, timeout=300):
    out = subprocess.run([sys.executable, "-m", "tfvq.cli", *map(str, args)], env=env, cwd=cwd,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"tfvq {args[0]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def _pngs(folder, count=40, size=20):
    """`count` grayscale PNGs of bright squares on black, of another size than the model's (32x32)."""
    from PIL import Image

    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        image = np.zeros((size, size), np.uint8)
        y, x = rng.integers(0, size - 8, 2)
        image[y: y + 8, x: x + 8] = rng.integers(128, 256)
        Image.fromarray(image).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.slow
def test_a_run_folder_is_the_model_of_export_evaluate_compress_and_decompress(tmp_path, repo_env):
    images, run = _pngs(tmp_path / "scans"), tmp_path / "run"
    empty = tmp_path / "tfds"
    empty.mkdir()
    env = repo_env(TF_CPP_MIN_LOG_LEVEL="3", TFDS_DATA_DIR=str(empty))
    # vqvae_mnist: its zoo entry's dataset is tfds mnist, which is not prepared here.
    out = _tfvq("train", "--model=vqvae_mnist", f"--dataset={images}", "--steps=2", "--batch_size=8",
                "--eval_examples=8", f"--model_dir={run}", env=env, cwd=tmp_path)
    assert "prior:" in out and json.load(open(run / "metadata.json"))["dataset"] == str(images)

    out = _tfvq("export", f"--model={run}", f"--out={tmp_path / 'exported'}", "--variants=float32,int8",
                "--tflite_train_images=32", env=env, cwd=tmp_path)
    assert f"images from {images} (the dataset {run} was trained on)" in out
    assert (tmp_path / "exported" / "vqvae_mnist" / "1" / "saved_model.pb").exists()
    assert sorted(os.listdir(tmp_path / "exported" / "tflite")) == [  # the encoders, the decoders and priors
        "vqvae_mnist.prior.json", "vqvae_mnist_decoder.json", "vqvae_mnist_decoders_float16.tflite",
        "vqvae_mnist_decoders_float32.tflite", "vqvae_mnist_encode_layer1_float32.tflite",
        "vqvae_mnist_encode_layer1_int8.tflite"]
    assert f"TFLite encoders and decoders for tfvq compress and decompress: {run}" in out  # cached beside its weights

    out = _tfvq("evaluate", f"--model={run}", "--limit=8", env=env, cwd=tmp_path)
    assert f"on {images} (the dataset {run} was trained on; test split, " in out and "coded bits" in out

    out = _tfvq("compress", images / "000.png", f"--model={run}", "-o", tmp_path / "a.tfvq", env=env, cwd=tmp_path)
    assert f"of vqvae_mnist from the folder {run}" in out
    assert "model vqvae_mnist" in _tfvq("info", tmp_path / "a.tfvq", env=env, cwd=tmp_path)
    _tfvq("decompress", tmp_path / "a.tfvq", f"--model={run}", "-o", tmp_path / "a.png", env=env, cwd=tmp_path)
    from PIL import Image

    assert np.asarray(Image.open(tmp_path / "a.png")).shape == (20, 20)  # the size compressed

    # In Python: the same file from the folder, decoded with weights=FOLDER.
    from tfvq import codec

    data = codec.compress(codec.load_image(str(images / "000.png"), 1), str(run))
    assert data == (tmp_path / "a.tfvq").read_bytes() and codec.read_header(data).model == "vqvae_mnist"
    np.testing.assert_array_equal(codec.decompress(data, weights=str(run))[0, ..., 0],
                                  np.asarray(Image.open(tmp_path / "a.png")))


def test_help_and_one_line_errors(capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in text
    for name in cli.COMMANDS:
        with pytest.raises(SystemExit) as done:
            cli.main([name, "--help"])
        assert done.value.code == 0 and f"usage: tfvq {name}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        cli.main(["frob"])
    err = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 1 and len(err) == 1 and err[0].startswith("tfvq: error: ")
    with pytest.raises(SystemExit) as done:
        cli.main(["export", "--model=hqa_digits"])  # --out is required
    assert done.value.code == 1 and "--out" in capsys.readouterr().err
    assert cli.main(["evaluate", "--model=hqa_digitz"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("tfvq: error: ") and "Did you mean 'hqa_digits'" in err[0]


def test_choices_come_from_the_library():
    from tfvq.codec.coding import CODER_CHOICES
    from tfvq.export import FORMATS
    from tfvq.export.tflite import VARIANTS
    from tfvq.layers.precision import PRECISIONS
    from tfvq.train.strategies import STRATEGIES

    def choices(name, flag):
        parser, _ = cli.command_parser(name)
        return next(a for a in parser._actions if flag in a.option_strings)

    assert tuple(choices("train", "--strategy").choices) == STRATEGIES
    assert tuple(choices("train", "--precision").choices) == PRECISIONS
    assert tuple(choices("compress", "--coder").choices) == CODER_CHOICES
    parser, _ = cli.command_parser("export")
    args = parser.parse_args(["--out=x", "--format=tflite", "--variants=int8,float16", "--notable"])
    assert args.format == ["tflite"] and args.variants == ["int8", "float16"] and args.table is False
    assert set(FORMATS) == {"saved_model", "tflite", "decoders"} and "int8" in VARIANTS


def test_every_commands_run_ends_by_returning_its_exit_status():
    """A command's `run` says its exit status (0 when it succeeds) instead of falling off its end."""
    import ast
    import importlib

    from tfvq.commands import COMMANDS, module_name

    for name in COMMANDS:
        module = importlib.import_module(module_name(name))
        tree = ast.parse(open(module.__file__).read())
        run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
        assert isinstance(run.body[-1], ast.Return) and run.body[-1].value is not None, name
