"""runners stage of sensorpipe."""
