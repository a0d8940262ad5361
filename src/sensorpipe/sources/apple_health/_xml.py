"""Streaming reader of Apple Health's ``export.xml``: element attributes -> column chunks.

The export is one ``<HealthData>`` element with up to millions of children
(``Record``, ``Correlation``, ``Workout``, ``ActivitySummary``, ...). It is fed
to ``xml.etree.ElementTree.XMLParser`` 64 KiB at a time with a parser target
that takes each element's attributes as it starts and builds no tree and keeps
no text (the data is all in attributes; whitespace between elements, however
much, is dropped as it is parsed), so memory holds the columns collected so
far. An ``export.zip`` is checked against the decompression limits
(:mod:`sensorpipe.sources._toolkit.limits`) before it is read. Columns are
collected in Python lists for :data:`CHUNK_RECORDS` records and then turned
into numpy / Arrow arrays (times parsed, text kept as Arrow strings), because
a Python string costs ~75 bytes where its Arrow copy costs its length + 4.

The internal DTD is replaced by blank lines before parsing (line numbers stay
right): the DTD of iOS 16 exports ("HealthKit Export Version: 12") is itself
malformed (an unclosed ``ATTLIST``) and makes every XML parser stop, and the
data needs nothing from it.

``source_row`` is the 1-based ordinal of the element among the data elements
read (top-level elements other than ``ExportDate`` and ``Me``, and the
``Record`` elements inside a ``Correlation``), in document order.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import pyarrow as pa

from sensorpipe.core import timeparse
from sensorpipe.sources._toolkit import limits as _limits
from sensorpipe.sources.base import SourceError

CHUNK_RECORDS = 2_000
READ_BYTES = 1 << 16
HEAD_MAX = 1 << 20
IN_CORRELATION = "in_correlation:"
_SKIP = ("ExportDate", "Me")


@dataclass
class Columns:
    """Every data element read, one entry per element (codes index the name lists)."""

    type_names: list[str]
    source_names: list[str]
    unit_names: list[str]
    type_code: np.ndarray        # int32
    source_code: np.ndarray      # int32
    unit_code: np.ndarray        # int32, -1 where the element has no unit
    start_text: pa.ChunkedArray  # startDate verbatim
    bad_end_pos: np.ndarray      # int64 positions (sorted) of the elements whose endDate could not be parsed
    bad_end_text: pa.ChunkedArray  # their endDate verbatim
    start_ns: np.ndarray         # int64 UTC, NAT where unparseable
    end_ns: np.ndarray
    value: pa.ChunkedArray       # value attribute verbatim (string, null where absent)
    row: np.ndarray              # int64 1-based element ordinal


class _Collector:
    def __init__(self) -> None:
        self.types: dict[str, int] = {}
        self.sources: dict[str, int] = {}
        self.units: dict[str, int] = {}
        self.chunks: list[tuple] = []
        self.done = 0
        self._new()

    def _new(self) -> None:
        self.t: list[int] = []
        self.s: list[int] = []
        self.u: list[int] = []
        self.start: list = []
        self.end: list = []
        self.value: list = []
        self.row: list[int] = []

    def add(self, type_name: str, a: dict, row: int) -> None:
        types, sources = self.types, self.sources
        self.t.append(types.setdefault(type_name, len(types)))
        src = a.get("sourceName", "")
        self.s.append(sources.setdefault(src, len(sources)))
        unit = a.get("unit")
        self.u.append(-1 if unit is None else self.units.setdefault(unit, len(self.units)))
        self.start.append(a.get("startDate", a.get("dateComponents")))
        self.end.append(a.get("endDate"))
        self.value.append(a.get("value"))
        self.row.append(row)
        if len(self.row) >= CHUNK_RECORDS:
            self.flush()

    def flush(self, force: bool = False) -> None:
        if not self.row and not force:
            return
        start, end = pa.array(self.start, pa.string()), pa.array(self.end, pa.string())
        end_ns = _times(end)
        bad_end = np.flatnonzero(end_ns == timeparse.NAT)  # the end text is kept only where it is broken
        self.chunks.append([np.array(self.t, np.int32), np.array(self.s, np.int32), np.array(self.u, np.int32),
                            start, bad_end + self.done, end.take(pa.array(bad_end)), _times(start), end_ns,
                            pa.array(self.value, pa.string()), np.array(self.row, np.int64)])
        self.done += len(self.row)
        self._new()

    def columns(self) -> Columns:
        """The chunks joined column by column, each column's pieces freed as soon as it is joined."""
        self.flush(force=not self.chunks)
        chunks, self.chunks = self.chunks, []
        cols = []
        for i in range(len(chunks[0])):
            parts = [ch[i] for ch in chunks]
            for ch in chunks:
                ch[i] = None
            cols.append(np.concatenate(parts) if isinstance(parts[0], np.ndarray)
                        else pa.chunked_array(parts, pa.string()))  # Arrow text: no copy
            del parts
        return Columns(list(self.types), list(self.sources), list(self.units), *cols)


