"""export.py: help, and clear errors for bad input."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, os.path.join(ROOT, "export.py"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_export_cli_help_and_bad_arguments(tmp_path):
    help_out = run("--help")
    assert help_out.returncode == 0 and "--model" in help_out.stdout and "--format" in help_out.stdout
    unknown = run("--model=hqa_mnst", f"--out={tmp_path}")
    assert unknown.returncode != 0 and "hqa_mnist" in unknown.stderr
    missing = run("--model=hqa_digits", f"--weights={tmp_path / 'missing.weights.h5'}", f"--out={tmp_path}")
    assert missing.returncode != 0 and "missing.weights.h5" in missing.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr
