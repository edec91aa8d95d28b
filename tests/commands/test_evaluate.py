"""Tests of tfvq.commands.evaluate: `tfvq evaluate`, what it asks `tfvq.evaluate` and what it prints."""

import os

import pytest

from tfvq import cli, evaluate


@pytest.fixture
def evaluated(monkeypatch):
    """`tfvq.evaluate.run` and `format_table` replaced by stand-ins that record what they were asked."""
    calls = []

    def run(model, weights, dataset, limit, data_dir, out):
        calls.append((model, weights, dataset, limit, data_dir, out))
        return {"model": model, "dataset": "digits", "dataset_source": "the zoo entry's dataset", "images": 7,
                "png": os.path.join(out or "", "evaluation.png")}

    monkeypatch.setattr(evaluate, "run", run)
    monkeypatch.setattr(evaluate, "format_table", lambda result: f"| the table of {result['model']} |")
    return calls


def test_evaluate_passes_its_flags_and_prints_what_was_evaluated_then_the_table(evaluated, capsys):
    assert cli.main(["evaluate", "--model=hqa_digits", "--limit=7", "--dataset=digits", "--data_dir=/data"]) == 0
    assert evaluated == [("hqa_digits", None, "digits", 7, "/data", None)]
    assert capsys.readouterr().out == ("hqa_digits on digits (the zoo entry's dataset; test split, 7 images):\n"
                                       "| the table of hqa_digits |\n")


def test_with_out_it_says_where_it_wrote(evaluated, capsys, tmp_path):
    assert cli.main(["evaluate", "--model=runs/mine", "--weights=w.weights.h5", f"--out={tmp_path}"]) == 0
    assert evaluated == [("runs/mine", "w.weights.h5", None, None, None, str(tmp_path))]
    assert capsys.readouterr().out.splitlines()[-1] == (f"wrote {tmp_path / 'evaluation.json'} and "
                                                        f"{tmp_path / 'evaluation.png'}")


def test_the_model_is_required(capsys):
    with pytest.raises(SystemExit):
        cli.main(["evaluate"])
    assert "--model" in capsys.readouterr().err
