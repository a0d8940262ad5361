"""processing stage of sensorpipe."""
