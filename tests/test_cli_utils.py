"""What every command line shares (`tfvq.cli_utils`): one-line errors and exit statuses, absl's flag forms, input
and output files, the progress bar, and TensorFlow's start-up lines kept off the terminal."""

import argparse
import importlib.util
import os
import subprocess
import sys

import pytest

from tfvq import cli_utils


def _parser():
    parser = cli_utils.Parser(prog="tfvq demo")
    cli_utils.add_bool(parser, "table", "print a table", default=True)
    parser.add_argument("--layers", type=cli_utils.comma_list(item=int), default=None)
    parser.add_argument("--variants", type=cli_utils.comma_list(("float32", "int8")), default=None)
    return parser


@pytest.mark.parametrize("argv,want", [([], True), (["--table"], True), (["--table=false"], False),
                                       (["--table=0"], False), (["--table=YES"], True), (["--notable"], False)])
def test_a_boolean_flag_takes_absls_forms(argv, want):
    assert _parser().parse_args(argv).table is want


def test_comma_lists_convert_each_item_and_keep_to_the_choices():
    args = _parser().parse_args(["--layers=1, 2,,3", "--variants=int8,float32"])
    assert args.layers == [1, 2, 3] and args.variants == ["int8", "float32"]
    parse = cli_utils.comma_list(item=int)
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected comma-separated ints, got '1,x'"):
        parse("1,x")
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a value, got ','"):
        parse(",")
    with pytest.raises(argparse.ArgumentTypeError, match=r"values of float32, int8, got 'float16'"):
        cli_utils.comma_list(("float32", "int8"))("float16")


@pytest.mark.parametrize("argv,what", [(["--table=maybe"], "expected true or false, got 'maybe'"),
                                       (["--variants=fp8"], "--variants"), (["--frob"], "--frob")])
def test_a_usage_error_is_one_line_and_exit_status_1(argv, what, capsys):
    with pytest.raises(SystemExit) as done:
        _parser().parse_args(argv)
    err = capsys.readouterr().err.splitlines()
    assert done.value.code == 1 and len(err) == 1
    assert err[0].startswith("tfvq: error: ") and what in err[0] and err[0].endswith("(see `tfvq demo --help`)")


def test_one_line_joins_a_messages_lines_and_names_the_type_of_an_empty_one():
    assert cli_utils.one_line(ValueError("  first\n\n   second \n")) == "first second"
    assert cli_utils.one_line(KeyError()) == "KeyError"


def _raise(err):
    def command(args):
        raise err

    return command


@pytest.mark.parametrize("command,status,err", [
    (lambda args: None, 0, ""),
    (lambda args: 3, 3, ""),
    (lambda args: "done", 0, ""),
    (_raise(ValueError("bad\nvalue")), 1, "tfvq: error: bad value\n"),
    (_raise(FileNotFoundError("No such file: x")), 1, "tfvq: error: No such file: x\n"),
    (_raise(KeyboardInterrupt()), 130, "tfvq: interrupted\n"),
    (_raise(RuntimeError("disk\nfull")), 1, "tfvq: error: RuntimeError: disk full\n"),
])
def test_run_command_gives_the_commands_status_or_a_one_line_error(command, status, err, capsys):
    assert cli_utils.run_command(command, None) == status
    assert capsys.readouterr().err == err


def test_command_main_parses_the_arguments_it_adds_and_runs_the_command(capsys):
    seen = []

    def add(parser):
        parser.add_argument("--steps", type=int, required=True)

    def command(args):
        seen.append(args.steps)
        return 2

    assert cli_utils.command_main("tfvq demo", "A demo.", add, command, ["--steps=7"]) == 2 and seen == [7]
    with pytest.raises(SystemExit) as done:
        cli_utils.command_main("tfvq demo", "A demo.", add, command, ["--help"])
    assert done.value.code == 0 and "usage: tfvq demo" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        cli_utils.command_main("tfvq demo", "A demo.", add, command, [])
    assert done.value.code == 1 and "--steps" in capsys.readouterr().err and seen == [7]


def test_files_in_directories_are_found_by_suffix_and_written_beside_or_below_the_output(tmp_path):
    photos = tmp_path / "photos"
    (photos / "b").mkdir(parents=True)
    for name in ("a.PNG", "b/c.png", "b/notes.txt"):
        (photos / name).write_bytes(b"x")
    single = tmp_path / "one.png"
    single.write_bytes(b"one")
    assert cli_utils.read_bytes(str(single)) == b"one"

    items = cli_utils.input_files([str(photos), str(single)], (".png",))
    assert items == [(str(photos / "a.PNG"), "a"), (str(photos / "b" / "c.png"), os.path.join("b", "c")),
                     (str(single), None)]
    assert cli_utils.output_paths("out", items, ".tfvq") == [
        os.path.join("out", "a.tfvq"), os.path.join("out", "b", "c.tfvq"), os.path.join("out", "one.tfvq")]
    assert cli_utils.output_paths(None, items, ".tfvq") == [
        str(photos / "a.tfvq"), str(photos / "b" / "c.tfvq"), str(tmp_path / "one.tfvq")]
    # One file: -o is the output file itself, else the input's name with the suffix.
    one = cli_utils.input_files([str(single)], (".png",))
    assert cli_utils.output_paths("x.bin", one, ".tfvq") == ["x.bin"]
    assert cli_utils.output_paths(None, one, ".tfvq") == [str(tmp_path / "one.tfvq")]


def test_missing_inputs_are_one_line_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="^No such file: .*nothing.png$"):
        cli_utils.read_bytes(str(tmp_path / "nothing.png"))
    with pytest.raises(FileNotFoundError, match="No such file"):
        cli_utils.input_files([str(tmp_path / "nothing.png")], (".png",))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"No input files with the suffixes \.png, \.jpg in .*empty"):
        cli_utils.input_files([str(tmp_path / "empty")], (".png", ".jpg"))


def test_the_progress_bar_is_drawn_for_several_items_only(capsys):
    assert list(cli_utils.progress(["a"], "coding")) == ["a"]
    assert capsys.readouterr().err == ""
    assert list(cli_utils.progress([1, 2], "coding")) == [1, 2]
    err = capsys.readouterr().err
    assert err == f"\rcoding [{'#' * 15}{'.' * 15}] 1/2\rcoding [{'#' * 30}] 2/2\n"


def test_tensorflows_start_up_lines_stay_off_the_terminal_unless_verbose(tmp_path, repo_env):
    """`tfvq models` imports TensorFlow (through the zoo): its C++ libraries' lines (oneDNN, CUDA, absl) are
    dropped, and `--verbose` lets them through."""
    env = repo_env(TF_CPP_MIN_LOG_LEVEL=None)
    quiet = subprocess.run([sys.executable, "-m", "tfvq.cli", "models", "hqa_mnist"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and "hqa_mnist" in quiet.stdout and quiet.stderr == ""
    loud = subprocess.run([sys.executable, "-m", "tfvq.cli", "models", "hqa_mnist", "--verbose"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and "hqa_mnist" in loud.stdout and loud.stderr != ""


def test_the_silent_loader_drops_what_a_module_writes_to_descriptor_2_and_nothing_after(tmp_path, capfd,
                                                                                       monkeypatch):
    (tmp_path / "noisy_module.py").write_text("import os\nos.write(2, b'start-up noise\\n')\nVALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = importlib.util.find_spec("noisy_module")
    spec.loader = cli_utils._SilentLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.write(2, b"after\n")
    assert module.VALUE == 7 and capfd.readouterr().err == "after\n"
