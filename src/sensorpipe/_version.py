"""The code version that goes into fingerprints: release plus a digest of the package source.

Hashing the source means a code change invalidates cached units and yields a
new dataset fingerprint even before a release bump.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

RELEASE = "0.1.0"


PLUGIN_GROUPS = ("sensorpipe.features", "sensorpipe.normalizers", "sensorpipe.windowing", "sensorpipe.cleaning")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Release + digest of the package source and of the installed plugins' names and versions."""
    from sensorpipe.plugins import installed

    h = hashlib.sha256()
    root = Path(__file__).parent
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    for group in PLUGIN_GROUPS:  # a plugin upgrade must not reuse cached units either
        h.update(repr(sorted(installed(group).items())).encode())
    return f"{RELEASE}+{h.hexdigest()[:10]}"
