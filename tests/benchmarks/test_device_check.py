"""benchmarks/device_check.py runs: its --cpu --tiny mode, every section, in a process of its own."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np

from tfvq import zoo

_PATH = pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "device_check.py"
sys.path.insert(0, str(_PATH.parent))  # as when it runs as a script: its sibling `machine` imports
_spec = importlib.util.spec_from_file_location("device_check_under_test", _PATH)
device_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(device_check)


def test_cpu_tiny_mode_runs_every_section_and_passes():
    """One tiny configuration in float32 and mixed_float16, its mirrored step on two logical CPUs, one bundled
    model's encode and decode, and files written on /CPU:0 and read on /CPU:1 and back (about 25 s of CPU)."""
    out = subprocess.run(
        [sys.executable, str(_PATH), "--cpu", "--tiny", "--configs=hqa_celeba64",
         "--precisions=float32,mixed_float16", "--jit=off", "--codec_models=hqa_digits",
         "--files=rrvq_digits:lossless,hqa_digits:context,hqa_digits:progressive"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("command: ") and lines[1].startswith("CPU: ")
    table = [line.split(" | ") for line in lines if line.startswith("| ") and not line.startswith("| check")]
    rows = {(row[0][2:], row[1]): row for row in table}
    assert "TensorFlow 2." in rows["device", "TensorFlow"][5]
    for precision in ("float32", "mixed_float16"):
        row = rows["train", f"tiny(hqa_celeba64) {precision}"]
        assert float(row[2]) > 0 and float(row[3]) > 0 and float(row[4]) > 100  # ms, images/s, peak RSS in MB
        assert row[5].startswith("batch 4 (tiny), loss ")
    assert "2 devices" in [k for k in rows if k[0] == "mirrored"][0][1]
    assert {k[0] for k in rows} == {"device", "train", "mirrored", "encode", "decode", "latency", "files"}
    files = [row for key, row in rows.items() if key[0] == "files"]
    assert len(files) == 6  # three files, each way
    lossless = [row for row in files if "lossless" in row[1]]
    assert all("exact pixels" in row[5] and "0 not" in row[5] for row in lossless)
    assert "Every check passed." in out.stdout


def test_a_failed_row_fails_the_run():
    """A configuration that cannot be built is a FAIL row, and a table with one gives exit status 1."""
    table = device_check.Table()
    ctx = dict(args=device_check.parse_args(["--cpu", "--tiny"]), np=np, zoo=zoo)
    device_check.train_rows(ctx, table, ["no_such_model"], one_device=None, memory=None)
    assert table.failed == 1
    assert table.rows[-1][5].startswith("FAIL: UnknownModelError")
