"""Fitbit Web API JSON responses: intraday 1 s / 1 / 15 min, spreading and repeating, dates, DST, units."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from sensorpipe.cli import main
from sensorpipe.config import SourceConfig
from sensorpipe.schema.validate import CHANNEL_NAMES, validate_unit
from sensorpipe.sources.base import SourceError, make_adapter
from tests.sources.adapter_case import DUMMY_ROOT, AdapterCase, run_sources

DUMMY = DUMMY_ROOT / "fitbit_webapi"


def utc_ns(*args, tz: str) -> int:
    return int(dt.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()) * 10**9


def read(root: Path, participants: Path | None = DUMMY / "participants.csv", **options):
    """{participant: {channel: {t_utc_ns: value}}} and the validation results, after validation."""
    options.setdefault("distance_unit", "km")
    src = SourceConfig("fw", "fitbit_webapi", str(root), str(participants) if participants else None, options)
    adapter = make_adapter(src, str(root))
    values: dict = defaultdict(lambda: defaultdict(dict))
    results = {}
    for unit in adapter.list_units():
        res = validate_unit(adapter.read_unit(unit), adapter.schema())
        results[unit.participant.participant_id] = res
        o = res.observations
        for c, t, v in zip(o.channel, o.t_utc_ns, o.value):
            values[unit.participant.participant_id][CHANNEL_NAMES[c]][int(t)] = float(v)
    return values, results


class TestFitbitWebApiAdapter(AdapterCase):
    """w01 (New York, spring forward, 1 s / 1 min / 15 min series) and w02 (Berlin, two responses); make_dummy.py."""

    ADAPTER = "fitbit_webapi"
    DUMMY = "fitbit_webapi"
    PARTICIPANTS = "participants.csv"
    OPTIONS = {"distance_unit": "km"}
    EXPECTED_UNITS = 2
    # steps: 8 one-minute + 4 x 15 spread + 5 (w02); calories 3 x 15; heart 13 one-second + 2 x 15 repeated
    EXPECTED_CHANNELS = {"steps": 73, "calories": 45, "heart_rate": 43, "resting_heart_rate": 2, "distance": 3,
                         "floors": 30}
    # daily totals and elevation (9), "-" and "abc" (2), 260 bpm (1), two steps in the skipped hour (2)
    EXPECTED_REASONS = {"unknown_field": 9, "wrong_type": 2, "out_of_range": 1, "nonexistent_local_time": 2}


def test_fifteen_minute_totals_are_spread_evenly_and_add_up_exactly():
    values, _ = read(DUMMY)
    steps = values["w01"]["steps"]
    noon = utc_ns(2024, 3, 11, 12, 0, tz="America/New_York")
    per_min = [steps.get(noon + m * 60 * 10**9) for m in range(60)]
    assert per_min[:15] == [10.0] * 15 and per_min[15:30] == [0.0] * 15
    assert per_min[30:45] == [31.0] * 15
    # independent reading of the same file: the dataset's total equals the minutes' total
    doc = json.loads((DUMMY / "w01" / "steps_15min.json").read_text())
    total = sum(p["value"] for p in doc["activities-steps-intraday"]["dataset"])
    assert sum(per_min) == pytest.approx(total, abs=1e-9) and total == 1816
    cal = values["w01"]["calories"]
    assert [cal[noon + m * 60 * 10**9] for m in (0, 14, 15, 29, 30, 44)] == [1.0, 1.0, 1.5, 1.5, 2.0, 2.0]
    assert noon + 45 * 60 * 10**9 not in cal        # the "-" point: quarantined once, not 15 times


def test_fifteen_minute_rates_are_repeated():
    values, _ = read(DUMMY)
    hr = values["w01"]["heart_rate"]
    noon = utc_ns(2024, 3, 11, 12, 0, tz="America/New_York")
    assert [hr[noon + m * 60 * 10**9] for m in range(30)] == [88.5] * 15 + [97.0] * 15


def test_one_second_heart_rate_keeps_its_seconds_and_resting_rate_is_daily():
    values, _ = read(DUMMY)
    hr = values["w01"]["heart_rate"]
    t10 = utc_ns(2024, 3, 10, 10, 0, tz="America/New_York")
    assert hr[t10] == 70.0 and hr[t10 + 5 * 10**9] == 75.0 and hr[t10 + 63 * 10**9] == 74.0
    rest = values["w01"]["resting_heart_rate"]
    assert rest == {utc_ns(2024, 3, 10, 0, 0, tz="America/New_York"): 61.0,
                    utc_ns(2024, 3, 11, 0, 0, tz="America/New_York"): 60.0}


def test_spring_forward_local_times_and_skipped_hour():
    values, results = read(DUMMY)
    steps = values["w01"]["steps"]
    assert steps[utc_ns(2024, 3, 10, 1, 59, tz="America/New_York")] == 7.0
    assert steps[utc_ns(2024, 3, 10, 3, 0, tz="America/New_York")] == 60.0
    assert utc_ns(2024, 3, 10, 3, 0, tz="America/New_York") - utc_ns(2024, 3, 10, 1, 59, tz="America/New_York") \
        == 60 * 10**9                                   # one real minute across the change
    q = results["w01"].quarantine.to_pandas()
    assert sorted(q[q.reason == "nonexistent_local_time"].time) == ["2024-03-10 02:00:00", "2024-03-10 02:30:00"]


def test_times_without_a_date_roll_over_midnight_and_distance_is_converted():
    values, _ = read(DUMMY)
    steps, dist = values["w02"]["steps"], values["w02"]["distance"]
    assert steps[utc_ns(2024, 6, 1, 23, 57, tz="Europe/Berlin")] == 10.0
    assert steps[utc_ns(2024, 6, 2, 0, 0, tz="Europe/Berlin")] == 0.0      # 00:00 after 23:59 is the next day
    assert steps[utc_ns(2024, 6, 2, 0, 2, tz="Europe/Berlin")] == 9.0
    assert dist[utc_ns(2024, 6, 1, 23, 58, tz="Europe/Berlin")] == pytest.approx(12.5)      # 0.0125 km
    floors = values["w02"]["floors"]                                      # 3 floors in 08:00-08:15, spread
    assert len(floors) == 30 and sum(floors.values()) == pytest.approx(3.0, abs=1e-12)
    assert floors[utc_ns(2024, 6, 2, 8, 14, tz="Europe/Berlin")] == pytest.approx(0.2)
    miles, _ = read(DUMMY, distance_unit="mi")
    assert miles["w02"]["distance"][utc_ns(2024, 6, 2, 0, 0, tz="Europe/Berlin")] == pytest.approx(0.0306 * 1609.344)


def test_utc_responses(tmp_path):
    f = tmp_path / "a" / "steps_2024-06-01.json"
    f.parent.mkdir()
    f.write_text(json.dumps({"activities-steps-intraday": {"dataset": [{"time": "12:00:00", "value": 5}],
                                                           "datasetInterval": 1, "datasetType": "minute"}}))
    values, _ = read(tmp_path, None, tz="Europe/Berlin", times="utc")
    assert values["a"]["steps"] == {utc_ns(2024, 6, 1, 12, 0, tz="UTC"): 5.0}


def test_distance_needs_a_unit_and_dates_are_needed(tmp_path):
    with pytest.raises(SourceError, match=r"responses\.json.*distance without a unit.*options\.distance_unit"):
        read(DUMMY, distance_unit=None)
    f = tmp_path / "a" / "steps.json"              # no daily series and no date in the name
    f.parent.mkdir()
    f.write_text(json.dumps({"activities-steps-intraday": {"dataset": [{"time": "12:00:00", "value": 5}],
                                                           "datasetInterval": 1, "datasetType": "minute"}}))
    with pytest.raises(SourceError, match=r"steps\.json.*carry no date.*file name"):
        read(tmp_path, None, tz="UTC")
    f.write_text(json.dumps({"activities-steps-intraday": {"dataset": [], "datasetInterval": 3,
                                                           "datasetType": "minute"}}))
    with pytest.raises(SourceError, match=r"datasetInterval 3 is not a Web API detail level"):
        read(tmp_path, None, tz="UTC")
    (tmp_path / "a" / "steps_2024-13-45.json").write_text(json.dumps(
        {"activities-steps-intraday": {"dataset": [{"time": "12:00:00", "value": 5}], "datasetInterval": 1,
                                       "datasetType": "minute"}}))
    f.unlink()
    with pytest.raises(SourceError, match=r"steps_2024-13-45\.json.*'2024-13-45' is not a calendar date"):
        read(tmp_path, None, tz="UTC")
    (tmp_path / "a" / "steps_2024-13-45.json").unlink()
    f.write_text(json.dumps({"sleep": []}))
    with pytest.raises(SourceError, match=r"steps\.json: not a Fitbit Web API activities response"):
        read(tmp_path, None, tz="UTC")


def test_convert_and_run_build_windows(tmp_path, capsys):
    opts = tmp_path / "opts.yaml"
    opts.write_text(yaml.safe_dump({"distance_unit": "km"}))
    out = tmp_path / "obs.parquet"
    assert main(["convert", "--source", "fitbit_webapi", str(DUMMY), "-o", str(out), "--options", str(opts),
                 "--participants", str(DUMMY / "participants.csv")]) == 0
    assert "rows in 210 = accepted 196 + quarantined 14" in capsys.readouterr().out
    df = pq.read_table(out).to_pandas()
    assert df[df.channel == "steps"].value.sum() == pytest.approx(226 - 55 - 0 + 1816 + 44)
    ds = run_sources(tmp_path, [{"name": "fw", "adapter": "fitbit_webapi", "path": str(DUMMY),
                                 "participants": str(DUMMY / "participants.csv"), "options": {"distance_unit": "km"}}],
                     ["steps", "calories", "heart_rate"],
                     {"size_min": 15, "stride_min": 15, "alignment": "none", "max_missing_ratio": 0.9})
    examples = [ex for s in ds.splits for ex in ds[s]]
    assert len(examples) >= 4
    steps_col = list(ds.channels).index("steps")
    steps = np.concatenate([ds.denormalize(ex["input"], mask=ex["mask"])[:, steps_col] for ex in examples])
    # windows do not overlap (stride = size): the 15 spread minutes of 150 steps appear once each (plus w02's
    # one-minute 10 steps at 23:57), and so do the 15 minutes of 465 steps
    assert np.isclose(steps, 10.0).sum() == 16 and np.isclose(steps, 31.0).sum() == 15
