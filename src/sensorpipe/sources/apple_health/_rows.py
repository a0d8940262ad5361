"""Apple Health records -> native rows: the type table, per-minute interval expansion, the source rule.

Used by :mod:`sensorpipe.sources.apple_health`, whose docstring states the
rules. Per-row work arrays are kept few and narrow (an export can hold
millions of records): interval logic runs on the interval records only, and
the source rule only on channels that several sources feed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe.channels import CHANNELS
from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.core.refs import Participant
from sensorpipe.core.timeparse import NAT, UNPARSEABLE
from sensorpipe.sources.apple_health._xml import Columns
from sensorpipe.sources.base import repeat_string

MAX_INTERVAL_NS = 24 * 60 * MINUTE_NS
HK = "HKQuantityTypeIdentifier"
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
IN_BED = "HKCategoryValueSleepAnalysisInBed"
SLEEP_STAGES = {f"HKCategoryValueSleepAnalysis{k}": v for k, v in (
    ("Awake", 0), ("AsleepCore", 1), ("AsleepDeep", 2), ("AsleepREM", 3), ("AsleepUnspecified", 4), ("Asleep", 4))}
POINT, SPREAD, STAGES = 1, 2, 3


@dataclass(frozen=True)
class _Type:
    channel: str
    unit: str                       # schema unit of the native field
    apple_units: dict[str, float]   # unit attribute as written -> factor into ``unit``
    layout: int = POINT


TYPES = {
    HK + "HeartRate": _Type("heart_rate", "bpm", {"count/min": 1.0}),
    HK + "RestingHeartRate": _Type("resting_heart_rate", "bpm", {"count/min": 1.0}),
    HK + "HeartRateVariabilitySDNN": _Type("hrv_sdnn", "ms", {"ms": 1.0}),
    HK + "RespiratoryRate": _Type("respiratory_rate", "breaths/min", {"count/min": 1.0}),
    HK + "OxygenSaturation": _Type("spo2", "fraction", {"%": 1.0}),
    HK + "StepCount": _Type("steps", "count", {"count": 1.0}, SPREAD),
    HK + "ActiveEnergyBurned": _Type("calories", "kcal", {"kcal": 1.0, "Cal": 1.0, "kJ": 1 / 4.184}, SPREAD),
    SLEEP: _Type("sleep_stage", "stage code", {}, STAGES),
}


class Rows:
    """Columns of one export -> native tables: one row per point record, intervals expanded per minute."""

    def __init__(self, c: Columns, prefer: tuple[str, ...]) -> None:
        self.c = c
        self.names = list(c.type_names)
        spec = [TYPES.get(n) for n in c.type_names]
        self.layout_of = np.array([s.layout if s else 0 for s in spec], np.int8)
        self.channel_of = np.array([list(CHANNELS).index(s.channel) if s else -1 for s in spec], np.int16)
        # per (type, unit code; -1 = none): factor into the schema unit, NaN = keep the unit for validation
        self.factor_of = np.array([[s.apple_units.get(u, np.nan) if s else np.nan for u in c.unit_names] + [np.nan]
                                   for s in spec]).reshape(len(spec), len(c.unit_names) + 1)
        low = [p.lower() for p in prefer]
        self.rank_of = np.array([next((i for i, p in enumerate(low) if p in s.lower()), len(low))
                                 for s in c.source_names], np.int16)

    def _rename(self, codes: np.ndarray, mask: np.ndarray, prefix: str) -> None:
        """Give rows in ``mask`` the field ``prefix + <their type>`` (in place)."""
        for code in np.unique(codes[mask]):
            new = prefix + self.names[code]
            if new not in self.names:
                self.names.append(new)
            codes[mask & (codes == code)] = self.names.index(new)

    def tables(self, participant: Participant, source_file: str) -> list[pa.Table]:
        c = self.c
        layout = self.layout_of[c.type_code]
        field = c.type_code.copy()
        single = np.ones(field.size, bool)
        iv = np.flatnonzero(layout >= SPREAD)
        broken = iv[:0]  # interval records with a broken start or end: one row, no instant
        if iv.size:
            s, e, lay = c.start_ns[iv], c.end_ns[iv], layout[iv]
            ok = (s != NAT) & (e != NAT)
            num = np.full(iv.size, np.nan)
            num[lay == SPREAD] = _to_float(c.value.take(pa.array(iv[lay == SPREAD])))
            in_bed = (lay == STAGES) & np.asarray(pc.equal(c.value.take(pa.array(iv)), IN_BED).fill_null(False))
            too_long = ok & (e - s > MAX_INTERVAL_NS)
            expand = ok & ~too_long & ~in_bed & ~((lay == SPREAD) & np.isnan(num))
            f = field[iv]
            self._rename(f, in_bed, "in_bed:")
            self._rename(f, too_long, "over_24h:")
            field[iv] = f
            broken = iv[~ok]
            single[iv[expand]] = False
            sp, st = expand & (lay == SPREAD), expand & (lay == STAGES)
            rows, t, rep, share = _expand(s[sp], e[sp], iv[sp])
            groups = [(rows, t, num[sp][rep] * share), _expand(s[st], e[st], iv[st])[:3]]
        else:
            groups = [_expand(c.start_ns[:0], c.end_ns[:0], iv)[:3]] * 2
        one = np.flatnonzero(single) if not single.all() else None
        t_one = c.start_ns.copy() if one is None else c.start_ns[one]
        t_one[broken if one is None else np.searchsorted(one, broken)] = NAT
        del single
        groups.insert(0, (one, t_one, None))
        sup = self._superseded(groups, layout)
        out = []
        for gi, ((rows, t_g, spread), sup_g) in enumerate(zip(groups, sup)):
            f = field if rows is None else field[rows]
            if sup_g is not None:
                self._rename(f, sup_g, "superseded:")
            if rows is None or rows.size:
                out.append(self._table(gi, rows, t_g, spread, f, participant, source_file))
        names = pa.array(self.names, pa.string())
        return [t.set_column(1, "field", pa.DictionaryArray.from_arrays(t.column(1).combine_chunks(), names))
                for t in out]

    def _superseded(self, groups, layout: np.ndarray) -> list[np.ndarray | None]:
        """The source rule: per channel and minute only the best-ranked source's rows count."""
        c = self.c
        per = []
        for gi, (rows, t, _) in enumerate(groups):
            r = slice(None) if rows is None else rows
            ch = self.channel_of[c.type_code[r]]
            valid = (ch >= 0) & (t != NAT)
            if gi == 0:
                valid &= layout[r] == POINT  # unexpanded intervals are quarantined: they outrank nobody
            per.append((ch, self.rank_of[c.source_code[r]], t, valid))
        seen = np.zeros((len(CHANNELS), int(self.rank_of.max(initial=0)) + 1), bool)  # channel x source rank
        for ch, rk, _, v in per:
            seen[ch[v], rk[v]] = True
        multi = np.flatnonzero(seen.sum(axis=1) > 1)
        if not multi.size:
            return [None, None, None]
        need = [v & np.isin(ch, multi) for ch, _, _, v in per]
        key = np.concatenate([(t[n] // MINUTE_NS) * 64 + ch[n] for (ch, _, t, _), n in zip(per, need)])
        rank = np.concatenate([rk[n] for (_, rk, _, _), n in zip(per, need)])
        _, inv = np.unique(key, return_inverse=True)
        best = np.full(inv.max() + 1, np.iinfo(np.int16).max, np.int16)
        np.minimum.at(best, inv, rank)
        lost, out, start = rank > best[inv], [], 0
        for n in need:
            sup = np.zeros(n.size, bool)
            sup[n] = lost[start:start + int(n.sum())]
            start += int(n.sum())
            out.append(sup)
        return out

    def _table(self, group: int, rows: np.ndarray | None, t: np.ndarray, spread: np.ndarray | None,
               field: np.ndarray, participant: Participant, source_file: str) -> pa.Table:
        c = self.c
        take = None if rows is None else pa.array(rows)
        n = c.row.size if rows is None else rows.size
        r = slice(None) if rows is None else rows
        codes = c.unit_code[r]
        flat = c.type_code[r] * np.int32(self.factor_of.shape[1]) + np.where(codes < 0, self.factor_of.shape[1] - 1,
                                                                             codes).astype(np.int32)
        factor = self.factor_of.ravel()[flat] if group == 1 else None  # unit code -1: the last column (NaN)
        time = c.start_text if take is None else c.start_text.take(take)
        err = pa.nulls(n, pa.string())
        if group == 0:  # one row per element: value and unit verbatim (a known Apple unit -> the schema's)
            bad = t == NAT
            if bad.any():
                pos = np.arange(n) if rows is None else rows
                k = np.minimum(np.searchsorted(c.bad_end_pos, pos), max(c.bad_end_pos.size - 1, 0))
                hit = c.bad_end_pos[k] == pos if c.bad_end_pos.size else np.zeros(n, bool)
                end = c.bad_end_text.take(pa.array(k, mask=~hit))  # null unless the endDate is broken
                with_end = pc.binary_join_element_wise(time, end, "/")
                interval = pa.array(self.layout_of[c.type_code[r]] >= SPREAD)
                time = pc.if_else(interval, pc.coalesce(with_end, time), time)
                err = pc.if_else(pa.array(bad), pa.scalar(UNPARSEABLE), err)
            value = c.value if take is None else c.value.take(take)
            unit_ok = (self.factor_of == 1.0).ravel()[flat]
        elif group == 1:  # spread intervals: the record's share of each minute, converted to the schema unit
            unit_ok = ~np.isnan(factor)
            value = pa.array(spread * np.where(unit_ok, factor, 1.0))
        else:  # sleep stages: the stage text per minute
            value = c.value.take(take)
            unit_ok = np.ones(n, bool)
        if unit_ok.all():
            unit = pa.nulls(n, pa.string())
        else:
            names = pa.array(c.unit_names + [None], pa.string())
            unit = pc.if_else(pa.array(unit_ok), pa.scalar(None, pa.string()), names.take(pa.array(flat % (
                len(c.unit_names) + 1))))
        return pa.table({
            "participant_id": repeat_string(participant.participant_id, n),
            "field": pa.array(field.astype(np.int32)),
            "time": time,
            "t_utc_ns": pa.array(t, pa.int64()),
            "time_error": err,
            "value": value,
            "unit": unit,
            "source_file": repeat_string(source_file, n),
            "source_row": pa.array(c.row[r]),
        })


def _to_float(text: pa.Array) -> np.ndarray:
    try:
        return pc.cast(text, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:  # some value is not a number: NaN for those
        import pandas as pd

        return pd.to_numeric(pd.Series(text.to_pylist(), dtype=object), errors="coerce").to_numpy(np.float64)


def _expand(start: np.ndarray, end: np.ndarray, recs: np.ndarray):
    """Per-minute pieces of intervals ``recs``: record index, instant, position in ``recs``, share of the interval.

    A piece starts at the interval start or at a minute start inside the interval, so two back-to-back
    intervals never give the same instant; a zero-length interval is one piece with the whole value.
    """
    s, e = start, end
    m0 = s // MINUTE_NS
    n = np.maximum(-(-e // MINUTE_NS) - m0, 1)
    rep = np.repeat(np.arange(recs.size), n)
    k = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)
    minute = (m0[rep] + k) * MINUTE_NS
    lo = np.maximum(s[rep], minute)
    hi = np.minimum(e[rep], minute + MINUTE_NS)
    d = (e - s)[rep]
    share = np.where(d > 0, (hi - lo) / np.where(d > 0, d, 1), 1.0)
    return recs[rep], lo, rep, share
