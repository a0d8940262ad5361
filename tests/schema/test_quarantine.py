"""Quarantined rows keep typed values typed, and the reader renders exactly the text the old eager cast gave."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from sensorpipe import read_quarantine
from sensorpipe.config import SourceConfig
from sensorpipe.schema.quarantine import QUARANTINE_SCHEMA, QUARANTINE_TEXT_SCHEMA, keep_typed, quarantine_text
from sensorpipe.schema.validate import validate_unit
from sensorpipe.sources.base import make_adapter

T0_MS = 1_709_528_400_000  # 2024-03-04 05:00 UTC

COLUMNS = {   # every kind of column an adapter hands over as ``time`` or ``value``, with a null in each
    "int64": pa.array([72, None, -3, 2**40], pa.int64()),
    "int32": pa.array([72, None, -3, 7], pa.int32()),
    "uint8": pa.array([0, 255, None, 7], pa.uint8()),
    "uint64_past_int64": pa.array([2**64 - 1, 1, None, 7], pa.uint64()),   # falls back to text
    "float64": pa.array([72.5, float("nan"), None, 1.7e12], pa.float64()),
    "float32": pa.array([0.1, 72.5, None, -1e30], pa.float32()),
    "epoch_ms": pa.array([T0_MS, T0_MS + 1, None, 0], pa.int64()),
    "timestamp_ms_utc": pa.array([T0_MS, T0_MS + 1, None, 0], pa.timestamp("ms", "UTC")),
    "timestamp_ns_naive": pa.array([T0_MS * 10**6, 1, None, 0], pa.timestamp("ns")),
    "timestamp_s_berlin": pa.array([T0_MS // 1000, 1, None, 0], pa.timestamp("s", "Europe/Berlin")),
    "text": pa.array(["72", "seventy", None, ""], pa.string()),
    "dictionary_text": pa.array(["HIGH", "LO", None, "HIGH"]).dictionary_encode(),
    "boolean": pa.array([True, False, None, True]),
    "all_null": pa.nulls(4, pa.string()),
}


def _stored(col: pa.Array, name: str = "value") -> pa.Table:
    n = len(col)
    other = "time" if name == "value" else "value"
    text = pa.array(["x"] * n, pa.string())
    cols = {"source": text, "participant_id": text, "field": text, **keep_typed(pa.chunked_array([col]), name),
            **keep_typed(pa.chunked_array([text]), other), "unit": pa.nulls(n, pa.string()), "source_file": text,
            "source_row": pa.array(np.arange(n, dtype=np.int64)), "reason": text}
    return pa.table(cols).select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA)


@pytest.mark.parametrize("name", ["time", "value"])
@pytest.mark.parametrize("kind", list(COLUMNS))
def test_reader_renders_the_text_of_the_eager_cast(kind, name, tmp_path):
    col = COLUMNS[kind]
    stored = _stored(col, name)
    pq.write_table(stored, tmp_path / "q.parquet")
    shown = read_quarantine(tmp_path / "q.parquet")
    assert shown.schema == QUARANTINE_TEXT_SCHEMA
    assert shown.column(name).to_pylist() == pc.cast(col, pa.string()).to_pylist()   # what was stored before


@pytest.mark.parametrize("kind, column", [("int64", "value_int"), ("int32", "value_int"),
                                          ("timestamp_ms_utc", "value_int"), ("float64", "value_float"),
                                          ("float32", "value_float")])
def test_numbers_are_stored_as_numbers_not_text(kind, column):
    stored = _stored(COLUMNS[kind])
    assert stored.column("value").null_count == stored.num_rows                      # no text made while running
    assert stored.column(column).null_count == COLUMNS[kind].null_count
    assert set(stored.column("value_type").to_pylist()) == {str(COLUMNS[kind].type)}


def test_rows_of_different_types_render_side_by_side():
    parts = [_stored(COLUMNS[k]) for k in ("int64", "float64", "text", "timestamp_ms_utc", "boolean")]
    shown = quarantine_text(pa.concat_tables(parts))
    expected = sum((pc.cast(COLUMNS[k], pa.string()).to_pylist()
                    for k in ("int64", "float64", "text", "timestamp_ms_utc", "boolean")), [])
    assert shown.column("value").to_pylist() == expected
    assert shown.column("value").to_pylist()[:2] == ["72", None]
    assert shown.column("value").to_pylist()[4:8] == ["72.5", "nan", None, "1.7e+12"]


def _typed_parquet_source(tmp_path) -> SourceConfig:
    """A warehouse-style Parquet export with typed columns (timestamp time, float and int values) and faults."""
    n = 400
    t = T0_MS + np.arange(n, dtype=np.int64) * 60_000
    t[5::60] = 0                     # implausible_time (1970)
    t[11] = t[10]                    # conflicting duplicates (the values differ)
    hr = 60.0 + np.arange(n) % 40
    hr[::7] = 400.5                  # out_of_range
    hr[3::50] = np.nan               # missing_value
    steps = (np.arange(n) % 90).astype(np.int64)
    steps[::9] = 5000                # out_of_range, an integer column
    (tmp_path / "d").mkdir()
    for pid in ("p1", "p2"):
        table = pa.table({"participant": pa.array([pid] * n), "t": pa.array(t, pa.timestamp("ms", "UTC")),
                          "hr": pa.array(hr, pa.float64()), "steps": pa.array(steps, pa.int64())})
        pq.write_table(table, tmp_path / "d" / f"{pid}.parquet")
    return SourceConfig(name="warehouse", adapter="long_table", path=str(tmp_path / "d"), options={
        "tz": "UTC",
        "files": [{"glob": "*.parquet", "participant_column": "participant", "time_column": "t",
                   "time_format": "iso", "value_columns": ["hr", "steps"]}],
        "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}, "steps": {"channel": "steps", "unit": "steps/min"}}})


def test_typed_parquet_quarantine_matches_the_eager_text(tmp_path):
    """On a faulty typed export the stored rows hold no text, and the reader gives, row by row, the text the
    previous eager cast of the native columns gave."""
    adapter = make_adapter(_typed_parquet_source(tmp_path), str(tmp_path))
    total = 0
    for unit in adapter.list_units():
        inp = adapter.read_unit(unit)
        res = validate_unit(inp, adapter.schema())
        stored = res.stored_quarantine
        assert stored.num_rows == res.rows_quarantined > 100
        assert res.rows_in == len(res.observations) + stored.num_rows
        assert stored.column("time").null_count == stored.column("value").null_count == stored.num_rows
        eager = {}
        for part in inp.native:   # the old behaviour: every column cast to text
            keys = zip(part.column("field").to_pylist(), part.column("source_row").to_pylist())
            eager.update(zip(keys, zip(pc.cast(part.column("time"), pa.string()).to_pylist(),
                                       pc.cast(part.column("value"), pa.string()).to_pylist())))
        shown = res.quarantine.to_pylist()
        assert {r["reason"] for r in shown} >= {"out_of_range", "missing_value", "implausible_time",
                                                "conflicting_duplicate"}
        for r in shown:
            assert (r["time"], r["value"]) == eager[(r["field"], r["source_row"])]
        steps_text = {r["value"] for r in shown if r["field"] == "steps"}
        assert "5000" in steps_text and not any("." in v for v in steps_text)   # ints, not "5000.0"
        assert "400.5" in {r["value"] for r in shown if r["field"] == "hr"}
        total += stored.num_rows
    assert total > 200
