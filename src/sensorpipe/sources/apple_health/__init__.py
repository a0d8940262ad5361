"""Apple Health exports: the ``apple_health`` adapter and its private readers.

A package because the format takes three modules: :mod:`.adapter` (units,
schema, rows per unit), :mod:`._xml` (the export streamed in bounded memory)
and :mod:`._rows` (records to native rows). ``sensorpipe.sources.apple_health``
stays the import path of the adapter.
"""

from sensorpipe.sources.apple_health.adapter import AppleHealthAdapter

__all__ = ["AppleHealthAdapter"]
