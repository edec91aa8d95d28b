"""Device check: what a GPU user runs once (under 6 minutes on one GPU) to see that tfvq trains and codes there.

    python benchmarks/device_check.py                    # every visible GPU
    python benchmarks/device_check.py --cpu              # the same checks on the CPU (no GPU needed)
    python benchmarks/device_check.py --cpu --tiny       # tiny configurations, a few seconds a check (the test's)

It prints the command, the CPU (`machine.print_setup`), then one table:

* `device`: the GPUs found (name, compute capability, memory from `nvidia-smi` where it is installed), the
  TensorFlow and Keras versions and the CUDA and cuDNN versions TensorFlow was built with
  (`tf.sysconfig.get_build_info()`).
* `train`: one training step of each paper configuration (`hqa_celeba64`: HQA Table 10, its layer 1;
  `rrvq_cifar10`, `rrvq_celeba64`: RRVQ App. C, the one end-to-end stage), the trainer's own step
  (`tfvq.train.loop.Trainer.make_step`: loss, gradients, all-reduce, clipping, optimiser) on random
  images, for float32, mixed_bfloat16 and mixed_float16 (`--precision`, with loss scaling), each without and
  with XLA (`--jit_compile`). At the paper batch size, or, when it does not fit (`ResourceExhaustedError`),
  the largest power-of-two fraction of it that does (the row says so). ms/step and images/s are the mean
  of `--steps` steps after `--warmup` steps (the first compiles); `peak MB` is the device's peak memory
  (`tf.config.experimental.get_memory_info`, reset before each row), or with `--cpu` the process's peak
  resident set (Linux VmHWM, reset through /proc/self/clear_refs before each row).
* `mirrored`: float32, the same global batch on one device and under `--strategy=mirrored` over every
  visible GPU (with `--cpu`: two logical CPU devices sharing the same cores, so no speed-up is expected).
* `encode`, `decode`, `latency`: `model.encode` and `model.decode` of each bundled model at `--codec_batch`
  (256) random images, and one image through both (the median of `--repeats` calls after a warm-up).
* `files`: cross-device files. In one process, `.tfvq` files written with the model's ops on `/CPU:0` are
  decoded on `/GPU:0` and the other way round: `rrvq_digits` lossless files must give back their pixels
  exactly; `hqa_digits` and `hqa_mnist` context and progressive files must decode without `CodecError`.
  Each row also compares the integer tables both devices give for the same codes (`tfvq.codec.entropy`:
  `quantise_log_probs`, `pixel_frequencies`): of the positions whose tables differ, how many the encoder's
  escape flags caught (`escaped` positions code under a table no network touches) and how many it did
  not (those fail the file's CRC). With `--cpu` the second device is the logical `/CPU:1`.

The default grid is 18 training rows; each builds and traces its step on the host (tens of seconds for the
RRVQ-VAE's deep stack on a slow host) before timing it. `--configs`, `--precisions`, `--jit` and `--sections`
narrow the run where the whole does not fit the time at hand.

A failed check (an error, a non-finite loss, a configuration that does not fit even at batch 1, a file
that does not decode or decodes to other pixels, a table difference no escape caught) is marked `FAIL`,
and the script exits with status 1. Without a GPU and without `--cpu` it says so and exits with status 2.
"""

import argparse
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # its sibling `machine`, as a script or a module

from machine import cpu_description, print_setup  # noqa: E402

PAPER = ("hqa_celeba64", "rrvq_cifar10", "rrvq_celeba64")
FILE_CASES = (("rrvq_digits", "lossless"), ("hqa_digits", "context"), ("hqa_digits", "progressive"),
              ("hqa_mnist", "context"), ("hqa_mnist", "progressive"))
TINY = dict(steps=1, warmup=1, repeats=1, codec_batch=8, file_images=2,
            codec_models="hqa_digits,rrvq_digits")
