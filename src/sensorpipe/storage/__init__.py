"""storage stage of sensorpipe."""
