"""The trainer sits beside the codec, not above it: it imports nothing of `tfvq.codec` (train.py fits the prior)."""

import pathlib
import re
import subprocess
import sys

import tfvq.train

TRAIN = pathlib.Path(tfvq.train.__file__).resolve().parent


def test_no_trainer_module_names_the_codec_or_the_exporter():
    sibling = re.compile(r"^\s*((from|import) tfvq\.(codec|export)\b|from tfvq import .*\b(codec|export)\b)", re.M)
    for path in sorted(TRAIN.glob("*.py")):
        assert not sibling.search(path.read_text()), path.name


def test_importing_and_building_a_trainer_loads_no_codec_module(tmp_path, repo_env):
    code = ("import sys\n"
            "from tfvq.train import loop\n"
            f"loop.Trainer(loop.TrainOptions(model='hqa_digits', steps=1, model_dir={str(tmp_path)!r}))\n"
            "print(sorted(m for m in sys.modules if m == 'tfvq.codec' or m.startswith('tfvq.codec.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=repo_env(TF_CPP_MIN_LOG_LEVEL="3"))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
