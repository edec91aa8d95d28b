"""Tests of tfvq.commands.export: `tfvq export` (and `python export.py`), its flags and their checks."""

import os
import subprocess
import sys

import pytest

from tfvq import cli
from tfvq.commands import export

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_export_cli_help_and_bad_arguments(tmp_path, repo_env):
    def run(*args):
        return subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), *args],
                              env=repo_env(TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True, text=True, timeout=300)

    help_out = run("--help")
    assert help_out.returncode == 0 and "--model" in help_out.stdout and "--format" in help_out.stdout
    unknown = run("--model=hqa_mnst", f"--out={tmp_path}")
    assert unknown.returncode != 0 and "hqa_mnist" in unknown.stderr
    missing = run("--model=hqa_digits", f"--weights={tmp_path / 'missing.weights.h5'}", f"--out={tmp_path}")
    assert missing.returncode != 0 and "missing.weights.h5" in missing.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr


@pytest.mark.parametrize("flag,message", [
    ("--version=0", "--version and --tflite_train_images take positive integers."),
    ("--tflite_train_images=0", "--version and --tflite_train_images take positive integers."),
    ("--tflite_min_agreement=1.5", "--tflite_min_agreement takes a fraction in [0, 1], got 1.5."),
])
def test_numbers_out_of_range_are_refused_before_the_model_loads(tmp_path, capsys, one_line_error, flag, message):
    assert cli.main(["export", "--model=no_such_model", f"--out={tmp_path}", flag]) == 1
    assert one_line_error(1, capsys.readouterr().err) == f"tfvq: error: {message}"
    assert not os.listdir(tmp_path)


def test_formats_and_variants_are_checked_when_the_flags_are_read(tmp_path, capsys):
    for flag in ("--format=onnx", "--variants=int4"):
        with pytest.raises(SystemExit):
            cli.main(["export", f"--out={tmp_path}", flag])
        assert "tfvq: error: " in capsys.readouterr().err


def test_the_encoders_know_the_size_compress_resizes_from_for_the_weights():
    assert export._native_size("hqa_mnist", "bundled") == export._native_size("hqa_mnist", None) == (28, 28)
    assert export._native_size("hqa_digits", None) is None
