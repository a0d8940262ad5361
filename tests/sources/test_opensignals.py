"""OpenSignals text files: header parsing, transfer functions, nSeq timing, local start and DST, real files.

Real files (``tests/data/opensignals``, see its README): pyhrv 0.5.0's
BITalino ECG ``SampleECG.txt`` (BSD-3) and biosignalsnotebooks 0.6.14's PLUX
samples (MIT): ``eda_slow_signal.txt`` and the first 10 s of
``supine_1min.txt``, whose EDF export by PLUX (``tests/data/edf/supine_1min.edf``)
gives an independent check of the ECG transfer function.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sensorpipe.config import ConfigError, SourceConfig
from sensorpipe.processing import raw_features
from sensorpipe.sources.base import SourceError, make_adapter
from sensorpipe.sources.opensignals import OpenSignalsAdapter, read_opensignals
from tests.sources.adapter_case import DUMMY_ROOT, AdapterCase

DUMMY = DUMMY_ROOT / "opensignals"
REAL = Path(__file__).resolve().parents[1] / "data" / "opensignals"
BIT = DUMMY / "bit01" / "opensignals_201606110703.txt"
PLUX = DUMMY / "plux02" / "opensignals_201903121356.txt"
MIN = 60_000_000_000


def ns(iso: str) -> int:
    return int(np.datetime64(iso, "ns").astype(np.int64))


def by_kind(path: Path, tz: str = "Europe/Lisbon", **options) -> dict:
    return {s.kind: s for s in read_opensignals(path, tz, OpenSignalsAdapter.Options(**options))}


def minutes(sig) -> dict[int, float]:
    obs = raw_features.extract(sig).primary()
    return dict(zip(obs.t_utc_ns.tolist(), obs.value.tolist()))


class TestOpenSignalsAdapter(AdapterCase):
    """bit01: BITalino ECG + PZT + EDA; plux02: biosignalsplux respiration, 3-axis ACC, NTC TEMP, EMG (unused).

    Each recording is 65 s and starts mid-minute, so each signal gives exactly
    one minute with >= 50 % coverage (bit01: 06:04 UTC holds 52 s; plux02:
    13:56 UTC holds 37.7 s). Raw-only format: no native rows, no quarantine.
    """

    ADAPTER = "opensignals"
    DUMMY = "opensignals"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 2
    EXPECTED_CHANNELS = {"heart_rate": 1, "respiratory_rate": 2, "eda_level": 1, "enmo": 1, "skin_temperature": 1}
    EXPECTED_REASONS = {}
    MUTABLE = ("bit01/opensignals_201606110703.txt", "plux02/opensignals_201903121356.txt")


def test_bitalino_values_times_and_lost_samples():
    sig = by_kind(BIT)
    assert set(sig) == {"ecg", "resp", "eda"}
    # 07:03:47.29 is unpadded: 29 ms; Lisbon is UTC+1 (WEST) in June
    assert sig["ecg"].start_utc_ns == ns("2016-06-11T06:03:47.029")
    assert sig["ecg"].sample_rate_hz == 100.0 and sig["ecg"].unit == "mV"
    # 6,497 rows; nSeq jumps 15 -> 3 (mod 16) after row 2000: three lost samples become NaN
    ecg = sig["ecg"].values
    assert ecg.shape == (6500,) and np.flatnonzero(np.isnan(ecg)).tolist() == [2000, 2001, 2002]
    # EDA: ADC 246 of 1024 -> 246 / 1024 * 3.3 / 0.132 uS
    assert np.nanmax(np.abs(sig["eda"].values - 246 / 1024 * 3.3 / 0.132)) < 1e-12
    # ECG: R waves of 1 mV, quantized to 3.3 V / 1100 / 1024 = 2.9 uV
    assert abs(np.nanmax(ecg) - 1.0) < 0.003
    (t, hr), = minutes(sig["ecg"]).items()
    assert t == ns("2016-06-11T06:04") and abs(hr - 72) < 1.5
    (t, rr), = minutes(sig["resp"]).items()
    assert t == ns("2016-06-11T06:04") and abs(rr - 15) < 0.5


def test_plux_nseq_offset_ntc_temperature_and_acc():
    sig = by_kind(PLUX)
    assert set(sig) == {"resp", "acc", "temp"}                # EMG has no minute feature
    # header 13:56:2.261, first row nSeq 1000 at 50 Hz: 20 s later; Lisbon is UTC+0 in March
    assert sig["acc"].start_utc_ns == ns("2019-03-12T13:56:22.261")
    # ACC: 2 (ADC - 28000) / 10000 - 1 g with ADC 33000, 36600, 37800
    np.testing.assert_allclose(sig["acc"].values[0], [0.0, 0.72, 0.96])
    assert minutes(sig["acc"]) == {ns("2019-03-12T13:56"): pytest.approx(200.0)}
    (t, temp), = minutes(sig["temp"]).items()
    assert t == ns("2019-03-12T13:56") and abs(temp - 33.0) < 0.01
    (t, rr), = minutes(sig["resp"]).items()
    assert abs(rr - 12.0) < 0.5


def test_acc_calibration_option():
    sig = by_kind(PLUX, acc_calibration=(30000.0, 40000.0))
    np.testing.assert_allclose(sig["acc"].values[0], [2 * (33000 - 30000) / 10000 - 1, 2 * (36600 - 30000) / 10000 - 1,
                                                      2 * (37800 - 30000) / 10000 - 1])
    with pytest.raises(ConfigError, match="Cmin < Cmax"):
        make_adapter(SourceConfig("s", "opensignals", str(DUMMY), None, {"acc_calibration": [5, 1]}), ".")


def _with_header(tmp_path: Path, src: Path, **changes) -> Path:
    """A copy of ``src`` whose device header has ``changes`` applied."""
    raw = src.read_bytes().decode()
    nl = "\r\n" if "\r\n" in raw else "\n"
    lines = raw.split(nl)
    meta = json.loads(lines[1][2:])
    for dev in meta.values():
        dev.update(changes)
    lines[1] = "# " + json.dumps(meta)
    out = tmp_path / src.parent.name / src.name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(nl.join(lines).encode())
    return out


def test_fall_back_start_is_the_first_occurrence(tmp_path):
    f = _with_header(tmp_path, PLUX, date="2024-11-3", time="1:30:0.0")
    sig = by_kind(f, "America/New_York")
    # 01:30 happens twice on 2024-11-03 in New York: the first (EDT, UTC-4) is 05:30 UTC; + nSeq 1000 / 50 Hz
    assert sig["acc"].start_utc_ns == ns("2024-11-03T05:30:20")
    assert list(minutes(sig["acc"])) == [ns("2024-11-03T05:30")]


def test_second_recording_in_the_repeated_hour_is_its_second_pass(tmp_path):
    """Same recorder, both starting in the repeated 01:00-02:00 of 2024-11-03 (New York).

    A starts at 1:30:00 -> 05:30:20 UTC (first occurrence, + nSeq 1000 / 50 Hz) and runs 65 s. B's 1:30:05 at
    its first occurrence (05:30:25) would overlap A, which one recorder cannot do: it is the second 1:30:05
    (EST), 06:30:25 UTC. C at 1:45:00 overlaps nothing and stays at its first occurrence.
    """
    root = tmp_path / "root"
    for name, time in (("a", "1:30:0.0"), ("b", "1:30:5.0"), ("c", "1:45:0.0")):
        f = _with_header(tmp_path / name, PLUX, date="2024-11-3", time=time)
        (root / "p1").mkdir(parents=True, exist_ok=True)
        shutil.move(f, root / "p1" / f"{name}.txt")
    adapter = make_adapter(SourceConfig("s", "opensignals", str(root), None, {"tz": "America/New_York"}), ".")
    (unit,) = adapter.list_units()
    acc = {Path(s.source_file).stem: s for s in adapter.read_unit(unit).raw_signals if s.kind == "acc"}
    assert {k: v.start_utc_ns for k, v in acc.items()} == {
        "a": ns("2024-11-03T05:30:20"), "b": ns("2024-11-03T06:30:25"), "c": ns("2024-11-03T05:45:20")}
    got = [t for s in acc.values() for t in minutes(s)]
    # B's 06:31 holds exactly half a minute (06:31:00-06:31:30): kept; no minute holds two values
    assert sorted(got) == [ns("2024-11-03T05:30"), ns("2024-11-03T05:45"), ns("2024-11-03T06:30"),
                           ns("2024-11-03T06:31")]


def test_spring_forward_start_is_an_error_naming_the_file(tmp_path):
    f = _with_header(tmp_path, PLUX, date="2024-3-10", time="2:30:0.0")
    with pytest.raises(SourceError, match="does not exist in America/New_York") as e:
        by_kind(f, "America/New_York")
    assert f.name in str(e.value)


def test_unknown_device_needs_a_family(tmp_path):
    f = _with_header(tmp_path, PLUX, device="openban_v9")
    with pytest.raises(SourceError, match="device_families.openban_v9"):
        by_kind(f)
    assert set(by_kind(f, device_families={"openban_v9": "plux"})) == {"resp", "acc", "temp"}


def test_converted_values_are_not_converted_again(tmp_path):
    f = _with_header(tmp_path, PLUX, convertedValues=1)
    assert by_kind(f)["acc"].values[0].tolist() == [33000.0, 36600.0, 37800.0]


@pytest.mark.parametrize("lineno, text, needle", [
    (1, "# OpenSignals Binary", "line 1: not an OpenSignals text file"),
    (2, "# {\"00:07\": {\"sensor\": [", "line 2: the JSON device header is damaged"),
    (2, "# {\"00:07\": {\"sensor\": []}}", "line 2: device 00:07"),
    (6, "5\t0\t32000\t33000", "line 6: expected 8 tab-separated numbers"),
    (7, "6\t0\t32000\t33000\tabc\t37800\t27209\t32572\t", "line 7: expected 8 tab-separated numbers"),
])
def test_bad_files_name_file_and_line(tmp_path, lineno, text, needle):
    lines = PLUX.read_bytes().decode().split("\r\n")
    lines[lineno - 1] = text
    f = tmp_path / "x.txt"
    f.write_bytes("\r\n".join(lines).encode())
    with pytest.raises(SourceError) as e:
        read_opensignals(f, "UTC")
    assert "x.txt" in str(e.value) and needle in str(e.value)


def test_participants_from_folders_and_tz_option(tmp_path):
    root = tmp_path / "os"
    shutil.copytree(DUMMY, root, ignore=shutil.ignore_patterns("participants.csv", "make_dummy.py"))
    shutil.copy(BIT, root / "loose_file.txt")
    units = make_adapter(SourceConfig("s", "opensignals", str(root), None, {"tz": "Europe/Lisbon"}), ".").list_units()
    assert [(u.participant.participant_id, u.participant.tz) for u in units] == [
        ("bit01", "Europe/Lisbon"), ("loose_file", "Europe/Lisbon"), ("plux02", "Europe/Lisbon")]
    with pytest.raises(SourceError, match="has no time zone"):
        make_adapter(SourceConfig("s", "opensignals", str(root)), ".").list_units()


# --- real files ------------------------------------------------------------------------------------------


def test_real_bitalino_ecg_from_pyhrv():
    sleepecg = pytest.importorskip("sleepecg", reason="sleepecg (BSD-3) is the independent QRS detector")
    (sig,) = read_opensignals(REAL / "SampleECG.txt", "Europe/Berlin")
    assert sig.kind == "ecg" and sig.sample_rate_hz == 1000.0 and sig.values.shape == (22350,)
    assert sig.start_utc_ns == ns("2016-06-11T05:03:47.029")       # 07:03:47.029 CEST
    # row 1 is ADC 496 of a 10-bit channel: (496 / 1024 - 0.5) * 3.3 / 1100 * 1000 mV
    assert sig.values[0] == pytest.approx((496 / 1024 - 0.5) * 3.3 / 1100 * 1000)
    assert 0.3 < np.ptp(sig.values) < 3.0                               # an R wave of about a millivolt
    # 22 s only (no full minute): heart rate over the whole file against sleepecg's beats
    minute = np.zeros(sig.values.size, np.int64)
    ours, _ = raw_features.EcgHeartRate().minute_values(sig, minute, 1)
    beats = sleepecg.detect_heartbeats(sig.values, 1000.0) / 1000.0
    ibi = np.diff(beats)
    ref = np.median(60.0 / ibi[(ibi >= 0.3) & (ibi <= 2.0)])
    assert abs(ours[0] - ref) < 1.0 and 40 < ref < 120


def test_real_plux_eda():
    (sig,) = read_opensignals(REAL / "eda_slow_signal.txt", "Europe/Lisbon")
    assert sig.kind == "eda" and sig.unit == "uS" and sig.sample_rate_hz == 100.0 and sig.values.shape == (2820,)
    assert sig.values[0] == pytest.approx(46888 / 65536 * 3.0 / 0.12)     # 17.886 uS
    assert 10 < sig.values.min() and sig.values.max() < 20
    assert sig.start_utc_ns == ns("2017-01-23T13:28:43.110")               # Lisbon: UTC+0 in January


def test_real_plux_ecg_matches_plux_edf_export():
    """PLUX's own EDF export of the same recording agrees with our transfer function to 0.1 uV."""
    pyedflib = pytest.importorskip("pyedflib")
    (sig,) = read_opensignals(REAL / "supine_1min_first10s.txt", "Europe/Lisbon")
    # the file starts at nSeq 30000 (cut from a longer recording): 30 s after the header's 15:11:20.455
    assert sig.start_utc_ns == ns("2019-02-07T15:11:50.455")
    reader = pyedflib.EdfReader(str(REAL.parent / "edf" / "supine_1min.edf"))
    try:
        edf_mv = reader.readSignal(0)[: sig.values.size]
        assert reader.getPhysicalDimension(0) == "mV"
    finally:
        reader.close()
    assert np.abs(sig.values - edf_mv).max() < 1e-4
