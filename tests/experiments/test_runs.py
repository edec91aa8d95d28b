"""Tests of `tfvq.experiments.runs`: run folders, kept results, and the flags of resumable experiments."""

import argparse
import json
import os

import pytest

from tfvq.experiments import runs


def test_run_paths_are_one_folder_per_key_and_seed_and_one_kept_file():
    folder, result, kept = runs.run_paths("vq_1024", 2, "out", "docs/kept")
    assert folder == os.path.join("out", "runs", "vq_1024", "seed2")
    assert result == os.path.join(folder, "result.json")
    assert kept == os.path.join("docs/kept", "vq_1024", "seed2.json")
    assert runs.run_paths("vq_1024", 0, "out")[2] is None


def test_write_json_makes_folders_and_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "a" / "b" / "result.json")
    runs.write_json(path, {"steps": (1, 2)})
    assert json.loads(open(path).read()) == {"steps": [1, 2]}
    assert os.listdir(os.path.dirname(path)) == ["result.json"]


def test_a_result_in_its_run_folder_is_done_and_kept_in_the_record(tmp_path):
    out, record = str(tmp_path / "out"), str(tmp_path / "record")
    assert not runs.is_done("fsq", 0, out, record)
    assert runs.read_done("fsq", 0, out, record, budget={"steps": 5}) == (None, None)
    result = {"budget": {"steps": 5, "lr": (1, 2)}, "config": {"levels": (8, 5)}, "mse": 0.01}
    _, path, kept = runs.run_paths("fsq", 0, out, record)
    runs.write_json(path, result)
    assert runs.is_done("fsq", 0, out, record) and runs.is_done("fsq", 0, out)
    done, source = runs.read_done("fsq", 0, out, record, budget={"steps": 5, "lr": (1, 2)}, config={"levels": (8, 5)})
    assert source == path and done["mse"] == 0.01
    assert json.loads(open(kept).read()) == done  # kept on the way


def test_a_kept_result_counts_as_done_without_its_run_folder(tmp_path):
    out, record = str(tmp_path / "out"), str(tmp_path / "record")
    _, path, kept = runs.run_paths("vq", 1, out, record)
    runs.write_json(kept, {"budget": {"steps": 5}, "mse": 0.2})
    assert not os.path.exists(path) and runs.is_done("vq", 1, out, record)
    assert runs.read_done("vq", 1, out, record, budget={"steps": 5}) == ({"budget": {"steps": 5}, "mse": 0.2}, kept)


def test_a_result_of_another_budget_or_configuration_is_refused_with_what_to_do(tmp_path):
    out = str(tmp_path)
    runs.write_json(runs.run_paths("vq", 0, out)[1], {"budget": {"steps": 5}, "config": {}})
    with pytest.raises(ValueError, match=r"budget \{'steps': 5\}, not budget \{'steps': 6\}.*remove it"):
        runs.read_done("vq", 0, out, budget={"steps": 6}, config={})
    with pytest.raises(ValueError, match=r"config \{\}, not config \{'k': 2\}"):
        runs.read_done("vq", 0, out, budget={"steps": 5}, config={"k": 2})


def test_the_run_flags_parse_and_refuse_counts_below_one():
    parser = argparse.ArgumentParser()
    runs.add_run_flags(parser, out="runs/x", seeds=3, record="docs/x")
    args = parser.parse_args([])
    assert (args.out, args.seeds, args.collect, args.record, args.quick, args.limit) == (
        "runs/x", 3, False, None, False, None)
    args = parser.parse_args(["--seeds=2", "--collect", "--quick", "--limit=64", "--record=r", "--out=o"])
    runs.check_run_flags(parser, args)
    assert (args.out, args.seeds, args.collect, args.record, args.quick, args.limit) == ("o", 2, True, "r", True, 64)
    for bad in (["--seeds=0"], ["--limit=0"]):
        with pytest.raises(SystemExit):
            runs.check_run_flags(parser, parser.parse_args(bad))


def test_cpu_seconds_grow_with_work():
    before = runs.cpu_seconds()
    sum(i * i for i in range(2_000_000))
    assert runs.cpu_seconds() > before
