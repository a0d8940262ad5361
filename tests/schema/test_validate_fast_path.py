"""The all-valid fast path of validation gives exactly what the per-row checks give, and steps aside on any fault."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sensorpipe.schema import validate as V
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources.base import NATIVE_COLUMNS, repeat_string

SCHEMA = SourceSchema("long_table", 1, "epoch_ms", (
    FieldSpec("hr", "heart_rate", "bpm"), FieldSpec("steps", "steps", "steps/min"),
    FieldSpec("temp_f", "skin_temperature", "degF"), FieldSpec("hr2", "heart_rate", "bpm")))
T0 = 1_709_528_400 * 10**9  # 2024-03-04 UTC


def _part(fields: list[str], t_ns: np.ndarray, values: np.ndarray, pid: str = "p1") -> pa.Table:
    n = len(fields)
    names = sorted(set(fields))
    codes = np.array([names.index(f) for f in fields], np.int32)
    cols = {
        "participant_id": repeat_string(pid, n),
        "field": pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(names, pa.string())),
        "time": pa.array(t_ns // 10**6), "t_utc_ns": pa.array(t_ns, pa.int64()),
        "time_error": pa.nulls(n, pa.string()), "value": pa.array(values, pa.float64()),
        "unit": pa.nulls(n, pa.string()), "source_file": repeat_string("/data/p1.parquet", n),
        "source_row": pa.array(np.arange(n, dtype=np.int64)),
    }
    return pa.table(cols).select(list(NATIVE_COLUMNS))


def _sorted_part(per_field: int = 50, **kw) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Rows grouped by field, time increasing within each: what long exports look like."""
    fields, t, v = [], [], []
    for name, value in (("hr", 70.0), ("steps", 12.0), ("temp_f", 91.4)):
        fields += [name] * per_field
        t.append(T0 + np.arange(per_field, dtype=np.int64) * 60 * 10**9)
        v.append(value + np.arange(per_field) % 5)
    return fields, np.concatenate(t), np.concatenate(v)


def _both(part: pa.Table, monkeypatch) -> tuple[tuple, tuple]:
    fast = V._validate_part(part, SCHEMA, clipped_fast := {}, 7)
    with monkeypatch.context() as m:
        m.setattr(V, "_clean_part", lambda *a: None)
        slow = V._validate_part(part, SCHEMA, clipped_slow := {}, 7)
    assert clipped_fast == clipped_slow
    return fast, slow


def _assert_same(fast: tuple, slow: tuple) -> None:
    (of, qf, cf, ff, _), (os_, qs, cs, fs, _) = fast, slow
    for k in ("channel", "t_utc_ns", "value", "file_index", "source_row", "native_index"):
        a, b = getattr(of, k), getattr(os_, k)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), k
    assert of.files == os_.files
    pd.testing.assert_frame_equal(qf.to_pandas(), qs.to_pandas())   # a quarantined NaN value equals itself here
    assert qf.schema == qs.schema and cf == cs and ff == fs


def test_fast_path_matches_per_row_checks_on_valid_rows(monkeypatch):
    fields, t, v = _sorted_part()
    part = _part(fields, t, v)
    assert V._clean_part(part, SCHEMA, 7) is not None  # the fast path is taken
    fast, slow = _both(part, monkeypatch)
    _assert_same(fast, slow)
    obs = fast[0]
    assert fast[4] == V.SORTED and fast[3] == {"/data/p1.parquet": 150}
    temp = obs.value[obs.channel == V.CHANNEL_INDEX["skin_temperature"]]
    np.testing.assert_allclose(temp[:5], (np.array([91.4, 92.4, 93.4, 94.4, 95.4]) - 32) * 5 / 9)
    assert np.array_equal(obs.native_index, np.arange(7, 157))


def test_fast_path_copies_values_only_to_convert_and_never_changes_the_input(monkeypatch):
    """Values in canonical units are taken as Arrow's buffer (no copy); a unit conversion works on a copy."""
    fields, t, v = _sorted_part()
    keep = np.array([f != "temp_f" for f in fields])
    plain = _part([f for f, k in zip(fields, keep) if k], t[keep], v[keep])
    obs, _ = V._clean_part(plain, SCHEMA, 0)
    assert np.shares_memory(obs.value, plain.column("value").chunk(0).to_numpy())   # zero copy
    _assert_same(*_both(plain, monkeypatch))
    part = _part(fields, t, v)
    before = part.column("value").to_numpy().copy()
    obs, _ = V._clean_part(part, SCHEMA, 0)
    assert not np.shares_memory(obs.value, part.column("value").chunk(0).to_numpy())
    assert np.array_equal(part.column("value").to_numpy(), before)                   # degF still in the input
    _assert_same(*_both(part, monkeypatch))


def test_an_unused_unknown_name_in_the_dictionary_keeps_the_fast_path(monkeypatch):
    fields, t, v = _sorted_part()
    part = _part(fields, t, v)
    names = part.column("field").chunk(0).dictionary.to_pylist() + ["blood_pressure"]  # no row uses it
    idx = part.column("field").chunk(0).indices
    part = part.set_column(part.schema.get_field_index("field"), "field",
                           pa.DictionaryArray.from_arrays(idx, pa.array(names, pa.string())))
    assert V._clean_part(part, SCHEMA, 7) is not None
    _assert_same(*_both(part, monkeypatch))


