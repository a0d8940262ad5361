"""Source adapters, one module per format; each registers itself (:mod:`sensorpipe.registry`).

The first lookup of an adapter imports every module or package in this
package whose name does not start with an underscore, so adding a format is
one new file (plus its test and dummy data): nobody keeps a list by hand. A format that takes several
modules is a package (``apple_health/``, ``garmin/``); what adapters share is
in ``_toolkit/``, never in a sibling adapter. Public: :func:`registered_adapters`,
:class:`SourceAdapter` (to write one).
"""

from sensorpipe.sources.base import SourceAdapter, SourceError, registered_adapters

__all__ = ["SourceAdapter", "SourceError", "registered_adapters"]