"""`--tiny`: one timed step, one call, 8 images to encode, 2 per file; the tiny configurations of
`tfvq.zoo.tiny` at batch 4."""
TINY_BATCH = 4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu", action="store_true", help="run on the CPU (hides the GPUs), split into 2 devices")
    p.add_argument("--tiny", action="store_true", help="tiny configurations and counts (for tests)")
    p.add_argument("--configs", default=",".join(PAPER), help="zoo entries whose training step is timed")
    p.add_argument("--precisions", default="float32,mixed_bfloat16,mixed_float16")
    p.add_argument("--jit", default="off,on", help="XLA settings to time: off, on or both")
    p.add_argument("--batch", type=int, default=None, help="global batch of every training row (default: "
                   "the paper's)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per training row")
    p.add_argument("--warmup", type=int, default=2, help="steps before timing (the first compiles)")
    p.add_argument("--codec_models", default=None, help="bundled models to encode and decode (default: all)")
    p.add_argument("--codec_batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=5, help="timed calls of encode, decode and latency")
    p.add_argument("--file_images", type=int, default=16, help="images per cross-device file")
    p.add_argument("--files", default=",".join(f"{n}:{k}" for n, k in FILE_CASES),
                   help="cross-device files to check, MODEL:KIND (KIND: lossless, context or progressive)")
    p.add_argument("--sections", default="train,mirrored,codec,files")
    args = p.parse_args(argv)
    if args.tiny:
        for key, value in TINY.items():
            if p.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    return args


class Table:
    """The rows printed at the end, and whether any check failed."""

    COLUMNS = ("check", "case", "ms", "images/s", "peak MB", "result")

    def __init__(self):
        self.rows, self.failed = [], 0

    def add(self, check, case, ms=None, rate=None, peak=None, result="ok", failed=False):
        self.failed += bool(failed)
        self.rows.append((check, case, "" if ms is None else f"{ms:.1f}", "" if rate is None else f"{rate:.0f}",
                          "" if peak is None else f"{peak:.0f}", ("FAIL: " if failed else "") + result))
        print("  " + " | ".join(self.rows[-1]), flush=True)

    def print(self):
        print()
        print("| " + " | ".join(self.COLUMNS) + " |")
        print("|" + "---|" * len(self.COLUMNS))
        for row in self.rows:
            print("| " + " | ".join(row) + " |")
        print(f"\n{self.failed} check(s) failed." if self.failed else "\nEvery check passed.", flush=True)


# ----------------------------------------------------------------------------------------------------- devices
class Memory:
    """Peak memory of a device since `reset()`: a GPU's allocator peak, or the process's peak resident set."""

    def __init__(self, tf, device):
        self.tf, self.device = tf, device.lstrip("/")  # the memory calls take local names: "GPU:0"
        self.gpu = "GPU" in device.upper()

    def reset(self):
        if self.gpu:
            self.tf.config.experimental.reset_memory_stats(self.device)
            return
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # Linux: resets the peak resident set (VmHWM) to the current one
        except OSError:
            pass

    def peak_mb(self):
        if self.gpu:
            return self.tf.config.experimental.get_memory_info(self.device)["peak"] / 2**20
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None


def nvidia_smi_memory():
    """[(name, total memory)] from `nvidia-smi`, or [] where it is not installed."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [tuple(part.strip() for part in line.split(",", 1)) for line in out.splitlines() if "," in line]


def device_rows(tf, keras, table, gpus):
    info = tf.sysconfig.get_build_info()
    table.add("device", "TensorFlow", result=f"TensorFlow {tf.__version__}, Keras {keras.__version__}, built with "
              f"CUDA {info.get('cuda_version', 'none')}, cuDNN {info.get('cudnn_version', 'none')}")
    smi = nvidia_smi_memory()
    for i, gpu in enumerate(gpus):
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        memory = smi[i][1] if i < len(smi) else "memory unknown (no nvidia-smi)"
        table.add("device", f"GPU:{i}", result=f"{details.get('device_name', gpu.name)}, compute capability "
                  f"{'.'.join(map(str, capability)) if capability else '?'}, {memory}")
    name, flags = cpu_description()
    table.add("device", "CPU", result=f"{name}, {os.cpu_count()} cores; {' '.join(flags) or 'none'}")


# ------------------------------------------------------------------------------------------------------ train
def _random_batches(tf, np, strategy, batch, shape, seed=0):
    """A distributed iterator of global batches of `batch` random images in [0, 1] (the step's cost does not
    depend on the pixels): a fixed pool of `batch` images, sliced and batched as the trainer's input is."""
    images = np.random.default_rng(seed).uniform(size=(batch,) + tuple(shape)).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices(images).repeat().batch(batch, drop_remainder=True).prefetch(2)
    return iter(strategy.experimental_distribute_dataset(ds))


def time_step(ctx, name, precision, jit, batch, strategy, memory):
    """(ms per step, peak MB, last loss) of the trainer's first stage of `name` at global `batch`."""
    tf, np, loop, keras = ctx["tf"], ctx["np"], ctx["loop"], ctx["keras"]
    memory.reset()
    trainer = loop.Trainer(loop.TrainOptions(model=name, batch_size=batch, steps=1000, layers=[1], verbose=False,
                                             precision=precision, jit_compile=jit,
                                             model_dir=os.path.join(ctx["tmp"], "run")), strategy)
    try:
        step = trainer.make_step(1)
        iterator = _random_batches(tf, np, trainer.strategy, batch, trainer.model.image_shape)
        for _ in range(ctx["args"].warmup):
            float(step(iterator)["loss"])
        t0 = time.perf_counter()
        for _ in range(ctx["args"].steps):
            loss = float(step(iterator)["loss"])  # the host reads the loss every step, as the trainer does
        ms = (time.perf_counter() - t0) / ctx["args"].steps * 1e3
        return ms, memory.peak_mb(), loss
    finally:
        del trainer
        gc.collect()
        keras.backend.clear_session()


def fitting_step(ctx, name, precision, jit, batch, strategy, memory):
    """`time_step` at `batch`, halved until it fits; (batch used, ms, peak MB, loss)."""
    tf = ctx["tf"]
    replicas = strategy.num_replicas_in_sync
    while True:
        try:
            return (batch,) + time_step(ctx, name, precision, jit, batch, strategy, memory)
        except tf.errors.ResourceExhaustedError:
            if batch // 2 < replicas:
                raise
            batch //= 2


def train_rows(ctx, table, names, one_device, memory):
    """The `train` rows; returns {name: (batch, ms)} of the float32, no-XLA rows (for `mirrored`)."""
    from tfvq.zoo.tiny import register_tiny

    args, np = ctx["args"], ctx["np"]
    baseline = {}
    for name in names:
        try:
            want = args.batch or (TINY_BATCH if args.tiny else ctx["zoo"].recipe(name).batch_size)
            if args.tiny:
                name = register_tiny(name)
        except Exception as err:  # noqa: BLE001  (an unknown name fails its row)
            table.add("train", name, result=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}", failed=True)
            continue
        for precision in args.precisions.split(","):
            for jit in [s == "on" for s in args.jit.split(",")]:
                case = f"{name} {precision}{' XLA' if jit else ''}"
                try:
                    batch, ms, peak, loss = fitting_step(ctx, name, precision, jit, want, one_device, memory)
                except Exception as err:  # noqa: BLE001  (a row that fails is reported, the others still run)
                    table.add("train", case, result=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}",
                              failed=True)
                    continue
                said = f"batch {batch}" + (" (tiny)" if args.tiny else
                                           " (the paper's)" if batch == want and args.batch is None else
                                           f" (the largest that fits of {want})" if batch < want else "")
                finite = bool(np.isfinite(loss))
                table.add("train", case, ms, batch / ms * 1e3, peak, f"{said}, loss {loss:.4g}", failed=not finite)
                if precision == "float32" and not jit:
                    baseline[name] = (batch, ms)
    return baseline


