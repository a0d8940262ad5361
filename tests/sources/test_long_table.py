"""Generic long/wide adapter: column mapping, per-row units and zones, wide files."""

from __future__ import annotations

import numpy as np

from sensorpipe.schema.validate import CHANNEL_NAMES, validate_unit
from sensorpipe.sources.base import make_adapter
from tests.sources.adapter_case import AdapterCase

OPTIONS = {
    "files": [
        {"glob": "long/*.csv", "participant_column": "participant", "field_column": "field",
         "time_column": "local_time", "time_format": "local", "local_time_format": "%Y-%m-%d %H:%M:%S",
         "tz_column": "zone", "value_column": "value", "unit_column": "unit"},
        {"glob": "wide/*.tsv", "time_column": "timestamp", "time_format": "epoch_ms", "value_columns": ["hr", "steps"],
         "delimiter": "\t"},
    ],
    "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}, "steps": {"channel": "steps", "unit": "steps/min"},
               "glucose": {"channel": "glucose", "unit": "mg/dL"}},
}


class TestLongTable(AdapterCase):
    ADAPTER = "long_table"
    DUMMY = "long_table"
    OPTIONS = OPTIONS
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 3
    # p1: hr 01:58, 01:59, 03:00 + 2 glucose; p2: hr + 1 step row; p3 (wide): 12 hr + 12 steps
    EXPECTED_CHANNELS = {"heart_rate": 4 + 12, "glucose": 2, "steps": 1 + 12}
    EXPECTED_REASONS = {"nonexistent_local_time": 1, "wrong_type": 1, "unparseable_time": 1, "unknown_field": 1,
                        "out_of_range": 1}


