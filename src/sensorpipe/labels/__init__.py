"""labels stage of sensorpipe."""
