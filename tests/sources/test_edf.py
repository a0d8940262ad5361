"""EDF/EDF+ recordings: label matching, physical units, saturation, local start and DST, PII, real files.

Real files (``tests/data/edf``, see its README): biosignalsnotebooks 0.6.14's
``supine_1min.edf`` (PLUX ECG, 1 kHz, 60 s) and ``eda_slow_signal.edf``
(PLUX EDA, 100 Hz; its samples sit at the digital maximum: a saturated export).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

pyedflib = pytest.importorskip("pyedflib")

from sensorpipe.config import SourceConfig  # noqa: E402
from sensorpipe.processing import raw_features  # noqa: E402
from sensorpipe.sources.base import SourceError, make_adapter  # noqa: E402
from sensorpipe.sources.edf import EdfAdapter, read_edf  # noqa: E402
from tests.sources.adapter_case import DUMMY_ROOT, AdapterCase  # noqa: E402

DUMMY = DUMMY_ROOT / "edf"
REAL = Path(__file__).resolve().parents[1] / "data" / "edf"
NY = "America/New_York"


def _make_dummy():
    spec = importlib.util.spec_from_file_location("edf_make_dummy", DUMMY / "make_dummy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


MK = _make_dummy()


def ns(iso: str) -> int:
    return int(np.datetime64(iso, "ns").astype(np.int64))


def by_kind(path: Path, tz: str = NY, **options) -> dict:
    return {s.kind: s for s in read_edf(path, tz, EdfAdapter.Options(**options))}


def minutes(sig) -> dict[int, float]:
    obs = raw_features.extract(sig).primary()
    return dict(zip(obs.t_utc_ns.tolist(), obs.value.tolist()))


def small_edf(path: Path, start: dt.datetime, label: str = "EDA", unit: str = "uS", seconds: int = 70) -> Path:
    MK.write(path, start, [MK.signal(label, unit, 4, 0, 50)], [np.full(seconds * 4, 3.0)], "Jane_Doe")
    return path


class TestEdfAdapter(AdapterCase):
    """rec01 (ECG II uV, Thor/Abdo, EDA, Temp, EMG) and rec02 (EKG mV, GSR): 70 s from a whole local minute.

    New York is UTC-4 in June: rec01 covers 14:00:00-14:01:10 UTC, rec02
    02:30:00-02:31:10 UTC, so each used signal gives one full minute (the 10-s
    tail is partial). One respiration signal only (Thor; Abdo is a second
    match). Raw-only format: no native rows, no quarantine.
    """

    ADAPTER = "edf"
    DUMMY = "edf"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 2
    EXPECTED_CHANNELS = {"heart_rate": 2, "respiratory_rate": 1, "eda_level": 2, "skin_temperature": 1}
    EXPECTED_REASONS = {}
    MUTABLE = ("rec01.edf", "rec02.edf")


def test_rec01_units_saturation_and_times():
    sig = by_kind(DUMMY / "rec01.edf")
    assert set(sig) == {"ecg", "resp", "eda", "temp"}
    ecg = sig["ecg"]
    assert ecg.unit == "mV" and ecg.sample_rate_hz == 128.0 and ecg.start_utc_ns == ns("2024-06-03T14:00")
    # the three clipped R peaks (written at the digital maximum) are NaN; every other sample is the written
    # microvolt value in mV, to the header's resolution (6000 uV over 65535 steps)
    assert np.flatnonzero(np.isnan(ecg.values)).tolist() == [2242, 4803, 5865]
    import neurokit2 as nk
    written_uv = nk.ecg_simulate(duration=70, sampling_rate=128, heart_rate=72, random_state=5)
    written_uv = written_uv / written_uv.max() * 1000.0
    ok = ~np.isnan(ecg.values)
    assert np.abs(ecg.values[ok] - written_uv[ok] / 1000.0).max() <= 6000 / 65535 / 1000
    (t, hr), = minutes(ecg).items()
    assert t == ns("2024-06-03T14:00") and abs(hr - 72) < 1.0
    # physical = (digital - dmin) * (pmax - pmin) / (dmax - dmin) + pmin: 16-bit over 0-50 uS
    assert minutes(sig["eda"]) == {ns("2024-06-03T14:00"): pytest.approx(4.0, abs=50 / 65535)}
    assert minutes(sig["temp"]) == {ns("2024-06-03T14:00"): pytest.approx(33.5, abs=25 / 65535)}
    (t, rr), = minutes(sig["resp"]).items()
    assert abs(rr - 15) < 0.5
    assert sig["resp"].values.max() == pytest.approx(0.5, abs=1e-3)  # Thor (peak 0.5 mV), not Abdo (0.25)


def test_rec02_ekg_in_mv_and_gsr():
    sig = by_kind(DUMMY / "rec02.edf")
    assert set(sig) == {"ecg", "eda"}
    assert sig["ecg"].start_utc_ns == ns("2024-06-05T02:30")         # 22:30 EDT on June 4
    (t, hr), = minutes(sig["ecg"]).items()
    assert abs(hr - 60) < 1.0
    assert list(minutes(sig["eda"]).values()) == [pytest.approx(2.5, abs=25 / 65535)]


def test_saturated_keep_and_label_and_unit_options():
    sig = by_kind(DUMMY / "rec01.edf", saturated="keep", kinds={"resp": ("abdo*",), "ecg": ("ECG*",)})
    assert not np.isnan(sig["ecg"].values).any() and sig["ecg"].values.max() == pytest.approx(3.0)
    assert set(sig) == {"ecg", "resp"}
    assert sig["resp"].values.max() == pytest.approx(0.25, abs=1e-3)  # Abdo now
    sig = by_kind(DUMMY / "rec02.edf", units={"EKG": "uV"})
    assert np.nanmax(sig["ecg"].values) == pytest.approx(1e-3, rel=1e-3)


def test_patient_field_never_reaches_the_output(tmp_path):
    root = tmp_path / "edf"
    shutil.copytree(DUMMY, root)
    adapter = make_adapter(SourceConfig("s", "edf", str(root), str(root / "participants.csv")), str(root))
    text = repr([adapter.read_unit(u) for u in adapter.list_units()])
    assert "Jane" not in text and "Doe" not in text and "MRN" not in text and "1980" not in text
    damaged = root / "rec01.edf"
    damaged.write_bytes(damaged.read_bytes()[:300])
    with pytest.raises(SourceError) as e:
        adapter.read_unit(adapter.list_units()[0])
    assert "rec01.edf" in str(e.value) and "Jane" not in str(e.value)


def test_participants_from_table_and_folder(tmp_path):
    root = tmp_path / "edf"
    (root / "p9").mkdir(parents=True)
    shutil.copy(DUMMY / "rec01.edf", root / "night1.edf")
    shutil.copy(DUMMY / "rec02.edf", root / "p9" / "night2.edf")
    table = tmp_path / "participants.csv"
    table.write_text("participant_id,tz,file\nA7,America/New_York,night1.edf;p9/night2.edf\n")
    units = make_adapter(SourceConfig("s", "edf", str(root), str(table), {"participant_from": "table"}),
                         ".").list_units()
    assert [(u.participant.participant_id, len(u.files)) for u in units] == [("A7", 2)]
    units = make_adapter(SourceConfig("s", "edf", str(root), None, {"participant_from": "folder", "tz": NY}),
                         ".").list_units()
    assert [u.participant.participant_id for u in units] == ["night1", "p9"]
    table.write_text("participant_id,tz,file\nA7,America/New_York,night1.edf\n")
    with pytest.raises(SourceError, match="p9/night2.edf"):
        make_adapter(SourceConfig("s", "edf", str(root), str(table), {"participant_from": "table"}), ".").list_units()


def test_fall_back_start_is_the_first_occurrence(tmp_path):
    f = small_edf(tmp_path / "fall.edf", dt.datetime(2024, 11, 3, 1, 30))
    (sig,) = read_edf(f, NY)
    assert sig.start_utc_ns == ns("2024-11-03T05:30")                 # 01:30 EDT, the first of the two 01:30s
    assert list(minutes(sig)) == [ns("2024-11-03T05:30")]


def test_second_recording_in_the_repeated_hour_is_its_second_pass(tmp_path):
    """Two 70-s recordings of one recorder starting at 01:30:00 and 01:30:30 on the fall-back day (New York).

    Both at their first occurrence would overlap, which one recorder cannot do: the later is the second
    01:30:30 (EST), 06:30:30 UTC, and no minute holds two values (06:30 has exactly half its samples: kept).
    """
    (tmp_path / "p1").mkdir()
    small_edf(tmp_path / "p1" / "a.edf", dt.datetime(2024, 11, 3, 1, 30, 0))
    small_edf(tmp_path / "p1" / "b.edf", dt.datetime(2024, 11, 3, 1, 30, 30))
    adapter = make_adapter(SourceConfig("s", "edf", str(tmp_path), None, {"participant_from": "folder", "tz": NY}),
                           ".")
    (unit,) = adapter.list_units()
    sig = {Path(s.source_file).stem: s for s in adapter.read_unit(unit).raw_signals}
    assert {k: v.start_utc_ns for k, v in sig.items()} == {"a": ns("2024-11-03T05:30"), "b": ns("2024-11-03T06:30:30")}
    got = [t for s in sig.values() for t in minutes(s)]
    assert sorted(got) == [ns("2024-11-03T05:30"), ns("2024-11-03T06:30"), ns("2024-11-03T06:31")]


def test_spring_forward_start_is_an_error_naming_the_file(tmp_path):
    f = small_edf(tmp_path / "spring.edf", dt.datetime(2024, 3, 10, 2, 30))
    with pytest.raises(SourceError, match="spring.edf: the recording start 2024-03-10 02:30:00 does not exist"):
        read_edf(f, NY)


def test_eda_in_an_unknown_unit_names_channel_and_fix(tmp_path):
    f = small_edf(tmp_path / "ohm.edf", dt.datetime(2024, 6, 3, 10), label="GSR", unit="kOhm")
    with pytest.raises(SourceError, match="'GSR' has physical dimension 'kOhm'.*options.units.GSR"):
        read_edf(f, NY)


def test_discontinuous_edf_is_refused(tmp_path):
    f = tmp_path / "d.edf"
    raw = bytearray((DUMMY / "rec02.edf").read_bytes())
    raw[192:197] = b"EDF+D"
    f.write_bytes(bytes(raw))
    with pytest.raises(SourceError, match="EDF\\+D"):
        read_edf(f, NY)


def test_real_plux_ecg_edf():
    sleepecg = pytest.importorskip("sleepecg", reason="sleepecg (BSD-3) is the independent QRS detector")
    (sig,) = read_edf(REAL / "supine_1min.edf", "Europe/Lisbon")
    assert sig.kind == "ecg" and sig.unit == "mV" and sig.sample_rate_hz == 1000.0 and sig.values.shape == (60000,)
    assert sig.start_utc_ns == ns("2020-03-16T19:15:24")               # Lisbon: UTC+0 in March
    assert int(np.isnan(sig.values).sum()) == 18                       # two bursts at the ADC's limit
    (hr,) = minutes(sig).values()
    raw = pyedflib.EdfReader(str(REAL / "supine_1min.edf"))
    try:
        beats = sleepecg.detect_heartbeats(raw.readSignal(0), 1000.0) / 1000.0
    finally:
        raw.close()
    ibi = np.diff(beats)
    assert abs(hr - np.median(60 / ibi[(ibi >= 0.3) & (ibi <= 2.0)])) < 1.0 and 45 < hr < 75   # supine rest


def test_real_saturated_eda_edf_gives_no_minute():
    (sig,) = read_edf(REAL / "eda_slow_signal.edf", "Europe/Lisbon")
    assert sig.kind == "eda" and sig.unit == "uS" and sig.values.shape == (2900,)
    assert int(np.isnan(sig.values).sum()) == 2820                      # 97 % at the digital maximum
    feats = raw_features.extract(sig)
    assert len(feats.observations) == 0 and feats.counts == {"eda_minutes_partial": 2}