def test_fast_path_reports_unsorted_or_split_streams(monkeypatch):
    fields, t, v = _sorted_part()
    t[10] = t[9]  # a repeated instant: not strictly increasing, but duplicates stay adjacent
    assert V._clean_part(_part(fields, t, v), SCHEMA, 0)[1] == V.GROUPED
    t[20] = t[5]  # a step back in time
    assert V._clean_part(_part(fields, t, v), SCHEMA, 0)[1] == V.UNSORTED
    fields2 = fields[:25] + ["hr2"] * 25 + fields[50:]  # one channel fed by two fields: two runs
    ok, order = V._clean_part(_part(fields2, *_sorted_part()[1:]), SCHEMA, 0)
    assert order == V.UNSORTED and len(ok) == 150


def _duplicates_reference(c, t, v):
    """The original formulation: lexsort, then min/max per (channel, time) group with ufunc.at."""
    n = c.size
    order = np.lexsort((np.arange(n), t, c))
    cs, ts, vs = c[order], t[order], v[order]
    same_prev = np.zeros(n, bool)
    same_prev[1:] = (cs[1:] == cs[:-1]) & (ts[1:] == ts[:-1])
    group = np.cumsum(~same_prev) - 1
    vmin, vmax = np.full(group[-1] + 1, np.inf), np.full(group[-1] + 1, -np.inf)
    np.minimum.at(vmin, group, vs)
    np.maximum.at(vmax, group, vs)
    conflicting = (vmax > vmin)[group]
    code = np.zeros(n, np.int8)
    code[order[same_prev & ~conflicting]] = V._CODE["exact_duplicate"]
    code[order[conflicting]] = V._CODE["conflicting_duplicate"]
    return code


def test_duplicates_match_the_reference_in_every_order():
    rng = np.random.default_rng(5)
    for trial in range(80):
        n = int(rng.integers(2, 500))
        c = rng.integers(0, 3, n).astype(np.int16)
        t = T0 + rng.integers(0, n // 2 + 1, n).astype(np.int64) * 10**9
        v = rng.integers(60, 63, n).astype(np.float64)
        grouped = trial % 2 == 1
        if grouped:
            o = np.lexsort((t, c))
            c, t, v = c[o], t[o], v[o]
        obs = V.Observations(c, t, v, np.zeros(n, np.int32), np.arange(n, dtype=np.int64), ["f"], np.arange(n))
        ref = _duplicates_reference(c.astype(np.int64), t, v)
        for hint in ((False, True) if grouped else (False,)):
            keep, reasons = V._duplicates(obs, grouped=hint)
            assert np.array_equal(keep, ref == 0)
            assert (reasons is None and not (ref != 0).any()) or np.array_equal(reasons, ref[ref != 0])


@pytest.mark.parametrize("fault", ["nan", "out_of_range", "implausible_time", "unknown_field", "blank_participant",
                                   "clip"])
def test_fast_path_steps_aside_on_any_fault(fault, monkeypatch):
    fields, t, v = _sorted_part()
    pid = "p1"
    if fault == "nan":
        v[3] = np.nan
    elif fault == "out_of_range":
        v[60] = 400.0  # steps above 300/min: quarantined
    elif fault == "implausible_time":
        t[5] = 10**9
    elif fault == "unknown_field":
        fields[120] = "blood_pressure"
    elif fault == "blank_participant":
        pid = "  "
    elif fault == "clip":
        v[:3] = 300.0  # heart rate above 250: quarantined (the fast path never clips)
    part = _part(fields, t, v, pid)
    assert V._clean_part(part, SCHEMA, 0) is None
    fast, slow = _both(part, monkeypatch)
    _assert_same(fast, slow)
    assert sum(fast[2].values()) > 0  # the per-row checks named the reason


def test_channel_time_order_groups_like_a_lexsort():
    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(2, 400))
        c = rng.integers(0, 4, n).astype(np.int64)
        t = rng.integers(0, 50, n).astype(np.int64) * 10**9 + T0
        if trial % 2:  # one run per channel, time not decreasing: the no-sort case
            o = np.lexsort((t, c))
            c, t = c[o], t[o]
        order = V._channel_time_order(c, t)
        if order is None:  # already grouped: identity
            assert trial % 2
            order = np.arange(n)
        ref = np.lexsort((np.arange(n), t, c))
        # same groups of equal (channel, time), each in row order, adjacent
        key = lambda idx: [tuple(idx[(c[idx] == ci) & (t[idx] == ti)]) for ci, ti in sorted(set(zip(c, t)))]  # noqa: E731
        assert key(order) == key(ref)
        pos = np.empty(n, np.int64)
        pos[order] = np.arange(n)
        for ci, ti in set(zip(c.tolist(), t.tolist())):
            p = np.sort(pos[(c == ci) & (t == ti)])
            assert p[-1] - p[0] == p.size - 1  # contiguous


def test_quarantine_counts_per_file_and_reason_like_a_groupby():
    import pandas as pd
    import pyarrow as pa

    from sensorpipe.schema.validate import quarantine_counts

    files = ["b.csv", "a.csv", "b.csv", None, "a.csv", "a.csv"]
    reasons = ["out of range", "unparseable time", "out of range", "duplicate", None, "unparseable time"]
    table = pa.table({"source_file": pa.array(files).dictionary_encode(), "reason": reasons, "value": list("123456")})
    want = pd.DataFrame({"f": files, "r": reasons}).groupby(["f", "r"]).size()   # skips rows with a null key
    assert quarantine_counts(table) == [[f, r, int(n)] for (f, r), n in want.items()] == [
        ["a.csv", "unparseable time", 2], ["b.csv", "out of range", 2]]
    assert quarantine_counts(table.slice(0, 0)) == []
