"""Timestamp parsing into UTC nanoseconds, shared by every adapter.

Each function returns ``(t_utc_ns, error)``: ``t_utc_ns`` is int64 with
``NAT`` where a value could not be placed in time, and ``error`` is ``None``
or an object array naming the reason per row (``unparseable_time``,
``nonexistent_local_time``). Rows with a reason are quarantined by
validation, never dropped here.

Local wall-clock times (no offset) are placed with the participant's IANA
zone. On the spring-forward day the skipped hour does not exist: such rows
are quarantined as ``nonexistent_local_time``. On the fall-back day the
repeated hour is ambiguous. Within one stream (same field or device), in
file order, an ambiguous reading is the earlier instant (daylight time)
until the stream's wall clock first steps back on that local date, and the
later instant (standard time) from then on; a wall-clock value already seen
in the stream is always the later instant. A device that logs continuously
therefore keeps every reading once, even when its seconds drift (CGMs do),
and no minute is counted twice.

A ``local`` format that carries its own offset (``%z``, e.g.
``%Y-%m-%d %H:%M:%S%z`` for ``2024-03-10 01:30:00-0500``) is absolute, not
wall clock: each row is placed with the offset it was written with (DST
rules do not apply; a row without an offset is unparseable). The local offset
recorded per minute downstream still comes from the participant's zone, like
every other source, so one zone rule describes a participant's day.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    import pandas as pd

NAT = np.iinfo(np.int64).min
UNPARSEABLE = "unparseable_time"
NONEXISTENT = "nonexistent_local_time"


def _to_numpy_float(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_dictionary(arr.type):
        import pandas as pd

        return pd.to_numeric(pd.Series(np.asarray(arr.to_pylist(), dtype=object)), errors="coerce").to_numpy(np.float64)
    return pc.cast(arr, pa.float64(), safe=False).to_numpy(zero_copy_only=False)


def _errors(bad: np.ndarray, reason: str) -> np.ndarray | None:
    if not bad.any():
        return None
    err = np.full(bad.shape[0], None, dtype=object)
    err[bad] = reason
    return err


#: what int64 nanoseconds can hold (pandas' own limits, rounded inward); outside is unparseable here
_NS_MIN, _NS_MAX = "1678-01-01", "2261-12-31"


def _in_ns_range(parsed: pd.Series) -> pd.Series:
    """Blank out parsed times that nanoseconds cannot represent, instead of crashing or wrapping."""
    import pandas as pd

    naive = parsed.dt.tz_localize(None) if getattr(parsed.dt, "tz", None) is not None else parsed
    return parsed.where((naive >= pd.Timestamp(_NS_MIN)) & (naive <= pd.Timestamp(_NS_MAX)))


def parse_epoch(arr: pa.Array | pa.ChunkedArray, unit_ns: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Epoch numbers (ms when ``unit_ns`` is 1e6, s when 1e9) to UTC ns."""
    limit = np.iinfo(np.int64).max // unit_ns  # beyond it nanoseconds would wrap around silently
    if pa.types.is_integer(arr.type) and arr.null_count == 0:
        ints = np.asarray(arr.to_numpy(zero_copy_only=False), np.int64)  # no copy when already int64
        if not ints.size or (-limit < int(ints.min()) and int(ints.max()) < limit):  # two reductions, no temporary
            return ints * unit_ns, None
    vals = _to_numpy_float(arr)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(vals) | (np.abs(vals) >= limit)
    out = np.full(vals.shape[0], NAT, np.int64)
    out[~bad] = np.round(vals[~bad] * unit_ns).astype(np.int64)
    return out, _errors(bad, UNPARSEABLE)


def parse_iso(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """ISO-8601 strings with ``Z`` or an offset; a missing offset is an error (ambiguous)."""
    if pa.types.is_timestamp(arr.type):
        if arr.type.tz is None:
            raise ValueError("timestamps have no time zone; declare time_format: local")
        return pc.cast(arr, pa.timestamp("ns", "UTC")).to_numpy(zero_copy_only=False).astype(np.int64), None
    import pandas as pd

    s = pd.Series(np.asarray(arr.to_pylist(), dtype=object))
    has_offset = s.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True, na=False).to_numpy()
    parsed = _in_ns_range(pd.to_datetime(s.where(has_offset), utc=True, errors="coerce", format="ISO8601"))
    bad = parsed.isna().to_numpy()
    out = np.where(bad, NAT, parsed.to_numpy("datetime64[ns]").astype(np.int64))
    return out, _errors(bad, UNPARSEABLE)


