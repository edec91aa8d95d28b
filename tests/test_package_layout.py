"""The package's shape, read from its source by `ast`: imports point down, no circle of modules, no module
over 700 lines, no two modules of one name, imports inside functions only where they keep TensorFlow out
of a command that does not need it, and tests that mirror the package: every module tfvq/A/B/m.py has its
test file tests/A/B/test_m.py.

The order, highest first (a module may import its own package and any lower rank):

    8  every `__main__` module (run, never imported: `python -m tfvq.evaluate` runs the `tfvq evaluate` command)
    7  tfvq.cli
    6  tfvq.commands (the subcommands tfvq.cli dispatches to), tfvq.experiments
    5  tfvq.evaluate
    4  tfvq.train, tfvq.export, tfvq.codec, tfvq.metrics (siblings: none imports another)
    3  tfvq.zoo
    2  tfvq.models
    1  tfvq.layers, tfvq.losses, tfvq.data
    0  tfvq (its `__init__`), tfvq.images, tfvq.cli_utils

`python tests/test_package_layout.py` prints the figures.
"""

import ast
import collections
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tfvq")
TESTS = os.path.dirname(os.path.abspath(__file__))
MAX_LINES = 700
RANKS = {"tfvq.cli": 7, "tfvq.commands": 6, "tfvq.experiments": 6, "tfvq.evaluate": 5, "tfvq.train": 4,
         "tfvq.export": 4, "tfvq.codec": 4, "tfvq.metrics": 4, "tfvq.zoo": 3, "tfvq.models": 2, "tfvq.layers": 1,
         "tfvq.losses": 1, "tfvq.data": 1, "tfvq": 0, "tfvq.images": 0, "tfvq.cli_utils": 0}
SHARED_NAMES = {"toy_modes": {"tfvq.data.toy_modes", "tfvq.experiments.toy_modes"},
                "presets": {"tfvq.models.hqa.presets", "tfvq.models.quantized_ae.presets", "tfvq.models.rrvq.presets"},
                "images": {"tfvq.images", "tfvq.codec.images"}}
"""Module names several modules may share, each module's docstring says why (and names the other module, or the
shared name): one idea at two levels (the density of HQA's illustrative experiment and the experiment; the image
checks of all of tfvq and the codec's image files and arrays built on them), and the one name the zoo looks for in
every family's folder (its presets)."""
LAZY_IMPORTERS = ("tfvq.cli", "tfvq.commands")
"""Where an import may sit inside a function: the command line imports a command's libraries when it runs,
so that `tfvq --help` and `tfvq info` start no TensorFlow."""


def modules():
    """{dotted name: path} of every module of tfvq/."""
    out = {}
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                name = os.path.relpath(path, os.path.dirname(ROOT))[:-3].replace(os.sep, ".")
                out[name[: -len(".__init__")] if name.endswith(".__init__") else name] = path
    return out


def group(name):
    """The package a module belongs to in `RANKS` (its first two parts, or `tfvq`)."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 and ".".join(parts[:2]) in RANKS else "tfvq"


def rank(name):
    return RANKS["tfvq.cli"] + 1 if name.endswith("__main__") else RANKS[group(name)]


def imports(name, path, known):
    """[(imported module, inside a function)] of the tfvq modules `name` imports."""
    tree = ast.parse(open(path).read())
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                # `from tfvq import data` imports the module tfvq.data; `from tfvq.zoo import load` tfvq.zoo
                targets = [f"{child.module}.{a.name}" if f"{child.module}.{a.name}" in known else child.module
                           for a in child.names]
            out.extend((t, inner) for t in targets if t == "tfvq" or t.startswith("tfvq."))
            visit(child, inner)

    visit(tree, False)
    return out


def mirror(path):
    """The test file of the module at `path` (tfvq/A/m.py -> tests/A/test_m.py), or None for `__init__` and
    `__main__`."""
    folder, name = os.path.split(os.path.relpath(path, ROOT))
    if name in ("__init__.py", "__main__.py"):
        return None
    return os.path.join(TESTS, folder, "test_" + name)


def mirrors(mods, exists=os.path.isfile):
    """{"mirrored": [names], "missing": [names without their test file]} of the modules `mods` ({name: path})
    that need a test file."""
    out = {"mirrored": [], "missing": []}
    for name, path in sorted(mods.items()):
        test = mirror(path)
        if test is not None:
            out["mirrored" if exists(test) else "missing"].append(name)
    return out


def figures():
    """The figures of the package's shape (what `python tests/test_package_layout.py` prints)."""
    mods = modules()
    graph = collections.defaultdict(set)
    upward, lazy, lines = [], [], {}
    for name, path in mods.items():
        lines[name] = sum(1 for _ in open(path))
        for target, inner in imports(name, path, mods):
            while target not in mods:  # tfvq.zoo.registry.load -> tfvq.zoo.registry
                target = target.rsplit(".", 1)[0]
            graph[name].add(target)
            if group(name) != group(target) and rank(target) >= rank(name) and target != "tfvq":
                upward.append((name, target))
            if inner:
                lazy.append((name, target))
    names = collections.defaultdict(list)
    for name, path in mods.items():
        base = name.rsplit(".", 1)[-1]
        if os.path.basename(path) not in ("__init__.py", "__main__.py"):  # files, not packages
            names[base].append(name)
    return dict(modules=len(mods), upward=sorted(set(upward)), cycles=cycles(graph), lines=lines,
                lazy=sorted(set(lazy)), shared_names={k: v for k, v in names.items() if len(v) > 1},
                mirrors=mirrors(mods))


