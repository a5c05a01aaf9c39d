"""``python -m spec_kit_runtime``."""

import sys

from .cli.main import main

sys.exit(main())