def parse_timestamp(arr: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """An Arrow/Parquet timestamp column (any unit) to UTC ns: with a zone it is absolute, naive is UTC.

    Warehouse dumps and pandas' ``to_parquet`` store typed timestamps, so no text is parsed. A null, or a
    time that nanoseconds cannot hold (a ``us``/``ms`` column may reach past 2262), is ``unparseable_time``.
    """
    if not pa.types.is_timestamp(arr.type):
        raise ValueError(f"it holds {arr.type}, not timestamps; use time_format: iso, local, epoch_ms or epoch_s")
    per_unit = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[arr.type.unit]
    raw = pc.cast(arr, pa.int64())   # the stored count of units since 1970-01-01 UTC, whatever the zone
    limit = np.iinfo(np.int64).max // per_unit
    if not raw.null_count:   # the usual column: no null to find, and two reductions say whether any time is bad
        ints = np.asarray(raw.to_numpy(zero_copy_only=False), np.int64)
        if not ints.size or (ints.max() < limit and ints.min() > -limit):   # |t| < limit, with no |t| overflow
            return ints * per_unit, None
    ints = np.asarray(pc.fill_null(raw, 0).to_numpy(zero_copy_only=False), np.int64)
    bad = np.asarray(pc.is_null(raw).to_numpy(zero_copy_only=False), bool) | (np.abs(ints) >= limit)
    out = np.where(bad, NAT, ints * per_unit) if bad.any() else ints * per_unit
    return out, _errors(bad, UNPARSEABLE)


def has_offset(fmt: str | None) -> bool:
    """True when a strftime format reads a UTC offset or zone name (``%z``, ``%Z``): its times are absolute."""
    return fmt is not None and ("%z" in fmt or "%Z" in fmt)


def parse_with_offset(arr: pa.Array | pa.ChunkedArray, fmt: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Strings that carry their own offset (``fmt`` has ``%z``) to UTC ns; offsets may differ row to row."""
    import pandas as pd

    s = pd.Series(np.asarray(arr.to_pylist(), dtype=object))
    parsed = _in_ns_range(pd.to_datetime(s, format=fmt, utc=True, errors="coerce"))
    bad = parsed.isna().to_numpy()
    out = np.where(bad, NAT, parsed.to_numpy("datetime64[ns]").astype(np.int64))
    return out, _errors(bad, UNPARSEABLE)


def parse_local(arr: pa.Array | pa.ChunkedArray, fmt: str | None, tz: str,
                stream: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Naive local wall-clock strings in ``tz`` to UTC ns (DST rules in the module doc).

    A ``fmt`` with ``%z`` reads absolute times instead (:func:`parse_with_offset`); ``tz`` is then unused.
    """
    if has_offset(fmt):
        return parse_with_offset(arr, fmt)
    import pandas as pd

    s = pd.Series(np.asarray(arr.to_pylist(), dtype=object))
    naive = pd.to_datetime(s, format=fmt, errors="coerce") if fmt else pd.to_datetime(s, errors="coerce", format="mixed")
    naive = _in_ns_range(naive)
    unparseable = naive.isna().to_numpy()
    idx = pd.DatetimeIndex(naive).as_unit("ns")
    local = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    ambiguous = np.asarray(local.isna()) & ~unparseable
    if ambiguous.any():  # only then pay for the fold rule
        ambiguous &= ~np.asarray(idx.tz_localize(tz, ambiguous=True, nonexistent="NaT").isna())
        if ambiguous.any():
            earlier = np.ones(len(idx), bool)
            rows = np.flatnonzero(ambiguous)
            earlier[rows] = _earlier_instant(idx.asi8[rows], None if stream is None else np.asarray(stream)[rows])
            local = idx.tz_localize(tz, ambiguous=earlier, nonexistent="NaT")
    nonexistent = local.isna() & ~unparseable
    out = np.where(local.isna(), NAT, local.as_unit("ns").asi8)
    err = np.full(out.shape[0], None, dtype=object)
    err[unparseable] = UNPARSEABLE
    err[np.asarray(nonexistent)] = NONEXISTENT
    return out, (err if (unparseable.any() or nonexistent.any()) else None)


def _earlier_instant(wall_ns: np.ndarray, stream: np.ndarray | None) -> np.ndarray:
    """Per row: read an ambiguous wall time as the earlier instant? (rule in the module doc)

    Vectorized: rows are grouped by (stream, local date) in file order; a
    group turns "later" at its first backwards step, and any repeat of a
    wall value already seen in the stream is later too.
    """
    import pandas as pd

    n = wall_ns.shape[0]
    codes = np.zeros(n, np.int64) if stream is None else pd.factorize(stream)[0].astype(np.int64)
    _, first = np.unique(np.rec.fromarrays([codes, wall_ns]), return_index=True)
    first_seen = np.zeros(n, bool)
    first_seen[first] = True
    day = wall_ns // 86_400_000_000_000
    group = pd.factorize(np.rec.fromarrays([codes, day]))[0]
    order = np.argsort(group, kind="stable")
    g, w = group[order], wall_ns[order]
    back = np.zeros(n, bool)
    back[1:] = (g[1:] == g[:-1]) & (w[1:] < w[:-1])
    stepped = np.empty(n, bool)
    stepped[order] = pd.Series(back).groupby(g).cummax().to_numpy(bool)
    return first_seen & ~stepped


def minute_offsets(start_utc_ns: int, n_minutes: int, tz: str) -> np.ndarray:
    """UTC offset in minutes (int16) in force at each minute of a grid, DST aware; read-only.

    Offsets are looked up once per 15-minute block (every IANA transition
    falls on a quarter hour in UTC) and repeated, so a two-week grid costs a
    few hundred zone look-ups instead of 20,000. The participants of a cohort
    mostly share a zone and a study period, hence the same (day-aligned) grid:
    their offsets are computed once per process (rather than a pandas look-up
    per grid) and shared, which is why the array is read-only.
    """
    return _minute_offsets(int(start_utc_ns), int(n_minutes), tz)


@functools.lru_cache(maxsize=32)
def _minute_offsets(start_utc_ns: int, n_minutes: int, tz: str) -> np.ndarray:
    import pandas as pd

    block = 15
    start_min = start_utc_ns // 60_000_000_000
    lead = int(start_min % block)  # align blocks to UTC quarter hours
    n_blocks = -(-(n_minutes + lead) // block)
    first = pd.Timestamp((start_min - lead) * 60_000_000_000, unit="ns", tz="UTC")
    idx = pd.date_range(first, periods=n_blocks, freq=f"{block}min").as_unit("ns")
    local = idx.tz_convert(tz)
    offs = (local.tz_localize(None).asi8 - idx.tz_localize(None).asi8) // 60_000_000_000
    out = np.repeat(offs.astype(np.int16), block)[lead:lead + n_minutes]
    out.flags.writeable = False
    return out