def cycles(graph):
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group_ = []
            while True:
                w = stack.pop()
                on.discard(w)
                group_.append(w)
                if w == v:
                    break
            if len(group_) > 1:
                out.append(sorted(group_))

    for v in list(graph):
        if v not in index:
            strong(v)
    return out


@pytest.fixture(scope="module")
def shape():
    return figures()


def test_every_import_points_down(shape):
    assert shape["upward"] == []


def test_no_modules_import_each_other_in_a_circle(shape):
    assert shape["cycles"] == []


def test_no_module_is_over_700_lines(shape):
    assert {name: n for name, n in shape["lines"].items() if n > MAX_LINES} == {}


def test_no_two_modules_share_a_name_unless_they_say_why(shape):
    assert {name: set(where) for name, where in shape["shared_names"].items()} == SHARED_NAMES


def test_modules_that_share_a_name_say_why_in_their_docstrings():
    """Each names a namesake (`tfvq.data.toy_modes` in `tfvq.experiments.toy_modes`) or the shared name itself
    (the zoo's "`presets` module") in its docstring."""
    mods = modules()
    for base, group_ in SHARED_NAMES.items():
        for name in group_:
            doc = ast.get_docstring(ast.parse(open(mods[name]).read())) or ""
            others = [other for other in group_ if other != name]
            assert f"`{base}`" in doc or any(f"`{other}`" in doc for other in others), name


def test_imports_inside_functions_only_in_the_command_line(shape):
    assert [(a, b) for a, b in shape["lazy"] if not a.startswith(LAZY_IMPORTERS)] == []


def test_every_module_has_its_mirror_test_file(shape):
    """tfvq/A/m.py is tested in tests/A/test_m.py."""
    assert shape["mirrors"]["missing"] == []


def test_the_mirror_check_sees_a_module_without_its_test_file():
    assert mirror(os.path.join(ROOT, "layers", "vq.py")) == os.path.join(TESTS, "layers", "test_vq.py")
    assert mirror(os.path.join(ROOT, "images.py")) == os.path.join(TESTS, "test_images.py")
    assert mirror(os.path.join(ROOT, "data", "__init__.py")) is None
    mods = {name: os.path.join(ROOT, *parts) for name, parts in [
        ("tfvq.layers.vq", ("layers", "vq.py")), ("tfvq.seeds", ("seeds.py",)),
        ("tfvq.codec.files", ("codec", "files.py")), ("tfvq.codecs.x", ("codecs", "x.py")),
        ("tfvq.layers", ("layers", "__init__.py"))]}
    assert mirrors(mods, exists=lambda path: path.endswith("test_vq.py")) == {
        "mirrored": ["tfvq.layers.vq"], "missing": ["tfvq.codec.files", "tfvq.codecs.x", "tfvq.seeds"]}


def test_the_scan_sees_an_upward_import_and_a_circle():
    """The checks can fail: a zoo module importing the codec is upward, two modules importing each other a
    circle."""
    assert rank("tfvq.codec.files") > rank("tfvq.zoo.registry") and rank("tfvq.evaluate.__main__") == 8
    assert cycles({"a": {"b"}, "b": {"a", "c"}, "c": set()}) == [["a", "b"]]


if __name__ == "__main__":
    f = figures()
    largest = max(f["lines"], key=f["lines"].get)
    print(f"modules: {f['modules']}")
    print(f"imports that point up: {len(f['upward'])} {f['upward']}")
    print(f"import cycles: {len(f['cycles'])} {f['cycles']}")
    print(f"largest module: {largest} ({f['lines'][largest]} lines)")
    print(f"imports inside functions: {len(f['lazy'])} "
          f"({sum(1 for a, _ in f['lazy'] if not a.startswith(LAZY_IMPORTERS))} outside the command line)")
    print(f"module names shared: {f['shared_names']}")
    m = f["mirrors"]
    print(f"modules with their mirror test file: {len(m['mirrored'])} of {len(m['mirrored']) + len(m['missing'])} "
          f"(missing: {m['missing']})")