def mirrored_rows(ctx, table, baseline, mirrored, memory):
    n = mirrored.num_replicas_in_sync
    for name, (batch, ms_one) in baseline.items():
        batch -= batch % n
        try:
            _, ms, peak, loss = fitting_step(ctx, name, "float32", False, batch, mirrored, memory)
        except Exception as err:  # noqa: BLE001
            table.add("mirrored", name, result=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}",
                      failed=True)
            continue
        table.add("mirrored", f"{name} float32, {n} devices", ms, batch / ms * 1e3, peak,
                  f"global batch {batch}: {ms_one:.1f} ms on 1 device, {ms:.1f} ms on {n} "
                  f"({ms_one / ms:.2f}x)", failed=not ctx["np"].isfinite(loss))


# ------------------------------------------------------------------------------------------------------ codec
def codec_rows(ctx, table, names, device):
    """Encode and decode throughput at `--codec_batch`, and one image through both, on `device`."""
    tf, np, zoo, args = ctx["tf"], ctx["np"], ctx["zoo"], ctx["args"]

    def median_ms(fn):
        fn()  # warm-up (traces)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e3

    for name in names:
        try:
            model = zoo.load(name, weights="bundled")
            layer = model.code_layout().default_layer
            x = np.random.default_rng(0).uniform(size=(args.codec_batch,) + model.image_shape).astype(np.float32)
            with tf.device(device):
                codes = model.encode(x, layer)
                enc = median_ms(lambda: [np.asarray(c) for c in tf.nest.flatten(model.encode(x, layer))])
                dec = median_ms(lambda: np.asarray(model.decode(codes, layer)))
                one = median_ms(lambda: np.asarray(model.decode(model.encode(x[:1], layer), layer)))
        except Exception as err:  # noqa: BLE001
            table.add("encode", name, result=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}", failed=True)
            continue
        b = args.codec_batch
        table.add("encode", f"{name} layer {layer}", enc, b / enc * 1e3, result=f"batch {b}")
        table.add("decode", f"{name} layer {layer}", dec, b / dec * 1e3, result=f"batch {b}")
        table.add("latency", f"{name} layer {layer}", one, 1e3 / one, result="one image, encode + decode")


