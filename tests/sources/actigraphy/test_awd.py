"""Actiwatch .AWD: header, epoch codes, device clock across DST, counts and light per minute."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.sources.actigraphy._epochs import Device, devices
from sensorpipe.sources.base import SourceError
from tests.sources.actigraphy._common import ARCHIVE, DUMMY, expected, minutes, read, utc_s
from tests.sources.adapter_case import AdapterCase


class TestActiwatchAwd(AdapterCase):
    """p1.AWD (Actiwatch-L, 30 s, Berlin autumn change) and p2.AWD (Actiwatch 4, 1 min, New York spring change)."""

    ADAPTER = "actiwatch_awd"
    DUMMY = "actigraphy/awd"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 2
    # p1: 480 epochs of activity (one 'x') and light; p2: 120 epochs of activity
    EXPECTED_CHANNELS = {"activity_counts": 599, "light": 480}
    EXPECTED_REASONS = {"wrong_type": 1}


def awd_columns(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Independent reading: header lines, activity and light (NaN where absent or not a number)."""
    lines = path.read_text().splitlines()
    act, lux = [], []
    for line in lines[7:]:
        if not line.strip():
            continue
        cells = line.replace(",", " ").split()
        act.append(float(cells[0]) if cells[0].isdigit() else np.nan)
        lux.append(float(cells[1]) if len(cells) > 1 and cells[1] != "M" else np.nan)
    return lines[:7], np.array(act), np.array(lux)


def test_counts_and_light_per_minute_match_the_file_across_the_autumn_change():
    _, res = read("actiwatch_awd", DUMMY / "awd", DUMMY / "awd" / "participants.csv")["p1"]
    _, act, lux = awd_columns(DUMMY / "awd" / "p1.AWD")
    start = utc_s(dt.datetime(2024, 10, 27, 1, 30), "Europe/Berlin")   # 01:30 CEST = 23:30 UTC
    assert start == int(dt.datetime(2024, 10, 26, 23, 30, tzinfo=dt.timezone.utc).timestamp())
    t = start + 30 * np.arange(act.size)                                   # 30-s epochs on the device clock
    got = minutes(res, "activity_counts")
    assert got == expected(t, act, "sum")
    assert len(got) == 240 and max(got) - min(got) == 239                  # 4 h, no minute folded or skipped
    light = minutes(res, "light")
    want = expected(t, lux, "mean")
    assert light.keys() == want.keys() and np.allclose([light[m] for m in want], list(want.values()), rtol=1e-6)


def test_spring_change_and_device_metadata():
    got = read("actiwatch_awd", DUMMY / "awd", DUMMY / "awd" / "participants.csv")
    inp, res = got["p2"]
    _, act, _ = awd_columns(DUMMY / "awd" / "p2.AWD")
    start = utc_s(dt.datetime(2024, 3, 10, 1, 0), "America/New_York")    # 01:00 EST = 06:00 UTC
    assert minutes(res, "activity_counts") == expected(start + 60 * np.arange(120), act, "sum")
    assert devices(inp) == [Device("Actiwatch 4", 60.0, "V664055")]
    assert devices(got["p1"][0]) == [Device("Actiwatch-L", 30.0, "L102938")]
    assert res.reason_counts == {}                                         # markers 'M' are not values


def _awd(tmp_path: Path, date: str, time: str, code: str = "4", serial: str = "V1", n: int = 3) -> Path:
    f = tmp_path / "p9.AWD"
    f.write_text("\n".join(["X", date, time, code, "30", serial, "F"] + [str(10 * k) for k in range(n)]) + "\n")
    return f


def test_start_in_the_repeated_hour_is_its_first_occurrence_and_the_skipped_hour_is_an_error(tmp_path):
    (_, res), = read("actiwatch_awd", _awd(tmp_path, "27-Oct-2024", "02:30"), tz="Europe/Berlin").values()
    assert min(minutes(res, "activity_counts")) * 60 == utc_s(dt.datetime(2024, 10, 27, 2, 30), "Europe/Berlin")
    with pytest.raises(SourceError, match=r"p9.AWD.*does not exist in Europe/Berlin"):
        read("actiwatch_awd", _awd(tmp_path, "31-Mar-2024", "02:30"), tz="Europe/Berlin")


@pytest.mark.parametrize("code, epoch_s", [("1", 15), ("2", 30), ("C1", 5), ("C2", 10), ("4", 60)])
def test_epoch_codes_sum_into_minutes(tmp_path, code, epoch_s):
    n = 2 * 60 // epoch_s                                                  # two minutes of epochs
    (inp, res), = read("actiwatch_awd", _awd(tmp_path, "01-Jun-2024", "12:00", code, n=n), tz="UTC").values()
    per = 60 // epoch_s
    want = [float(sum(10 * k for k in range(per * m, per * (m + 1)))) for m in range(2)]
    assert list(minutes(res, "activity_counts").values()) == want
    assert devices(inp)[0].epoch_s == epoch_s


@pytest.mark.parametrize("code, needle", [("8", "epoch length 120 s is not supported"), ("7", "unknown epoch code")])
def test_epochs_longer_than_a_minute_and_unknown_codes_are_refused(tmp_path, code, needle):
    with pytest.raises(SourceError, match=needle) as e:
        read("actiwatch_awd", _awd(tmp_path, "01-Jun-2024", "12:00", code), tz="UTC")
    assert "p9.AWD" in str(e.value)


def test_pyactigraphy_sample_recordings(pyact_data):
    """Real AWD files of five Actiwatch models: counts per minute as read independently, models from the serial."""
    for name, model, epoch_s in [("test_sample.AWD", "Actiwatch 4", 60), ("test_sample_aw7.AWD", "Actiwatch 7", 15),
                                 ("example_01.AWD", "Actiwatch 4", 60), ("test_sample_awl.AWD", "Actiwatch-L", 60)]:
        path = pyact_data / name
        (inp, res), = read("actiwatch_awd", path, tz="Europe/Brussels", validation=ARCHIVE).values()
        head, act, lux = awd_columns(path)
        start = dt.datetime.strptime(f"{head[1].strip()} {head[2].strip()}", "%d-%b-%Y %H:%M")
        t = utc_s(start, "Europe/Brussels") + epoch_s * np.arange(act.size)
        assert minutes(res, "activity_counts") == expected(t, act, "sum"), name
        assert devices(inp) == [Device(model, float(epoch_s), head[5].strip())], name
        if model in ("Actiwatch 7", "Actiwatch-L"):
            assert len(minutes(res, "light")) == len(expected(t, lux, "mean")), name
        assert res.rows_in == len(res.observations) + res.rows_quarantined
