"""Source adapters, one module per format; importing this package registers them all.

Every module or package in this package that does not start with an
underscore is imported here, so adding a format is one new file (plus its
test and dummy data): nobody keeps a list by hand. A format that takes several
modules is a package (``apple_health/``, ``garmin/``); what adapters share is
in ``_toolkit/``, never in a sibling adapter. Public: :func:`registered_adapters`,
:class:`SourceAdapter` (to write one).
"""

import importlib
import pkgutil

from sensorpipe.sources.base import SourceAdapter, SourceError, registered_adapters

for _mod in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if not _mod.startswith("_") and _mod != "base":
        importlib.import_module(f"{__name__}.{_mod}")

__all__ = ["SourceAdapter", "SourceError", "registered_adapters"]
