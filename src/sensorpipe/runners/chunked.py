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

A person with several sources (a wearable beside a CGM and a lab session,
fused by :mod:`sensorpipe.processing.fuse`) streams one of them, the one
with the largest input of those that qualify; the others are read whole, as
before, fused among themselves, and their observations are laid onto the
same grid as the streamed source's pieces. Fusion's rule is applied at the
(channel, UTC minute) cell, which is exact because a reading loses exactly
when a source ranked above its own for the channel has a reading in the
same cell, whoever else is there:

* the others are read first, so the cells where one of them outranks the
  streamed source are known before it streams (:func:`cells_won_over`); its
  readings there are dropped from each chunk as it is validated, before the
  grid and the lineage see them, and counted per channel into its
  ``fusion_overridden`` (its row accounting counts them as accepted, as the
  whole read does);
* the cells it kept are then its own grid's observed cells: no other source
  ranked above it has a reading there, so the others' readings there lose
  to it; they are dropped and counted (:func:`yield_to_streamed`) before
  the others are fused among themselves, as fusion does with the rest;
* no cell of the grid then comes from two sources. The censored glucose flag
  comes from the others' glucose alone, cleaning reads rows only for
  channels off the grid (none of the streamed source's), a window's
  ``sources`` entry for the streamed source is its own cells still observed
  after cleaning, and each window's lineage lists the files in the whole
  read's order (sources in config order).

Who qualifies (else the person is read whole, as before): a source of the
person read by ``long_table`` whose input files (or partitions) hold at
least :data:`STREAM_MIN_BYTES` (a smaller input needs about a chunk's
memory whole, and is read in one pass even where its rows tie), from files
with one value column whose times are absolute (``epoch_ms``, ``epoch_s``,
``iso``, ``timestamp``: a ``local`` time's DST fold depends on earlier
rows; a CSV read whole, rather than from its partition, only with ``iso``
text times); every channel the source maps is an output channel (cleaning
then never needs the rows) and none is ``glucose`` or ``glucose_censored``
(censored readings add rows after fusion); no other source of the person
reads one of its files. A CGM beside the wearable does not stop it, nor a
lab session that gives the same channels, ranked above or below it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from sensorpipe.core.grid import DAY_MIN, MINUTE_NS, MinuteGrid
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.observations import Observations
from sensorpipe.core.timeparse import minute_offsets
from sensorpipe.processing.grid import build_grid
from sensorpipe.schema.quarantine import QUARANTINE_SCHEMA
from sensorpipe.schema.validate import CHANNEL_INDEX, CHANNEL_NAMES, validate_unit
from sensorpipe.sources.partition import stream_bytes

STREAMED_TIME_FORMATS = ("epoch_ms", "epoch_s", "iso", "timestamp")
DUPLICATE_REASONS = {"exact_duplicate", "conflicting_duplicate"}
#: channels fusion derives from a source's rows (censored glucose readings): a streamed source maps none
FUSION_DERIVED = {"glucose", "glucose_censored"}
#: a person's input files (or their partitions) smaller than this are read whole
STREAM_MIN_BYTES = 32 << 20


class NotStreamable(Exception):
    """The rows are not sorted streams after all: the person is processed whole instead."""


@dataclass
class StreamedRows:
    """What the row stage leaves for the rest of pass 1: the grid's pieces, lineage and the source's accounting."""

    pieces: "_GridPieces"
    lineage: "MinuteLineage"
    rows_in: int
    reason_counts: dict[str, int]
    clipped: dict[str, int]
    rows_in_by_file: dict[str, list[int]]     # file -> [rows in, accepted, quarantined]
    quarantine: pa.Table                      # stored form, in file order
    overridden: dict[str, int]                # channel -> readings a higher-ranked source's outranked

    @property
    def rows_accepted(self) -> int:
        return sum(v[1] for v in self.rows_in_by_file.values())

    def own_grid(self) -> MinuteGrid | None:
        """The streamed source's own grid (its readings' cells)."""
        return self.pieces.grid()

    def grid(self, others: Observations) -> MinuteGrid | None:
        """The person's grid: the chunks' cells and those of the other sources' observations (``others``,
        fused and read whole, without those in the streamed source's cells: no cell comes from both)."""
        self.pieces.add(others)
        return self.pieces.grid()


def streamable(cfg, person, adapters) -> bool:
    """Whether one of the person's sources can be streamed with byte-identical output (module docstring)."""
    return streamed_part(cfg, person, adapters) is not None


def streamed_part(cfg, person, adapters) -> int | None:
    """The index of the person's source to stream (the largest input of those that qualify), or None."""
    if cfg.limits.chunk_days <= 0:
        return None
    best, best_bytes = None, -1
    for i in range(len(person.parts)):
        n = _qualifying_bytes(cfg, person, adapters, i)
        if n is not None and n >= STREAM_MIN_BYTES and n > best_bytes:
            best, best_bytes = i, n
    return best


def person_ranks(cfg, person) -> np.ndarray:
    """``int [P, registry channels]``: the person's sources' fusion ranks (0 wins), as fusion uses them."""
    from sensorpipe.processing.fuse import priority_ranks

    return priority_ranks(person.source_names, cfg.studies.get(person.study))


def mapped_channels(adapter) -> set[str]:
    """The channels a source's schema maps its fields to."""
    return {f.channel for f in adapter.schema().fields}


def _qualifying_bytes(cfg, person, adapters, i: int) -> int | None:
    """The input bytes of source ``i`` when it qualifies on its own and reads no file another source of the
    person reads; None otherwise."""
    from sensorpipe.sources.long_table import LongTableAdapter

    unit, adapter = person.parts[i], adapters[i]
    if not isinstance(adapter, LongTableAdapter):
        return None
    streams = unit.partitions or ("",) * len(unit.files)
    for path, group, stream in zip(unit.files, unit.file_groups, streams):
        spec = adapter.options.files[group]
        if spec.time_format not in STREAMED_TIME_FORMATS or spec.value_columns or spec.tz_column:
            return None
        if not stream and not path.endswith(".parquet") and spec.time_format != "iso":
            return None   # a CSV read whole infers the epoch column's type from all rows; read in blocks, per block
    mapped = mapped_channels(adapter)
    if not mapped <= set(cfg.channels) or mapped & FUSION_DERIVED:
        return None
    if any(set(other.files) & set(unit.files) for j, other in enumerate(person.parts) if j != i):
        return None   # one file, two sources: lineage would mix their rows
    return sum(stream_bytes(stream) if stream else os.path.getsize(path)
               for path, stream in zip(unit.files, streams))


def _cell_keys(obs: Observations) -> np.ndarray:
    """One int64 per observation for its (UTC minute, channel) cell, the group fusion ranks sources in."""
    return obs.t_utc_ns // MINUTE_NS * len(CHANNEL_NAMES) + obs.channel


def cells_won_over(i: int, adapter, others: list[Observations | None], ranks: np.ndarray) -> np.ndarray:
    """Sorted (UTC minute, channel) cell keys of the channels source ``i`` (read by ``adapter``) maps where a
    source that outranks it on the channel has an accepted reading (raw-signal features included): fusion
    drops source ``i``'s readings there."""
    codes = np.array(sorted(CHANNEL_INDEX[c] for c in mapped_channels(adapter)), np.int64)
    keys = []
    for j, o in enumerate(others):
        if o is None or j == i or not len(o):
            continue
        wins = np.isin(o.channel, codes) & (ranks[j, o.channel] < ranks[i, o.channel])
        if wins.any():
            keys.append(_cell_keys(o)[wins])
    return np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.int64)


