"""Source adapters, one module per format; importing this package registers them.

Public: :func:`registered_adapters`, :class:`SourceAdapter` (to write one).
"""

from sensorpipe.sources import empatica_e4, long_table  # noqa: F401  (register)
from sensorpipe.sources.base import SourceAdapter, SourceError, registered_adapters

__all__ = ["SourceAdapter", "SourceError", "registered_adapters"]
