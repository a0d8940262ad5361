"""Pass 1's row stage streamed, so a long recording needs the memory of a batch of rows, not of the person.

Rows are what costs memory: two years of 1 Hz heart rate are 50 million
rows (about 130 bytes each while read and validated) but one million minutes
on the grid (5 bytes a channel). For a person who qualifies (see
:func:`streamable`), the source's rows are read ``limits.chunk_days`` days at
a time (Parquet row groups or CSV blocks, cut where the day changes),
validated, and reduced to minute-grid cells and per-minute lineage at once;
the pieces are then laid onto the person's grid, and everything after the
grid (cleaning, windows, labels, statistics) runs unchanged on it.

The output is byte-identical to reading the person whole, by construction:

* validation is row-local once each channel's rows are known to strictly
  increase in time, file after file (no duplicate can exist, so the whole
  read's duplicate check drops nothing); a person whose rows turn out
  otherwise (out of order, or tied) is re-run whole (:class:`NotStreamable`);
* a minute's rows of a channel are never split between chunks (each
  channel's rows of a chunk's last minute are held back for the next one),
  and the grid sums a minute's rows in file order either way;
* lineage keeps, per minute and file, the first and last row: a window's row
  range is their minimum and maximum over its minutes, as the whole read's is
  over its rows.

Who qualifies (else the person is read whole, as before): a person whose
input files (or partitions) hold at least :data:`STREAM_MIN_BYTES` (a
smaller input needs about a chunk's memory whole, and is read in one pass
even where its rows tie); one source, read
by ``long_table``, from files (or their partitions of shared files) with one
value column whose times are absolute (``epoch_ms``, ``epoch_s``, ``iso``,
``timestamp``: a ``local`` time's DST fold depends on earlier rows; a CSV read
whole, rather than from its partition, only with ``iso`` text times);
every channel the source maps is an output channel (cleaning then never needs
the rows) and none is ``glucose`` (censored readings add rows after fusion).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sensorpipe.processing.grid import DAY_MIN, MINUTE_NS, MinuteGrid, build_grid
from sensorpipe.processing.timeparse import minute_offsets
from sensorpipe.schema.quarantine import QUARANTINE_SCHEMA
from sensorpipe.schema.validate import Observations, validate_unit
from sensorpipe.sources.base import UnitInput

STREAMED_TIME_FORMATS = ("epoch_ms", "epoch_s", "iso", "timestamp")
DUPLICATE_REASONS = {"exact_duplicate", "conflicting_duplicate"}
#: a person's input files (or their partitions) smaller than this are read whole
STREAM_MIN_BYTES = 32 << 20


class NotStreamable(Exception):
    """The rows are not sorted streams after all: the person is processed whole instead."""


@dataclass
class StreamedRows:
    """What the row stage leaves for the rest of pass 1: the grid, lineage and the source's accounting."""

    grid: MinuteGrid | None
    lineage: "MinuteLineage"
    rows_in: int
    reason_counts: dict[str, int]
    clipped: dict[str, int]
    rows_in_by_file: dict[str, list[int]]     # file -> [rows in, accepted, quarantined]
    quarantine: pa.Table                      # stored form, in file order

    @property
    def rows_accepted(self) -> int:
        return sum(v[1] for v in self.rows_in_by_file.values())


def streamable(cfg, person, adapters) -> bool:
    """Whether the person's rows can be streamed with byte-identical output (rules in the module docstring)."""
    from sensorpipe.sources.long_table import LongTableAdapter

    if cfg.limits.chunk_days <= 0 or len(person.parts) != 1 or not isinstance(adapters[0], LongTableAdapter):
        return False
    unit, adapter = person.parts[0], adapters[0]
    streams = unit.partitions or ("",) * len(unit.files)
    if sum(os.path.getsize(stream or path) for path, stream in zip(unit.files, streams)) < STREAM_MIN_BYTES:
        return False   # read whole: about as much memory as a chunk, and one pass even where the rows tie
    for path, group, stream in zip(unit.files, unit.file_groups, streams):   # one iteration per file
        spec = adapter.options.files[group]
        if spec.time_format not in STREAMED_TIME_FORMATS or spec.value_columns or spec.tz_column:
            return False
        if not stream and not path.endswith(".parquet") and spec.time_format != "iso":
            return False   # a CSV read whole infers the epoch column's type from all rows; read in blocks, per block
    mapped = {f.channel for f in adapter.schema().fields}
    return mapped <= set(cfg.channels) and "glucose" not in mapped


