"""The two per-unit passes every runner maps over units.

A unit is one person of one study (:class:`~sensorpipe.sources.study.PersonUnit`):
every source of the study that has the person contributes.

Pass 1 (:func:`prepare_unit`): per source read -> validate (quarantine per
source and file) -> raw features; then fuse the sources (per-channel priority,
:mod:`sensorpipe.processing.fuse`) -> minute grid -> cleaning -> windows ->
labels, lineage and mergeable statistics. Its arrays are cached on disk under
the unit's fingerprint (every source's inputs + stage configs), so a re-run or
a resumed run skips finished units.

Pass 2 (:func:`encode_unit`): impute -> normalize (train-fitted parameters)
-> captions -> serialize records to a spill file.

Both are pure functions of (config, unit, parameters): the local and the
multiprocess runner call exactly these, which is why their shards are
byte-identical. Memory is bounded by one unit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas  # noqa: F401  (pyarrow imports it at the first pa.array of pass 1: here, forked workers inherit it)
import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe._version import code_version
from sensorpipe.captions.generator import CaptionGenerator
from sensorpipe.config import PipelineConfig, stable_hash
from sensorpipe.core.arrays import load_arrays
from sensorpipe.core.devices import devices_of
from sensorpipe.core.grid import MINUTE_NS, MinuteGrid
from sensorpipe.core.labels import LABELS
from sensorpipe.core.observations import Observations
from sensorpipe.core.refs import UnitRef
from sensorpipe.core.windows import WindowBatch
from sensorpipe.labels.base import (events_for_windows, events_from_arrays, events_to_arrays, labels_for_windows,
                                    processors_for)
from sensorpipe.privacy.pseudonym import assign_split, key_digest, pseudonym
from sensorpipe.privacy.redact import replace_raw_id
from sensorpipe.processing.clean import clean_grid
from sensorpipe.processing.counts import count_true
from sensorpipe.processing.fuse import Fused, fuse, priority_ranks, window_sources
from sensorpipe.processing.glucose_censoring import censored_flag_observations
from sensorpipe.processing.grid import build_grid
from sensorpipe.processing.impute import fill_counts, impute, specs_for, window_quality
from sensorpipe.processing.normalize import FitStats, NormParams
from sensorpipe.processing.window import MissingBasis, cut_windows, time_features
from sensorpipe.quality.label_balance import count_label_windows
from sensorpipe.runners import cache, chunked
from sensorpipe.runners.stats import UnitStats
from sensorpipe.schema.quarantine import write_spill
from sensorpipe.schema.validate import quarantine_counts, range_filter, validate_unit
from sensorpipe.sources._toolkit import limits as _limits
from sensorpipe.sources.base import make_adapter, preloaded_inputs
from sensorpipe.sources.study import PersonUnit
from sensorpipe.storage.writer import RecordSpill

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunContext:
    """What every worker needs; picklable. The key stays in memory only."""

    cfg: PipelineConfig
    key: bytes | None
    cache_dir: str
    config_fingerprint: str = ""  # cfg.fingerprint(), computed once here (it travels to workers with the context)
    key_id: str = ""              # key_digest(key): pseudonyms depend on the key, so cache keys do too
    quarantine_key: bytes | None = None   # privacy.quarantine_key_file: quarantine spills are encrypted with it

    def __post_init__(self) -> None:
        if not self.config_fingerprint:
            object.__setattr__(self, "config_fingerprint", self.cfg.fingerprint())
        if not self.key_id:
            object.__setattr__(self, "key_id", key_digest(self.key))

    @property
    def unit_key_id(self) -> str:
        """What a unit's cache key holds of the keys: the pseudonymization key's digest, and, when quarantine
        spills are encrypted, the quarantine key's digest, so a cached spill is always in this run's form."""
        if self.quarantine_key is None:
            return self.key_id
        return f"{self.key_id}+sealed:{key_digest(self.quarantine_key)}"

    def stage_hashes(self) -> dict[str, str]:
        c = self.cfg
        return {"validate": stable_hash(code_version()), "clean": stable_hash(asdict(c.cleaning)),
                "window": stable_hash(c.window.__dict__),
                "channels": stable_hash(list(c.channels)), "impute": stable_hash(c.imputation.__dict__),
                "normalize": stable_hash(c.normalization.__dict__), "captions": stable_hash(asdict(c.captions))}


@dataclass
class SourcePart:
    """One source's share of a person's unit: its row accounting, quarantine and what it contributed."""

    source: str
    rows_in: int
    rows_accepted: int
    reason_counts: dict[str, int]
    clipped: dict[str, int]
    rows_in_by_file: dict[str, list[int]]      # file -> [rows in, accepted, quarantined]
    raw_samples_in: int
    raw_counts: dict[str, int]
    non_monotonic: int = 0
    quarantine: str = ""                        # this source's quarantined rows of the person (Parquet)
    quarantine_counts: list[list] = field(default_factory=list)   # [source file, reason, rows], sorted
    overridden: dict[str, int] = field(default_factory=dict)     # channel -> readings another source outranked
    windows: int = 0                            # kept windows it contributed an observed minute to
    devices: list[dict] = field(default_factory=list)   # per file naming its recorder: file, model, epoch_s, serial

    @property
    def rows_quarantined(self) -> int:
        return sum(self.reason_counts.values())


@dataclass
class UnitSummary:
    """Small, JSON-able result of pass 1 for one unit: one person of one study, all their sources.

    What the driver needs and nothing more: who the unit is, each source's rows (they reconcile), the windows
    kept and where pass 2 finds them, what normalization and lineage take from them, and the unit's
    :class:`~sensorpipe.runners.stats.UnitStats` (stages' seconds; counts named
    ``windows_dropped:<reason>``, ``cleaned:<channel>:<reason>``, ``imputed:<channel>:<how>``,
    ``observed_minutes:<channel>``, ``grid_minutes``, ``minutes_not_windowed``, ``windows_multi_source``;
    the peak ``rss_mib`` of the process that prepared it).
    """

    key: str
    study: str                   # the records' ``dataset``
    participant: str             # pseudonym
    split: str
    fingerprint: str
    input_fingerprints: dict[str, str]
    parts: list[SourcePart]      # one per source of the person, in config order
    windows_kept: int
    cache: str                   # the arrays file of its windows (pass 2's input)
    fit_stats: dict              # FitStats JSON of the kept windows (normalization fit, channel statistics)
    lineage: list[dict] = field(default_factory=list)
    stats: UnitStats = field(default_factory=UnitStats)
    from_cache: bool = False     # this run read it from the cache (set on load; stored False)

    def __post_init__(self) -> None:
        self.parts = [p if isinstance(p, SourcePart) else SourcePart(**p) for p in self.parts]
        self.stats = UnitStats.of(self.stats)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @property
    def sources(self) -> list[str]:
        return [p.source for p in self.parts]

    @property
    def rows_in(self) -> int:
        return sum(p.rows_in for p in self.parts)

    @property
    def rows_accepted(self) -> int:
        return sum(p.rows_accepted for p in self.parts)

    @property
    def raw_samples_in(self) -> int:
        return sum(p.raw_samples_in for p in self.parts)

    @property
    def rows_quarantined(self) -> int:
        return sum(p.rows_quarantined for p in self.parts)


def _raw_observations(inp, parts: list[Observations], validation) -> dict[str, int]:
    """Minute features of every raw waveform, range-checked; returns counts of what was not emitted."""
    counts = UnitStats()
    if not inp.raw_signals:
        return counts.counts
    from sensorpipe.processing import raw_features  # the feature extractors load only for raw-signal units

    for sig in inp.raw_signals:
        mf = raw_features.extract(sig)
        kept, dropped = range_filter(mf.observations, validation)
        parts.append(kept)
        for k, v in {**mf.counts, **{f"{sig.kind}_{r}": n for r, n in dropped.items()}}.items():
            counts.count(k, v)
    return counts.counts


def prepare_unit(ctx: RunContext, person: PersonUnit | UnitRef) -> UnitSummary:
    """Pass 1 for one person of one study, all their sources (cached by fingerprint); a single source's unit
    is a person of that source's study. The stages, as the design's data flow draws them::

        fingerprint ─► read ─► validate ─► raw features ─► fuse + grid ─► clean ─► window ─► labels, lineage
                       (each source)                                                   ─► fit stats ─► cache
    """
    cfg, stats, person = ctx.cfg, UnitStats(), PersonUnit.of(person)
    _limits.use(cfg.limits)   # this process's decompression limits are the run's
    with stats.timed("fingerprint"):
        key = _unit_key(ctx, person)
        cached = cache.read_unit_summary(key.stem)
    if cached is not None:
        return dataclasses.replace(UnitSummary(**cached), from_cache=True)
    pid, split = _identity(ctx, person)
    key.stem.parent.mkdir(parents=True, exist_ok=True)
    rs = _row_stage(ctx, person, key.adapters, key.stream_i, key.blobs, pid, key.stem, stats)
    with stats.timed("clean"):
        _clean(cfg, rs, stats)
    with stats.timed("window"):
        cut = _cut(cfg, person, key.adapters, rs, stats)
    with stats.timed("labels_lineage"):
        labels, events, lineage = _labels_and_lineage(cfg, person, pid, rs, cut)
        for k, n in count_label_windows(labels).items():   # label coverage and balance (quality/label_balance.py)
            stats.count(k, n)
    with stats.timed("fit_stats"):
        fit = FitStats.of(cut.win.values, cut.win.observed, cfg.channels, cfg.normalization)
    with stats.timed("cache_write"):
        arrays = cache.write_unit_arrays(key.stem, dict(
            values=cut.win.values, observed=cut.win.observed, offsets=cut.win.tz_offset_min,
            start_utc_min=cut.start_utc_min, window_sources=cut.contributed, measured=cut.basis.counted,
            minutes_per_reading=cut.basis.minutes_per_reading, participant_mean=cut.participant_mean,
            **{f"label_{k}": v for k, v in labels.items()}, **events))   # the windows pass 2 encodes
        fit_json = fit.to_json(f"{key.stem}.sketch.arrays")
    stats.peak("rss_mib", _peak_rss_mib())
    summary = UnitSummary(key=person.key, study=person.study, participant=pid, split=split, fingerprint=key.fp,
                          input_fingerprints=key.fps, parts=rs.parts, windows_kept=len(cut.win), cache=arrays,
                          fit_stats=fit_json, lineage=lineage, stats=stats)
    cache.write_unit_summary(key.stem, summary.to_json())
    return summary


@dataclass
class _UnitKey:
    """A unit's cache key and what computing it left for the read: the adapters, the source streamed (if
    any), and the preloaded bytes of the inputs the adapters decode from memory."""

    adapters: list
    stream_i: int | None
    fps: dict[str, str]
    blobs: list[dict[str, bytes]]
    fp: str
    stem: Path


def _unit_key(ctx: RunContext, person: PersonUnit) -> _UnitKey:
    adapters = [make_adapter(u.source, u.base_dir) for u in person.parts]
    stream_i = chunked.streamed_part(ctx.cfg, person, adapters)   # a streamed source's files are hashed, not held
    fps: dict[str, str] = {}
    blobs: list[dict[str, bytes]] = []
    for i, (u, adapter) in enumerate(zip(person.parts, adapters)):
        side = [f for proc in processors_for(u) for f in proc.side_files(u) if os.path.isfile(f)]
        part_fps, part_blobs = cache.fingerprint_inputs(sorted(set(u.files) | set(side)), adapter,  # side files key it
                                                        u.known_fingerprints(), preload=i != stream_i)
        fps.update(part_fps)
        blobs.append(part_blobs)
    fp = cache.unit_fingerprint(person, fps, ctx.config_fingerprint, ctx.unit_key_id)
    return _UnitKey(adapters, stream_i, fps, blobs, fp, cache.unit_stem(ctx.cache_dir, person.study, fp))


def _identity(ctx: RunContext, person: PersonUnit) -> tuple[str, str]:
    """(pseudonym, split) of the person; local time follows their first source when their sources' zones differ."""
    pid = pseudonym(ctx.key, person.study, person.participant_id)
    split = assign_split(ctx.cfg.splits, person.study, person.participant_id)
    zones = sorted({u.participant.tz for u in person.parts})
    if len(zones) > 1:
        log.warning("study %s, participant %s: their sources are in different time zones (%s); local time follows "
                    "%s (source %s, first in config order)", person.study, pid, ", ".join(zones), person.tz,
                    person.parts[0].source.name)
    return pid, split


