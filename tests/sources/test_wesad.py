"""WESAD subject pickles: safe unpickling, chest/wrist preference, start time, DST, condition segments.

The 70-s subject ``S2/S2.pkl`` (3.4 MB of 700-Hz float64 arrays, in WESAD's
Python 2 pickle dialect) is written by ``dummy_data/wesad/make_dummy.py`` into
a temporary folder, with the same ``participants.csv`` and
``S2/S2_respiban.txt`` as are checked in next to the script.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.config import SourceConfig
from sensorpipe.processing import raw_features
from sensorpipe.sources.base import SourceError, make_adapter
from sensorpipe.sources.wesad import load_subject
from tests.sources.adapter_case import DUMMY_ROOT, AdapterCase

CHECKED_IN = DUMMY_ROOT / "wesad"


def _make_dummy():
    spec = importlib.util.spec_from_file_location("wesad_make_dummy", CHECKED_IN / "make_dummy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MK = _make_dummy()


@functools.cache
def generated() -> Path:
    """The dummy folder with its pickle, built once per test process."""
    tmp = tempfile.mkdtemp(prefix="wesad_dummy_")
    atexit.register(shutil.rmtree, tmp, True)
    root = Path(tmp) / "wesad"
    MK.write(root)
    return root


def ns(iso: str) -> int:
    return int(np.datetime64(iso, "ns").astype(np.int64))


def adapter(root: Path, participants: str | None = "participants.csv", **options):
    return make_adapter(SourceConfig("w", "wesad", str(root), str(root / participants) if participants else None,
                                     options), str(root))


def signals(root: Path, **options) -> dict:
    a = adapter(root, **options)
    (unit,) = a.list_units()
    return {s.kind: s for s in a.read_unit(unit).raw_signals}


def minute_values(sig) -> dict[int, float]:
    obs = raw_features.extract(sig).primary()
    return dict(zip(obs.t_utc_ns.tolist(), obs.value.tolist()))


class TestWesadAdapter(AdapterCase):
    """S2: 70 s from 09:11:00 UTC; minute 09:11 is full, 09:12 holds 10 s (partial). prefer: chest.

    One minute per channel: ECG heart rate, respiration, chest ENMO, EDA and
    temperature. Raw-only format: no native rows, no quarantine.
    """

    ADAPTER = "wesad"
    DUMMY = "wesad"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 1
    EXPECTED_CHANNELS = {"heart_rate": 1, "respiratory_rate": 1, "enmo": 1, "eda_level": 1, "skin_temperature": 1}
    EXPECTED_REASONS = {}
    MUTABLE = ("S2/S2.pkl",)

    def dummy(self) -> Path:
        return generated()


def test_chest_signals_values_and_start():
    sig = signals(generated())
    assert {k: (s.sample_rate_hz, s.unit) for k, s in sig.items()} == {
        "ecg": (700.0, "mV"), "resp": (700.0, "%"), "acc": (700.0, "g"), "eda": (700.0, "uS"), "temp": (700.0, "degC")}
    assert all(s.start_utc_ns == ns("2017-05-22T09:11") for s in sig.values())
    assert sig["ecg"].values.shape == (49000,) and sig["acc"].values.shape == (49000, 3)
    m = ns("2017-05-22T09:11")
    assert minute_values(sig["acc"]) == {m: pytest.approx(100.0)}            # |(0, 0.66, 0.88)| g = 1.1 g
    assert minute_values(sig["eda"]) == {m: pytest.approx(5.0)}
    assert minute_values(sig["temp"]) == {m: pytest.approx(34.0)}
    assert abs(minute_values(sig["ecg"])[m] - 72) < 1.5
    assert abs(minute_values(sig["resp"])[m] - 15) < 0.5


def test_prefer_wrist_takes_bvp_and_wrist_signals_but_chest_respiration():
    sig = signals(generated(), prefer="wrist")
    assert {k: (s.sample_rate_hz, s.unit) for k, s in sig.items()} == {
        "ppg": (64.0, "a.u."), "resp": (700.0, "%"), "acc": (32.0, "1/64 g"), "eda": (4.0, "uS"), "temp": (4.0, "degC")}
    m = ns("2017-05-22T09:11")
    assert minute_values(sig["acc"]) == {m: pytest.approx(0.0)}              # (0, 0, 64) / 64 g = 1 g
    assert minute_values(sig["eda"]) == {m: pytest.approx(0.8)}
    assert minute_values(sig["temp"]) == {m: pytest.approx(32.5)}
    assert abs(minute_values(sig["ppg"])[m] - 72) < 3


def test_start_from_respiban_header_matches_the_table():
    sig = signals(generated(), start_from="respiban")   # "2017-5-22" "11:11:0.0", Europe/Berlin (CEST, UTC+2)
    assert sig["ecg"].start_utc_ns == ns("2017-05-22T09:11")


def _respiban_copy(tmp_path: Path, date: str, time: str) -> Path:
    root = tmp_path / "wesad"
    shutil.copytree(generated(), root)
    txt = root / "S2" / "S2_respiban.txt"
    txt.write_text(txt.read_text().replace('"2017-5-22"', f'"{date}"').replace('"11:11:0.0"', f'"{time}"'))
    return root


def test_fall_back_respiban_start_is_the_first_occurrence(tmp_path):
    root = _respiban_copy(tmp_path, "2017-10-29", "2:30:0.0")
    sig = signals(root, start_from="respiban")
    # Berlin repeats 02:00-03:00 on 2017-10-29: the first 02:30 is CEST (UTC+2)
    assert sig["ecg"].start_utc_ns == ns("2017-10-29T00:30")
    assert list(minute_values(sig["eda"])) == [ns("2017-10-29T00:30")]


def test_spring_forward_respiban_start_is_an_error_naming_the_file(tmp_path):
    root = _respiban_copy(tmp_path, "2017-3-26", "2:30:0.0")
    with pytest.raises(SourceError, match="S2_respiban.txt: the recording start 2017-03-26 02:30:00 does not exist"):
        signals(root, start_from="respiban")


def test_condition_segments():
    a = adapter(generated())
    (unit,) = a.list_units()
    t0 = ns("2017-05-22T09:11")
    s = 1_000_000_000
    # labels: 0 (0-5 s), 1 (5-25), 0 (25-28), 2 (28-48), 7 (48-53), 3 (53-63), 4 (63-70)
    assert a.condition_segments(unit) == [(t0 + 5 * s, t0 + 25 * s, "baseline"), (t0 + 28 * s, t0 + 48 * s, "stress"),
                                          (t0 + 53 * s, t0 + 63 * s, "amusement"),
                                          (t0 + 63 * s, t0 + 70 * s, "meditation")]


def _subject_copy(tmp_path: Path, change) -> Path:
    root = tmp_path / "wesad"
    shutil.copytree(generated(), root, ignore=shutil.ignore_patterns("*.pkl"))
    obj = MK.subject()
    change(obj)
    (root / "S2" / "S2.pkl").write_bytes(MK.py2_pickle(obj))
    return root


def test_unknown_label_id_is_an_error(tmp_path):
    def label_9(obj):
        obj["label"][700] = 9

    a = adapter(_subject_copy(tmp_path, label_9))
    with pytest.raises(SourceError, match="label 9 at sample 700 is not a WESAD condition id"):
        a.condition_segments(a.list_units()[0])


def test_wrist_stream_of_the_wrong_length_is_an_error(tmp_path):
    def short_bvp(obj):
        obj["signal"]["wrist"]["BVP"] = obj["signal"]["wrist"]["BVP"][:64 * 60]

    a = adapter(_subject_copy(tmp_path, short_bvp))
    with pytest.raises(SourceError, match=r"durations differ by 10.2 s .*wrist.BVP 60.0 s"):
        a.read_unit(a.list_units()[0])


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    root = tmp_path / "wesad"
    shutil.copytree(generated(), root, ignore=shutil.ignore_patterns("*.pkl"))
    marker = tmp_path / "pwned"
    (root / "S2" / "S2.pkl").write_bytes(pickle.dumps({"signal": _Evil(str(marker)), "label": None}, protocol=2))
    with pytest.raises(SourceError, match=r"refusing to load (posix|os|nt)\.system"):
        adapter(root).read_unit(adapter(root).list_units()[0])
    assert not marker.exists()


def test_only_subject_pickles_inside_the_path_are_opened(tmp_path):
    root = tmp_path / "wesad"
    shutil.copytree(generated(), root)
    (root / "S2" / "notes.pkl").write_bytes(b"not read")
    outside = tmp_path / "elsewhere" / "S3.pkl"
    outside.parent.mkdir()
    shutil.copy(root / "S2" / "S2.pkl", outside)
    (root / "S3").mkdir()
    (root / "S3" / "S3.pkl").symlink_to(outside)
    with pytest.raises(SourceError, match="outside the source path"):
        adapter(root).list_units()
    with pytest.raises(SourceError, match="only WESAD subject files"):
        load_subject(root / "S2" / "notes.pkl", root)


def test_a_python3_pickle_of_the_same_subject_also_loads(tmp_path):
    root = tmp_path / "wesad"
    shutil.copytree(generated(), root, ignore=shutil.ignore_patterns("*.pkl"))
    (root / "S2" / "S2.pkl").write_bytes(pickle.dumps(MK.subject(), protocol=4))
    assert set(signals(root)) == {"ecg", "resp", "acc", "eda", "temp"}


def test_start_time_is_required(tmp_path):
    root = tmp_path / "wesad"
    shutil.copytree(generated(), root)
    (root / "participants.csv").write_text("participant_id,tz\nS2,Europe/Berlin\n")
    with pytest.raises(SourceError, match="add a start_utc column"):
        signals(root)
    (root / "participants.csv").write_text("participant_id,tz,start_utc\nS2,Europe/Berlin,2017-05-22 11:11\n")
    with pytest.raises(SourceError, match="not ISO 8601 with Z or an offset"):
        signals(root)
    # without a table, the default zone (Europe/Berlin) and the RespiBAN header still place it
    assert signals(root, participants=None, start_from="respiban")["ecg"].start_utc_ns == ns("2017-05-22T09:11")
