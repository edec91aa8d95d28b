"""Resumable experiments: one run folder per (row, seed), a small kept record of each result, and the flags that
drive them.

An experiment longer than a session trains its (row, seed) runs one by one into `OUT/runs/KEY/seedN` (model
weights, logs: never committed) and writes each result twice: `OUT/runs/KEY/seedN/result.json` and a kept copy
`RECORD/KEY/seedN.json` (small JSON files, committed beside the docs that quote them). Either copy counts as
done, so a table survives its run folders, and a stopped command resumes where it stopped. A kept result of
another budget or configuration is refused, never mixed into a table. `tfvq.experiments.hqa_mnist` (HQA Table 3,
Figure 3) and `tfvq.experiments.quantizers` (the quantizers on real digits) run this way.
"""

import json
import os
import resource


def write_json(path, value):
    """Writes `value` as JSON at `path` (folders made), atomically: a stopped run leaves the old file or the new."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2)
    os.replace(path + ".tmp", path)


def json_value(value):
    """`value` as JSON holds it (tuples as lists, nested), so that it compares equal to a result read back."""
    return json.loads(json.dumps(value))


def cpu_seconds():
    """User and system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_paths(key, seed, out, record=None):
    """(run folder `OUT/runs/KEY/seedN`, its result.json, the kept copy `RECORD/KEY/seedN.json` or None)."""
    folder = os.path.join(out, "runs", key, f"seed{seed}")
    kept = None if record is None else os.path.join(record, key, f"seed{seed}.json")
    return folder, os.path.join(folder, "result.json"), kept


def is_done(key, seed, out, record=None):
    """Whether (key, seed) has a result: in its run folder, or kept in `record`."""
    _, path, kept = run_paths(key, seed, out, record)
    return os.path.exists(path) or (kept is not None and os.path.exists(kept))


def read_done(key, seed, out, record=None, **expected):
    """(result, the file it was read from) of a done (key, seed), else (None, None).

    `expected` ({"budget": ..., "config": ...}) must equal the result's entries (compared as JSON holds them):
    a result trained otherwise raises `ValueError` saying what to do. A result found only in its run folder is
    kept in `record` as well.
    """
    _, path, kept = run_paths(key, seed, out, record)
    for source in (path, kept):
        if source is None or not os.path.exists(source):
            continue
        with open(source) as f:
            done = json.load(f)
        differs = {k: (done.get(k), json_value(v)) for k, v in expected.items() if done.get(k) != json_value(v)}
        if differs:
            found = ", ".join(f"{k} {got}" for k, (got, _) in differs.items())
            wanted = ", ".join(f"{k} {want}" for k, (_, want) in differs.items())
            raise ValueError(f"{source} holds a {key} run of {found}, not {wanted}: results of two recipes do not "
                             "share a table; remove it, or pass another --out and --record.")
        if kept is not None and not os.path.exists(kept):
            write_json(kept, done)
        return done, source
    return None, None


def add_run_flags(parser, out, seeds, record):
    """Adds the flags every resumable experiment takes to an argparse `parser`: --out, --seeds, --collect,
    --record, --quick and --limit (defaults `out`, `seeds`, `record`)."""
    parser.add_argument("--out", default=out, help=f"run folders and the tables (default {out})")
    parser.add_argument("--seeds", type=int, default=seeds, help=f"training seeds per row (default {seeds})")
    parser.add_argument("--collect", action="store_true",
                        help="train nothing: tabulate the results of the runs that are done")
    parser.add_argument("--record", default=None,
                        help=f"keep a copy of every result here, and count the results kept here as done (default "
                             f"{record}, the results the docs show; none with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a few steps, one seed, 64 test digits (a test of the command)")
    parser.add_argument("--limit", type=int, default=None, help="measure on the first N test digits")


def check_run_flags(parser, args):
    """`parser.error` for a --seeds or --limit below 1."""
    for flag in ("seeds", "limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag} must be >= 1, got {value}")
