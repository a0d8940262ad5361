"""Fitabase *_merged.csv: values, local time across DST, wide = narrow, sleep codes, clear errors."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.config import ConfigError, SourceConfig
from sensorpipe.schema.validate import CHANNEL_INDEX, validate_unit
from sensorpipe.sources.base import SourceError, make_adapter
from tests.sources.adapter_case import DUMMY_ROOT, AdapterCase

DUMMY = DUMMY_ROOT / "fitbit_fitabase"
A, B = "1503960366", "2022484408"


def utc_ns(*args) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp()) * 10**9


def read(root: Path, participants: Path | None = DUMMY / "participants.csv", **options):
    src = SourceConfig("fb", "fitbit_fitabase", str(root), str(participants) if participants else None, options)
    adapter = make_adapter(src, str(root))
    out = {}
    for unit in adapter.list_units():
        res = validate_unit(adapter.read_unit(unit), adapter.schema())
        out[unit.participant.participant_id] = res
    return out


def series(res, channel: str) -> dict[int, float]:
    """Accepted observations of one channel: UTC ns -> canonical value."""
    obs = res.observations
    sel = obs.channel == CHANNEL_INDEX[channel]
    assert np.unique(obs.t_utc_ns[sel]).size == sel.sum(), "an instant counted twice"
    return dict(zip(obs.t_utc_ns[sel].tolist(), obs.value[sel].tolist()))


class TestFitbitFitabaseAdapter(AdapterCase):
    """Shared checks on tests/sources/dummy_data/fitbit_fitabase (numbers worked out in its make_dummy.py)."""

    ADAPTER = "fitbit_fitabase"
    DUMMY = "fitbit_fitabase"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 2
    # heart rate: A 61, 62, 64 and both fall-back 1:30s; B 70.  steps: 2 hours of A + 1 of B (narrow; the wide
    # twin is skipped).  calories (wide only): A 1 AM and 3 AM hours, B 9 AM hour less an empty and a 75.5 cell.
    # intensity: A 0 and 1 (4 is out of range), B 9:00 (9:01 conflicts).  sleep: A 5 distinct minutes, B 2.
    EXPECTED_CHANNELS = {"heart_rate": 6, "steps": 180, "calories": 178, "activity_intensity": 3, "sleep_stage": 7}
    EXPECTED_REASONS = {
        "nonexistent_local_time": 1 + 60,          # heart rate at 2:30 AM, the wide 2 AM calorie hour
        "out_of_range": 3,                         # HR 255, 75.5 kcal, intensity 4
        "missing_value": 2,                        # empty HR value, empty calorie cell
        "unparseable_time": 1,                     # 13/10/2024
        "unknown_field": 4,                        # malformed line, sleep code 0, two sleepDay rows
        "conflicting_duplicate": 2,                # B intensity 9:01 (3 and 2)
        "exact_duplicate": 1,                      # repeated A sleep row 3:01:30
    }


def test_values_land_at_the_right_utc_instant():
    res = read(DUMMY)
    hr_a, hr_b = series(res[A], "heart_rate"), series(res[B], "heart_rate")
    assert hr_a == {utc_ns(2024, 3, 10, 6, 59, 50): 61.0, utc_ns(2024, 3, 10, 6, 59, 55): 62.0,  # EST = UTC-5
                    utc_ns(2024, 3, 10, 7, 0, 0): 64.0,                                          # EDT = UTC-4
                    utc_ns(2024, 11, 3, 5, 30): 58.0, utc_ns(2024, 11, 3, 6, 30): 59.0}
    assert hr_b == {utc_ns(2024, 3, 10, 14, 0): 70.0}                                            # CDT = UTC-5
    cal_b = series(res[B], "calories")
    assert cal_b[utc_ns(2024, 3, 10, 14, 0)] == pytest.approx(1.9)        # Calories00 of 9 AM: 1 + 0.9 + 0
    assert cal_b[utc_ns(2024, 3, 10, 14, 59)] == pytest.approx(2.49)      # Calories59
    assert utc_ns(2024, 3, 10, 14, 10) not in cal_b and utc_ns(2024, 3, 10, 14, 20) not in cal_b
    steps_a = series(res[A], "steps")
    assert steps_a[utc_ns(2024, 3, 10, 6, 5)] == (13 + 35) % 50           # 1:05 AM EST
    assert steps_a[utc_ns(2024, 3, 10, 7, 5)] == (39 + 35) % 50           # 3:05 AM EDT, the next real hour


def test_sleep_codes_map_asleep_to_unstaged_and_restless_to_awake():
    sleep_a = series(read(DUMMY)[A], "sleep_stage")
    assert sleep_a == {utc_ns(2024, 3, 10, 6, 57, 30): 0.0,   # 2 restless -> awake / not asleep
                       utc_ns(2024, 3, 10, 6, 58, 30): 4.0,   # 1 asleep -> asleep (unstaged)
                       utc_ns(2024, 3, 10, 6, 59, 30): 4.0,
                       utc_ns(2024, 3, 10, 7, 0, 30): 0.0,    # 3 awake
                       utc_ns(2024, 3, 10, 7, 1, 30): 4.0}
    q = read(DUMMY)[A].quarantine.to_pylist()
    other = [r for r in q if r["field"] == "minuteSleep.value_not_1_2_3"]
    assert [(r["value"], r["reason"], r["source_row"]) for r in other] == [("0", "unknown_field", 8)]


def test_daily_summary_and_malformed_line_are_kept_in_quarantine():
    res = read(DUMMY)
    day = [r for r in res[B].quarantine.to_pylist() if r["field"] == "sleepDay.TotalMinutesAsleep"]
    assert [(r["time"], r["value"], r["reason"]) for r in day] == [("3/10/2024 12:00:00 AM", "1", "unknown_field")]
    bad = [r for r in res[B].quarantine.to_pylist() if r["field"] == "malformed_line"]
    assert [(r["value"], r["source_row"]) for r in bad] == [(f"{B},3/10/2024 9:00:15 AM,72,1", 12)]
    assert res[A].rows_in + res[B].rows_in == 448


def test_wide_file_melts_to_the_same_minutes_as_the_narrow_one():
    narrow = read(DUMMY, files=["minuteStepsNarrow_merged.csv"])
    wide = read(DUMMY, files=["minuteStepsWide_merged.csv"])
    for pid in (A, B):
        assert series(wide[pid], "steps") == series(narrow[pid], "steps")
        assert len(series(wide[pid], "steps")) == 60 * (2 if pid == A else 1)
    # a melted minute keeps its hour row's line and names its column
    q_free = wide[A].observations
    assert set(q_free.source_row.tolist()) == {2, 3}


def test_both_variants_listed_are_read_and_the_repeats_quarantined():
    both = read(DUMMY, files=["minuteStepsNarrow_merged.csv", "minuteStepsWide_merged.csv"])
    assert sum(len(series(r, "steps")) for r in both.values()) == 180
    assert sum(r.reason_counts.get("exact_duplicate", 0) for r in both.values()) == 180


def test_dst_continuous_logging_keeps_every_real_minute_once(tmp_path):
    """A device logging every minute across both 2024 US DST changes, narrow and wide."""
    rows, wide = ["Id,ActivityMinute,Steps"], ["Id,ActivityHour," + ",".join(f"Steps{m:02d}" for m in range(60))]
    # spring forward: 0:00-1:59 EST, then 3:00-3:59 EDT (2 AM does not exist); one stray 2:15 row
    # fall back: 0:00-1:59 EDT, 1:00-1:59 again (EST), 2:00-2:59 EST
    for day, hours in (("3/10/2024", (0, 1, 3)), ("11/3/2024", (0, 1, 1, 2))):
        for h in hours:
            label = f"{day} {h % 12 or 12}"
            rows += [f"{A},{label}:{m:02d}:00 AM,{m}" for m in range(60)]
            wide.append(f"{A},{label}:00:00 AM," + ",".join(str(m) for m in range(60)))
    rows.append(f"{A},3/10/2024 2:15:00 AM,99")
    (tmp_path / "minuteStepsNarrow_merged.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "minuteStepsWide_merged.csv").write_text("\n".join(wide) + "\n")
    narrow = read(tmp_path, tz="America/New_York", participants=None, files=["minuteStepsNarrow_merged.csv"])[A]
    assert narrow.reason_counts == {"nonexistent_local_time": 1}
    got = np.array(sorted(series(narrow, "steps")))
    spring = np.arange(utc_ns(2024, 3, 10, 5), utc_ns(2024, 3, 10, 8), 60 * 10**9)   # 00:00 EST .. 03:59 EDT
    fall = np.arange(utc_ns(2024, 11, 3, 4), utc_ns(2024, 11, 3, 8), 60 * 10**9)     # 00:00 EDT .. 02:59 EST
    np.testing.assert_array_equal(got, np.concatenate([spring, fall]))
    w = read(tmp_path, tz="America/New_York", participants=None, files=["minuteStepsWide_merged.csv"])[A]
    assert w.reason_counts == {} and series(w, "steps") == series(narrow, "steps")


def test_participant_zone_comes_from_table_or_option(tmp_path):
    (tmp_path / "heartrate_seconds_merged.csv").write_text(f"Id,Time,Value\n{A},1/15/2024 8:00:00 AM,60\n")
    with pytest.raises(SourceError, match="options.tz"):
        read(tmp_path, participants=None)
    res = read(tmp_path, participants=None, tz="Asia/Tokyo")
    assert series(res[A], "heart_rate") == {utc_ns(2024, 1, 14, 23, 0): 60.0}
    with pytest.raises(ConfigError, match="unknown file"):
        read(tmp_path, participants=None, tz="UTC", files=["dailyActivity_merged.csv"])
    with pytest.raises(ConfigError, match="IANA"):
        read(tmp_path, participants=None, tz="Mars/Olympus")


@pytest.mark.parametrize("content, needle", [
    ("", "the file is empty"),
    ("Id,Tme,Value\n1,1/1/2024 1:00:00 AM,60\n", "line 1: header lacks column(s) Time"),
    (b"Id,Time,Value\n1,1/1/2024 1:00:00 AM,6\xff0\n", "UTF-8"),
])
def test_unreadable_files_name_file_and_fix(tmp_path, content, needle):
    p = tmp_path / "heartrate_seconds_merged.csv"
    p.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SourceError) as e:
        read(tmp_path, participants=None, tz="UTC")
    assert "heartrate_seconds_merged.csv" in str(e.value) and needle in str(e.value)


def test_blank_line_is_counted_not_lost(tmp_path):
    (tmp_path / "heartrate_seconds_merged.csv").write_text(
        f"Id,Time,Value\n{A},1/15/2024 8:00:00 AM,60\n\n{A},1/15/2024 8:00:05 AM,61\n")
    res = read(tmp_path, participants=None, tz="UTC")
    assert res[""].reason_counts == {"no_participant": 1}
    assert res[A].observations.source_row.tolist() == [2, 4]


def test_minute_sleep_without_log_id_column(tmp_path):
    (tmp_path / "minuteSleep_merged.csv").write_text(
        f"Id,date,value\n{A},11/3/2024 1:30:30 AM,1\n{A},11/3/2024 1:30:30 AM,3\n")
    res = read(tmp_path, participants=None, tz="America/New_York")[A]
    assert series(res, "sleep_stage") == {utc_ns(2024, 11, 3, 5, 30, 30): 4.0, utc_ns(2024, 11, 3, 6, 30, 30): 0.0}


def test_a_run_partitions_each_merged_file_once_and_units_read_the_same_rows(tmp_path, monkeypatch):
    """Every participant is in every merged file: a run reads each file once (its partition), and each unit's
    rows, malformed lines included, equal what reading the whole file gives."""
    import pyarrow as pa

    src = SourceConfig("fb", "fitbit_fitabase", str(DUMMY), str(DUMMY / "participants.csv"), {})
    whole = make_adapter(src, str(DUMMY))
    parted = make_adapter(src, str(DUMMY), str(tmp_path / "work"))
    units_whole, units_parted = whole.list_units(), parted.list_units()
    assert [u.participant for u in units_whole] == [u.participant for u in units_parted]
    assert [u.files for u in units_whole] == [u.files for u in units_parted]
    streams = {s for u in units_parted for s in u.partitions}
    assert all(s.endswith(".arrows") for s in streams) and len(streams) == sum(len(u.files) for u in units_parted)
    for a, b in zip(units_whole, units_parted):
        ta, tb = (pa.concat_tables(x.read_unit(u).native) for x, u in ((whole, a), (parted, b)))
        assert ta.num_rows == tb.num_rows > 0
        for name in ta.schema.names:
            assert ta.column(name).to_pylist() == tb.column(name).to_pylist(), name
        assert (validate_unit(whole.read_unit(a), whole.schema()).reason_counts ==
                validate_unit(parted.read_unit(b), parted.schema()).reason_counts)
    assert any("malformed_line" in pa.concat_tables(parted.read_unit(u).native).column("field").to_pylist()
               for u in units_parted)                                   # the malformed line went with its Id
    decoded = []
    real = type(parted)._batches
    monkeypatch.setattr(type(parted), "_batches", lambda self, path, kind: (decoded.append(path), real(self, path,
                                                                                                     kind))[1])
    again = make_adapter(src, str(DUMMY), str(tmp_path / "work")).list_units()   # a re-run: partitions reused
    assert [u.partitions for u in again] == [u.partitions for u in units_parted] and decoded == []
    make_adapter(src, str(DUMMY), str(tmp_path / "other")).list_units()          # a fresh work folder
    assert sorted(decoded) == sorted({Path(f) for u in units_parted for f in u.files})   # each file read once
