"""`python export.py ...` is `tfvq export ...`: export a tfvq model for serving (see `tfvq export --help`).

Examples:
  python export.py --model=hqa_digits --out=exported
  python export.py --model=runs/hqa_digits --out=exported --version=2
"""

import sys

from tfvq.cli import main

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
