"""Actiware CSV exports in English, German and French: preamble, separators, decimal commas, date orders,
off-wrist, device clock."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sensorpipe.sources.actigraphy._epochs import Device, devices
from sensorpipe.sources.base import SourceError
from tests.sources.actigraphy._common import DUMMY, expected, minutes, read, utc_s
from tests.sources.adapter_case import AdapterCase

PARTICIPANTS = DUMMY / "actiware" / "participants.csv"
#: language -> (line-number column, date, time, activity, white light, off-wrist)
NAMES = {"en": ("Line", "Date", "Time", "Activity", "White Light", "Off-Wrist Status"),
         "de": ("Zeile", "Datum", "Zeit", "Aktivität", "Weißes Licht", "Status „Nicht am Handgelenk“"),
         "fr": ("Ligne", "Date", "Heure", "Activité", "Lumière blanche", None)}


class TestActiwareCsv(AdapterCase):
    """p1 English (30 s, off-wrist, a NaN light), p2 German (';', decimal comma, a kZ), p3 French (1 min)."""

    ADAPTER = "actiware_csv"
    DUMMY = "actigraphy/actiware"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 3
    EXPECTED_CHANNELS = {"activity_counts": 389, "light": 389, "on_wrist": 330}   # 240 + 89 + 60; 240 + 90 + 59
    EXPECTED_REASONS = {"missing_value": 2}


def table(path: Path, lang: str, dayfirst: bool = True) -> pd.DataFrame:
    """Independent reading with pandas: the epoch table below the line that starts with the line-number column
    and names the activity column (the marker list above it starts the same way)."""
    line_col = NAMES[lang][0]
    text = path.read_text(encoding="utf-8-sig").splitlines()
    head = next(i for i, s in enumerate(text) if s.strip('"').startswith(line_col + '"') and NAMES[lang][3] in s)
    sep = ";" if ";" in text[head] else ","
    df = pd.read_csv(path, skiprows=head, sep=sep, dtype=str, encoding="utf-8-sig", na_values=["NaN", "NAN", "kZ"],
                     index_col=False)
    for c in NAMES[lang][3:]:
        if c in df:   # German numbers carry a decimal comma
            df[c] = pd.to_numeric(df[c].str.replace(",", "."), errors="coerce")
    fmt = "%d.%m.%Y %H:%M:%S" if lang == "de" else ("%d/%m/%Y %H:%M:%S" if dayfirst else "%m/%d/%Y %H:%M:%S")
    df["wall"] = pd.to_datetime(df[NAMES[lang][1]] + " " + df[NAMES[lang][2]], format=fmt)
    return df


def check(res, df: pd.DataFrame, lang: str, tz: str) -> None:
    """Counts (sum) and light (mean) per minute, the device clock running from the first row's wall time."""
    t0 = utc_s(df.wall.iloc[0].to_pydatetime(), tz)
    t = t0 + (df.wall - df.wall.iloc[0]).dt.total_seconds().to_numpy()
    act = df[NAMES[lang][3]].to_numpy(np.float64)
    assert minutes(res, "activity_counts") == expected(t, act, "sum")
    got, want = minutes(res, "light"), expected(t, df[NAMES[lang][4]].to_numpy(np.float64), "mean")
    assert got.keys() == want.keys() and np.allclose([got[m] for m in want], list(want.values()), rtol=1e-6)


@pytest.fixture(scope="module")
def dummy():
    return read("actiware_csv", DUMMY / "actiware", PARTICIPANTS)


@pytest.mark.parametrize("pid, lang, tz", [("p1", "en", "Europe/Berlin"), ("p2", "de", "America/New_York"),
                                           ("p3", "fr", "Europe/Paris")])
def test_counts_and_light_per_minute_match_the_file(dummy, pid, lang, tz):
    check(dummy[pid][1], table(DUMMY / "actiware" / f"{pid}.csv", lang), lang, tz)


def test_devices_epochs_and_off_wrist(dummy):
    assert devices(dummy["p1"][0]) == [Device("Spectrum Plus", 30.0)]
    assert devices(dummy["p2"][0]) == [Device("Spectrum PRO", 60.0)]
    assert devices(dummy["p3"][0]) == [Device("Actiwatch 2", 60.0)]
    worn = minutes(dummy["p1"][1], "on_wrist")
    first = min(worn)
    assert [m - first for m, v in sorted(worn.items()) if v == 0] == [30, 31, 32, 33, 34]   # epochs 60-69 off
    assert len(worn) == 120
    q = dummy["p2"][1].quarantine.to_pandas()
    assert q.reason.tolist() == ["missing_value"] and q.field.tolist() == ["activity"]     # the 'kZ' cell


