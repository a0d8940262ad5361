"""ActiGraph .agd: SQLite read directly in the test, .NET ticks, spring change, inclinometer off-wrist."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.sources.actigraphy._epochs import Device, devices
from sensorpipe.sources.base import SourceError
from tests.sources.actigraphy._common import ARCHIVE, DUMMY, minutes, read, utc_s
from tests.sources.adapter_case import AdapterCase

TICKS_1970 = 621_355_968_000_000_000


class TestActiGraphAgd(AdapterCase):
    """p1.agd: wGT3XBT, 10-s epochs, an hour across the Berlin spring change, 12 epochs off, 6 without inclinometer."""

    ADAPTER = "actigraph_agd"
    DUMMY = "actigraphy/agd"
    PARTICIPANTS = "participants.csv"
    EXPECTED_CHANNELS = {"activity_counts": 360, "steps": 360, "light": 360, "on_wrist": 354}
    EXPECTED_REASONS: dict = {}


class TestActiGraphAgdCapsense(AdapterCase):
    """p2.agd: wGT3XBT with a capsense table, 10-s epochs, 2 h; 109 capsense minutes, one with state 7."""

    ADAPTER = "actigraph_agd"
    DUMMY = "actigraphy/agd_capsense"
    PARTICIPANTS = "participants.csv"
    EXPECTED_CHANNELS = {"activity_counts": 720, "steps": 720, "light": 720, "on_wrist": 109}
    EXPECTED_REASONS = {"out_of_range": 1}


def sql_minutes(path: Path, tz: str, column: str, how: str) -> dict[int, float]:
    """Independent reading: SQLite sums (or means) of ``column`` per minute of the device clock, placed in ``tz``."""
    con = sqlite3.connect(path)
    first, = con.execute("SELECT MIN(dataTimestamp) FROM data").fetchone()
    agg = "SUM" if how == "sum" else "AVG"
    rows = con.execute(f"SELECT (dataTimestamp - ?) / 600000000, {agg}({column}) FROM data GROUP BY 1 ORDER BY 1",
                       (first - first % 600_000_000,)).fetchall()
    con.close()
    start = utc_s(dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=(first - TICKS_1970) // 10), tz)
    m0 = start // 60
    return {m0 + int(m): float(v if how == "sum" else np.float32(v)) for m, v in rows}


def test_counts_steps_and_lux_per_minute_match_sqlite_across_the_spring_change():
    path = DUMMY / "agd" / "p1.agd"
    (inp, res), = read("actigraph_agd", DUMMY / "agd", DUMMY / "agd" / "participants.csv").values()
    assert minutes(res, "activity_counts") == sql_minutes(path, "Europe/Berlin", "axis1", "sum")
    assert minutes(res, "steps") == sql_minutes(path, "Europe/Berlin", "steps", "sum")
    lux, want = minutes(res, "light"), sql_minutes(path, "Europe/Berlin", "lux", "mean")
    assert lux.keys() == want.keys() and np.allclose([lux[m] for m in want], list(want.values()), rtol=1e-6)
    t = np.sort(res.observations.t_utc_ns[res.observations.channel == res.observations.channel[0]])
    assert np.all(np.diff(t) == 10 * 10**9)          # 01:40 CET to 02:40 device clock: no gap, no fold, no quarantine
    assert t[0] // 10**9 == utc_s(dt.datetime(2024, 3, 31, 1, 40), "Europe/Berlin")
    assert devices(inp) == [Device("wGT3XBT", 10.0, "MOS2E00000000")]


def test_inclinometer_off_epochs_become_off_wrist_minutes():
    (_, res), = read("actigraph_agd", DUMMY / "agd", DUMMY / "agd" / "participants.csv").values()
    worn = minutes(res, "on_wrist")
    first = min(worn)
    # epochs 100-111 off: minute 16 holds epochs 96-101 (some worn), minute 17 epochs 102-107 (all off),
    # minute 18 epochs 108-113 (some worn); epochs 200-205 (no inclinometer) give no row, their minutes keep others
    assert [m - first for m, v in sorted(worn.items()) if v == 0] == [17]
    assert len(worn) == 60


def test_older_file_without_steps_lux_or_inclinometer(tmp_path):
    f = tmp_path / "old.agd"
    shutil.copy(DUMMY / "agd" / "p1.agd", f)
    con = sqlite3.connect(f)
    con.execute("CREATE TABLE d2 AS SELECT dataTimestamp, axis1, axis2, axis3 FROM data")
    con.execute("DROP TABLE data")
    con.execute("ALTER TABLE d2 RENAME TO data")
    con.commit()
    con.close()
    (_, res), = read("actigraph_agd", f, tz="UTC").values()
    assert res.reason_counts == {} and len(res.observations) == 360
    assert minutes(res, "activity_counts") == sql_minutes(f, "UTC", "axis1", "sum")
    assert minutes(res, "steps") == {} and minutes(res, "on_wrist") == {}


@pytest.mark.parametrize("damage, needle", [
    ("no_tables", "lacks the settings and data tables"),
    ("epoch_90", "epoch length 90 s is not supported"),
    ("text", "cannot read the SQLite database|cannot open"),
])
def test_unreadable_agd_names_the_file(tmp_path, damage, needle):
    f = tmp_path / "bad.agd"
    if damage == "text":
        f.write_text("SQLite format 3\x00" + "x" * 200)
    else:
        shutil.copy(DUMMY / "agd" / "p1.agd", f)
        con = sqlite3.connect(f)
        if damage == "no_tables":
            con.execute("DROP TABLE data")
        else:
            con.execute("UPDATE settings SET settingValue = '90' WHERE settingName = 'epochlength'")
        con.commit()
        con.close()
    with pytest.raises(SourceError, match=needle) as e:
        read("actigraph_agd", f, tz="UTC")
    assert "bad.agd" in str(e.value)


def test_pyactigraphy_sample_recording(pyact_data):
    path = pyact_data / "test_sample.agd"
    (inp, res), = read("actigraph_agd", path, tz="Europe/Brussels", validation=ARCHIVE).values()
    assert minutes(res, "activity_counts") == sql_minutes(path, "Europe/Brussels", "axis1", "sum")
    assert minutes(res, "steps") == sql_minutes(path, "Europe/Brussels", "steps", "sum")
    con = sqlite3.connect(path)
    serial, = con.execute("SELECT settingValue FROM settings WHERE settingName = 'deviceserial'").fetchone()
    con.close()
    assert devices(inp) == [Device("wGT3XBT", 10.0, serial)] and serial
    assert res.rows_in == len(res.observations) and res.reason_counts == {}


def test_capsense_state_gives_on_wrist_per_minute():
    """Each capsense row's state is its minute's on_wrist (0 = not worn), read independently with SQLite; the
    inclinometer ("standing" throughout) does not override the wear sensor; minutes without a capsense row
    (110-119) and the damaged state 7 (minute 100, quarantined) have none."""
    path = DUMMY / "agd_capsense" / "p2.agd"
    (inp, res), = read("actigraph_agd", path.parent, path.parent / "participants.csv").values()
    con = sqlite3.connect(path)
    rows = con.execute("SELECT timeStamp, state FROM capsense ORDER BY timeStamp").fetchall()
    first, = con.execute("SELECT MIN(dataTimestamp) FROM data").fetchone()
    con.close()
    start = utc_s(dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=(first - TICKS_1970) // 10),
                  "America/New_York")
    want = {(start + (ts - first) // 10**7) // 60: float(s) for ts, s in rows if s in (0, 1)}
    worn = minutes(res, "on_wrist")
    assert worn == want
    m0 = start // 60
    assert sorted(m - m0 for m, v in worn.items() if v == 0) == list(range(30, 45))
    assert m0 + 100 not in worn and not any(m0 + k in worn for k in range(110, 120))
    assert res.reason_counts == {"out_of_range": 1}
    assert minutes(res, "activity_counts") == sql_minutes(path, "America/New_York", "axis1", "sum")
    assert devices(inp) == [Device("wGT3XBT", 10.0, "MOS2E22222222")]


def test_capsense_table_without_its_state_column_names_the_file(tmp_path):
    f = tmp_path / "bad.agd"
    shutil.copy(DUMMY / "agd_capsense" / "p2.agd", f)
    con = sqlite3.connect(f)
    con.execute("ALTER TABLE capsense DROP COLUMN state")
    con.commit()
    con.close()
    with pytest.raises(SourceError, match="capsense table lacks its timeStamp or state column") as e:
        read("actigraph_agd", f, tz="UTC")
    assert "bad.agd" in str(e.value)


def test_empty_capsense_table_leaves_the_inclinometer_wear(tmp_path):
    """A capsense table with no rows (the device logged none) is no wear sensor reading: the inclinometer's
    on_wrist stays."""
    f = tmp_path / "p1.agd"
    shutil.copy(DUMMY / "agd" / "p1.agd", f)
    con = sqlite3.connect(f)
    con.execute("CREATE TABLE capsense (timeStamp INTEGER, signal INTEGER, reference INTEGER, state INTEGER, "
                "bursts INTEGER)")
    con.commit()
    con.close()
    (_, res), = read("actigraph_agd", f, tz="Europe/Berlin").values()
    (_, base), = read("actigraph_agd", DUMMY / "agd", DUMMY / "agd" / "participants.csv").values()
    assert minutes(res, "on_wrist") == minutes(base, "on_wrist") and len(minutes(res, "on_wrist")) == 60
