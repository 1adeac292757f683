"""python -m anonymizer SRC OUT: see `anonymizer.cli`."""

import sys

from .cli import main

sys.exit(main())
