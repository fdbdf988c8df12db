"""``python -m middleware.cli``."""

import sys

from middleware.cli import main

sys.exit(main())
