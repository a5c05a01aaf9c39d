"""``python -m spec_kit_runtime``."""

import sys

from .cli import main

sys.exit(main())
