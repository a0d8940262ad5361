"""Condor ActTrust .txt: report header, ';' table, PIM/TAT/ZCM modes, light, STATE off-wrist, autumn change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensorpipe.sources.actigraphy._epochs import Device, devices
from sensorpipe.sources.base import SourceError
from tests.sources.actigraphy._common import ARCHIVE, DUMMY, expected, minutes, read, utc_s
from tests.sources.adapter_case import AdapterCase

PARTICIPANTS = DUMMY / "acttrust" / "participants.csv"


class TestActTrustTxt(AdapterCase):
    """p1.txt: ActTrust2, 30-s epochs from 27/10/2024 01:30 Berlin for 3 h, STATE 4 for 8 epochs."""

    ADAPTER = "acttrust_txt"
    DUMMY = "actigraphy/acttrust"
    PARTICIPANTS = "participants.csv"
    EXPECTED_CHANNELS = {"activity_counts": 360, "light": 360, "on_wrist": 360}
    EXPECTED_REASONS: dict = {}


def table(path: Path) -> pd.DataFrame:
    """Independent reading with pandas: the ';' table below the line that starts with DATE/TIME."""
    text = path.read_text().splitlines()
    head = next(i for i, s in enumerate(text) if s.startswith("DATE/TIME;"))
    df = pd.read_csv(path, skiprows=head, sep=";")
    df["wall"] = pd.to_datetime(df["DATE/TIME"], format="%d/%m/%Y %H:%M:%S")
    return df


def check(res, df: pd.DataFrame, tz: str, mode: str = "PIM") -> None:
    t0 = utc_s(df.wall.iloc[0].to_pydatetime(), tz)
    t = t0 + (df.wall - df.wall.iloc[0]).dt.total_seconds().to_numpy()
    assert minutes(res, "activity_counts") == expected(t, df[mode].to_numpy(np.float64), "sum")
    got, want = minutes(res, "light"), expected(t, df["LIGHT"].to_numpy(np.float64), "mean")
    assert got.keys() == want.keys() and np.allclose([got[m] for m in want], list(want.values()), rtol=1e-6)


@pytest.mark.parametrize("mode", ["PIM", "TAT", "ZCM"])
def test_activity_mode_and_light_per_minute_match_the_file(mode):
    (inp, res), = read("acttrust_txt", DUMMY / "acttrust", PARTICIPANTS, mode=mode).values()
    check(res, table(DUMMY / "acttrust" / "p1.txt"), "Europe/Berlin", mode)
    assert devices(inp) == [Device(f"ActTrust2 {mode}", 30.0, "AT2-0001")]


def test_autumn_change_and_off_wrist_state():
    (_, res), = read("acttrust_txt", DUMMY / "acttrust", PARTICIPANTS).values()
    worn = minutes(res, "on_wrist")
    first = min(worn)
    assert first * 60 == int(dt.datetime(2024, 10, 26, 23, 30, tzinfo=dt.timezone.utc).timestamp())   # 01:30 CEST
    assert sorted(worn) == list(range(first, first + 180))     # 3 h of distinct minutes through 03:00 -> 02:00
    assert [m - first for m, v in sorted(worn.items()) if v == 0] == [100, 101, 102, 103]   # epochs 200-207


def test_missing_mode_column_and_header_name_the_fix(tmp_path):
    src = (DUMMY / "acttrust" / "p1.txt").read_text()
    f = tmp_path / "p.txt"
    f.write_text(src.replace(";ZCM;ZCMn", ";X;Xn"))
    with pytest.raises(SourceError, match="no ZCM column") as e:
        read("acttrust_txt", f, tz="UTC", mode="ZCM")
    assert "p.txt" in str(e.value)
    f.write_text("DATE/TIME;PIM\n01/01/2024 00:00:00;1\n")
    with pytest.raises(SourceError, match="Condor Instruments Report"):
        read("acttrust_txt", f, tz="UTC")


def test_pyactigraphy_sample_export(pyact_data):
    path = pyact_data / "test_sample_atr.txt"
    (inp, res), = read("acttrust_txt", path, tz="America/Sao_Paulo", validation=ARCHIVE).values()
    check(res, table(path), "America/Sao_Paulo")
    (d,) = devices(inp)
    assert (d.model, d.epoch_s) == ("ActTrust1 PIM", 60.0) and d.serial == _header_value(path, "DEVICE_ID")
    assert res.reason_counts == {} and set(minutes(res, "on_wrist").values()) == {1.0}


def _header_value(path, key: str) -> str:
    """A ``KEY : value`` line's value in an ActTrust report header, read plainly."""
    for line in path.read_bytes().decode("latin-1").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return ""
