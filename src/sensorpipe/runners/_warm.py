"""Imported once by the multiprocess runner's forkserver, so every worker forks with it loaded.

The run's tail happens in the workers (shards: TFDS's metadata writer; the
HTML report), and these imports take about a quarter of a second. The forkserver pays them while the driver
is still working through the first units, so they are off the critical path.
"""

from __future__ import annotations

import tensorflow_datasets.core.folder_dataset  # noqa: F401

import sensorpipe.processing.raw_features  # noqa: F401  (raw-signal units; stages imports it on first use)
import sensorpipe.quality.report  # noqa: F401
