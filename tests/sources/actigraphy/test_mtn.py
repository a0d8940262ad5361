"""MotionWatch .mtn: XML properties and channels, 5/15-s epochs summed (motion) and averaged (light)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.sources.actigraphy._epochs import Device, devices
from sensorpipe.sources.base import SourceError
from tests.sources.actigraphy._common import DUMMY, expected, minutes, read, utc_s
from tests.sources.adapter_case import AdapterCase


class TestMotionWatchMtn(AdapterCase):
    """p1.mtn: MW8, motion and Light at 15 s for 2 h from 2024-06-01 22:00 (Berlin)."""

    ADAPTER = "motionwatch_mtn"
    DUMMY = "actigraphy/mtn"
    PARTICIPANTS = "participants.csv"
    EXPECTED_CHANNELS = {"activity_counts": 480, "light": 480}
    EXPECTED_REASONS: dict = {}


def mtn_channels(path: Path) -> tuple[str, dict[str, tuple[int, np.ndarray]]]:
    """Independent reading with regular expressions: start time, and per channel (epoch s, values)."""
    text = path.read_text(encoding="utf-8-sig")
    start = re.search(r"<name>=StartTime</name><content>([^<]+)</content>", text).group(1)
    out = {}
    for name, epoch, data in re.findall(r"<channel><name>(\w+)</name>.*?<epoch>(\d+)</epoch>.*?"
                                        r"<data encoding=\"text\">([^<]*)</data>", text, flags=re.S):
        out[name] = (int(epoch), np.array([float(v) for v in data.replace("\n", "").split(",") if v.strip()]))
    return start, out


def check_against_file(res, path: Path, tz: str) -> None:
    start, chans = mtn_channels(path)
    t0 = utc_s(dt.datetime.strptime(start, "%Y-%m-%d %H:%M:%S"), tz)
    epoch, motion = chans["motion"]
    assert minutes(res, "activity_counts") == expected(t0 + epoch * np.arange(motion.size), motion, "sum")
    epoch, lux = chans["Light"]
    got, want = minutes(res, "light"), expected(t0 + epoch * np.arange(lux.size), lux, "mean")
    assert got.keys() == want.keys() and np.allclose([got[m] for m in want], list(want.values()), rtol=1e-6)


def test_motion_and_light_per_minute_match_the_file():
    (inp, res), = read("motionwatch_mtn", DUMMY / "mtn", DUMMY / "mtn" / "participants.csv").values()
    check_against_file(res, DUMMY / "mtn" / "p1.mtn", "Europe/Berlin")
    assert devices(inp) == [Device("MW8", 15.0, "012345")]
    assert len(minutes(res, "activity_counts")) == 120


def test_a_later_change_overrides_and_a_non_lux_light_channel_is_quarantined(tmp_path):
    text = (DUMMY / "mtn" / "p1.mtn").read_text(encoding="utf-8-sig")
    text = text.replace("</log2>", '  <change user="lab" time="2024-06-04 09:00:00"><property><name>=StartTime</name>'
                                   "<content>2024-06-01 23:00:00</content></property></change>\n</log2>")
    text = text.replace("<units>lux</units>", "<units>fc</units>")
    f = tmp_path / "p1.mtn"
    f.write_text(text)
    (_, res), = read("motionwatch_mtn", f, tz="UTC").values()
    assert min(minutes(res, "activity_counts")) * 60 == utc_s(dt.datetime(2024, 6, 1, 23, 0), "UTC")
    assert res.reason_counts == {"unknown_unit": 480}


@pytest.mark.parametrize("content, needle", [
    ("<motionfile><log2></log2></motionfile>", "no =StartTime property"),
    ("<motionfile><log2>", "not a readable MotionWatch .mtn file"),
    ('<?xml version="1.0" encoding="TF-8"?><motionfile/>', "unknown encoding: TF-8"),   # a damaged declaration
])
def test_unreadable_mtn_names_the_file(tmp_path, content, needle):
    f = tmp_path / "bad.mtn"
    f.write_text(content)
    with pytest.raises(SourceError, match=needle) as e:
        read("motionwatch_mtn", f, tz="UTC")
    assert "bad.mtn" in str(e.value)


def test_pyactigraphy_sample_recording(pyact_data):
    path = pyact_data / "test_sample.mtn"
    (inp, res), = read("motionwatch_mtn", path, tz="Europe/London").values()
    check_against_file(res, path, "Europe/London")
    (d,) = devices(inp)
    assert (d.model, d.epoch_s) == ("MW8", 5.0) and d.serial == _property(path, "=SerialNo")
    assert res.reason_counts == {}


def _property(path, name: str) -> str:
    """The last ``<property>`` named ``name`` in an .mtn file, read with ElementTree (later changes override)."""
    import xml.etree.ElementTree as ET

    value = ""
    for prop in ET.parse(path).iter():
        if prop.tag.rsplit("}", 1)[-1] == "property":
            kids = {c.tag.rsplit("}", 1)[-1]: (c.text or "") for c in prop}
            if kids.get("name", "").strip() == name:
                value = kids.get("content", "").strip()
    return value
