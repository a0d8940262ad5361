"""Validation: native rows -> canonical observations, or quarantine with a reason.

Every row an adapter read ends in exactly one of two places: the observation
table (parsed, converted to the channel's unit, in range or clipped) or the
quarantine table (its original field, time and value, its file and row, and
the first reason it failed; a number keeps its type until a reader renders it
as text, see :mod:`sensorpipe.schema.quarantine`). So ``rows_in == accepted +
quarantined`` always holds, per file and per unit.

Reasons, in the order they are checked: ``no_participant``,
``unknown_field``, ``unparseable_time``, ``nonexistent_local_time``,
``implausible_time`` (outside ``validation.plausible_from`` ..
``plausible_until``, by default 2000-01-01 .. 2040-01-01 UTC),
``missing_value``, ``wrong_type``, ``unknown_unit``, ``out_of_range``
(channels whose rule is ``quarantine``; on ``clip`` channels only values that
cannot be a reading at all, see :func:`absurd`), ``exact_duplicate`` (same
channel and instant, value equal to an earlier row's within the channel's
``duplicate_tolerance``: the first is kept) and ``conflicting_duplicate`` (same
channel and instant, values further apart: all of them are quarantined, since
none can be trusted over the others).

Raw waveforms are held to the same time range through :func:`range_filter`:
a minute feature outside it is dropped and counted as ``implausible_time``.

Everything is vectorized over the whole unit; no Python loop runs per row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe import channels as registry
from sensorpipe._arrow import dictionary_codes
from sensorpipe.config import ValidationConfig
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.observations import Observations
from sensorpipe.schema.quarantine import QUARANTINE_SCHEMA, keep_typed, quarantine_text, repeat_text
from sensorpipe.schema.registry import SourceSchema
from sensorpipe.units import UnitError, affine

REASONS = ("ok", "no_participant", "unknown_field", "unparseable_time", "nonexistent_local_time",
           "implausible_time", "missing_value", "wrong_type", "unknown_unit", "out_of_range",
           "exact_duplicate", "conflicting_duplicate")
_CODE = {r: i for i, r in enumerate(REASONS)}
DEFAULT_VALIDATION = ValidationConfig()
CHANNEL_NAMES = tuple(registry.with_plugins())   # channel plugins load first, so every process has one order
CHANNEL_INDEX = {c: i for i, c in enumerate(CHANNEL_NAMES)}
# row order of a part's accepted rows: each channel one run with time strictly increasing (no duplicate
# possible), one run per channel with time not decreasing (duplicates are adjacent), or anything else
SORTED, GROUPED, UNSORTED = 2, 1, 0

def quarantine_counts(quarantine: pa.Table) -> list[list]:
    """``[source file, reason, rows]`` of a quarantine table, sorted by file and reason: the run record's
    counts (one Arrow group-by; rows without a file or a reason are not counted, as a groupby would skip them)."""
    if not quarantine.num_rows:
        return []
    groups = quarantine.group_by(["source_file", "reason"]).aggregate([([], "count_all")])
    rows = zip(*(groups.column(c).to_pylist() for c in ("source_file", "reason", "count_all")))
    return sorted([f, r, n] for f, r, n in rows if f is not None and r is not None)


@dataclass
class ValidationResult:
    observations: Observations
    stored_quarantine: pa.Table   # QUARANTINE_SCHEMA: typed values kept typed; what the pipeline writes
    rows_in: int
    reason_counts: dict[str, int] = field(default_factory=dict)
    clipped: dict[str, int] = field(default_factory=dict)
    rows_in_by_file: dict[str, int] = field(default_factory=dict)
    non_monotonic: int = 0   # accepted rows earlier than a previous row of their stream (file order)

    @property
    def quarantine(self) -> pa.Table:
        """The quarantined rows as a user reads them (QUARANTINE_TEXT_SCHEMA): rendered on each access."""
        return quarantine_text(self.stored_quarantine)

    @property
    def rows_quarantined(self) -> int:
        return sum(self.reason_counts.values())

    def by_file(self) -> dict[str, tuple[int, int, int]]:
        """Per source file: (rows in, accepted, quarantined); in == accepted + quarantined for each."""
        obs = self.observations
        accepted: dict[str, int] = {}
        if len(obs):
            counts = np.bincount(obs.file_index, minlength=len(obs.files)) if len(obs.files) > 1 else [len(obs)]
            accepted = {obs.files[i]: int(k) for i, k in enumerate(counts) if k}
        quarantined = {str(d["values"]): int(d["counts"])
                       for d in pc.value_counts(self.stored_quarantine.column("source_file")).to_pylist()} \
            if self.stored_quarantine.num_rows else {}
        return {f: (n, accepted.get(f, 0), quarantined.get(f, 0)) for f, n in sorted(self.rows_in_by_file.items())}


def validate_unit(inp: UnitInput, schema: SourceSchema, validation: ValidationConfig = DEFAULT_VALIDATION
                  ) -> ValidationResult:
    """Validate every native part of a unit; see the module docstring for the rules.

    ``validation`` carries the plausible-time range (the pipeline config's ``validation`` section).
    """
    plausible = validation.plausible_utc_ns
    obs_parts, q_parts = [], []
    counts: dict[str, int] = {}
    clipped: dict[str, int] = {}
    by_file: dict[str, int] = {}
    starts = np.cumsum([0] + [p.num_rows for p in inp.native])
    orders = []  # per part: SORTED, GROUPED or UNSORTED (see _clean_part)
    for part, start in zip(inp.native, starts):
        obs, q, c, file_rows, order = _validate_part(part, schema, clipped, int(start), plausible)
        obs_parts.append(obs)
        q_parts.append(q)
        _add(counts, c)
        _add(by_file, file_rows)
        if order is None:
            order = SORTED if len(obs) < 2 or _sorted_streams(obs.channel, obs.t_utc_ns) else UNSORTED
        orders.append(order)
    non_monotonic = sum(_backwards(o) for o, order in zip(obs_parts, orders) if order == UNSORTED)
    obs = Observations.concat(obs_parts)
    single = sum(1 for o in obs_parts if len(o)) <= 1
    if single and all(o == SORTED for o in orders):
        keep, dup_reason = np.ones(len(obs), bool), None
    else:
        keep, dup_reason = _duplicates(obs, grouped=single and all(o != UNSORTED for o in orders))
    if dup_reason is not None:
        dropped = obs.take(np.flatnonzero(~keep))   # a few rows: one pass for their index, not one per column
        for part, start, stop in zip(inp.native, starts[:-1], starts[1:]):
            sel = (dropped.native_index >= start) & (dropped.native_index < stop)
            if sel.any():
                q_parts.append(_quarantine_rows(part.take(pa.array(dropped.native_index[sel] - start)),
                                                dup_reason[sel]))
        _add(counts, {REASONS[int(k)]: int(v) for k, v in zip(*np.unique(dup_reason, return_counts=True))})
        obs = obs.take(keep)
    src = inp.unit.source.name
    q_parts = [q.append_column("source", repeat_text(src, q.num_rows)).select(QUARANTINE_SCHEMA.names)
               .cast(QUARANTINE_SCHEMA) for q in q_parts if q.num_rows]
    quarantine = pa.concat_tables(q_parts) if q_parts else QUARANTINE_SCHEMA.empty_table()
    return ValidationResult(obs, quarantine, int(starts[-1]), counts, clipped, by_file, non_monotonic)


def _backwards(obs: Observations) -> int:
    """Rows whose time is earlier than an earlier row of the same channel and file (file order).

    Order does not change minute values (the grid bins by time), so these rows
    are kept; the count is a quality figure that flags merged or re-sorted exports.
    """
    n = 0
    for c in np.unique(obs.channel):
        t = obs.t_utc_ns[obs.channel == c]
        n += int((t[1:] < np.maximum.accumulate(t)[:-1]).sum()) if t.size > 1 else 0
    return n


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        total[k] = total.get(k, 0) + v


def _field_tables(schema: SourceSchema, names: list[str]):
    """Per dictionary entry: channel index, scale, offset (NaN scale = unknown field)."""
    ch = np.full(len(names), -1, np.int16)
    scale = np.full(len(names), np.nan)
    offset = np.zeros(len(names))
    specs = schema.by_name
    for i, n in enumerate(names):
        spec = specs.get(n)
        if spec is not None:
            ch[i] = CHANNEL_INDEX[spec.channel]
            scale[i], offset[i] = affine(spec.unit, registry.get(spec.channel).unit)
    return ch, scale, offset


def _parse_values(part: pa.Table, field_codes: np.ndarray, names: list[str], schema: SourceSchema):
    """Float values; NaN where missing or not a number. Categories map text codes first."""
    col = part.column("value")
    if pa.types.is_floating(col.type) and col.null_count == 0:
        vals = col.to_numpy().astype(np.float64)  # one copy; NaN counts as missing
        return vals, np.isnan(vals)
    missing = np.asarray(pc.is_null(col, nan_is_null=True).to_numpy(zero_copy_only=False))
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type):
        return pc.cast(col, pa.float64(), safe=False).to_numpy(zero_copy_only=False).copy(), missing
    text = pc.utf8_trim_whitespace(pc.cast(col, pa.string()))
    try:
        vals = pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False).copy()
    except pa.ArrowInvalid:
        import pandas as pd
        vals = np.array(pd.to_numeric(pd.Series(text.to_numpy(zero_copy_only=False)), errors="coerce"), np.float64)
    for i, n in enumerate(names):
        spec = schema.by_name.get(n)
        if spec is not None and spec.categories:
            rows = field_codes == i
            mapped = pc.index_in(text, value_set=pa.array(list(spec.categories))).to_numpy(zero_copy_only=False)
            codes = np.array(list(spec.categories.values()), np.float64)
            hit = rows & ~np.isnan(mapped.astype(np.float64))
            vals[hit] = codes[mapped[hit].astype(np.int64)]
    missing |= np.asarray(pc.equal(text, "").fill_null(True).to_numpy(zero_copy_only=False)) & np.isnan(vals)
    return vals, missing


def _convert_units(part: pa.Table, vals: np.ndarray, field_codes: np.ndarray, ch_of: np.ndarray,
                   scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Convert ``vals`` in place to canonical units; returns a mask of rows whose unit is unknown.

    Works per distinct (field, unit) pair so identity conversions cost nothing.
    """
    unknown = np.zeros(vals.shape[0], bool)
    unit_col = part.column("unit")
    if unit_col.null_count == part.num_rows:
        for i in np.flatnonzero((scale != 1.0) | (offset != 0.0)):
            rows = field_codes == i
            if np.isnan(scale[i]):
                continue  # unknown field: already marked
            vals[rows] = vals[rows] * scale[i] + offset[i]
        return unknown
    u_codes, units = dictionary_codes(unit_col)
    row_ch = ch_of[field_codes]
    s, o = scale[field_codes], offset[field_codes]
    for ui, u in enumerate(units):
        for c in np.unique(row_ch[u_codes == ui]):
            if c < 0:
                continue
            rows = (u_codes == ui) & (row_ch == c)
            try:
                s[rows], o[rows] = affine(u, registry.get(CHANNEL_NAMES[c]).unit)
            except UnitError:
                unknown |= rows
    with np.errstate(invalid="ignore"):
        vals *= s
        vals += o
    return unknown


def _validate_part(part: pa.Table, schema: SourceSchema, clipped: dict[str, int], start: int,
                   plausible: tuple[int, int] = DEFAULT_VALIDATION.plausible_utc_ns):
    """(observations, quarantine, reason counts, rows per file, row order or None) of one native part."""
    fast = _clean_part(part, schema, start, plausible)
    if fast is not None:
        obs, order = fast
        per_file = np.bincount(obs.file_index, minlength=len(obs.files)) if len(obs.files) > 1 else [len(obs)]
        file_rows = {f: int(k) for f, k in zip(obs.files, per_file) if k}
        return obs, _quarantine_rows(part.slice(0, 0), np.zeros(0, np.int8)), {}, file_rows, order
    n = part.num_rows
    reason = np.zeros(n, np.int8)

    def mark(mask: np.ndarray, name: str) -> None:
        reason[(reason == 0) & mask] = _CODE[name]

    pid_codes, pid_values = dictionary_codes(part.column("participant_id"))
    blank = np.array([not (v or "").strip() for v in pid_values] + [True])
    mark(blank[pid_codes], "no_participant")  # code -1 (null) picks the trailing True
    field_codes, names = dictionary_codes(part.column("field"))
    field_null = field_codes < 0
    field_codes[field_null] = 0
    ch_of, scale, offset = _field_tables(schema, names)
    if not names:
        ch_of, scale, offset = np.full(1, -1, np.int16), np.full(1, np.nan), np.zeros(1)
    mark(field_null | (ch_of[field_codes] < 0), "unknown_field")
    time_err = part.column("time_error")
    if time_err.null_count < n:
        te = np.asarray(time_err.to_numpy(zero_copy_only=False), dtype=object)
        mark(te == "unparseable_time", "unparseable_time")
        mark(te == "nonexistent_local_time", "nonexistent_local_time")
    t = part.column("t_utc_ns").to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    mark((t < plausible[0]) | (t >= plausible[1]), "implausible_time")
    vals, missing = _parse_values(part, field_codes, names, schema)
    mark(missing, "missing_value")
    mark(np.isnan(vals), "wrong_type")
    mark(_convert_units(part, vals, field_codes, ch_of, scale, offset), "unknown_unit")
    ch = ch_of[field_codes]
    lo, hi, rule = _range_tables()
    ok_ch = np.where(ch >= 0, ch, 0)
    with np.errstate(invalid="ignore"):
        outside = (reason == 0) & ((vals < lo[ok_ch]) | (vals > hi[ok_ch]))
    mark(outside & (~rule[ok_ch] | absurd(vals, lo[ok_ch], hi[ok_ch])), "out_of_range")
    outside &= reason == 0
    clip_rows = outside & rule[ok_ch]
    if clip_rows.any():
        for c in np.unique(ch[clip_rows]):
            clipped[CHANNEL_NAMES[c]] = clipped.get(CHANNEL_NAMES[c], 0) + int((clip_rows & (ch == c)).sum())
        vals[clip_rows] = np.clip(vals[clip_rows], lo[ch[clip_rows]], hi[ch[clip_rows]])
    good = reason == 0
    rows = part.column("source_row").to_numpy(zero_copy_only=False)
    file_codes, files = dictionary_codes(part.column("source_file"))
    bad = ~good
    if bad.any():
        keep = np.flatnonzero(good)
        obs = Observations(ch[keep], t[keep], vals[keep], file_codes[keep].astype(np.int32), rows[keep], files,
                           keep.astype(np.int64) + start)
    else:  # the common case: no copies
        obs = Observations(ch, t, vals, file_codes.astype(np.int32), rows, files, np.arange(start, start + n))
    q = _quarantine_rows(part.filter(pa.array(bad)), reason[bad])
    counts = dict(zip(*np.unique(reason[bad], return_counts=True))) if bad.any() else {}
    vc = pc.value_counts(part.column("source_file")).to_pylist()
    file_rows = {str(d["values"]): int(d["counts"]) for d in vc}
    return obs, q, {REASONS[int(k)]: int(v) for k, v in counts.items()}, file_rows, None


def _clean_part(part: pa.Table, schema: SourceSchema, start: int,
                plausible: tuple[int, int] = DEFAULT_VALIDATION.plausible_utc_ns) -> tuple[Observations, int] | None:
    """The common case in a few passes: every row valid, read straight into observations.

    Returns None as soon as anything might fail a check (a null, an unknown
    field or unit, a time error, a value out of range), and the caller runs
    the full per-row checks, which name the reasons. Otherwise the rows need
    no reason array at all: a part's rows usually come in a few runs of one
    field each (long exports are sorted by field), so the range and NaN
    checks are a min and a max per run, and the channel column is a repeat
    of one code per run. Also says how the rows are ordered (SORTED,
    GROUPED or UNSORTED), which is what the duplicate check needs to know.
    """
    n = part.num_rows
    cols = {c: part.column(c) for c in ("participant_id", "field", "time_error", "t_utc_ns", "value", "unit",
                                         "source_file", "source_row")}
    if (n == 0 or cols["time_error"].null_count != n or cols["unit"].null_count != n
            or not pa.types.is_floating(cols["value"].type)
            or any(cols[c].null_count for c in ("participant_id", "field", "t_utc_ns", "value", "source_row"))):
        return None
    pid = cols["participant_id"]
    if not _is_dict(pid) or not all((v or "").strip() for ch in pid.chunks for v in ch.dictionary.to_pylist()):
        return None  # plain text ids, or a blank one: the per-row checks decide
    field_col = cols["field"]
    if _is_dict(field_col) and field_col.num_chunks == 1:  # no copy of the codes
        codes = np.asarray(field_col.chunk(0).indices.to_numpy())
        names = [None if v is None else str(v) for v in field_col.chunk(0).dictionary.to_pylist()]
    else:
        codes, names = dictionary_codes(field_col)
    if not names:
        return None
    ch_of, scale, offset = _field_tables(schema, names)
    cut = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    if cut.size > 255:  # interleaved fields: the per-row checks are as fast
        return None
    a_s, b_s = np.r_[0, cut], np.r_[cut, n]
    run_code = codes[a_s].astype(np.int64)
    if (ch_of[run_code] < 0).any():  # a field no channel maps (names the rows do not use do not matter)
        return None
    t = cols["t_utc_ns"].to_numpy().astype(np.int64, copy=False)
    if t.min() < plausible[0] or t.max() >= plausible[1]:
        return None
    vals = np.asarray(cols["value"].to_numpy(), np.float64)
    converts = bool(((scale[run_code] != 1.0) | (offset[run_code] != 0.0)).any())
    if converts and not vals.flags.writeable:  # a zero-copy view of Arrow's buffer: copied only to convert units
        vals = vals.copy()
    lo, hi, _ = _range_tables()
    run_ch = ch_of[run_code]
    for a, b, i in zip(a_s.tolist(), b_s.tolist(), run_code.tolist()):
        v = vals[a:b]
        if scale[i] != 1.0 or offset[i] != 0.0:
            v *= scale[i]
            v += offset[i]
        c = ch_of[i]
        if not (v.min() >= lo[c] and v.max() <= hi[c]):  # also False for NaN (missing or wrong type)
            return None
    ch = np.repeat(run_ch, b_s - a_s)
    file_col = cols["source_file"]
    if _is_dict(file_col) and file_col.num_chunks == 1 and len(file_col.chunk(0).dictionary) == 1:
        file_codes, files = np.zeros(n, np.int32), [str(file_col.chunk(0).dictionary[0])]  # one file: no pass
    else:
        file_codes, files = dictionary_codes(file_col)
    rows = cols["source_row"].to_numpy()
    obs = Observations(ch, t, vals, file_codes.astype(np.int32, copy=False), rows, files, np.arange(start, start + n))
    order = SORTED if np.unique(run_ch).size == run_ch.size else UNSORTED
    for a, b in zip(a_s.tolist(), b_s.tolist()):  # one pass over the times, a second only for a run with ties
        if order == UNSORTED:
            break
        if b - a > 1 and not np.all(t[a + 1:b] > t[a:b - 1]):
            order = GROUPED if np.all(t[a + 1:b] >= t[a:b - 1]) else UNSORTED
    return obs, order


def _is_dict(col: pa.ChunkedArray) -> bool:
    return pa.types.is_dictionary(col.type)


def _range_tables():
    chans = list(registry.CHANNELS.values())
    return (np.array([c.valid_min for c in chans]), np.array([c.valid_max for c in chans]),
            np.array([c.out_of_range == "clip" for c in chans]))


def absurd(vals: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Values no reading can have, so even a ``clip`` channel quarantines them instead of clipping.

    Clipping is for a sensor that saturates a little past its range (a CGM's
    "HIGH" at 401 mg/dL); ``inf``, ``-inf`` or a value beyond the valid range
    by more than the range's own width (glucose 20-600 mg/dL: below -560 or
    above 1180; a parse of ``1e308``) is a broken export, and clipping it would
    turn it into a plausible reading. NaN is not absurd here: rows have it
    quarantined as missing or of the wrong type before.
    """
    width = hi - lo
    with np.errstate(invalid="ignore"):
        return np.isinf(vals) | (vals < lo - width) | (vals > hi + width)


def _tolerance_table() -> np.ndarray:
    return np.array([c.duplicate_tolerance for c in registry.CHANNELS.values()])


def _quarantine_rows(bad: pa.Table, reasons: np.ndarray) -> pa.Table:
    """The quarantine columns of ``bad`` (all but ``source``): ids and file as text, which they mostly are
    already (dictionaries decode cheaply), ``time`` and ``value`` in their file's own type (see
    :mod:`sensorpipe.schema.quarantine`), the reason from its code."""
    def text(name: str) -> pa.Array:
        return pc.cast(bad.column(name), pa.string())

    reason = pa.DictionaryArray.from_arrays(pa.array(reasons.astype(np.int8, copy=False)), pa.array(REASONS))
    return pa.table({
        "participant_id": text("participant_id"), "field": text("field"), **keep_typed(bad.column("time"), "time"),
        **keep_typed(bad.column("value"), "value"), "unit": text("unit"), "source_file": text("source_file"),
        "source_row": bad.column("source_row"), "reason": pc.cast(reason, pa.string()),
    })


def _sorted_streams(channel: np.ndarray, t: np.ndarray) -> bool:
    """True when each channel is one contiguous run with strictly increasing time (one pass)."""
    change = channel[1:] != channel[:-1]
    n_channels = int((np.bincount(channel.astype(np.int64)) > 0).sum())
    return int(change.sum()) + 1 == n_channels and bool(np.all((t[1:] > t[:-1]) | change))


def _duplicates(obs: Observations, grouped: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Keep mask, and the reason code of each dropped row (exact: keep first; conflicting: drop all).

    ``grouped``: the caller knows rows of equal channel and time are already
    adjacent (GROUPED), so no order is computed. Only the rows that share
    their channel and time with another (usually a few hundred) are reduced.
    """
    n = len(obs)
    if n < 2:
        return np.ones(n, bool), None
    if not grouped and _sorted_streams(obs.channel, obs.t_utc_ns):
        return np.ones(n, bool), None  # one run per channel, time strictly increasing: the common, fast case
    order = None if grouped else _channel_time_order(obs.channel.astype(np.int64), obs.t_utc_ns)
    cs, ts, vs = ((obs.channel, obs.t_utc_ns, obs.value) if order is None else
                  (obs.channel[order], obs.t_utc_ns[order], obs.value[order]))
    same_prev = np.zeros(n, bool)
    same_prev[1:] = (cs[1:] == cs[:-1]) & (ts[1:] == ts[:-1])
    dup = np.flatnonzero(same_prev)
    if not dup.size:
        return np.ones(n, bool), None
    members = np.union1d(dup - 1, dup)  # positions of every row in a group of two or more, groups contiguous
    first = ~same_prev[members]
    starts = np.flatnonzero(first)
    spread = np.maximum.reduceat(vs[members], starts) - np.minimum.reduceat(vs[members], starts)
    conflicting = spread > _tolerance_table()[cs[members][starts].astype(np.int64)]  # within it: one reading
    conflicting = conflicting[np.cumsum(first) - 1]
    code = np.zeros(n, np.int8)
    code[members if order is None else order[members]] = np.where(
        conflicting, _CODE["conflicting_duplicate"], np.where(same_prev[members], _CODE["exact_duplicate"], 0))
    keep = code == 0
    return keep, code[~keep]


