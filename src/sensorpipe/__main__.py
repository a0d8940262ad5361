"""``python -m sensorpipe``: the same command line as the ``sensorpipe`` entry point."""

import sys

from sensorpipe.cli import main

sys.exit(main())
