"""Time: local wall clock across DST, local-midnight windows, 23- and 25-hour days."""

from __future__ import annotations

from datetime import UTC

import numpy as np
import pyarrow as pa
import pytest

from sensorpipe.config import WindowConfig
from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.core.observations import Observations
from sensorpipe.core.timeparse import NONEXISTENT, minute_offsets, parse_local
from sensorpipe.processing.grid import build_grid
from sensorpipe.processing.window import cut_windows, time_features
from sensorpipe.schema.validate import CHANNEL_INDEX

NY = "America/New_York"


def _utc_ns(s: str) -> int:
    return int(np.datetime64(s, "ns").astype(np.int64))


def test_skipped_hour_is_quarantined_and_repeated_hour_read_in_order():
    wall = ["2024-03-10 01:55:00", "2024-03-10 02:30:00", "2024-03-10 03:05:00",
            "2024-11-03 01:30:00", "2024-11-03 01:30:00", "2024-11-03 02:10:00"]
    t, err = parse_local(pa.array(wall), "%Y-%m-%d %H:%M:%S", NY, np.array(["g"] * 6, dtype=object))
    assert err[1] == NONEXISTENT and err[0] is None and err[2] is None
    assert t[0] == _utc_ns("2024-03-10T06:55")          # EST, UTC-5
    assert t[2] == _utc_ns("2024-03-10T07:05")          # EDT, UTC-4: only 10 real minutes later
    assert t[3] == _utc_ns("2024-11-03T05:30")          # first 01:30 is EDT
    assert t[4] == _utc_ns("2024-11-03T06:30")          # the repeat is EST, one hour later
    assert t[5] == _utc_ns("2024-11-03T07:10")


def test_minute_offsets_follow_dst():
    start = _utc_ns("2024-03-10T06:58") // MINUTE_NS
    offs = minute_offsets(start * MINUTE_NS, 4, NY)
    assert offs.tolist() == [-300, -300, -240, -240]   # 07:00 UTC = 02:00 EST -> 03:00 EDT


