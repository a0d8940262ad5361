"""A module a clash test imports as a plugin: a channel under the built-in name ``heart_rate``."""

from dataclasses import replace

from sensorpipe.channels import CHANNELS, ChannelPlugin


class HeartRate(ChannelPlugin):
    channel = replace(CHANNELS["heart_rate"], unit="Hz")