def _drop_lost(obs: Observations, lost_cells: np.ndarray, counts: dict[str, int]) -> Observations:
    """``obs`` without its readings in ``lost_cells`` (sorted keys), counted per channel into ``counts``."""
    if not lost_cells.size or not len(obs):
        return obs
    keys = _cell_keys(obs)
    pos = np.minimum(np.searchsorted(lost_cells, keys), lost_cells.size - 1)
    lose = lost_cells[pos] == keys
    if not lose.any():
        return obs
    for c, n in zip(*np.unique(obs.channel[lose], return_counts=True)):
        counts[CHANNEL_NAMES[int(c)]] = counts.get(CHANNEL_NAMES[int(c)], 0) + int(n)
    return obs.take(np.flatnonzero(~lose))


def yield_to_streamed(obs: Observations, own: MinuteGrid | None) -> tuple[Observations, dict[str, int]]:
    """(another source's observations without those in a cell the streamed source observed, the readings
    dropped per channel): the channel's minute goes to the streamed source, which outranks it there."""
    if own is None or not len(obs):
        return obs, {}
    col_of = np.full(len(CHANNEL_NAMES), -1, np.int64)
    for j, name in enumerate(own.channels):
        col_of[CHANNEL_INDEX[name]] = j
    row = obs.t_utc_ns // MINUTE_NS - own.start_minute
    col = col_of[obs.channel]
    lose = (col >= 0) & (row >= 0) & (row < own.n_minutes)
    lose[lose] = own.observed[row[lose], col[lose]]
    if not lose.any():
        return obs, {}
    lost = np.bincount(obs.channel[lose], minlength=len(CHANNEL_NAMES))
    return obs.take(np.flatnonzero(~lose)), {CHANNEL_NAMES[c]: int(lost[c]) for c in np.flatnonzero(lost).tolist()}


def add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    """Two per-channel counts summed, keyed in registry order (as fusion writes ``overridden``)."""
    return {c: a.get(c, 0) + b.get(c, 0) for c in CHANNEL_NAMES if a.get(c, 0) + b.get(c, 0)}


def own_cells(own: MinuteGrid | None, grid: MinuteGrid, cols: list[int]) -> np.ndarray:
    """``bool [T, len(cols)]``: the cells of the person's grid in columns ``cols`` that the streamed source's
    readings fall in (its own grid ``own``, before the others' cells and before cleaning)."""
    out = np.zeros((grid.n_minutes, len(cols)), bool)
    if own is not None:
        a = own.start_minute - grid.start_minute
        out[a:a + own.n_minutes] = own.observed[:, cols]
    return out


