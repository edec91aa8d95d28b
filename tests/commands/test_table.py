"""The one command table (`tfvq.commands.COMMANDS`): every subcommand a module of `tfvq.commands` with its flags and
its runner, `tfvq --help` and `tfvq info` without TensorFlow, and no import from below back up to the commands."""

import ast
import importlib
import pathlib
import subprocess
import sys

import pytest

import tfvq
from tfvq.commands import COMMANDS, module_name

PACKAGE = pathlib.Path(tfvq.__file__).parent


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_subcommand_is_a_module_with_its_arguments_and_its_runner(name):
    module = importlib.import_module(module_name(name))
    assert module.__file__.startswith(str(PACKAGE / "commands"))
    assert callable(module.arguments) and callable(module.run)
    assert module.__doc__.splitlines()[0].startswith(f"`tfvq {name}")  # its summary names it


def test_the_table_lists_every_module_of_the_commands():
    modules = {p.stem for p in (PACKAGE / "commands").glob("*.py") if p.stem != "__init__"}
    assert modules == {module_name(name).rsplit(".", 1)[1] for name in COMMANDS}


def test_the_help_line_of_a_command_names_its_subcommands():
    """`tfvq --help` lists the commands from `COMMANDS`; a command with subcommands of its own (`tfvq data`) names
    each of them in its line there, so the summary does not fall behind the command."""
    for name, text in COMMANDS.items():
        for sub in getattr(importlib.import_module(module_name(name)), "SUBCOMMANDS", ()):
            assert sub in text, f"the help line of tfvq {name} does not name {sub}"


@pytest.mark.parametrize("argv", [["--help"], ["info", "{old_files}/hqa_digits_layer1_v3_auto.tfvq"],
                                  ["info", "{old_files}/hqa_mnist_layer2_v4_28x28.tfvq"]])
def test_help_and_info_start_no_tensorflow(argv):
    old_files = pathlib.Path(__file__).parents[1] / "codec" / "data"
    code = ("import sys; from tfvq import cli\n"
            "try:\n"
            f"    status = cli.main({[a.format(old_files=old_files) for a in argv]!r})\n"
            "except SystemExit as done:\n"
            "    status = done.code\n"
            "assert status == 0, status\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True)


def _imports(path):
    """The modules `path` imports, as written."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_no_arrow_runs_back_up_to_the_commands():
    """Imports point down: cli -> commands -> train, export, codec, evaluate, ... Entry points (`__main__`) may
    call the command line, as train.py and export.py do."""
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.name == "__main__.py" or relative.parts[0] in ("cli.py", "commands"):
            continue
        up = [name for name in _imports(path) if name.startswith(("tfvq.cli", "tfvq.commands"))
              and not name.startswith("tfvq.cli_utils")]
        assert not up, f"tfvq/{relative} imports {up}: only tfvq/cli.py (and entry points) reach the commands"
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        assert not [n for n in _imports(path) if n == "tfvq.cli" or n.startswith("tfvq.cli.")], path.name