def test_autumn_change_in_new_york_keeps_the_device_clock(dummy):
    """p2 runs 00:30-02:00 on 3 Nov 2024 (New York falls back at 02:00 EDT): 90 distinct minutes from 04:30 UTC."""
    got = sorted(minutes(dummy["p2"][1], "light"))
    assert got[0] * 60 == int(dt.datetime(2024, 11, 3, 4, 30, tzinfo=dt.timezone.utc).timestamp())
    assert got == list(range(got[0], got[0] + 90))


def test_us_dates_need_or_take_the_date_order(tmp_path):
    """A US export (MM/DD) of one evening is ambiguous: auto asks for date_order; MDY reads it; across midnight
    only one order gives consecutive epochs."""
    src = (DUMMY / "actiware" / "p1.csv").read_text(encoding="utf-8-sig")
    us = src.replace('"04/07/2024"', '"07/04/2024"').replace('"05/07/2024"', '"07/05/2024"')
    f = tmp_path / "p1.csv"
    f.write_text(us)
    (_, res), = read("actiware_csv", f, tz="America/Chicago", date_order="MDY").values()
    check(res, table(f, "en", dayfirst=False), "en", "America/Chicago")
    (_, auto), = read("actiware_csv", f, tz="America/Chicago").values()      # crosses midnight: only MDY fits
    assert minutes(auto, "activity_counts") == minutes(res, "activity_counts")
    evening = "\n".join(line for line in us.splitlines() if '"07/05/2024"' not in line)
    f.write_text(evening)
    with pytest.raises(SourceError, match="set options.date_order") as e:
        read("actiware_csv", f, tz="America/Chicago")
    assert "p1.csv" in str(e.value)


def test_a_file_without_the_epoch_table_names_the_fix(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text('"Actiware Export File"\n"Identity:","x"\n"Line","Marker"\n')
    with pytest.raises(SourceError, match="no epoch-by-epoch table") as e:
        read("actiware_csv", f, tz="UTC")
    assert "p.csv" in str(e.value)


@pytest.mark.parametrize("name, lang, epoch_s, model, light", [
    ("test_sample_rpx_eng.csv", "en", 30, "Actiwatch 2", True),
    ("test_sample_rpx_fr.csv", "fr", 60, "Actiwatch 2", True),
    ("test_sample_rpx_ger_with_light.csv", "de", 30, "Spectrum PRO", True),
    ("test_sample_rpx_ger_no_light.csv", "de", 30, "Spectrum PRO", False),
])
def test_pyactigraphy_sample_exports(pyact_data, name, lang, epoch_s, model, light):
    """Real exports: counts and light per minute as pandas reads them; the device's type, epoch and serial
    number as the preamble's line (in the export's language) names them."""
    path = pyact_data / name
    (inp, res), = read("actiware_csv", path, tz="Europe/Brussels").values()
    df = table(path, lang)
    t0 = utc_s(df.wall.iloc[0].to_pydatetime(), "Europe/Brussels")
    t = t0 + (df.wall - df.wall.iloc[0]).dt.total_seconds().to_numpy()
    assert minutes(res, "activity_counts") == expected(t, df[NAMES[lang][3]].to_numpy(np.float64), "sum")
    if light:
        assert len(minutes(res, "light")) == len(expected(t, df[NAMES[lang][4]].to_numpy(np.float64), "mean"))
    if NAMES[lang][5] in df:
        off = df[NAMES[lang][5]].to_numpy(np.float64)
        assert minutes(res, "on_wrist") == {m: 1.0 - v for m, v in expected(t, off, "min").items()}
    serial = _preamble_value(path, ("Actiwatch Serial Number", "Numéro de série de l'Actiwatch",
                                    "Actiwatch-Seriennummer"))
    assert serial and devices(inp) == [Device(model, float(epoch_s), serial)]
    assert set(res.reason_counts) <= {"missing_value"}


def _preamble_value(path, names: tuple[str, ...]) -> str:
    """The value of the first preamble line ``"<name> :","<value>"`` (any separator, any of ``names``)."""
    import csv

    text = path.read_bytes().decode("utf-8-sig", errors="replace")
    for sep in (",", ";"):
        for row in csv.reader(text.splitlines(), delimiter=sep):
            if len(row) >= 2 and row[0].strip().rstrip(":").strip() in names:
                return row[1].strip()
    return ""
