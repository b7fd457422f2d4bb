"""`python -m ecgedge.sim ...` is `ecgedge sim ...`."""

import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["sim", *sys.argv[1:]]))
