"""Encode and decode throughput (images/s) of `tfvq.codec.compress` / `decompress`, one or more source trees.

    python benchmarks/codec_throughput.py
    python benchmarks/codec_throughput.py --trees before=OLD_CHECKOUT,after=. --repeats 7   # e.g. git worktree add OLD_CHECKOUT REV

Measures, with the default coder (`coder="auto"`) and deterministic decoding,
`hqa_digits --layer=1`, `hqa_digits --layer=5` and `rrvq_digits` (its default
layer) on the digits test split, for one image per call and for a batch of 64
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

Cold decodes (`--cold_repeats`, 0 to skip): what `tfvq decompress ONE.tfvq`
of one image costs from a fresh process, the wall time and the process's peak
resident memory (`os.wait4`'s ru_maxrss), with the TFLite decoders
(`--backend=tflite`, no TensorFlow) and with TensorFlow (`--backend=tensorflow`,
as before the decoders), for a real 28x28 digit (`mnist10k_raw("test")[0]`)
coded by `hqa_mnist` and by `rrvq_mnist` (lossy and lossless), with the first
tree. A figure is the median over the repeats; the ratio is TensorFlow's over
TFLite's (above 1: TFLite is cheaper).

    python benchmarks/codec_throughput.py --repeats 0 --cold_repeats 5    # the cold decodes alone
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CASES = (("hqa_digits", 1), ("hqa_digits", 5), ("rrvq_digits", None))
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
        inputs = [np.take(images, np.arange(i * batch, (i + 1) * batch), axis=0, mode="wrap") for i in range(calls)]
        codec.decompress(codec.compress(inputs[0], name, layer=layer))  # warm-up
        t0 = time.perf_counter()
        files = [codec.compress(x, name, layer=layer) for x in inputs]
        t1 = time.perf_counter()
        decoded = [codec.decompress(f) for f in files]
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

    def measure(self, name, layer, batch, calls):
        self.proc.stdin.write(json.dumps({"name": name, "layer": layer, "batch": batch, "calls": calls}) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()
        os.unlink(self.log.name)


# ---- cold decodes: `tfvq decompress` of one image in a fresh process

COLD_CASES = (("hqa_mnist", {}), ("rrvq_mnist", {}), ("rrvq_mnist", {"lossless": True}))
BACKENDS = ("tflite", "tensorflow")


def cold_files(folder, path):
    """Writes one file per `COLD_CASES` entry (a real test digit, coded by a process of the tree `path`);
    returns their paths."""
    script = (
        "import sys\n"
        "from tfvq import codec\n"
        "from tfvq.data.embedded import mnist10k_raw\n"
        "digit = mnist10k_raw('test')[0][0][..., None]\n"
        f"for i, (name, options) in enumerate({COLD_CASES!r}):\n"
        "    open(f'{sys.argv[1]}/case{i}.tfvq', 'wb').write(codec.compress(digit, name, **options))\n")
    subprocess.run([sys.executable, "-c", script, folder], env=_tree_env(path), check=True,
                   stderr=subprocess.DEVNULL)
    return [os.path.join(folder, f"case{i}.tfvq") for i in range(len(COLD_CASES))]


def cold_decode(path, tfvq_file, backend):
    """(seconds, peak resident MB) of `tfvq decompress tfvq_file --backend=backend` in a fresh process."""
    out = tfvq_file[: -len(".tfvq")] + f"_{backend}.png"
    command = [sys.executable, "-m", "tfvq.cli", "decompress", tfvq_file, f"--backend={backend}", "-o", out]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=_tree_env(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return seconds, usage.ru_maxrss / 1024.0  # Linux: kilobytes


def _tree_env(path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    if path is not None:
        env["PYTHONPATH"] = os.path.abspath(path)
    return env


def print_cold(path, repeats):
    """The cold-decode table (the module's doc) for the tree at `path`."""
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="codec_cold_") as folder:
        paths = cold_files(folder, path)
        sizes = [os.path.getsize(p) for p in paths]
        figures = {}
        for rep in range(repeats):
            for case, tfvq_file in enumerate(paths):
                for backend in BACKENDS if rep % 2 == 0 else BACKENDS[::-1]:
                    figures.setdefault((case, backend), []).append(cold_decode(path, tfvq_file, backend))
            print(f"cold repeat {rep + 1}/{repeats} done", file=sys.stderr, flush=True)
    print(f"## One image, `tfvq decompress ONE.tfvq` from a fresh process (median of {repeats}; targets: 1.0 s, "
          "250 MB)\n")
    print("| file | bytes | TFLite s | TensorFlow s | TF/TFLite | TFLite peak MB | TensorFlow peak MB | TF/TFLite |")
    print("|---|---|---|---|---|---|---|---|")
    for case, (name, options) in enumerate(COLD_CASES):
        (t_lite, m_lite), (t_tf, m_tf) = [np.median(np.array(figures[(case, b)]), axis=0) for b in BACKENDS]
        what = f"`{name}`" + (" lossless" if options.get("lossless") else "")
        print(f"| {what} | {sizes[case]} | {t_lite:.2f} | {t_tf:.2f} | {t_tf / t_lite:.1f} | {m_lite:.0f} | {m_tf:.0f} | "
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
    parser.add_argument("--cold_repeats", type=int, default=3, help="repeats of each cold decode (0: none)")
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
    results = {}  # (label, name, layer, batch) -> list of answers
    try:
        for rep in range(args.repeats):
            order = trees if rep % 2 == 0 else trees[::-1]
            for name, layer in CASES:
                for batch in BATCHES:
                    calls = args.calls if batch == 1 else args.batch_calls
                    for label, _ in order:
                        answer = workers[label].measure(name, layer, batch, calls)
                        results.setdefault((label, name, layer, batch), []).append(answer)
            print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr, flush=True)
    finally:
        for w in workers.values():
            w.close()

    labels = [label for label, _ in trees]
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