def _times(text: pa.Array) -> np.ndarray:
    """Apple's "2024-03-10 01:59:00 -0500" (offset included) to UTC ns; NAT where unparseable."""
    return timeparse.parse_iso(text)[0] if len(text) else np.zeros(0, np.int64)


@contextmanager
def open_export(path: Path) -> Iterator[tuple[IO[bytes], str]]:
    """The export.xml byte stream of a plain file or of an export.zip, and a name for messages."""
    if path.suffix.lower() != ".zip":
        with path.open("rb") as fh:
            yield fh, str(path)
        return
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SourceError(f"{path}: not a readable zip file ({e}); unzip export.zip again from the Health app's "
                          f"export, or point sources[].path at the apple_health_export folder") from None
    with z:
        names = [n for n in z.namelist() if n.rsplit("/", 1)[-1] == "export.xml"]
        if not names:
            raise SourceError(f"{path}: no export.xml inside (expected apple_health_export/export.xml); "
                              f"is this an Apple Health export.zip?")
        member = min(names, key=lambda n: (n.count("/"), n))
        _limits.check_zip(path, z, [member])
        with z.open(member) as fh:
            yield fh, f"{path}!{member}"


def _strip_doctype(head: bytes) -> bytes:
    i = head.find(b"<!DOCTYPE")
    j = head.find(b"<HealthData", i) if i >= 0 else -1
    if j < 0:
        return head
    return head[:i] + b"\n" * head.count(b"\n", i, j) + head[j:]


class _Target:
    """XMLParser target: each data element's attributes go to the collector as the element starts.

    Depth 1 is ``<HealthData>``; the data elements are its children (depth 2)
    and the ``Record`` elements inside a depth-2 ``Correlation`` (depth 3).
    No ``data`` method: the parser then drops text (whitespace) unbuffered.
    """

    def __init__(self, coll: _Collector, where: str) -> None:
        self.coll, self.where = coll, where
        self.depth = self.row = 0
        self.in_corr = False

    def start(self, tag: str, attrib: dict) -> None:
        self.depth += 1
        depth = self.depth
        if depth == 2:
            if tag == "Correlation":
                self.in_corr = True
            elif tag not in _SKIP:
                self.row += 1
                self.coll.add(attrib.get("type", "") if tag == "Record" else tag, attrib, self.row)
        elif depth == 3 and self.in_corr and tag == "Record":
            self.row += 1
            self.coll.add(IN_CORRELATION + attrib.get("type", ""), attrib, self.row)
        elif depth == 1 and tag != "HealthData":
            raise SourceError(f"{self.where}: root element is <{tag}>, not <HealthData>: not an Apple Health "
                              f"export.xml")

    def end(self, tag: str) -> None:
        if self.depth == 2 and tag == "Correlation":
            self.in_corr = False
        self.depth -= 1


def read_export(path: Path) -> Columns:
    """Stream one export (xml or zip) into columns; SourceError naming the file and line if it is broken."""
    coll = _Collector()
    with open_export(path) as (fh, where):
        parser = ET.XMLParser(target=_Target(coll, where))
        try:
            chunk = fh.read(READ_BYTES)
            while b"<HealthData" not in chunk and len(chunk) < HEAD_MAX and (more := fh.read(READ_BYTES)):
                chunk += more  # the DTD (about 10 KB) ends where <HealthData> starts
            chunk = _strip_doctype(chunk)
            while chunk:
                parser.feed(chunk)
                chunk = fh.read(READ_BYTES)
            parser.close()
        except ET.ParseError as e:
            line, col = getattr(e, "position", (0, 0))
            raise SourceError(f"{where}, line {line}, column {col}: not well-formed XML ({e}); the export is "
                              f"damaged or truncated: export it again from the Health app") from None
        except LookupError as e:   # the XML declaration names an encoding Python does not know
            raise SourceError(f"{where}: the XML declaration's encoding is not readable ({e}); the export is "
                              f"damaged: export it again from the Health app (it is UTF-8)") from None
        except (zipfile.BadZipFile, zlib.error, EOFError) as e:
            raise SourceError(f"{where}: the zip file is damaged ({e}); unzip or export it again") from None
    return coll.columns()