def _clean(cfg: PipelineConfig, rs: "_RowStage", stats: UnitStats) -> None:
    """The cleaning rules on the person's grid, in place; counts the grid cells each changed."""
    if rs.grid is None:
        return
    for k, n in clean_grid(rs.grid, cfg.cleaning, rs.obs).items():   # k = "<channel>:<reason>"
        stats.count(f"cleaned:{k}", n)


@dataclass
class _Cut:
    """The windows cut from a person's grid, and what the records and the summary need beside them."""

    win: WindowBatch
    start_utc_min: np.ndarray
    contributed: np.ndarray        # bool [windows, sources]: which sources fed an observed minute of each
    basis: MissingBasis
    intervals: dict[str, float]
    participant_mean: np.ndarray   # per channel over the grid (NaN: never seen)


def _cut(cfg: PipelineConfig, person: PersonUnit, adapters: list, rs: "_RowStage", stats: UnitStats) -> _Cut:
    """Windows of the person's grid; counts the drops, the grid's observed minutes, how pass 2 will fill the
    missing cells, and which sources fed each window (each source's ``windows``)."""
    grid, W, C, P = rs.grid, cfg.window.size_min, len(cfg.channels), len(person.parts)
    intervals = declared_intervals(adapters)
    basis = missing_basis(cfg, adapters, rs.raw_kinds, intervals)
    win = cut_windows(grid, cfg.window, person, basis) if grid is not None else WindowBatch.empty(W, cfg.channels)
    observed_minutes = count_true(grid.observed) if grid is not None else np.zeros(C, np.int64)
    start_utc_min = (grid.start_minute if grid is not None else 0) + win.start_row
    contributed = window_sources(rs.fused, grid, P, win.start_row, W)
    if rs.own is not None:   # a streamed source beside others: its cells were kept apart from the fused rows
        contributed[:, rs.stream_i] = chunked.streamed_window_hits(grid, rs.own, rs.cols, win.start_row, W)
    for part, n in zip(rs.parts, contributed.sum(axis=0).tolist()):
        part.windows = int(n)
    for reason, n in win.dropped.items():
        stats.count(f"windows_dropped:{reason}", n)
    stats.count("minutes_not_windowed", win.minutes_not_windowed)
    stats.count("windows_multi_source", np.count_nonzero(contributed.sum(axis=1) >= 2))
    stats.count("grid_minutes", grid.n_minutes if grid is not None else 0)
    for ch, n in zip(cfg.channels, observed_minutes.tolist()):
        stats.count(f"observed_minutes:{ch}", n)
    pmean = _participant_mean(grid, observed_minutes)
    fills = fill_counts(win.observed, cfg.channels, specs_for(cfg.channels, cfg.imputation), pmean)
    for ch, hows in fills.items():   # how pass 2 will fill each channel's missing cells
        for how, n in hows.items():
            stats.count(f"imputed:{ch}:{how}", n)
    return _Cut(win, start_utc_min, contributed, basis, intervals, pmean)


