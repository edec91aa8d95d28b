"""Encode and decode throughput (images/s) of `tfvq.codec.compress` / `decompress`, one or more source trees.

    python benchmarks/codec_throughput.py
    python benchmarks/codec_throughput.py --trees before=OLD_CHECKOUT,after=. --repeats 7   # e.g. git worktree add OLD_CHECKOUT REV

Measures, with the default coder (`coder="auto"`) and deterministic decoding,
`hqa_digits --layer=1`, `hqa_digits --layer=5`, `hqa_mnist --layer=2` and
`rrvq_digits` (its default layer) on the digits test split (32x32), for one image per call and for a batch of 64
images per call. Each measurement makes one warm-up call (compress, then
decompress) and then times `--calls` calls of each (batch 1: a different image
each call); a figure is the median over `--repeats` repeats.

`--trees NAME=PATH,...` compares source trees in one run: each tree gets its own
worker process with `PYTHONPATH=PATH` (so `import tfvq` comes from that tree),
and the measurements alternate between the trees repeat by repeat, so a noisy,
shared machine slows them alike. The table gives every tree's figures and the
ratio of each later tree to the first (above 1: faster). Without `--trees`,
one worker uses the installed package. Compare figures as ratios within a run,
not across runs.

`--backends tensorflow,tflite` measures each tree with each backend
(`codec.compress(..., backend=B)` and `codec.decompress(..., backend=B)`: the
Keras model, or the weights' TFLite encoders and decoders), alternating as the
trees do; the ratios are to the first tree's first backend.

Cold commands (`--cold_repeats`, 0 to skip): what `tfvq compress ONE.png`,
`tfvq decompress ONE.tfvq` and `tfvq info ONE.tfvq` of one image cost from a
fresh process: the wall time, the CPU time (user + system) and the process's
peak resident memory (`os.wait4`'s rusage), with `--backend=tflite` (no
TensorFlow) and `--backend=tensorflow`, for every bundled model whose TFLite
bundle holds encoders and decoders (`tfvq.codec.find_encoder`), on one test
image it was made for (a real 28x28 digit, `mnist10k_raw("test")[0]`, for the
`*_mnist` models; a 32x32 digit of the `digits` test split for the others, as RGB
for an RGB model),
with the model's default coder and layer, and a lossless `rrvq_mnist` file.
A figure is the median over the repeats; the ratio is TensorFlow's over
TFLite's (above 1: TFLite is cheaper). On a machine shared with other jobs
(a training job, here) wall times grow with their load and CPU times much
less: compare within one run.

    python benchmarks/codec_throughput.py --repeats 0 --cold_repeats 5    # the cold commands alone
    python benchmarks/codec_throughput.py --backends tensorflow,tflite --cold_repeats 0
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CASES = (("hqa_digits", 1), ("hqa_digits", 5), ("hqa_mnist", 2), ("rrvq_digits", None))
BATCHES = (1, 64)


def case_name(name, layer):
    return f"`{name}`" + ("" if layer is None else f" --layer={layer}")


# ---- worker: runs inside a tree's subprocess, one JSON request per line on stdin, one JSON answer per line on stdout


def worker():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    import tfvq
    from tfvq import codec, data

    images = np.round(data.load_numpy("digits", "test") * 255).astype(np.uint8)
    out = sys.stdout
    sys.stdout = sys.stderr  # anything the package prints must not mix with the answers
    print(json.dumps({"tfvq": os.path.dirname(os.path.abspath(tfvq.__file__))}), file=out, flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        name, layer, batch, calls = req["name"], req["layer"], req["batch"], req["calls"]
        backend = {} if req.get("backend") is None else {"backend": req["backend"]}
        inputs = [np.take(images, np.arange(i * batch, (i + 1) * batch), axis=0, mode="wrap") for i in range(calls)]
        codec.decompress(codec.compress(inputs[0], name, layer=layer, **backend), **backend)  # warm-up
        t0 = time.perf_counter()
        files = [codec.compress(x, name, layer=layer, **backend) for x in inputs]
        t1 = time.perf_counter()
        decoded = [codec.decompress(f, **backend) for f in files]
        t2 = time.perf_counter()
        assert all(d.shape == x.shape for d, x in zip(decoded, inputs))
        n = batch * calls
        answer = {"encode": n / (t1 - t0), "decode": n / (t2 - t1), "bytes": sum(map(len, files)) / n}
        print(json.dumps(answer), file=out, flush=True)


# ---- driver


class Worker:
    def __init__(self, path):
        env = _tree_env(path)
        self.log = tempfile.NamedTemporaryFile("w+", prefix="codec_throughput_", suffix=".log", delete=False)
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--worker"], env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log)
        self.tfvq = self._answer()["tfvq"]

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            tail = self.log.read()[-3000:]
            raise RuntimeError(f"worker {self.proc.pid} ended (exit code {self.proc.wait()}); "
                               f"its stderr ({self.log.name}) ends:\n{tail}")
        return json.loads(line)

    def measure(self, name, layer, batch, calls, backend=None):
        request = {"name": name, "layer": layer, "batch": batch, "calls": calls, "backend": backend}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


# ---- cold commands: `tfvq compress`, `decompress` and `info` of one image in a fresh process

BACKENDS = ("tflite", "tensorflow")
COMMANDS = ("compress", "decompress", "info")


def cold_cases(folder, path):
    """[(label, model, extra compress flags, image path)]: one test image per bundled model with TFLite encoders
    and decoders, written as PNG into `folder` by a process of the tree `path`, and a lossless `rrvq_mnist`."""
    script = (
        "import glob, json, os, sys\n"
        "import numpy as np\n"
        "from tfvq import codec, data, decoder_bundle\n"
        "from tfvq.codec.lite_model import BUNDLED_WEIGHTS\n"
        "from tfvq.data.embedded import mnist10k_raw\n"
        "folder = sys.argv[1]\n"
        "names = sorted({decoder_bundle.read_manifest(p)['model'] for p in glob.glob(os.path.join(BUNDLED_WEIGHTS, "
        "'*.decoders-*'))})\n"
        "names = [n for n in names if codec.find_encoder(n)[0] is not None]\n"
        "real = mnist10k_raw('test')[0][0][..., None]\n"
        "digit = np.round(data.load_numpy('digits', 'test', limit=1)[0] * 255).astype(np.uint8)\n"
        "cases = []\n"
        "for n in names:\n"
        "    image = real if n.endswith('_mnist') else digit\n"
        "    png = os.path.join(folder, f'{n}.png')\n"
        "    codec.save_png(png, image)\n"
        "    rgb = ['--rgb'] if codec.find_encoder(n)[0]['image_shape'][2] == 3 else []\n"
        "    cases.append((f'`{n}`', n, rgb, png))\n"
        "    if n == 'rrvq_mnist':\n"
        "        cases.append(('`rrvq_mnist` lossless', n, ['--lossless'], png))\n"
        "print(json.dumps(cases))\n")
    out = subprocess.run([sys.executable, "-c", script, folder], env=_tree_env(path), check=True,
                         stderr=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True).stdout
    return [tuple(c) for c in json.loads(out.strip().splitlines()[-1])]


def cold_run(path, arguments):
    """(wall seconds, CPU seconds, peak resident MB) of `tfvq ARGUMENTS` in a fresh process."""
    command = [sys.executable, "-m", "tfvq.cli", *arguments]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=_tree_env(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0  # Linux: kilobytes


def _tree_env(path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    if path is not None:
        env["PYTHONPATH"] = os.path.abspath(path)
    return env


def _cold_commands(label, extra, png, folder, backend):
    """[(command, arguments)] of one case with one backend, in the order they run."""
    stem = os.path.join(folder, f"{label.replace('`', '').replace(' ', '_')}_{backend}")
    return [("compress", ["compress", png, f"--model={label.split('`')[1]}", *extra, f"--backend={backend}", "-o",
                          f"{stem}.tfvq"]),
            ("decompress", ["decompress", f"{stem}.tfvq", f"--backend={backend}", "-o", f"{stem}.png"]),
            ("info", ["info", f"{stem}.tfvq"])]


def print_cold(path, repeats):
    """The cold-command table (the module's doc) for the tree at `path`."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="codec_cold_") as folder:
        cases = cold_cases(folder, path)
        figures, sizes = {}, {}
        for rep in range(repeats):
            for label, _, extra, png in cases:
                for backend in BACKENDS if rep % 2 == 0 else BACKENDS[::-1]:
                    for command, arguments in _cold_commands(label, extra, png, folder, backend):
                        figures.setdefault((label, command, backend), []).append(cold_run(path, arguments))
                    sizes[label, backend] = os.path.getsize(arguments[1])
            print(f"cold repeat {rep + 1}/{repeats} done", file=sys.stderr, flush=True)
    print(f"## One image from a fresh process, `tfvq COMMAND` (median of {repeats}; targets: compress 1.5 s, "
          "decompress 1.0 s and 250 MB, info 0.3 s)\n")
    print("| file | command | bytes TFLite / TF | TFLite s | TensorFlow s | TF/TFLite | TFLite CPU s | TensorFlow CPU s "
          "| TFLite peak MB | TensorFlow peak MB | TF/TFLite |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for label, _, _, _ in cases:
        for command in COMMANDS:
            (w_lite, c_lite, m_lite), (w_tf, c_tf, m_tf) = [
                np.median(np.array(figures[(label, command, b)]), axis=0) for b in BACKENDS]
            if command == "info":  # the same command twice: it reads the header of the file either backend wrote
                print(f"| {label} | info | | {w_lite:.2f} | ({w_tf:.2f}) | | {c_lite:.2f} | ({c_tf:.2f}) | {m_lite:.0f} | "
                      f"({m_tf:.0f}) | |")
                continue
            print(f"| {label} | {command} | {sizes[label, 'tflite']} / {sizes[label, 'tensorflow']} | {w_lite:.2f} | "
                  f"{w_tf:.2f} | {w_tf / w_lite:.1f} | {c_lite:.2f} | {c_tf:.2f} | {m_lite:.0f} | {m_tf:.0f} | "
                  f"{m_tf / m_lite:.1f} |")
    print()


def parse_trees(text):
    if not text:
        return [("installed", None)]
    trees = []
    for item in text.split(","):
        label, sep, path = item.partition("=")
        if not sep or not label or not os.path.isdir(os.path.join(path, "tfvq")):
            raise SystemExit(f"--trees: expected NAME=PATH with PATH/tfvq a folder, got {item!r}")
        trees.append((label, path))
    return trees


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", default=None, help="NAME=PATH,... source trees to compare (default: installed)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per measurement (the median is given)")
    parser.add_argument("--calls", type=int, default=10, help="timed calls per measurement at batch 1")
    parser.add_argument("--batch_calls", type=int, default=2, help="timed calls per measurement at batch 64")
    parser.add_argument("--backends", default=None, help="tensorflow,tflite: measure each tree with these "
                        "backends (default: the trees' own choice, `backend` not passed)")
    parser.add_argument("--cold_repeats", type=int, default=3, help="repeats of each cold command (0: none)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    import numpy as np

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from machine import print_setup  # the command line, the CPU and its flags

    trees = parse_trees(args.trees)
    print_setup()
    if args.cold_repeats > 0:
        print_cold(trees[0][1], args.cold_repeats)
    if args.repeats < 1:
        return
    workers = {}
    for label, path in trees:
        workers[label] = Worker(path)
        print(f"tree {label}: tfvq from {workers[label].tfvq}")
    print()
    backends = args.backends.split(",") if args.backends else [None]
    runs = [(label if backend is None else f"{label} {backend}", label, backend)
            for label, _ in trees for backend in backends]  # (column label, tree, backend)
    results = {}  # (column label, name, layer, batch) -> list of answers
    try:
        for rep in range(args.repeats):
            order = runs if rep % 2 == 0 else runs[::-1]
            for name, layer in CASES:
                for batch in BATCHES:
                    calls = args.calls if batch == 1 else args.batch_calls
                    for column, tree, backend in order:
                        answer = workers[tree].measure(name, layer, batch, calls, backend)
                        results.setdefault((column, name, layer, batch), []).append(answer)
            print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()

    labels = [column for column, _, _ in runs]
    print(f"## Throughput, images/s (median of {args.repeats} repeats; coder auto; batch 1: {args.calls} calls, "
          f"batch 64: {args.batch_calls} calls, after a warm-up call)\n")
    head = ["model", "batch"]
    for what in ("encode", "decode"):
        head += [f"{what} {label}" for label in labels]
        head += [f"{what} {label}/{labels[0]}" for label in labels[1:]]
    head += [f"file bytes/image {label}" for label in labels]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name, layer in CASES:
        for batch in BATCHES:
            med = {label: {k: float(np.median([a[k] for a in results[(label, name, layer, batch)]]))
                           for k in ("encode", "decode", "bytes")} for label in labels}
            cells = [case_name(name, layer), str(batch)]
            for what in ("encode", "decode"):
                cells += [f"{med[label][what]:.1f}" for label in labels]
                cells += [f"{med[label][what] / med[labels[0]][what]:.2f}" for label in labels[1:]]
            cells += [f"{med[label]['bytes']:.1f}" for label in labels]
            print("| " + " | ".join(cells) + " |")
    print()


if __name__ == "__main__":
    main()
