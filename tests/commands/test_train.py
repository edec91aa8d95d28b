"""Tests of tfvq.commands.train: `tfvq train` (and `python train.py`), its flags and what it prints."""

import argparse
import json
import os
import subprocess
import sys

import pytest

from tfvq.commands import train
from tfvq.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_cli_help_lists_flags_and_bad_input_fails_clearly(tmp_path, repo_env):
    env = repo_env(TF_CPP_MIN_LOG_LEVEL="3")
    train_py = [sys.executable, os.path.join(ROOT, "train.py")]
    help_out = subprocess.run(train_py + ["--help"], env=env, capture_output=True, text=True, timeout=120)
    assert help_out.returncode == 0
    for flag in ("--model", "--dataset", "--data_dir", "--strategy", "--cpu_devices", "--batch_size", "--steps",
                 "--layers", "--model_dir", "--seed"):
        assert flag in help_out.stdout
    run = train_py + ["--batch_size=8", "--eval_examples=16", f"--model_dir={tmp_path}"]
    bad = subprocess.run(run + ["--model=hqa_mnst"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "Did you mean 'hqa_mnist'" in bad.stderr
    missing = subprocess.run(run + ["--model=hqa_mnist", f"--data_dir={tmp_path}"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 1 and "python -m tfvq.data prepare mnist" in missing.stderr


def test_the_cli_reads_config_values_as_json_else_text():
    from tfvq.commands.train import config_item

    assert config_item("rotation_trick=false") == ("rotation_trick", False)
    assert config_item("rotation_trick=False") == ("rotation_trick", False)
    assert config_item("levels=[8, 5, 5]") == ("levels", [8, 5, 5])
    assert config_item("num_codes=512") == ("num_codes", 512)
    assert config_item("distance=cosine") == ("distance", "cosine")
    for bad in ("rotation_trick", "=3"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected KEY=VALUE"):
            config_item(bad)


def test_the_cli_prints_the_models_report(tmp_path, capsys):
    summary = {"weights": "w.h5", "reconstructions": "r.png", "samples": "s.png", "metrics": "m.json",
               "tensorboard": "logs",
               "report": {"lines": ["bits per dim (-ELBO): train 1.5000 (16 images), test 1.7500 (16 images)"],
                          "table": (["layer", "latents", "KL (bits)"], [[1, "8x8", "12.50"], [2, "4x4", "3.25"]]),
                          "metrics": {}}}
    train.print_summary(summary, loop.TrainOptions(model="rrvq_digits"))
    out = capsys.readouterr().out
    for text in ("w.h5", "r.png", "s.png", "train 1.5000", "test 1.7500", "8x8", "12.50", "4x4", "3.25", "KL (bits)"):
        assert text in out, (text, out)


def test_the_model_is_the_name_given_else_the_one_a_from_weights_folder_was_trained_as_else_the_default(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "metadata.json").write_text(json.dumps({"zoo_name": "vq_digits"}))

    def name(model=None, from_weights=None):
        return train.model_name(argparse.Namespace(model=model, from_weights=from_weights))

    assert name() == train.DEFAULT_MODEL == "hqa_digits"
    assert name("rrvq_digits") == name("rrvq_digits", str(folder)) == "rrvq_digits"
    assert name(from_weights=str(folder)) == "vq_digits" and name(from_weights="bundled") == "hqa_digits"
    with pytest.raises(ValueError, match=f"--model takes its name, not a folder \\({folder}\\); to start from a "
                                         f"folder's weights pass --from_weights={folder} \\(--model=vq_digits\\)"):
        name(str(folder))


def test_counts_and_cache_modes_are_checked_when_the_flags_are_read(tmp_path):
    assert train._positive("3") == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError, match=f"expected a positive integer, got {bad!r}"):
            train._positive(bad)
    assert train.data_cache("memory") == "memory"
    assert train.data_cache("~/x.npy") == os.path.expanduser("~/x.npy")
    with pytest.raises(argparse.ArgumentTypeError, match="cache must be one of .* or a path ending in .npy, got "
                                                         "'disk'"):
        train.data_cache("disk")


def test_a_dataset_that_is_a_path_is_made_absolute_for_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scans").mkdir()
    assert train._data_source("scans") == str(tmp_path / "scans")
    assert train._data_source("digits") == "digits" and train._data_source(None) is None
    assert train._data_source("tfds:mnist") == "tfds:mnist" and train._data_source("nowhere/") == "nowhere/"