def _labels_and_lineage(cfg: PipelineConfig, person: PersonUnit, pid: str, rs: "_RowStage", cut: _Cut
                        ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list[dict]]:
    """Each window's labels and label events (as arrays), and its lineage (source files and row ranges)."""
    W, win = cfg.window.size_min, cut.win
    batch = replace(win, unit=person.parts[0], reading_interval_min=cut.intervals)  # the devices' cadence (CGM)
    labels = labels_for_windows(batch, person.parts)
    events = events_to_arrays(events_for_windows(batch, person.parts))
    grid_start = rs.grid.start_minute if rs.grid is not None else 0
    lineage = _lineage(rs.obs, grid_start, cut.start_utc_min, W, person.study, pid)
    if rs.streamed is not None:   # the streamed source's files, in their place among the others'
        own_lineage = rs.streamed.rows.lineage.windows(cut.start_utc_min, W, person.study, pid)
        lineage = chunked.merge_lineage(rs.files_before, lineage, own_lineage)
    return labels, events, lineage


@dataclass
class _RowStage:
    """Pass 1 up to the grid: every source read and validated (one of them streamed, when it qualifies), fused."""

    grid: MinuteGrid | None
    obs: Observations             # the sources' fused observations (all but a streamed source's)
    fused: Fused
    parts: list[SourcePart]       # per source, in config order
    raw_kinds: set[str]
    streamed: "_Streamed | None"
    own: np.ndarray | None        # bool [T, len(cols)]: a streamed source's readings' cells (several sources)
    cols: list[int]               # the grid columns of a streamed source's channels
    files_before: set[str]        # files of the sources before a streamed one in config order (lineage order)
    stream_i: int | None = None   # the streamed source's index (None: every source read whole)


