"""`python -m tfvq.evaluate ...`: the same as `tfvq evaluate ...` (`tfvq.commands.evaluate`)."""

import sys

from tfvq.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