def _observations(adapter, pid):
    unit = next(u for u in adapter.list_units() if u.participant.participant_id == pid)
    res = validate_unit(adapter.read_unit(unit), adapter.schema())
    obs = res.observations
    return {(CHANNEL_NAMES[c], int(t // 60_000_000_000)): v for c, t, v in zip(obs.channel, obs.t_utc_ns, obs.value)}


def _utc_min(s: str) -> int:
    return int(np.datetime64(s, "m").astype(np.int64))


def test_local_times_per_row_zone_and_units():
    case = TestLongTable()
    adapter = make_adapter(case.source(case.dummy()), str(case.dummy()))
    p1 = _observations(adapter, "p1")
    assert p1[("heart_rate", _utc_min("2024-03-10T06:59"))] == 62      # 01:59 EST
    assert p1[("heart_rate", _utc_min("2024-03-10T07:00"))] == 64      # 03:00 EDT: one real minute later
    assert abs(p1[("glucose", _utc_min("2024-03-10T07:01"))] - 5.5 * 18.0156) < 1e-9   # mmol/L row converted
    assert p1[("glucose", _utc_min("2024-03-10T07:06"))] == 101
    p2 = _observations(adapter, "p2")
    assert p2[("heart_rate", _utc_min("2024-03-10T08:00"))] == 70      # Berlin is UTC+1 in March


def test_wide_file_reads_like_long():
    case = TestLongTable()
    adapter = make_adapter(case.source(case.dummy()), str(case.dummy()))
    unit = next(u for u in adapter.list_units() if u.participant.participant_id == "p3")
    res = validate_unit(adapter.read_unit(unit), adapter.schema())
    obs = res.observations
    hr = obs.value[[CHANNEL_NAMES[c] == "heart_rate" for c in obs.channel]]
    assert hr.tolist() == [70 + i % 5 for i in range(12)]
    assert obs.t_utc_ns.min() == 1_710_054_000_000 * 1_000_000
    assert set(obs.source_row.tolist()) == set(range(2, 14))        # line numbers of the TSV rows


def test_fall_back_hour_in_a_local_time_file(tmp_path):
    """A CSV in New York wall clock through 2024-11-03: the repeated hour is read once each way."""
    rows = ["participant,local_time,field,value"]
    wall = ["00:58", "01:00", "01:30", "01:59", "01:00", "01:30", "01:59", "02:00"]
    rows += [f"p1,2024-11-03 {w}:00,hr,{60 + i}" for i, w in enumerate(wall)]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "hr.csv").write_text("\n".join(rows) + "\n")
    from sensorpipe.config import SourceConfig

    src = SourceConfig("fb", "long_table", str(tmp_path / "d"), options={
        "tz": "America/New_York",
        "files": [{"glob": "*.csv", "participant_column": "participant", "field_column": "field",
                   "time_column": "local_time", "time_format": "local", "local_time_format": "%Y-%m-%d %H:%M:%S",
                   "value_column": "value"}],
        "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}}})
    adapter = make_adapter(src, str(tmp_path))
    (unit,) = adapter.list_units()
    res = validate_unit(adapter.read_unit(unit), adapter.schema())
    assert res.rows_quarantined == 0
    utc = [str(np.datetime64(int(t), "ns").astype("datetime64[m]")) for t in res.observations.t_utc_ns]
    assert utc == ["2024-11-03T04:58", "2024-11-03T05:00", "2024-11-03T05:30", "2024-11-03T05:59",
                   "2024-11-03T06:00", "2024-11-03T06:30", "2024-11-03T06:59", "2024-11-03T07:00"]


def test_local_time_format_with_offset_is_absolute_across_dst(tmp_path):
    """``%z`` in local_time_format: each row carries its offset, so it is placed as written; the local
    offset of the output still follows the participant's zone (Berlin, spring forward and fall back 2021)."""
    import pandas as pd
    import pyarrow.parquet as pq
    import yaml

    from sensorpipe.cli import main

    rows = ["participant,time,field,value",
            "p1,2021-03-28 01:59:00+0100,hr,60",      # CET, the last minute before the change
            "p1,2021-03-28 03:00:00+0200,hr,61",      # CEST: one real minute later
            "p1,2021-03-28 03:01:00+02:00,hr,62",     # colon in the offset is read too
            "p1,2021-03-28 02:30:00,hr,63",           # no offset: not what the format says, unparseable
            "p1,2021-10-31 02:30:00+0200,hr,64",      # the repeated hour, first pass (CEST)
            "p1,2021-10-31 02:30:00+0100,hr,65"]      # and second pass (CET): a different instant, no guessing
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "hr.csv").write_text("\n".join(rows) + "\n")
    opts = {"files": [{"glob": "*.csv", "participant_column": "participant", "field_column": "field",
                       "time_column": "time", "time_format": "local", "local_time_format": "%Y-%m-%d %H:%M:%S%z",
                       "value_column": "value"}],
            "fields": {"hr": {"channel": "heart_rate", "unit": "bpm"}}}
    (tmp_path / "opts.yaml").write_text(yaml.safe_dump(opts))
    out = tmp_path / "hr.parquet"
    assert main(["convert", "--source", "long_table", str(tmp_path / "d"), "-o", str(out), "--options",
                 str(tmp_path / "opts.yaml"), "--tz", "Europe/Berlin"]) == 0
    df = pq.read_table(out).to_pandas().sort_values("t_utc")
    assert df.value.tolist() == [60, 61, 62, 64, 65]
    assert [str(t) for t in df.t_utc.dt.strftime("%Y-%m-%d %H:%M")] == [
        "2021-03-28 00:59", "2021-03-28 01:00", "2021-03-28 01:01", "2021-10-31 00:30", "2021-10-31 01:30"]
    assert df.tz_offset_min.tolist() == [60, 120, 120, 120, 60]
    q = pq.read_table(tmp_path / "hr.quarantine.parquet").to_pandas()
    assert q.reason.tolist() == ["unparseable_time"] and q.time.tolist() == ["2021-03-28 02:30:00"]
    assert pd.api.types.is_datetime64_any_dtype(df.t_utc)



def _timestamp_adapter(folder, table):
    """A long_table source over one Parquet file whose ``t_utc`` is a typed timestamp column."""
    import pyarrow.parquet as pq

    from sensorpipe.config import SourceConfig

    folder.mkdir()
    pq.write_table(table, folder / "all.parquet")
    src = SourceConfig("wh", "long_table", str(folder), options={
        "tz": "UTC",
        "files": [{"glob": "*.parquet", "participant_column": "participant_id", "field_column": "channel",
                   "time_column": "t_utc", "time_format": "timestamp", "value_column": "value"}],
        "fields": {"heart_rate": {"channel": "heart_rate", "unit": "bpm"}}})
    return make_adapter(src, str(folder))


def test_timestamp_column_with_a_zone_is_absolute_and_naive_is_utc(tmp_path):
    """``time_format: timestamp``: a typed column, as the LSM baseline's long file and pandas write it. The
    same three instants typed four ways land on the same UTC minutes."""
    import pandas as pd
    import pyarrow as pa

    utc = np.array(["2024-03-01T00:00:20", "2024-03-01T00:01:40", "2024-03-01T00:03:00"], "datetime64[ns]")
    typed = {
        "utc_ns": pa.array(utc, pa.timestamp("ns", "UTC")),
        "naive_us": pa.array(utc.astype("datetime64[us]"), pa.timestamp("us")),     # naive: read as UTC
        "berlin_ms": pa.array(utc.astype("datetime64[ms]"), pa.timestamp("ms", "UTC")).cast(
            pa.timestamp("ms", "Europe/Berlin")),                                    # stored instants, shown +01:00
        "utc_s": pa.array(utc.astype("datetime64[s]"), pa.timestamp("s", "UTC")),
    }
    assert str(typed["berlin_ms"].to_pandas()[0]) == "2024-03-01 01:00:20+01:00"
    expect = {("heart_rate", _utc_min("2024-03-01T00:00")): 60.0, ("heart_rate", _utc_min("2024-03-01T00:01")): 61.0,
              ("heart_rate", _utc_min("2024-03-01T00:03")): 62.0}
    for name, t in typed.items():
        adapter = _timestamp_adapter(tmp_path / name, pa.table(
            {"participant_id": ["p1"] * 3, "channel": ["heart_rate"] * 3, "t_utc": t, "value": [60.0, 61.0, 62.0]}))
        assert _observations(adapter, "p1") == expect, name
    # exact to the nanosecond, not just the minute
    unit = _timestamp_adapter(tmp_path / "exact", pa.table(
        {"participant_id": ["p1"] * 3, "channel": ["heart_rate"] * 3, "t_utc": typed["berlin_ms"],
         "value": [60.0, 61.0, 62.0]}))
    res = validate_unit(unit.read_unit(unit.list_units()[0]), unit.schema())
    assert sorted(res.observations.t_utc_ns.tolist()) == utc.astype(np.int64).tolist()
    assert pd.Timestamp(int(res.observations.t_utc_ns.min()), tz="UTC").isoformat() == "2024-03-01T00:00:20+00:00"


def test_timestamp_column_nulls_and_far_times_are_quarantined_and_text_is_refused(tmp_path):
    import pyarrow as pa
    import pytest

    from sensorpipe.sources.base import SourceError

    us = np.array(["2024-03-01T00:00", "2024-03-01T00:01", "2300-01-01T00:00"], "datetime64[us]").astype(np.int64)
    times = pa.array(us, pa.int64(), mask=np.array([False, True, False])).cast(pa.timestamp("us", "UTC"))
    adapter = _timestamp_adapter(tmp_path / "bad", pa.table(
        {"participant_id": ["p1"] * 3, "channel": ["heart_rate"] * 3, "t_utc": times, "value": [60.0, 61.0, 62.0]}))
    res = validate_unit(adapter.read_unit(adapter.list_units()[0]), adapter.schema())
    assert res.rows_quarantined == 2 and len(res.observations.t_utc_ns) == 1
    assert dict(res.reason_counts) == {"unparseable_time": 2}
    text = _timestamp_adapter(tmp_path / "text", pa.table(
        {"participant_id": ["p1"], "channel": ["heart_rate"], "t_utc": ["2024-03-01T00:00:00Z"], "value": [60.0]}))
    with pytest.raises(SourceError, match=r"all\.parquet: column 't_utc': it holds string, not timestamps; use "
                                          r"time_format: iso"):
        text.read_unit(text.list_units()[0])