def _row_stage(ctx: RunContext, person: PersonUnit, adapters: list, stream_i: int | None,
               blobs: list[dict[str, bytes]], pid: str, stem: Path, stats: UnitStats) -> _RowStage:
    """Each source read and validated on its own (source ``stream_i`` chunk by chunk where it can be, see
    :mod:`sensorpipe.runners.chunked`), fused by priority and laid onto the person's minute grid."""
    cfg = ctx.cfg
    P = len(person.parts)
    part_obs: list[Observations | None] = [None] * P
    parts: list[SourcePart | None] = [None] * P
    raw_kinds: set[str] = set()
    for i, (u, adapter) in enumerate(zip(person.parts, adapters)):   # read and validate each source on its own
        if i != stream_i:   # a long recording's source is streamed below, chunk by chunk, when it can be
            part_obs[i], parts[i], kinds = _read_source(ctx, u, adapter, blobs[i], pid, f"{stem}.{u.source.name}",
                                                        stats)
            blobs[i] = {}
            raw_kinds |= kinds
    streamed = _streamed_rows(ctx, person, stream_i, adapters, part_obs, blobs, pid, stem, stats)
    if stream_i is not None and streamed is None:   # read whole after all
        u = person.parts[stream_i]
        part_obs[stream_i], parts[stream_i], kinds = _read_source(ctx, u, adapters[stream_i], blobs[stream_i], pid,
                                                                  f"{stem}.{u.source.name}", stats)
        blobs[stream_i] = {}
        raw_kinds |= kinds
    with stats.timed("grid"):   # fuse the sources and lay them on the minute grid
        whole = [i for i in range(P) if streamed is None or i != stream_i]   # the sources fused from their rows
        yielded: dict[int, dict[str, int]] = {}
        if streamed is not None:   # the others' readings in the cells it kept lose to it (it outranks them there)
            parts[stream_i] = streamed.part
            own = streamed.rows.own_grid() if whole else None   # its cells (alone: nobody to compare with)
            for i in whole:
                part_obs[i], yielded[i] = chunked.yield_to_streamed(part_obs[i], own)
        ranks = priority_ranks(person.source_names, cfg.studies.get(person.study))
        fused = fuse([part_obs[i] for i in whole], ranks[whole])
        if whole != list(range(len(whole))):   # the person's part indices (the same numbers when none was streamed)
            fused.part = np.asarray(whole, np.int64)[fused.part]
        for i, lost in zip(whole, fused.overridden):   # a streamed source's losses were counted as it streamed
            parts[i].overridden = chunked.add_counts(yielded.get(i, {}), lost)
        # the censored-reading flag of the glucose that won each minute (no rows of its own: accounting unchanged)
        obs = Observations.concat([fused.obs, censored_flag_observations(fused.obs, cfg.channels)])
        before = {f for i in range(stream_i or 0) for f in part_obs[i].files} if streamed is not None else set()
        del part_obs
        if streamed is not None:
            grid = streamed.rows.grid(obs)
            cols = [cfg.channels.index(c) for c in sorted(chunked.mapped_channels(adapters[stream_i]))]
            own = chunked.own_cells(own, grid, cols) if grid is not None and whole else None   # on the person's grid
        else:
            grid, cols, own = (build_grid(obs, cfg.channels, person.tz) if len(obs) else None), [], None
    return _RowStage(grid, obs, fused, parts, raw_kinds, streamed, own, cols, before,
                     stream_i if streamed is not None else None)