# ------------------------------------------------------------------------------------------------------ files
def table_differences(ctx, model, images, first_layer, lossless, device_a, device_b):
    """Compares the integer tables of the model-coded layers (and the pixels of a lossless file) that the two
    devices give for the codes `device_a` encodes: (positions, escaped, differing, caught by an escape)."""
    tf, np, coding, entropy = ctx["tf"], ctx["np"], ctx["coding"], ctx["entropy"]
    layout = model.code_layout()
    sent = layout.layers_sent(first_layer) if layout.cumulative else tuple(range(first_layer, layout.num_layers + 1))
    with tf.device(device_a):
        codes = coding.encode_layers(model, images, sent)
    counts = np.zeros(4, np.int64)

    def compare(a, b):
        (ta, escaped), (tb, _) = a, b
        differ = (ta != tb).reshape(escaped.shape + (-1,)).any(-1) if ta.ndim > escaped.ndim else ta != tb
        counts[:] += (escaped.size, escaped.sum(), differ.sum(), (differ & escaped).sum())

    n = len(images)
    for layer in sent:
        lp = []
        for device in (device_a, device_b):
            with tf.device(device):
                lp.append(coding.model_log_probs(model, codes, layer, 0, n))
        if lp[0] is not None:
            compare(entropy.quantise_log_probs(lp[0]), entropy.quantise_log_probs(lp[1]))
    if lossless:
        params = []
        for device in (device_a, device_b):
            with tf.device(device):
                loc, log_scale = model.pixel_likelihood([codes[l] for l in layout.layers_sent(first_layer)],
                                                        first_layer)
                params.append(entropy.pixel_frequencies(np.asarray(loc), np.asarray(log_scale)))
        compare(*params)
    return tuple(int(c) for c in counts)