def test_minute_offsets_are_shared_read_only_and_match_the_zone_minute_by_minute():
    """Grids with the same zone and span share one cached array: it must be read-only, and equal to a per-minute
    zoneinfo look-up (both DST changes of 2024 in New York and Sydney, odd start minutes, other zones between)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    for tz in (NY, "Australia/Sydney", "Asia/Kolkata"):
        for day, lead in (("2024-03-09T00:00", 0), ("2024-04-06T00:00", 7), ("2024-11-02T00:00", 13)):
            start_ns = _utc_ns(day) + lead * MINUTE_NS
            n = 3 * 1440 + 5
            first = minute_offsets(start_ns, n, tz)
            assert minute_offsets(start_ns, n, "UTC").tolist() == [0] * n    # another zone between the calls
            again = minute_offsets(start_ns, n, tz)
            assert not first.flags.writeable and not again.flags.writeable
            with pytest.raises(ValueError):
                again[0] = 1
            zone = ZoneInfo(tz)
            want = [int(datetime.fromtimestamp((start_ns // MINUTE_NS + m) * 60, UTC).astimezone(zone)
                        .utcoffset().total_seconds() // 60) for m in range(n)]
            assert first.tolist() == again.tolist() == want


def _grid_for(day_utc_start: str, days: int):
    """Heart rate every minute for ``days`` days, one participant in New York."""
    t0 = _utc_ns(day_utc_start)
    t = t0 + np.arange(days * 1440, dtype=np.int64) * MINUTE_NS
    n = t.size
    obs = Observations(np.full(n, CHANNEL_INDEX["heart_rate"], np.int16), t, np.full(n, 60.0),
                       np.zeros(n, np.int32), np.arange(n), ["f"], np.arange(n))
    return build_grid(obs, ("heart_rate",), NY)


def _day_windows(grid):
    win = cut_windows(grid, WindowConfig(size_min=1440, stride_min=1440, alignment="local_midnight",
                                         max_missing_ratio=1.0))
    return win, time_features(grid.start_minute, win.start_row, win.tz_offset_min)


def test_local_midnight_windows_across_spring_forward():
    grid = _grid_for("2024-03-08T05:00", 4)   # local midnight Mar 8 .. Mar 12 (EST -> EDT on Mar 10)
    win, tf = _day_windows(grid)
    starts_utc = (grid.start_minute + win.start_row) * 60
    local_days = [str(np.datetime64(int(s + o * 60), "s")) for s, o in zip(starts_utc, win.tz_offset_min[:, 0])]
    assert local_days[:4] == ["2024-03-08T00:00:00", "2024-03-09T00:00:00", "2024-03-10T00:00:00", "2024-03-11T00:00:00"]
    assert (tf[:, 0, 0] == 0).all() and (tf[:, 0, 1] == 0).all()   # every window starts at local 00:00
    mar10 = tf[2]
    hours = mar10[:, 1]
    assert 2 not in hours[:23 * 60]                      # the skipped hour does not exist
    # 23-hour day: the 1440-minute window runs 60 minutes into Mar 11 (documented), day of week advances
    assert (hours[23 * 60:] == 0).all() and mar10[-1, 2] == (mar10[0, 2] + 1) % 7
    assert win.tz_offset_min[2, 0] == -300 and win.tz_offset_min[2, -1] == -240


def test_local_midnight_windows_across_fall_back():
    grid = _grid_for("2024-11-02T04:00", 3)   # local midnight Nov 2 (EDT) .. Nov 5
    win, tf = _day_windows(grid)
    nov3 = tf[1]
    assert (nov3[0, :2] == 0).all()
    hours = nov3[:, 1]
    # 25-hour day: hour 1 appears twice (120 minutes), the window ends at local 23:00 (documented)
    assert (hours == 1).sum() == 120
    assert hours[-1] == 22 and nov3[-1, 0] == 59
    # the next window starts at the next local midnight, so the last local hour of Nov 3 is in no window
    assert win.start_row[2] - win.start_row[1] == 1500
    assert win.minutes_not_windowed >= 60


def test_repeated_hour_with_drifting_seconds_is_placed_by_the_step_back():
    """A CGM every ~5 min whose seconds drift: no exact repeats, yet the second pass is standard time."""
    wall = ["2024-11-03 01:50:01", "2024-11-03 01:55:02", "2024-11-03 01:00:04", "2024-11-03 01:05:05",
            "2024-11-03 01:50:09"]
    t, err = parse_local(pa.array(wall), "%Y-%m-%d %H:%M:%S", NY, np.array(["tx1"] * 5, dtype=object))
    assert err is None
    utc = [str(np.datetime64(int(x), "ns").astype("datetime64[s]")) for x in t]
    assert utc == ["2024-11-03T05:50:01", "2024-11-03T05:55:02", "2024-11-03T06:00:04", "2024-11-03T06:05:05",
                   "2024-11-03T06:50:09"]
    assert np.all(np.diff(t) > 0)   # strictly increasing: nothing counted twice


def test_years_nanoseconds_cannot_hold_are_unparseable_not_wrapped():
    from sensorpipe.core.timeparse import NAT, UNPARSEABLE, parse_iso

    t, err = parse_local(pa.array(["3024-01-01 00:00:00", "2024-01-01 00:00:00"]), "%Y-%m-%d %H:%M:%S", "UTC")
    assert t[0] == NAT and err[0] == UNPARSEABLE and err[1] is None
    t, err = parse_iso(pa.array(["3024-01-01T00:00:00Z", "1500-01-01T00:00:00+01:00", "2024-01-01T00:00:00Z"]))
    assert (t[:2] == NAT).all() and list(err[:2]) == [UNPARSEABLE, UNPARSEABLE]
    assert t[2] == _utc_ns("2024-01-01T00:00")


def test_epoch_numbers_too_large_for_nanoseconds_are_unparseable():
    from sensorpipe.core.timeparse import NAT, parse_epoch

    t, err = parse_epoch(pa.array([1_710_054_000_000, 10**17], pa.int64()), 1_000_000)
    assert t[0] == 1_710_054_000_000 * 1_000_000 and t[1] == NAT and err[1] == "unparseable_time"
    t, err = parse_epoch(pa.array([1.7e12, 1e300, float("nan")]), 1_000_000)
    assert t[0] == int(1.7e18) and (t[1:] == NAT).all() and err[0] is None


def test_time_features_match_the_calendar_minute_by_minute():
    """Day of week and month come from per-day tables; every minute must still be the calendar's own
    local time, across month and year ends, before 1970 and with odd offsets."""
    import datetime as dt

    rng = np.random.default_rng(2)
    start = np.array([-1_000_000, 0, 26_297_280 - 700, 28_401_120 - 500], np.int64)  # 1968, 1970, New Year 2020, 2024
    off = rng.integers(-840, 841, (4, 1500)).astype(np.int16)
    got = time_features(3, start, off)
    epoch = dt.datetime(1970, 1, 1)
    for i in range(4):
        for m in rng.integers(0, 1500, 60).tolist() + [0, 1499]:
            t = epoch + dt.timedelta(minutes=int(3 + start[i] + m + off[i, m]))
            assert got[i, m].tolist() == [t.minute, t.hour, t.weekday(), t.month], (i, m)
    assert got.dtype == np.int16 and time_features(0, start[:0], off[:0]).shape == (0, 1500, 4)
