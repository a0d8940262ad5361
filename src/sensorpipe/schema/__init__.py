"""schema stage of sensorpipe."""