def _channel_time_order(c: np.ndarray, t: np.ndarray) -> np.ndarray | None:
    """Row order by (channel, time, row): rows of equal channel and time end up adjacent, first row first.

    None when the rows already are in such an order.

    One run per channel with time not decreasing (a stream whose only fault is
    a repeated instant) needs no sort at all: grouping, not channel order, is
    what the duplicate check needs. Otherwise one stable sort of a combined
    integer key (channel, then time since the earliest row) when it fits in
    int64, which is cheap on the few sorted runs such data has.
    """
    n = c.size
    change = c[1:] != c[:-1]
    if int(change.sum()) + 1 == np.unique(c).size and bool(np.all((t[1:] >= t[:-1]) | change)):
        return None
    t0, span = int(t.min()), int(t.max()) - int(t.min()) + 1
    if span * (int(c.max()) - int(c.min()) + 1) < 2**62:
        return np.argsort((c - c.min()) * span + (t - t0), kind="stable")
    return np.lexsort((np.arange(n), t, c))


def range_filter(obs: Observations, validation: ValidationConfig = DEFAULT_VALIDATION
                 ) -> tuple[Observations, dict[str, int]]:
    """Apply the row rules to derived observations (raw-signal minute features): the plausible-time range
    first, then the registry's range rules; returns the kept rows and counts by reason.

    Every raw waveform's minutes pass here, so a recording dated outside
    ``validation.plausible_from`` .. ``plausible_until`` (an E4 clock at 2100)
    yields no minutes, whichever adapter read it; its minutes are counted as
    ``implausible_time`` (the run reports them as ``raw:<kind>_implausible_time``).
    """
    if not len(obs):
        return obs, {}
    t_lo, t_hi = validation.plausible_utc_ns
    counts = {}
    late_or_early = (obs.t_utc_ns < t_lo) | (obs.t_utc_ns >= t_hi)
    if late_or_early.any():
        counts["implausible_time"] = int(late_or_early.sum())
        obs = obs.take(~late_or_early)
    lo, hi, rule = _range_tables()
    c = obs.channel.astype(np.int64)
    with np.errstate(invalid="ignore"):
        outside = (obs.value < lo[c]) | (obs.value > hi[c])
    bad = absurd(obs.value, lo[c], hi[c])
    clip = outside & rule[c] & ~bad
    if clip.any():
        obs.value[clip] = np.clip(obs.value[clip], lo[c[clip]], hi[c[clip]])
        counts["clipped"] = int(clip.sum())
    drop = (outside & ~rule[c]) | bad
    if drop.any():
        counts["out_of_range"] = int(drop.sum())
        obs = obs.take(~drop)
    return obs, counts