def streamed_window_hits(grid: MinuteGrid, own: np.ndarray, cols: list[int], start_row: np.ndarray,
                         size_min: int) -> np.ndarray:
    """``bool [N]``: windows the streamed source contributed an observed cell (after cleaning) to.

    ``own`` (:func:`own_cells`) holds its readings' cells; those still
    observed after cleaning are what
    :func:`~sensorpipe.processing.fuse.window_sources` counts for a part.
    """
    T = grid.n_minutes
    hit = (own & grid.observed[:, cols]).any(axis=1)
    cum = np.zeros(T + 1, np.int64)
    np.cumsum(hit, out=cum[1:])
    lo = np.clip(start_row, 0, T)
    hi = np.clip(start_row + size_min, 0, T)
    return cum[hi] - cum[lo] > 0


def merge_lineage(before: set[str], others: list[dict], streamed: list[dict]) -> list[dict]:
    """Per window, the whole read's ``files`` order: the files of sources before the streamed one (in config
    order), the streamed source's, then the rest (``Observations.concat`` lists files in part order)."""
    if not others or not streamed:
        return others or streamed
    out = []
    for o, s in zip(others, streamed):
        files = {f: r for f, r in o["files"].items() if f in before}
        files.update(s["files"])
        files.update((f, r) for f, r in o["files"].items() if f not in before)
        out.append({"key": s["key"], "files": files})
    return out


class MinuteLineage:
    """Per minute and file, the first and last source row: window row ranges without keeping the rows."""

    def __init__(self) -> None:
        self.files: list[str] = []
        self._pieces: list[tuple[int, np.ndarray, np.ndarray]] = []   # (first minute, lo [M, F], hi [M, F])

    def add(self, obs: Observations) -> None:
        fmap = np.array([self._file(f) for f in obs.files], np.int64)   # files in the order the rows list them
        if not len(obs):
            return
        fidx = fmap[obs.file_index]
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
        for m0, lo, hi in self._pieces:
            a = m0 - first
            f = lo.shape[1]
            np.minimum(lo_all[a:a + lo.shape[0], :f], lo, out=lo_all[a:a + lo.shape[0], :f])
            np.maximum(hi_all[a:a + hi.shape[0], :f], hi, out=hi_all[a:a + hi.shape[0], :f])
        a = np.clip(starts - first, 0, last - first)
        b = np.clip(starts + W - first, 0, last - first)
        out = []
        for k, s in enumerate(starts.tolist()):
            files = {}
            if b[k] > a[k]:
                lo_w = lo_all[a[k]:b[k]].min(axis=0)
                hi_w = hi_all[a[k]:b[k]].max(axis=0)
                files = {self.files[j]: [int(lo_w[j]), int(hi_w[j])] for j in np.flatnonzero(hi_w >= 0)}
            out.append({"key": window_key(source, pid, s), "files": files})
        return out


class _GridPieces:
    """Minute-grid pieces of consecutive chunks (and of the other sources), laid onto the person's grid at the
    end; no observed cell is in two pieces (no minute of a channel is in two chunks, and the other sources'
    readings in the streamed source's cells lost to it in fusion)."""

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
        for g in self.pieces:   # each piece's observed cells
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
        for c in np.unique(obs.channel).tolist():
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


def stream_rows(cfg, unit, adapter, tz: str | None = None, lost_cells: np.ndarray | None = None) -> StreamedRows:
    """Read, validate and reduce one source's rows of a person about ``cfg.limits.chunk_days`` days at a time;
    ``tz``: the person's zone (their first source's), which local time on the grid follows; ``lost_cells``
    (:func:`cells_won_over`): where fusion drops its readings for a higher-ranked source's (counted)."""
    lost_cells = np.zeros(0, np.int64) if lost_cells is None else lost_cells
    overridden: dict[str, int] = {}
    chunk_ns = cfg.limits.chunk_days * DAY_MIN * MINUTE_NS
    schema = adapter.schema()
    pieces = _GridPieces(tuple(cfg.channels), tz or unit.participant.tz)
    lineage = MinuteLineage()
    order = _Order()
    rows_in, counts, clipped = 0, {}, {}
    by_file: dict[str, list[int]] = {}
    quarantine: list[pa.Table] = []
    held = Observations.empty()
    for native in adapter.iter_native_chunks(unit, chunk_ns):
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
        kept = _drop_lost(vr.observations, lost_cells, overridden)   # what fusion keeps (all, where it wins)
        lineage.add(kept)
        now, held = _held_back(Observations.concat([held, kept]))
        pieces.add(now)
        del vr, now, kept
    pieces.add(held)
    stored = pa.concat_tables(quarantine) if quarantine else QUARANTINE_SCHEMA.empty_table()
    return StreamedRows(pieces, lineage, rows_in, counts, clipped, dict(sorted(by_file.items())), stored,
                        {c: overridden[c] for c in CHANNEL_NAMES if c in overridden})
