"""Imported once by the multiprocess runner's forkserver, so every worker forks with it loaded.

The run's tail happens in the workers (shards: TFDS's metadata writer; the
HTML report: a matplotlib Figure on the Agg canvas, no pyplot), and these
imports take about half a second. The forkserver pays them while the driver
is still working through the first units, so they are off the critical path.
"""

from __future__ import annotations

import matplotlib.backends.backend_agg  # noqa: F401
import matplotlib.figure  # noqa: F401
import tensorflow_datasets.core.folder_dataset  # noqa: F401

import sensorpipe.quality.report  # noqa: F401
