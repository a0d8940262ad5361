"""captions stage of sensorpipe."""
