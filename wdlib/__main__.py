"""``python -m wdlib``: the same as the ``wdlib`` command."""

import sys

from .cli import main

sys.exit(main())