class MinuteLineage:
    """Per minute and file, the first and last source row: window row ranges without keeping the rows."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self._pieces: list[tuple[int, np.ndarray, np.ndarray]] = []   # (first minute, lo [M, F], hi [M, F])

    def add(self, obs: Observations) -> None:
        if not len(obs):
            return
        fidx = np.array([self._file(f) for f in obs.files], np.int64)[obs.file_index]
        minute = obs.t_utc_ns // MINUTE_NS
        m0 = int(minute.min())
        M, F = int(minute.max()) - m0 + 1, len(self.files)
        lo = np.full((M, F), np.iinfo(np.int64).max)
        hi = np.full((M, F), -1, np.int64)
        cell = ((minute - m0) * F + fidx).astype(np.int64)
        np.minimum.at(lo.reshape(-1), cell, obs.source_row)
        np.maximum.at(hi.reshape(-1), cell, obs.source_row)
        self._pieces.append((m0, lo, hi))

    def _file(self, f: str) -> int:
        if f not in self.files:
            self.files.append(f)
        return self.files.index(f)

    def windows(self, start_utc_min: np.ndarray, W: int, source: str, pid: str) -> list[dict]:
        """The same per-window ``{"key", "files"}`` entries as ``stages._lineage`` on the rows."""
        from sensorpipe.runners.stages import window_key

        starts = np.asarray(start_utc_min, np.int64)
        if not self._pieces or not starts.size:
            return []
        F = len(self.files)
        first = min(m0 for m0, _, _ in self._pieces)
        last = max(m0 + lo.shape[0] for m0, lo, _ in self._pieces)
        lo_all = np.full((last - first, F), np.iinfo(np.int64).max)
        hi_all = np.full((last - first, F), -1, np.int64)
        for m0, lo, hi in self._pieces:   # one iteration per chunk
            a = m0 - first
            f = lo.shape[1]
            np.minimum(lo_all[a:a + lo.shape[0], :f], lo, out=lo_all[a:a + lo.shape[0], :f])
            np.maximum(hi_all[a:a + hi.shape[0], :f], hi, out=hi_all[a:a + hi.shape[0], :f])
        a = np.clip(starts - first, 0, last - first)
        b = np.clip(starts + W - first, 0, last - first)
        out = []
        for k, s in enumerate(starts.tolist()):   # one iteration per window
            files = {}
            if b[k] > a[k]:
                lo_w = lo_all[a[k]:b[k]].min(axis=0)
                hi_w = hi_all[a[k]:b[k]].max(axis=0)
                files = {self.files[j]: [int(lo_w[j]), int(hi_w[j])] for j in np.flatnonzero(hi_w >= 0)}
            out.append({"key": window_key(source, pid, s), "files": files})
        return out


class _GridPieces:
    """Minute-grid pieces of consecutive chunks, laid onto the person's grid at the end."""

    def __init__(self, channels: tuple[str, ...], tz: str) -> None:
        self.channels, self.tz = channels, tz
        self.pieces: list[MinuteGrid] = []

    def add(self, obs: Observations) -> None:
        if len(obs):
            g = build_grid(obs, self.channels, self.tz)
            if g is not None:
                self.pieces.append(g)

    def grid(self) -> MinuteGrid | None:
        """The person's grid: the bounds ``build_grid`` gives all rows (a day of margin each side)."""
        if not self.pieces:
            return None
        t_min = min(g.start_minute + g.first_data_minute for g in self.pieces)
        t_max = max(g.start_minute + g.last_data_minute for g in self.pieces)
        first_day, last_day = t_min // DAY_MIN, t_max // DAY_MIN
        start, n_min = (first_day - 1) * DAY_MIN, (last_day - first_day + 3) * DAY_MIN
        values = np.full((n_min, len(self.channels)), np.nan, np.float32)
        observed = np.zeros((n_min, len(self.channels)), bool)
        for g in self.pieces:   # one iteration per chunk: its observed cells (no minute is in two chunks)
            a = g.start_minute - start
            obs_rows = g.observed
            view_v, view_o = values[a:a + g.n_minutes], observed[a:a + g.n_minutes]
            np.copyto(view_v, g.values, where=obs_rows)
            view_o |= obs_rows
        return MinuteGrid(start, values, observed, minute_offsets(start * MINUTE_NS, n_min, self.tz),
                          tuple(self.channels), t_min - start, t_max - start)