def _read_source(ctx: RunContext, unit: UnitRef, adapter, blobs: dict[str, bytes], pid: str, stem: str,
                 stats: UnitStats) -> tuple[Observations, SourcePart, set[str]]:
    """One source's share of a person: read, validated (its quarantine written under ``stem``), its raw
    waveforms turned into minute features. Returns the accepted observations, the source's accounting and the
    raw signal kinds it delivered."""
    with stats.timed("read"), preloaded_inputs(blobs):
        inp = adapter.read_unit(unit)
    with stats.timed("validate"):
        vr = validate_unit(inp, adapter.schema(), ctx.cfg.validation)
    obs_parts = [vr.observations]
    with stats.timed("raw_features"):
        raw_counts = _raw_observations(inp, obs_parts, ctx.cfg.validation)
    with stats.timed("cache_write"):
        part = SourcePart(
            source=unit.source.name, rows_in=vr.rows_in, rows_accepted=len(vr.observations),
            reason_counts=vr.reason_counts, clipped=vr.clipped,
            rows_in_by_file={f: list(v) for f, v in vr.by_file().items()}, raw_samples_in=inp.n_raw_samples,
            raw_counts=raw_counts, non_monotonic=vr.non_monotonic,
            quarantine=_write_unit_quarantine(ctx, unit, pid, vr.stored_quarantine, stem),
            quarantine_counts=quarantine_counts(vr.stored_quarantine),
            devices=[{"file": f, **asdict(d)} for f, d in devices_of(inp.native)])
    return Observations.concat(obs_parts), part, {sig.kind for sig in inp.raw_signals}


@dataclass
class _Streamed:
    """A streamed source's row stage: its accounting, and its grid pieces and per-minute lineage."""

    part: SourcePart
    rows: chunked.StreamedRows


def _streamed_rows(ctx: RunContext, person: PersonUnit, stream_i: int | None, adapters: list,
                   others: list[Observations | None], blobs: list[dict[str, bytes]], pid: str, stem: Path,
                   stats: UnitStats) -> _Streamed | None:
    """Source ``stream_i``'s row stage chunk by chunk (:mod:`sensorpipe.runners.chunked`); None when no source
    qualifies, or when its rows turn out out of time order or tied (then it is read whole). Its readings in the
    cells a higher-ranked source observed are left out as fusion leaves them out, and counted."""
    if stream_i is None:
        return None
    lost_cells = chunked.cells_won_over(stream_i, adapters[stream_i], others, chunked.person_ranks(ctx.cfg, person))
    blobs[stream_i] = {}   # the chunks read the file a row group at a time, not from its bytes
    unit = person.parts[stream_i]
    try:
        with stats.timed("read"):   # read, validated and laid on the grid a chunk at a time
            rows = chunked.stream_rows(ctx.cfg, unit, adapters[stream_i], person.tz, lost_cells)
    except chunked.NotStreamable:
        return None
    part = SourcePart(
        source=unit.source.name, rows_in=rows.rows_in, rows_accepted=rows.rows_accepted,
        reason_counts=rows.reason_counts, clipped=rows.clipped, rows_in_by_file=rows.rows_in_by_file,
        raw_samples_in=0, raw_counts={}, non_monotonic=0,
        quarantine=_write_unit_quarantine(ctx, unit, pid, rows.quarantine, f"{stem}.{unit.source.name}"),
        quarantine_counts=quarantine_counts(rows.quarantine), overridden=rows.overridden)
    return _Streamed(part, rows)


