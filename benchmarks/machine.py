"""The machine a benchmark ran on: every benchmark prints the command, the CPU model, its cores and flags first.

Figures from this shared, changing machine compare only as ratios within one run; the CPU line says which
machine a table came from (an Intel Xeon with AMX and AVX512-BF16, or an AMD EPYC without).
"""

import os
import platform
import shlex
import sys

ARM_FLAGS = ("asimddp", "i8mm", "bf16")
X86_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile")
FLAGS = ARM_FLAGS if platform.machine().lower() in ("aarch64", "arm64") else X86_FLAGS
"""The CPU features that change what TensorFlow and LiteRT run (vector width, int8 and bfloat16 products), of
this machine's architecture."""


def cpu_description(features=FLAGS):
    """`(model name, [the features present])` from /proc/cpuinfo (Linux), else `platform`'s names."""
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not name:
                    name = value.strip()
                elif key in ("flags", "Features"):
                    flags |= set(value.split())
    except OSError:
        pass
    return name or platform.processor() or platform.machine(), [f for f in features if f in flags]


def print_setup(features=FLAGS):
    """Prints the command line and `CPU: <model>, <n> cores; flags: <present> (not: <absent>)`."""
    print("command: " + " ".join(shlex.quote(a) for a in ["python", os.path.relpath(sys.argv[0])] + sys.argv[1:]))
    name, flags = cpu_description(features)
    missing = [f for f in features if f not in flags]
    print(f"CPU: {name}, {os.cpu_count()} cores; flags: {' '.join(flags) or 'none'}"
          + (f" (not: {' '.join(missing)})" if missing else ""), flush=True)
