"""quality stage of sensorpipe."""
