"""Imports the built-in caption levels so that they register."""

import sensorpipe.captions.semantic  # noqa: F401
import sensorpipe.captions.statistical  # noqa: F401
import sensorpipe.captions.structural  # noqa: F401
