"""``python -m gan_equiv`` entry point."""

import sys

from gan_equiv.cli import main

sys.exit(main())
