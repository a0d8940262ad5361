"""Imports every built-in label processor module so that they register (one line per module)."""

import sensorpipe.labels.processors  # noqa: F401  condition segments
import sensorpipe.labels.participant  # noqa: F401  participants table: demographics, pregnancy, symptom onset
import sensorpipe.labels.sleep  # noqa: F401  sleep stage summary, per-minute sequence, total sleep
import sensorpipe.labels.cgm  # noqa: F401  CGM targets and glycaemic event counts
import sensorpipe.labels.conditions  # noqa: F401  WESAD condition from the label stream
import sensorpipe.labels.activity  # noqa: F401  activity class: .ts case labels, Garmin sport, exercise logs
