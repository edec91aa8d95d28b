"""`python train.py ...` is `tfvq train ...`: train a tfvq zoo model (see `tfvq train --help`).

Examples:
  python train.py
  python train.py --model=hqa_mnist --strategy=mirrored --cpu_devices=2 --steps=100
  python train.py --model=hqa_digits --dataset=my_scans/ --from_weights=bundled --learning_rate=5e-4
"""

import sys

from tfvq.cli import main
from tfvq.commands.train import print_summary, write_static_prior  # noqa: F401  (train.py's own names, kept)

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
