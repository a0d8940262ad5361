"""XML helpers for adapters that stream XML exports (Garmin TCX/GPX; see also Apple Health's reader).

Element names are matched by local name, so any namespace prefix works, and a
file the parser gives up on becomes a :class:`SourceError` with its line and
column and the fix.
"""

from __future__ import annotations

from pathlib import Path

from sensorpipe.sources.base import SourceError


def local_name(tag: str) -> str:
    """The element name without its ``{namespace}``."""
    return tag.rpartition("}")[2]


def xml_error(path: Path, kind: str, e: Exception) -> SourceError:
    """A SourceError for an XML file the parser gave up on, with its line and column."""
    where = ""
    pos = getattr(e, "position", None)
    if pos:
        where = f", line {pos[0]}, column {pos[1]}"
    return SourceError(f"{path}{where}: not a readable {kind} file ({e}); the file is damaged or truncated: "
                       f"export it again, or move it out of the source folder")
