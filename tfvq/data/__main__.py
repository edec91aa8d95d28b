"""`python -m tfvq.data ...`: the same as `tfvq data ...` (`tfvq.commands.data`)."""

import sys

from tfvq.cli import main

if __name__ == "__main__":
    sys.exit(main(["data", *sys.argv[1:]]))