def declared_intervals(adapters: list) -> dict[str, float]:
    """Per channel, the reading interval the person's devices declare (the shortest where two declare one)."""
    out: dict[str, float] = {}
    for a in adapters:
        for ch, minutes in a.reading_interval_min.items():
            out[ch] = min(out.get(ch, minutes), minutes)
    return out


def missing_basis(cfg: PipelineConfig, adapters: list, raw_kinds: set[str], intervals: dict[str, float]
                  ) -> MissingBasis:
    """What a person's windows' missing share counts (``missingness_basis: measured``): the output channels
    their sources can provide, each reading covering its device's declared interval (``intervals``).

    A source provides the channels its schema maps fields to or its format
    declares, and the minute features of the raw signal kinds it delivered for
    the person (an EDF with only an ECG provides heart rate, not EDA);
    ``on_wrist`` comes with any channel the non-wear rule reads or masks, when
    that rule runs. ``all_channels`` counts every output channel, minute by
    minute.
    """
    if cfg.window.missingness_basis == "all_channels":
        return MissingBasis.every_channel(len(cfg.channels))
    provided: set[str] = set()
    for a in adapters:
        provided.update(f.channel for f in a.schema().fields)
        provided.update(type(a).channels)
    if raw_kinds:   # the feature extractors load only for raw-signal units (as in _raw_observations)
        from sensorpipe.processing.raw_features import kind_channels

        kinds = kind_channels()
        provided.update(c for k in raw_kinds for c in kinds.get(k, ()))
    nw = cfg.cleaning.nonwear
    if (cfg.cleaning.enabled and "nonwear" in cfg.cleaning.rules
            and provided & {*nw.mask_channels, "enmo", "skin_temperature"}):
        provided.add("on_wrist")
    counted = np.array([c in provided for c in cfg.channels], bool)
    return MissingBasis(counted, np.array([intervals.get(c, 1.0) if m else 1.0
                                           for c, m in zip(cfg.channels, counted.tolist())], np.float64))


def _participant_mean(grid, cnt: np.ndarray) -> np.ndarray:
    """Per channel, the mean of every observed minute of the unit's grid (NaN where never observed);
    ``cnt``: the observed minutes per channel (counted once for this and the summary)."""
    if grid is None:
        return np.full(cnt.shape[0], np.nan)
    total = np.where(grid.observed, grid.values, 0.0).sum(axis=0, dtype=np.float64)
    return np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)


def _peak_rss_mib() -> float:
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB on Linux


def _write_unit_quarantine(ctx: RunContext, unit: UnitRef, pid: str, quarantine: pa.Table, stem: str) -> str:
    """One source's quarantined rows of a person (stored form, see schema/quarantine.py), its participant ids
    replaced by the person's pseudonym, also where the rows' text names the raw id (privacy/redact.py); the
    driver appends the spill to the source's quarantine file."""
    if not quarantine.num_rows:
        return ""
    path = f"{stem}.quarantine.arrow"
    col = quarantine.schema.get_field_index("participant_id")
    quarantine = quarantine.set_column(col, "participant_id",
                                       _pseudonymize_column(unit, pid, quarantine.column("participant_id")))
    write_spill(replace_raw_id(quarantine, unit.participant.participant_id, pid), path, ctx.quarantine_key)
    return path


def _pseudonymize_column(unit: UnitRef, pid: str, col: pa.ChunkedArray) -> pa.Array:
    ids = pc.fill_null(pc.cast(col, pa.string()), "")
    mapped = pc.if_else(pc.equal(ids, unit.participant.participant_id), pid, ids)
    return pc.if_else(pc.equal(ids, ""), "", mapped) if unit.participant.participant_id else ids


def window_key(source: str, pid: str, start_utc_min: int) -> str:
    ts = np.datetime64(int(start_utc_min), "m").astype("datetime64[s]")
    return f"{source}/{pid}/{ts}Z"


