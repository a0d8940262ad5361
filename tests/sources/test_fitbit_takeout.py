"""Fitbit Takeout exports: values and units, UTC intraday vs local sleep/HRV, DST nights, broken files."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.config import ConfigError, SourceConfig
from sensorpipe.schema.validate import CHANNEL_INDEX, validate_unit
from sensorpipe.sources.base import SourceError, make_adapter
from tests.sources.adapter_case import DUMMY_ROOT, AdapterCase

DUMMY = DUMMY_ROOT / "fitbit_takeout"
GLOBAL = Path("Takeout/Fitbit/Global Export Data")
S = 10**9


def utc_ns(*args) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp()) * S


def read(root: Path, participants: Path | None = DUMMY / "participants.csv", **options):
    src = SourceConfig("fb", "fitbit_takeout", str(root), str(participants) if participants else None, options)
    adapter = make_adapter(src, str(root))
    return {u.participant.participant_id: validate_unit(adapter.read_unit(u), adapter.schema())
            for u in adapter.list_units()}


def series(res, channel: str) -> dict[int, float]:
    obs = res.observations
    sel = obs.channel == CHANNEL_INDEX[channel]
    assert np.unique(obs.t_utc_ns[sel]).size == sel.sum(), "an instant counted twice"
    return dict(zip(obs.t_utc_ns[sel].tolist(), obs.value[sel].tolist()))


def quarantined(res, field: str) -> list[tuple]:
    return [(r["time"], r["value"], r["reason"]) for r in res.quarantine.to_pylist() if r["field"] == field]


class TestFitbitTakeoutAdapter(AdapterCase):
    """Shared checks on tests/sources/dummy_data/fitbit_takeout (numbers worked out in its make_dummy.py)."""

    ADAPTER = "fitbit_takeout"
    DUMMY = "fitbit_takeout"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 2
    # sleep: p01 182 data epochs - 2 in the skipped hour - 2 overridden + 2 shortData = 180; p02 302 (151 min)
    EXPECTED_CHANNELS = {"sleep_stage": 180 + 302, "heart_rate": 3 + 2, "resting_heart_rate": 2 + 1, "steps": 3,
                         "calories": 2, "distance": 2, "spo2": 2, "hrv_rmssd": 3}
    EXPECTED_REASONS = {
        # 2 overridden sleep epochs, 1 session without segments, SpO2 50.0, daily HRV summary, 2 wrist
        # temperature rows, 1 computed temperature row, 2 estimated_oxygen_variation rows, 1 malformed SpO2 line
        "unknown_field": 2 + 1 + 1 + 1 + 2 + 1 + 2 + 1,
        "out_of_range": 5,                 # bpm 300, 1500 m/min, resting HR 0, rmssd 0, SpO2 101.2
        "nonexistent_local_time": 2 + 1,   # sleep segment at 02:30 (2 epochs), HRV row at 02:15
        "missing_value": 2,                # empty step value, heart rate record without a value
        "unparseable_time": 1,             # calories at hour 25
    }


def test_intraday_values_are_utc_and_units_converted():
    res = read(DUMMY)
    p01 = res["p01"]
    assert series(p01, "heart_rate") == {utc_ns(2024, 3, 10, 6, 59, 55): 62.0, utc_ns(2024, 3, 10, 7, 0, 5): 63.0,
                                         utc_ns(2024, 3, 10, 7, 0, 35): 64.0}
    assert series(p01, "steps") == {utc_ns(2024, 3, 10, 7, 0): 0.0, utc_ns(2024, 3, 10, 7, 1): 12.0,
                                    utc_ns(2024, 3, 10, 7, 3): 7.0}
    assert series(p01, "calories") == {utc_ns(2024, 3, 10, 7, 0): 1.17, utc_ns(2024, 3, 10, 7, 1): 1.5}
    dist = series(p01, "distance")
    assert dist[utc_ns(2024, 3, 10, 7, 1)] == pytest.approx(12.542) and dist[utc_ns(2024, 3, 10, 7, 0)] == 0.0
    # quarantine keeps the export's own text: 150000 cm (1,500 m in one minute, out of range)
    assert quarantined(p01, "distance.value") == [("03/10/24 07:02:00", "150000", "out_of_range")]
    assert series(res["p02"], "heart_rate") == {utc_ns(2024, 11, 3, 5, 30): 55.0, utc_ns(2024, 11, 3, 6, 30): 54.0}


def test_local_daily_and_csv_values():
    res = read(DUMMY)
    p01 = res["p01"]
    assert series(p01, "resting_heart_rate") == {utc_ns(2024, 3, 9, 5): 58.2,      # local midnight EST
                                                 utc_ns(2024, 3, 10, 5): 57.9}     # 3/10 starts in EST too
    assert series(res["p02"], "resting_heart_rate") == {utc_ns(2024, 11, 3, 4): 61.0}  # EDT midnight
    assert series(p01, "hrv_rmssd") == {utc_ns(2024, 3, 10, 6, 5): 32.1, utc_ns(2024, 3, 10, 6, 10): 30.8,
                                        utc_ns(2024, 3, 10, 7, 5): 28.4}             # 03:05 EDT
    # SpO2 101.2 is out of range: quarantined (the registry no longer clips SpO2, so codes never become 100 %)
    assert series(p01, "spo2") == {utc_ns(2024, 3, 10, 6, 10): 95.8, utc_ns(2024, 3, 10, 6, 13): 96.4}
    assert p01.clipped == {}
    assert quarantined(p01, "minute_spo2.value") == [("2024-03-10T06:12:00Z", "101.2", "out_of_range")]
    assert quarantined(p01, "minute_spo2.value_sentinel") == [("2024-03-10T06:11:00Z", "50.0", "unknown_field")]
    assert quarantined(p01, "malformed_line") == [(None, "2024-03-10T06:14:00Z,97.0,1", "unknown_field")]
    assert [r["source_row"] for r in p01.quarantine.to_pylist() if r["field"] == "malformed_line"] == [6]
    assert quarantined(p01, "wrist_temperature.temperature") == [("2024-03-10T01:00", "-0.95", "unknown_field"),
                                                                 ("2024-03-10T01:01", "-0.91", "unknown_field")]


def test_spring_forward_sleep_epochs_follow_real_time():
    p01 = read(DUMMY)["p01"]
    sleep = series(p01, "sleep_stage")
    # 01:00 EST .. 03:30 EDT is 90 real minutes: 180 epochs of 30 s, none missing, none twice
    assert sorted(sleep) == list(range(utc_ns(2024, 3, 10, 6), utc_ns(2024, 3, 10, 7, 30), 30 * S))
    at = lambda *hms: sleep[utc_ns(2024, 3, 10, *hms)]  # noqa: E731
    assert [at(6, 0), at(6, 5), at(6, 19, 30), at(6, 20), at(6, 20, 30), at(6, 21), at(6, 35), at(6, 59, 30),
            at(7, 0), at(7, 10), at(7, 29, 30)] == [0, 1, 1, 0, 0, 1, 2, 2, 3, 1, 1]   # 06:20 short wake
    assert quarantined(p01, "sleep.level_superseded_by_shortData") == [
        ("2024-03-10T01:05:00.000 +900s", "light", "unknown_field"),
        ("2024-03-10T01:05:00.000 +930s", "light", "unknown_field")]
    assert quarantined(p01, "sleep.level") == [("2024-03-10T02:30:00.000", "wake", "nonexistent_local_time"),
                                               ("2024-03-10T02:30:00.000 +30s", "wake", "nonexistent_local_time")]
    assert quarantined(p01, "sleep.session_without_levels") == [("2024-03-10T14:00:00.000", "classic",
                                                                 "unknown_field")]


def test_fall_back_classic_sleep_keeps_each_real_epoch_once():
    sleep = series(read(DUMMY)["p02"], "sleep_stage")
    # 00:30 EDT .. 02:01 EST = 151 real minutes; the repeated 01:30 is EDT first, EST second
    assert sorted(sleep) == list(range(utc_ns(2024, 11, 3, 4, 30), utc_ns(2024, 11, 3, 7, 1), 30 * S))
    at = lambda *hms: sleep[utc_ns(2024, 11, 3, *hms)]  # noqa: E731
    assert [at(4, 30), at(4, 32), at(5, 30), at(5, 31, 30), at(5, 32), at(6, 30), at(6, 59, 30), at(7, 0)] == \
        [0, 4, 0, 0, 4, 4, 4, 0]   # awake, asleep (unstaged), restless counts as awake, ..., second 01:30 asleep


def test_intraday_time_option_reads_local_wall_clock():
    res = read(DUMMY, intraday_time="local", metrics=["heart_rate"])
    # 06:59:55 on 2024-03-10 in New York is EDT (UTC-4)
    assert min(series(res["p01"], "heart_rate")) == utc_ns(2024, 3, 10, 10, 59, 55)


def test_options_select_metrics_sentinel_and_single_export():
    only_sleep = read(DUMMY, metrics=["sleep"])
    assert {k: len(series(v, "sleep_stage")) for k, v in only_sleep.items()} == {"p01": 180, "p02": 302}
    assert all(len(v.observations) == len(series(v, "sleep_stage")) for v in only_sleep.values())
    no_sentinel = read(DUMMY, spo2_sentinel=None, metrics=["minute_spo2"])
    assert series(no_sentinel["p01"], "spo2")[utc_ns(2024, 3, 10, 6, 11)] == 50.0
    single = read(DUMMY / "p01", participants=None, participant_id="P-7", tz="America/New_York")
    assert list(single) == ["P-7"]
    assert single["P-7"].reason_counts == read(DUMMY)["p01"].reason_counts
    with pytest.raises(ConfigError, match="metrics"):
        read(DUMMY, metrics=["stress"])
    with pytest.raises(ConfigError, match="intraday_time"):
        read(DUMMY, intraday_time="gmt")


def test_layout_mistakes_say_how_to_fix(tmp_path):
    shutil.copytree(DUMMY / "p01" / "Takeout", tmp_path / "one" / "Takeout")
    with pytest.raises(SourceError, match="participant_id"):
        read(tmp_path / "one", participants=None, tz="UTC")
    (tmp_path / "flat").mkdir()
    shutil.copy(DUMMY / "p01" / GLOBAL / "heart_rate-2024-03-10.json", tmp_path / "flat")
    with pytest.raises(SourceError, match="folder named after the participant"):
        read(tmp_path / "flat", participants=None, tz="UTC")
    with pytest.raises(SourceError, match="no time zone"):
        read(DUMMY, participants=None)


def _one_file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / "p9" / GLOBAL / name
    p.parent.mkdir(parents=True)
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, needle", [
    ("", "the file is empty"),
    ('[{\n  "dateTime" : "03/10/24 00:00:05",\n  "value" : {\n    "bpm" : 6', "line 4: not valid JSON"),
    ('{"dateTime" : "03/10/24 00:00:05"}', "expected a JSON array"),
])
def test_unreadable_json_names_file_and_line(tmp_path, text, needle):
    _one_file(tmp_path, "heart_rate-2024-03-10.json", text)
    with pytest.raises(SourceError) as e:
        read(tmp_path, participants=None, tz="UTC")
    assert "heart_rate-2024-03-10.json" in str(e.value) and needle in str(e.value)


def test_records_of_mixed_shapes_are_quarantined_not_fatal(tmp_path):
    records = [{"dateTime": "03/10/24 00:00:05", "value": {"bpm": 61, "confidence": 2}},
               {"dateTime": "03/10/24 00:00:10", "value": "72"},             # not an object: no bpm
               {"dateTime": "03/10/24 00:00:15", "value": {"bpm": "High"}},  # text
               {"dateTime": 1710028820, "value": {"bpm": 2**70}},            # number time, huge bpm
               [1, 2]]
    _one_file(tmp_path, "heart_rate-2024-03-10.json", json.dumps(records))
    res = read(tmp_path, participants=None, tz="UTC")["p9"]
    assert series(res, "heart_rate") == {utc_ns(2024, 3, 10, 0, 0, 5): 61.0}
    assert res.reason_counts == {"missing_value": 1, "wrong_type": 1, "unparseable_time": 2}
    assert [r["source_row"] for r in res.quarantine.to_pylist()] == [1, 2, 3, 4]


def test_sleep_segments_with_bad_seconds_are_counted(tmp_path):
    session = {"logId": 1, "startTime": "2024-01-05T23:00:00.000", "type": "stages",
               "levels": {"data": [{"dateTime": "2024-01-05T23:00:00.000", "level": "light", "seconds": 90},
                                   {"dateTime": "2024-01-05T23:01:30.000", "level": "deep", "seconds": -30},
                                   {"dateTime": "2024-01-05T23:02:00.000", "level": "rem", "seconds": 1e12},
                                   {"dateTime": "2024-01-05T23:03:00.000", "level": "dreaming", "seconds": 30}]}}
    _one_file(tmp_path, "sleep-2024-01-01.json", json.dumps([session]))
    res = read(tmp_path, participants=None, tz="Europe/Berlin")["p9"]
    assert series(res, "sleep_stage") == {utc_ns(2024, 1, 5, 22, 0): 1.0, utc_ns(2024, 1, 5, 22, 0, 30): 1.0,
                                          utc_ns(2024, 1, 5, 22, 1): 1.0}   # 90 s of light, CET = UTC+1
    assert res.reason_counts == {"unknown_field": 2, "wrong_type": 1}       # two invalid segments, "dreaming"


def test_local_csv_times_across_fall_back_and_drifted_unmapped_headers(tmp_path):
    hrv = tmp_path / "p9" / "Heart Rate Variability" / "Heart Rate Variability Details - 2024-11-03.csv"
    hrv.parent.mkdir(parents=True)
    hrv.write_text("timestamp,rmssd,coverage,low_frequency,high_frequency\n2024-11-03T01:30:00,31.5,0.9,700.0,300.0\n"
                   "2024-11-03T01:30:00,29.0,0.9,680.0,290.0\n2024-11-03T02:00:00,27.5,0.9,600.0,250.0\n")
    temp = tmp_path / "p9" / "Temperature" / "Device Temperature - 2024-11-03.csv"
    temp.parent.mkdir()
    temp.write_text("timestamp,temperature_deviation,sensor\n2024-11-03T01:00,0.4,WRIST\n")
    res = read(tmp_path, participants=None, tz="America/New_York")["p9"]
    assert series(res, "hrv_rmssd") == {utc_ns(2024, 11, 3, 5, 30): 31.5,    # first 01:30 = EDT
                                        utc_ns(2024, 11, 3, 6, 30): 29.0,    # the repeat = EST
                                        utc_ns(2024, 11, 3, 7, 0): 27.5}
    assert quarantined(res, "device_temperature.temperature") == [("2024-11-03T01:00", "0.4", "unknown_field")]
