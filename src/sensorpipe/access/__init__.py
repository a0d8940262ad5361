"""access stage of sensorpipe."""
