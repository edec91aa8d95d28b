"""Tests of tfvq.commands.data: `tfvq data`, its subcommands and their flags (the data they prepare and cache:
tests/data/)."""

import subprocess
import sys

import pytest

from tfvq import cli
from tfvq.commands import data as data_command
from tfvq.data import datasets


def test_list_prints_a_line_per_named_dataset_with_its_source_shape_and_splits(capsys):
    assert cli.main(["data", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(datasets.DATASETS)
    digits = lines[list(datasets.DATASETS).index("digits")]
    assert digits.split() == ["digits", "embedded", "32x32x1", "train", "1500,", "test", "297"]
    for name, line in zip(datasets.DATASETS, lines):
        info = datasets.info(name)
        assert line.split()[1] == info.source and "x".join(map(str, info.image_shape)) in line.split()[2]
        assert line.endswith(", ".join(f"{split} {n}" for split, n in info.num_examples.items()))


def test_an_image_shape_is_three_positive_sizes_with_one_or_three_channels():
    assert data_command._image_shape("64,64,3") == (64, 64, 3)
    assert data_command._image_shape("28x28x1") == (28, 28, 1)
    for bad in ("64,64,2", "64,64", "0,64,3", "a,b,c", "64,64,3,1"):
        with pytest.raises(ValueError, match=f"--image_shape takes H,W,C with C 1 or 3, e.g. 64,64,3; got {bad!r}"):
            data_command._image_shape(bad)


def test_a_bad_image_shape_is_a_one_line_error_before_any_data_is_read(tmp_path, capsys, one_line_error):
    assert cli.main(["data", "cache", "digits", f"--data_dir={tmp_path}", "--image_shape=64,64,2"]) == 1
    assert "--image_shape takes H,W,C" in one_line_error(1, capsys.readouterr().err)
    assert not any(tmp_path.iterdir())


def test_a_subcommand_is_required_and_the_help_names_them_all(capsys):
    with pytest.raises(SystemExit):
        cli.main(["data"])
    assert "tfvq: error: " in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["data", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in data_command.SUBCOMMANDS)


def test_prepare_fails_fast_with_a_clear_network_error_offline(tmp_path, repo_env):
    env = repo_env(TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-m", "tfvq.data", "prepare", "mnist", f"--data_dir={tmp_path}"],
                         capture_output=True, text=True, timeout=120, env=env)
    if out.returncode == 0:  # a machine with internet prepared it
        assert "Prepared mnist" in out.stdout
        return
    assert out.returncode == 1 and "Cannot download 'mnist'" in out.stderr and "unreachable" in out.stderr, out.stderr
    unknown = subprocess.run([sys.executable, "-m", "tfvq.data", "prepare", "no_such_dataset_xyz"],
                             capture_output=True, text=True, timeout=120, env=env)
    assert unknown.returncode == 1 and "Unknown tfds dataset" in unknown.stderr
