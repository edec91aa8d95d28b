"""`python -m tfvq.data prepare NAME --data_dir=DIR` and `python -m tfvq.data list`: `tfvq data` (see
`tfvq.data.prepare`)."""

import sys

from tfvq.data.prepare import main

if __name__ == "__main__":
    sys.exit(main())
