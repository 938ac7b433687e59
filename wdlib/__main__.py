"""``python -m wdlib``: the same as the ``wdlib`` command."""

import sys

from wdlib.cli import main

if __name__ == "__main__":  # a sweep's worker processes re-import this module: they must not rerun it
    sys.exit(main())
