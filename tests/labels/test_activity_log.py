"""The synthetic cohorts' exercise log (activities.csv) and the ``logged_activities`` processor.

The log must describe real bouts: inside a logged walk or run the minute
steps are at walking/running cadence and the heart rate is up; outside, steps
are sporadic. The processor's window labels and events are checked against
the log itself.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensorpipe.config import SourceConfig
from sensorpipe.core.labels import BY_NAME, LabelEvent
from sensorpipe.demo import synthetic
from sensorpipe.labels.activity import LoggedActivities, read_activity_log
from sensorpipe.labels.base import events_for_windows, labels_for_windows
from sensorpipe.sources.base import SourceError, make_adapter
from tests.labels._batch import batch

NAMES = BY_NAME["activity"].names
MIN_NS = 60_000_000_000


@functools.cache
def cohort() -> Path:
    tmp = tempfile.mkdtemp(prefix="activity_log_")
    atexit.register(shutil.rmtree, tmp, True)   # built once per test process, removed when it ends
    root = Path(tmp) / "fitbit_cohort"
    synthetic.write_minute_cohort(root, 4, 7, seed=11, metrics="basic")
    return root


def log_minutes(root: Path) -> pd.DataFrame:
    """The log as UTC minute intervals."""
    log = pd.read_csv(root / "activities.csv")
    log["s"] = pd.to_datetime(log.start, utc=True).dt.as_unit("ns").astype("int64") // MIN_NS
    log["e"] = pd.to_datetime(log.end, utc=True).dt.as_unit("ns").astype("int64") // MIN_NS
    return log


def metric(root: Path, pid: str, name: str) -> pd.Series:
    t = pd.read_parquet(root / "minute" / f"{pid}.parquet")
    t = t[t.metric == name]
    return pd.Series(t.value.to_numpy(), index=t.timestamp_ms.to_numpy() // 60_000).groupby(level=0).mean()


def test_log_rows_are_local_times_with_offsets_and_known_types():
    log = pd.read_csv(cohort() / "activities.csv")
    assert list(log.columns) == ["participant_id", "start", "end", "type"]
    assert set(log.type) == {"walking", "running"} and set(log.participant_id) == {f"fc{i:03d}" for i in range(1, 5)}
    assert log.start.str.fullmatch(r"2024-03-\d\dT\d\d:\d\d:00[+-]\d\d:\d\d").all()
    # fc001 lives in America/New_York: EST (-05:00) before 2024-03-10 02:00, EDT (-04:00) after
    ny = log[log.participant_id == "fc001"]
    assert set(ny.start.str[-6:]) <= {"-05:00", "-04:00"}
    assert (ny.start.str[:10] < "2024-03-10").eq(ny.start.str[-6:] == "-05:00").all()
    lm = log_minutes(cohort())
    assert ((lm.e - lm.s) >= synthetic.MIN_LOGGED_MIN).all()


def test_steps_and_heart_rate_inside_logged_bouts_are_those_of_walks_and_runs():
    root, lm = cohort(), log_minutes(cohort())
    inside_walk, inside_run, outside, hr_in, hr_out = [], [], [], [], []
    for pid, rows in lm.groupby("participant_id"):
        steps, hr = metric(root, pid, "steps"), metric(root, pid, "heart_rate")
        t = steps.index.to_numpy()
        which = np.full(t.size, "", object)
        for s, e, kind in zip(rows.s, rows.e, rows.type):
            which[(t >= s) & (t < e)] = kind
        assert not ((t >= rows.s.min()) & (t < rows.e.max()) & (which == "") & (steps.to_numpy() > 200)).any()
        inside_walk += steps[which == "walking"].tolist()
        inside_run += steps[which == "running"].tolist()
        outside += steps[(which == "")].tolist()
        logged = hr.index.isin(t[which != ""])
        hr_in += hr[logged].tolist()
        hr_out += hr[~logged].tolist()
    assert min(inside_walk) >= 80 and 100 <= np.mean(inside_walk) <= 125          # walking cadence ~112/min
    assert min(inside_run) >= 125 and 150 <= np.mean(inside_run) <= 170           # running cadence ~160/min
    assert np.mean(outside) < 10 and np.mean(np.asarray(outside) >= 80) < 0.01    # sporadic steps, few bout remnants
    assert np.mean(hr_in) > np.mean(hr_out) + 15


def _unit(root: Path, pid: str):
    src = next(s for s in synthetic.pipeline_config()["sources"] if s["name"] == "fitbit_cohort")
    assert src["options"]["activities"] == "activities.csv"
    cfg = SourceConfig(src["name"], src["adapter"], root.name, f"{root.name}/participants.csv", src["options"])
    return {u.participant.participant_id: u for u in make_adapter(cfg, str(root.parent)).list_units()}[pid]


def test_window_labels_and_events_follow_the_log():
    root, lm = cohort(), log_minutes(cohort())
    rows = lm[lm.participant_id == "fc002"]
    unit = _unit(root, "fc002")
    assert LoggedActivities().applies(unit)
    starts = np.arange(rows.s.min() - 120, rows.e.max() + 120, 30)          # 30-min windows over the log's span
    b = batch(unit, [str(np.datetime64(int(s), "m")) for s in starts], 30)
    got = labels_for_windows(b)["activity"]
    for s, code in zip(starts, got):
        cover = {k: int(np.clip(np.minimum(rows.e[rows.type == k], s + 30) - np.maximum(rows.s[rows.type == k], s),
                                0, None).sum()) for k in ("walking", "running")}
        want = -1 if not any(cover.values()) else NAMES.index(max(cover, key=lambda k: (cover[k], -NAMES.index(k))))
        assert code == want
    assert (got >= 0).sum() >= len(rows) and (got == -1).any()
    events = LoggedActivities().label_events(unit)
    assert events == [LabelEvent(int(s), int(e), "activity", k) for s, e, k in zip(rows.s, rows.e, rows.type)]
    per_window = events_for_windows(b)
    for s, evs in zip(starts, per_window):
        assert all(s <= ev.start_utc_min < ev.end_utc_min <= s + 30 for ev in evs)
    assert sum(ev.end_utc_min - ev.start_utc_min for evs in per_window for ev in evs) == (rows.e - rows.s).sum()


def test_log_times_with_z_offsets_or_local_and_errors_naming_the_line(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text("participant_id,start,end,type\n"
                 "p1,2024-03-09T23:30:00Z,2024-03-10T00:10:00Z,Run\n"
                 "p2,2024-03-09T18:00:00Z,2024-03-09T19:00:00Z,walking\n"
                 "p1,2024-03-10 01:30:00,2024-03-10 03:15:00,Outdoor Bike\n"
                 "p1,2024-11-03T01:30:00-04:00,2024-11-03 01:45:00,Tennis\n")
    ns = lambda iso: int(np.datetime64(iso, "ns").astype(np.int64))
    assert read_activity_log(f, "p1", "America/New_York") == [
        (ns("2024-03-09T23:30"), ns("2024-03-10T00:10"), "running"),
        (ns("2024-03-10T06:30"), ns("2024-03-10T07:15"), "cycling"),        # 03:15 is already EDT
        (ns("2024-11-03T05:30"), ns("2024-11-03T05:45"), "racket_sports")]  # repeated 01:45: first (EDT)
    bad = {"p1,2024-03-10 02:30:00,2024-03-10 03:15:00,walking\n": r"line 2: local start '2024-03-10 02:30:00' does "
                                                                   r"not exist in America/New_York",
           "p1,2024-03-10T10:00Z,2024-03-10T09:00Z,walking\n": r"line 2: end .* is not after start",
           "p1,yesterday,2024-03-10T09:00Z,walking\n": r"line 2: start 'yesterday' is not a time",
           "p1,2024-03-10T08:00Z,2024-03-10T09:00Z,transition\n": r"line 2: type 'transition' names no activity"}
    for row, message in bad.items():
        f.write_text("participant_id,start,end,type\n" + row)
        with pytest.raises(SourceError, match=f"log.csv, {message}"):
            read_activity_log(f, "p1", "America/New_York")
    f.write_text("participant_id,begin,end,type\n")
    with pytest.raises(SourceError, match="log.csv: needs columns participant_id, start, end, type; missing start"):
        read_activity_log(f, "p1", "UTC")


def test_log_times_with_an_offset_parse_to_the_instant_pandas_gives():
    """Times with an offset take the C ISO parser: the same ns as a pandas Timestamp (fractions, Z, half-hour
    offsets, before 1970, the ends of the ns range); beyond the range it is still the "not a time" error."""
    from sensorpipe.labels.activity import _instant

    for text in ("2024-03-04T17:57:00-05:00", "2024-03-04T17:57:00Z", " 2024-03-04 17:57+05:30 ",
                 "2024-03-04T17:57:00.123456+01:00", "2024-03-04T17:57:00.5-03:30", "1969-12-31T23:59:59.999999Z",
                 "2262-04-11T23:47:16Z", "1677-09-21T00:12:44Z", "2024-03-04T17:57:00.123456789+01:00", "2024-03-04T17:57:00.1234567Z"):
        assert _instant(text, "America/New_York", Path("log.csv"), 2, "start") == pd.Timestamp(text.strip()).value
    for text in ("2500-01-01T00:00:00Z", "1500-01-01T00:00:00+01:00"):
        with pytest.raises((SourceError, pd.errors.OutOfBoundsDatetime)):
            _instant(text, "UTC", Path("log.csv"), 2, "start")


def test_a_missing_log_file_names_the_option(tmp_path):
    root = cohort()
    unit = _unit(root, "fc001")
    import dataclasses
    gone = dataclasses.replace(unit, source=dataclasses.replace(unit.source, options={**unit.source.options,
                                                                                      "activities": "nope.csv"}))
    with pytest.raises(SourceError, match=r"nope.csv does not exist; fix sources\[fitbit_cohort\].options.activities"):
        LoggedActivities().label_events(gone)
