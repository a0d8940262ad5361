"""A module a clash test imports as a plugin: an adapter under the built-in name ``long_table``."""

from sensorpipe.sources.base import SourceAdapter


class LongTable(SourceAdapter):
    name = "long_table"