def _lineage(obs: Observations, grid_start: int, start_utc_min: np.ndarray, W: int, source: str, pid: str) -> list[dict]:
    """Per window: the source files and the row range of each that fed it.

    Rows usually come in a few sorted runs (one per file and field, time and
    row number increasing), so each run's rows inside a window are one slice
    found by binary search, and its first and last rows are the range: no pass
    over the rows beyond finding the runs. Other orders fall back to a
    min/max table filled with ``ufunc.at``.
    """
    if not len(obs) or not start_utc_min.size:
        return []
    starts = np.asarray(start_utc_min, np.int64)
    n_w, n_f = starts.size, max(len(obs.files), 1)
    lo = np.full((n_w, n_f), np.iinfo(np.int64).max)
    hi = np.full((n_w, n_f), -1, np.int64)
    t, f, r = obs.t_utc_ns, obs.file_index, obs.source_row
    breaks = (t[1:] < t[:-1]) | (r[1:] <= r[:-1])
    if n_f > 1:   # one file: no file changes to look for
        breaks |= f[1:] != f[:-1]
    cut = np.flatnonzero(breaks) + 1
    if cut.size < 64:  # few sorted runs: binary search per run
        edges_ns = np.concatenate([starts, starts + W]) * MINUTE_NS
        for a, b in zip(np.r_[0, cut].tolist(), np.r_[cut, len(obs)].tolist()):
            pos = np.searchsorted(t[a:b], edges_ns) + a
            first, stop = pos[:n_w], pos[n_w:]
            hit = stop > first
            fi = int(f[a])
            lo[hit, fi] = np.minimum(lo[hit, fi], r[first[hit]])
            hi[hit, fi] = np.maximum(hi[hit, fi], r[stop[hit] - 1])
    else:
        minute = t // MINUTE_NS
        last = np.searchsorted(starts, minute, side="right") - 1   # the last window starting at or before the row
        first = np.searchsorted(starts + W, minute, side="right")  # the first window ending after it
        for d in range(int((last - first).max()) + 1):  # one pass per window a row can be in (windows overlap)
            inside = last - d >= first
            cell = (last[inside] - d) * n_f + f[inside]
            np.minimum.at(lo.reshape(-1), cell, r[inside])
            np.maximum.at(hi.reshape(-1), cell, r[inside])
    out = []
    for k, s in enumerate(starts.tolist()):
        files = {obs.files[j]: [int(lo[k, j]), int(hi[k, j])] for j in np.flatnonzero(hi[k] >= 0)}
        out.append({"key": window_key(source, pid, s), "files": files})
    return out


def _window_labels(labels: dict[str, np.ndarray], n: int) -> list[dict]:
    """Each window's ``labels`` feature dict: class codes as ints, floats with their ``has_`` flag, sequences
    as int8 rows."""
    out = []
    for i in range(n):
        row = {}
        for spec in LABELS:
            v = labels[spec.name][i]
            if spec.kind == "sequence":
                row[spec.name] = v.astype(np.int8)
            elif spec.kind == "class":
                row[spec.name] = int(v)
            else:
                row[spec.name] = float(v)
                row[f"has_{spec.name}"] = math.isfinite(v)
        out.append(row)
    return out


def _sources_text(names: list[str], contributed: np.ndarray) -> list[str]:
    """Each window's ``sources`` feature: the contributing sources' names in config order, comma-separated."""
    return [",".join(n for n, c in zip(names, row) if c) for row in contributed.tolist()]


def _events_json(events: list[tuple]) -> str:
    """A window's relative label events as compact JSON: ``[[start, end, kind, name], ...]``."""
    return json.dumps([[int(a), int(b), k, n] for a, b, k, n in events], separators=(",", ":"))


@dataclass(frozen=True)
class EncodedUnit:
    """What pass 2 returns for one unit: its record spill, and its stats: seconds per stage and, per channel,
    the observed cells normalization clipped (``clipped:<channel>``, only where it clipped some;
    ``NormParams.apply_and_count``)."""

    stem: str
    stats: UnitStats
    from_cache: bool = False     # the spill was already there (a re-run, or the same unit resumed)


def encode_unit(ctx: RunContext, summary: UnitSummary, norm: NormParams) -> EncodedUnit:
    """Pass 2: impute, normalize, caption and serialize (cached: a re-run reads the spill and its clip counts).
    The stages::

        cache read ─► impute ─► normalize ─► captions ─► serialize (record spill)
    """
    cfg, stats = ctx.cfg, UnitStats()
    stem = cache.record_stem(ctx.cache_dir, summary.study, summary.fingerprint, norm.to_json())
    clipped = cache.read_records(stem, norm.clips)
    if clipped is not None:
        return EncodedUnit(stem, _clip_counts(UnitStats(), clipped), from_cache=True)
    with stats.timed("cache_read"):
        arrays = load_arrays(summary.cache)
    with stats.timed("impute"):
        filled, missing_c, longest_gap = _impute(cfg, arrays, norm)
    with stats.timed("normalize"):
        normed, clipped_cells = norm.apply_and_count(filled, arrays["observed"])
        times = _time_features(cfg, arrays)
    with stats.timed("captions"):
        keys, rel_events, captions = _captions(cfg, summary, arrays, norm, normed, times)
    with stats.timed("serialize"):
        records = _records(cfg, summary, arrays, normed, times, keys, rel_events, captions, missing_c, longest_gap)
        _clip_counts(stats, {ch: int(n) for ch, n in zip(cfg.channels, clipped_cells.tolist()) if n})
        if norm.clips:
            cache.write_clip_counts(stem, stats.under("clipped"))
        RecordSpill.write(stem, records)
    return EncodedUnit(stem, stats)