def file_rows(ctx, table, device_a, device_b):
    """Files written on one device, decoded on the other, both ways."""
    np, tf, files, data, args = ctx["np"], ctx["tf"], ctx["files"], ctx["data"], ctx["args"]
    CodecError = ctx["CodecError"]
    datasets = {"rrvq_digits": "digits", "hqa_digits": "digits", "hqa_mnist": "mnist10k"}
    for name, kind in (case.split(":") for case in args.files.split(",")):
        images = np.round(data.load_numpy(datasets[name], "test", limit=args.file_images) * 255).astype(np.uint8)
        lossless = kind == "lossless"
        model, _ = files.load_model(name)
        first = model.code_layout().default_layer if lossless else 1
        for src, dst in ((device_a, device_b), (device_b, device_a)):
            case = f"{name} {kind}, {src} -> {dst}"
            try:
                with tf.device(src):
                    blob = files.compress(images, name, layer=first, coder="auto" if lossless else kind,
                                          lossless=lossless)
                    same = files.decompress(blob)
                with tf.device(dst):
                    other = files.decompress(blob)
                if kind != "context":  # context files are coded by integer networks: no float tables
                    positions, escaped, differ, caught = table_differences(
                        ctx, model, images.astype(np.float32) / 255.0, first, lossless, src, dst)
            except CodecError as err:
                table.add("files", case, result=f"CodecError{' (CRC)' if 'CRC' in str(err) else ''}: {err}",
                          failed=True)
                continue
            except Exception as err:  # noqa: BLE001
                table.add("files", case, result=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}",
                          failed=True)
                continue
            exact = bool(np.array_equal(other, images)) and bool(np.array_equal(same, images))
            grey = int(np.abs(other.astype(np.int16) - same.astype(np.int16)).max())
            if kind == "context":
                escapes, differ, caught = "integer context networks (no escapes)", 0, 0
            else:
                escapes = (f"{escaped} of {positions} positions escaped; tables differ at {differ}, "
                           f"{caught} caught by escapes, {differ - caught} not")
            if lossless:
                result = f"{len(blob)} bytes, {'exact pixels' if exact else 'PIXELS DIFFER'}; {escapes}"
                failed = not exact or differ > caught
            else:
                result = f"{len(blob)} bytes, decoded; images differ by up to {grey} grey levels; {escapes}"
                failed = differ > caught
            table.add("files", case, result=result, failed=failed)


# ------------------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    print_setup()
    import tfvq  # noqa: F401  (its runtime settings, before TensorFlow starts)
    import tensorflow as tf

    if args.cpu:
        tf.config.set_visible_devices([], "GPU")
        from tfvq.train.strategies import split_cpu
        split_cpu(2)
    gpus = [] if args.cpu else tf.config.list_physical_devices("GPU")
    if not gpus and not args.cpu:
        print("No GPU is visible to TensorFlow (tf.config.list_physical_devices('GPU') is empty). Check the "
              "driver and that this TensorFlow has CUDA (pip install 'tensorflow[and-cuda]'), or run the same "
              "checks on the CPU with --cpu.", file=sys.stderr)
        return 2
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)  # peak memory is then what the step needs

    import keras
    import numpy as np

    from tfvq import data, zoo
    from tfvq.codec import coding, entropy, files
    from tfvq.codec.errors import CodecError
    from tfvq.train import loop

    table = Table()
    device_rows(tf, keras, table, gpus)
    sections = set(args.sections.split(","))
    first = "/GPU:0" if gpus else "/CPU:0"
    second = "/CPU:1" if args.cpu else "/GPU:0"
    with tempfile.TemporaryDirectory() as tmp:
        ctx = dict(args=args, tf=tf, np=np, keras=keras, loop=loop, zoo=zoo, data=data, coding=coding,
                   entropy=entropy, files=files, CodecError=CodecError, tmp=tmp)
        memory = Memory(tf, first)
        baseline = {}
        if "train" in sections or "mirrored" in sections:
            baseline = train_rows(ctx, table, args.configs.split(","), tf.distribute.OneDeviceStrategy(first),
                                  memory)
        if "mirrored" in sections:
            devices = [d.name for d in tf.config.list_logical_devices("GPU" if gpus else "CPU")]
            mirrored_rows(ctx, table, baseline, tf.distribute.MirroredStrategy(devices), memory)
        if "codec" in sections:
            codec = (args.codec_models.split(",") if args.codec_models else
                     [n for n in zoo.list_models() if zoo.get(n).bundled_weights])
            codec_rows(ctx, table, codec, first)
        if "files" in sections:
            file_rows(ctx, table, "/CPU:0", second)
    table.print()
    return 1 if table.failed else 0


if __name__ == "__main__":
    sys.exit(main())
