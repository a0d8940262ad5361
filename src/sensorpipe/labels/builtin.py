"""Imports every built-in label processor module so that they register (one line per module)."""

import sensorpipe.labels.processors  # noqa: F401  participants table (diabetes, onset), condition segments