def _clip_counts(stats: UnitStats, clipped_cells: dict[str, int]) -> UnitStats:
    for ch, n in clipped_cells.items():
        stats.count(f"clipped:{ch}", n)
    return stats


def _impute(cfg: PipelineConfig, arrays: dict[str, np.ndarray], norm: NormParams
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(imputed values, each window's missing share per channel, its longest gap per channel)."""
    fallback = np.array(norm.fallback, np.float32)
    filled = impute(arrays["values"], arrays["observed"], specs_for(cfg.channels, cfg.imputation), fallback,
                    arrays["participant_mean"])
    missing_c, longest_gap = window_quality(arrays["observed"])
    return filled, missing_c, longest_gap


def _time_features(cfg: PipelineConfig, arrays: dict[str, np.ndarray]) -> np.ndarray:
    start = arrays["start_utc_min"]
    if not len(start):
        return np.zeros((0, cfg.window.size_min, 4), np.int16)
    return time_features(0, start, arrays["offsets"])


def _captions(cfg: PipelineConfig, summary: UnitSummary, arrays: dict[str, np.ndarray], norm: NormParams,
              normed: np.ndarray, times: np.ndarray) -> tuple[list[str], list[list[tuple]], list]:
    """(window keys, label events relative to each window's start, captions)."""
    start = arrays["start_utc_min"]
    keys = [window_key(summary.study, summary.participant, int(t)) for t in start]
    events = events_from_arrays(arrays, len(start))
    rel_events = [[(e.start_utc_min - int(t), e.end_utc_min - int(t), e.kind, e.name) for e in evs]
                  for t, evs in zip(start.tolist(), events)]
    local_min = times[:, :, 1].astype(np.int64) * 60 + times[:, :, 0]
    # captions state what the record stores: where normalization clips, the denormalized stored values
    caption_values = norm.invert(normed) if norm.clips else arrays["values"]
    captions = CaptionGenerator(cfg.captions).generate(
        WindowBatch(values=caption_values, observed=arrays["observed"], channels=cfg.channels, start_utc_min=start,
                    tz_offset_min=arrays["offsets"], local_min=local_min, events=rel_events), keys)
    return keys, rel_events, captions


def _records(cfg: PipelineConfig, summary: UnitSummary, arrays: dict[str, np.ndarray], normed: np.ndarray,
             times: np.ndarray, keys: list[str], rel_events: list[list[tuple]], captions: list,
             missing_c: np.ndarray, longest_gap: np.ndarray) -> list[bytes]:
    """Each window's serialized record, in the layout features.json declares (planned without TFDS)."""
    from sensorpipe.storage.encode import encoder_for
    from sensorpipe.storage.layout import record_layout

    encoder = encoder_for(record_layout(cfg.channels, cfg.window.size_min, cfg.captions.levels))
    start, offsets = arrays["start_utc_min"], arrays["offsets"]
    masks = ~arrays["observed"]
    basis = MissingBasis(arrays["measured"], arrays["minutes_per_reading"])   # as pass 1 counted it
    missingness = basis.share(count_true(masks), cfg.window.size_min).tolist()
    sources = _sources_text(summary.sources, arrays["window_sources"])
    starts, tz_first = start.tolist(), offsets[:, 0].tolist() if len(start) else []
    window_labels = _window_labels({spec.name: arrays[f"label_{spec.name}"] for spec in LABELS}, len(start))
    records = []
    for i in range(len(start)):
        ex = {"input": normed[i], "mask": masks[i], "time": times[i], "missingness_ratio": missingness[i],
              "participant_id": summary.participant, "dataset": summary.study, "sources": sources[i],
              "start_utc": int(starts[i]) * 60, "tz_offset_min": int(tz_first[i]),
              "key": keys[i], "caption": captions[i].text, "caption_claims": captions[i].claims_json,
              "events": _events_json(rel_events[i]),
              **{f"caption_{lvl}": txt for lvl, txt in captions[i].texts.items()}, "labels": window_labels[i],
              "missing_ratio_per_channel": missing_c[i], "longest_gap_min": longest_gap[i]}
        records.append(encoder.encode(ex))
    return records