class _Order:
    """Checks that each channel's accepted rows, in file order across the chunks, strictly increase in time:
    then no two rows tie (no duplicate exists for the whole read to find) and none goes back."""

    def __init__(self) -> None:
        self.last_t: dict[int, int] = {}

    def check(self, obs: Observations) -> None:
        for c in np.unique(obs.channel).tolist():   # one pass per channel of the chunk
            t = obs.t_utc_ns[obs.channel == c]
            if t.size > 1 and not bool(np.all(t[1:] > t[:-1])):
                raise NotStreamable("rows out of order, or tied")
            if int(t[0]) <= self.last_t.get(c, np.iinfo(np.int64).min):
                raise NotStreamable("time goes back between chunks")
            self.last_t[c] = int(t[-1])


def _held_back(obs: Observations) -> tuple[Observations, Observations]:
    """(rows to reduce now, each channel's rows of its last minute, which the next chunk may continue)."""
    if not len(obs):
        return obs, obs
    minute = obs.t_utc_ns // MINUTE_NS
    held = np.zeros(len(obs), bool)
    for c in np.unique(obs.channel).tolist():   # one pass per channel (its rows increase in time)
        mine = obs.channel == c
        held |= mine & (minute == minute[mine][-1])
    return obs.take(np.flatnonzero(~held)), obs.take(np.flatnonzero(held))


def stream_rows(cfg, unit, adapter) -> StreamedRows:
    """Read, validate and reduce one unit's rows about ``cfg.limits.chunk_days`` days at a time."""
    chunk_ns = cfg.limits.chunk_days * DAY_MIN * MINUTE_NS
    schema = adapter.schema()
    pieces = _GridPieces(tuple(cfg.channels), unit.participant.tz)
    lineage = MinuteLineage()
    order = _Order()
    rows_in, counts, clipped = 0, {}, {}
    by_file: dict[str, list[int]] = {}
    quarantine: list[pa.Table] = []
    held = Observations.empty()
    for native in adapter.iter_native_chunks(unit, chunk_ns):   # one iteration per chunk of days
        vr = validate_unit(UnitInput(unit, [native]), schema, cfg.validation)
        if vr.non_monotonic or DUPLICATE_REASONS & vr.reason_counts.keys():
            raise NotStreamable("rows out of order, or ties")   # a whole read lists duplicates after the rest
        order.check(vr.observations)
        rows_in += vr.rows_in
        for total, more in ((counts, vr.reason_counts), (clipped, vr.clipped)):
            for k, v in more.items():
                total[k] = total.get(k, 0) + v
        for f, trio in vr.by_file().items():
            acc = by_file.setdefault(f, [0, 0, 0])
            for i in range(3):
                acc[i] += trio[i]
        if vr.stored_quarantine.num_rows:
            quarantine.append(vr.stored_quarantine)
        lineage.add(vr.observations)
        now, held = _held_back(Observations.concat([held, vr.observations]))
        pieces.add(now)
        del vr, now
    pieces.add(held)
    stored = pa.concat_tables(quarantine) if quarantine else QUARANTINE_SCHEMA.empty_table()
    return StreamedRows(pieces.grid(), lineage, rows_in, counts, clipped, dict(sorted(by_file.items())), stored)
