"""privacy stage of sensorpipe."""
