"""``sensorpipe convert``: the canonical observation table and its quarantine, counts printed."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import yaml

from sensorpipe.cli import main
from tests.sources.adapter_case import DUMMY_ROOT
from tests.sources.test_long_table import OPTIONS


def test_convert_long_table_with_quarantine(tmp_path, capsys):
    opts = tmp_path / "opts.yaml"
    opts.write_text(yaml.safe_dump(OPTIONS))
    out = tmp_path / "obs.parquet"
    root = DUMMY_ROOT / "long_table"
    assert main(["convert", "--source", "long_table", str(root), "-o", str(out), "--options", str(opts),
                 "--participants", str(root / "participants.csv")]) == 0
    text = capsys.readouterr().out
    assert "rows in 36 = accepted 31 + quarantined 5" in text
    assert "nonexistent_local_time" in text and "heart_rate" in text
    t = pq.read_table(out)
    assert t.schema.names == ["participant_id", "channel", "t_utc", "value", "tz_offset_min", "source_file", "source_row"]
    assert str(t.schema.field("t_utc").type) == "timestamp[ns, tz=UTC]"
    df = t.to_pandas()
    p1 = df[(df.participant_id == "p1") & (df.channel == "heart_rate")].sort_values("t_utc")
    assert p1.tz_offset_min.tolist() == [-300, -300, -240]          # EST, EST, then EDT after the change
    q = pq.read_table(tmp_path / "obs.quarantine.parquet").to_pandas()
    assert sorted(q.reason) == sorted(["nonexistent_local_time", "wrong_type", "unparseable_time", "unknown_field",
                                       "out_of_range"])


def test_convert_raw_e4_gives_minute_features(tmp_path, capsys):
    out = tmp_path / "e4.parquet"
    root = DUMMY_ROOT / "empatica_e4"
    assert main(["convert", "--source", "empatica_e4", str(root), "-o", str(out),
                 "--participants", str(root / "participants.csv")]) == 0
    df = pq.read_table(out).to_pandas()
    # every channel of the E4's PPG, ACC, EDA and TEMP but 5-minute HRV (the sample has 3 minutes)
    assert set(df.channel) == {"heart_rate", "hrv_rmssd", "hrv_sdnn", "ppg_sqi", "enmo", "acc_mad", "steps",
                               "activity_intensity", "acc_zcr", "eda_level", "eda_scr_rate", "skin_temperature"}
    assert (df.t_utc.astype("int64") % 60_000_000_000 == 0).all()
    assert np.all(df.tz_offset_min == -300)                           # participant in New York, March 7


def test_convert_bad_flag_is_a_message(tmp_path, capsys):
    root = DUMMY_ROOT / "empatica_e4"
    assert main(["convert", "--source", "empatica_e4", str(root), "-o", str(tmp_path / "x.parquet"),
                 "--tz", "Europe/Paris"]) == 2
    assert "adapter 'empatica_e4' has no 'tz' option" in capsys.readouterr().err
    assert main(["convert", "--source", "nope", str(root), "-o", str(tmp_path / "x.parquet")]) == 2
    assert "unknown adapter 'nope'" in capsys.readouterr().err


FITBIT_DAY = DUMMY_ROOT / "fitbit_takeout" / "p01" / "Takeout" / "Fitbit" / "Global Export Data"


def test_convert_one_fitbit_takeout_file(tmp_path, capsys):
    """One Takeout JSON is a source on its own; it lies in Takeout's own folder, so --participant names it."""
    f = FITBIT_DAY / "heart_rate-2024-03-10.json"
    out = tmp_path / "hr.parquet"
    assert main(["convert", "--source", "fitbit_takeout", str(f), "-o", str(out), "--tz", "America/New_York",
                 "--participant", "p01"]) == 0
    n_records = len(json.loads(f.read_text()))
    assert f"rows in {n_records}" in capsys.readouterr().out
    df = pq.read_table(out).to_pandas()
    assert set(df.participant_id) == {"p01"} and set(df.channel) == {"heart_rate"}
    assert set(df.source_file) == {str(f)}
    first = json.loads(f.read_text())[0]                       # intraday times are UTC: 03/10/24 hh:mm:ss
    t0 = pd.Timestamp(dt.datetime.strptime(first["dateTime"], "%m/%d/%y %H:%M:%S"), tz="UTC")
    row = df[df.t_utc == t0]
    assert row.value.tolist() == [float(first["value"]["bpm"])]
    # without --participant the message says how to name one, and no traceback
    assert main(["convert", "--source", "fitbit_takeout", str(f), "-o", str(out), "--tz", "UTC"]) == 2
    err = capsys.readouterr().err
    assert "heart_rate-2024-03-10.json: one export file names no participant" in err and "--participant ID" in err
    # a file of no Takeout kind is named as such
    other = tmp_path / "notes.json"
    other.write_text("[]")
    assert main(["convert", "--source", "fitbit_takeout", str(other), "-o", str(out), "--tz", "UTC",
                 "--participant", "p"]) == 2
    assert "notes.json: not a Fitbit export file this source reads" in capsys.readouterr().err


def test_convert_one_wesad_subject_pickle(tmp_path, capsys):
    from tests.sources.test_wesad import generated

    root = generated()
    out = tmp_path / "s2.parquet"
    assert main(["convert", "--source", "wesad", str(root / "S2" / "S2.pkl"), "-o", str(out),
                 "--participants", str(root / "participants.csv")]) == 0
    df = pq.read_table(out).to_pandas()
    assert set(df.participant_id) == {"S2"}
    # the same minute features as the whole-folder conversion gives
    assert main(["convert", "--source", "wesad", str(root), "-o", str(tmp_path / "all.parquet"),
                 "--participants", str(root / "participants.csv")]) == 0
    whole = pq.read_table(tmp_path / "all.parquet").to_pandas()
    pd.testing.assert_frame_equal(df, whole)
    assert {"heart_rate", "respiratory_rate", "enmo", "eda_level", "skin_temperature"} <= set(df.channel)
    assert df.t_utc.min() == pd.Timestamp("2017-05-22 09:11:00", tz="UTC")
    capsys.readouterr()
    bad = tmp_path / "S2" / "notes.pkl"
    bad.parent.mkdir()
    bad.write_bytes(b"x")
    assert main(["convert", "--source", "wesad", str(bad), "-o", str(out)]) == 2
    assert "notes.pkl is not a WESAD subject file S<k>/S<k>.pkl" in capsys.readouterr().err


def test_convert_folder_formats_given_a_file_say_which_folder(tmp_path, capsys):
    bvp = DUMMY_ROOT / "empatica_e4" / "sl001" / "BVP.csv"
    assert main(["convert", "--source", "empatica_e4", str(bvp), "-o", str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert f"{bvp} is a file, but the empatica_e4 adapter reads a folder" in err
    assert f"here probably {DUMMY_ROOT / 'empatica_e4'}" in err and "Traceback" not in err
    assert main(["convert", "--source", "empatica_e4", str(bvp.parent), "-o", str(tmp_path / "x.parquet")]) == 2
    assert f"is itself a session: give its parent folder {DUMMY_ROOT / 'empatica_e4'}" in capsys.readouterr().err


def test_convert_one_recording_file_of_edf_and_opensignals(tmp_path, capsys):
    """Formats with one recording per file take the file itself; the participant is its stem."""
    for adapter, f in (("edf", DUMMY_ROOT / "edf" / "rec01.edf"),
                       ("opensignals", DUMMY_ROOT / "opensignals" / "bit01" / "opensignals_201606110703.txt")):
        out = tmp_path / f"{adapter}.parquet"
        assert main(["convert", "--source", adapter, str(f), "-o", str(out), "--tz", "Europe/Lisbon"]) == 0
        df = pq.read_table(out).to_pandas()
        assert len(df) > 0 and set(df.participant_id) == {f.stem} and set(df.source_file) == {str(f)}


def test_convert_participants_path_is_relative_to_the_working_directory(tmp_path, monkeypatch, capsys):
    root = DUMMY_ROOT / "empatica_e4"
    work = tmp_path / "work"
    (work / "tables").mkdir(parents=True)
    shutil.copy(root / "participants.csv", work / "tables" / "people.csv")
    monkeypatch.chdir(work)
    assert main(["convert", "--source", "empatica_e4", str(root), "-o", "e4.parquet",
                 "--participants", "tables/people.csv"]) == 0
    df = pq.read_table(work / "e4.parquet").to_pandas()
    assert set(df.participant_id) == {"sl001"} and np.all(df.tz_offset_min == -300)   # the table's New York zone
    (work / "tables" / "people.csv").unlink()
    assert main(["convert", "--source", "empatica_e4", str(root), "-o", "e4.parquet",
                 "--participants", "tables/people.csv"]) == 2
    assert f"participants table {work / 'tables' / 'people.csv'} does not exist" in capsys.readouterr().err


def _e4_session_at(tmp_path, start_s: int):
    """The dummy E4 session with every signal file's start (row 1) moved to ``start_s`` (UTC seconds)."""
    from sensorpipe.sources.empatica_e4 import SIGNAL_FILES

    root = tmp_path / "e4"
    shutil.copytree(DUMMY_ROOT / "empatica_e4", root, ignore=shutil.ignore_patterns("*.py"))
    for name in SIGNAL_FILES:
        f = root / "sl001" / name
        lines = f.read_text().splitlines(keepends=True)
        first = lines[0].split(",")
        lines[0] = ",".join([f"{start_s}.000000"] * len(first)) + "\n"
        f.write_text("".join(lines))
    return root


def test_e4_session_dated_2100_yields_no_minutes_and_says_so(tmp_path, capsys):
    root = _e4_session_at(tmp_path, 4_102_444_800)          # 2100-01-01 00:00:00 UTC
    out = tmp_path / "e4.parquet"
    args = ["convert", "--source", "empatica_e4", str(root), "-o", str(out), "--participants",
            str(root / "participants.csv")]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert len(pq.read_table(out)) == 0
    assert "raw-waveform minutes not emitted:" in text and "ppg_implausible_time" in text
    assert "raw samples" in text                                     # the samples were read, and counted
    # the range is an option: with a later bound the same session gives its minutes, dated 2100
    assert main(args + ["--plausible-until", "2200-01-01"]) == 0
    text = capsys.readouterr().out
    df = pq.read_table(out).to_pandas()
    assert "heart_rate" in set(df.channel) and df.t_utc.min() == pd.Timestamp("2100-01-01", tz="UTC")
    assert "implausible_time" not in text
    assert main(args + ["--plausible-until", "2100"]) == 2
    assert "--plausible-until: '2100' is not an ISO date; write YYYY-MM-DD" in capsys.readouterr().err


def test_pipeline_stage_counts_raw_minutes_outside_the_range(tmp_path):
    """The run's stage (runners.stages) applies the config's range to raw waveforms, counted per kind."""
    from sensorpipe.config import SourceConfig, ValidationConfig
    from sensorpipe.runners.stages import _raw_observations
    from sensorpipe.sources.base import make_adapter

    root = _e4_session_at(tmp_path, 4_102_444_800)
    adapter = make_adapter(SourceConfig("lab", "empatica_e4", str(root), str(root / "participants.csv")), str(root))
    (unit,) = adapter.list_units()
    inp = adapter.read_unit(unit)
    wide = ValidationConfig(plausible_until=dt.date(2200, 1, 1))
    kept_parts, dropped_parts = [], []
    allowed = _raw_observations(inp, kept_parts, wide)
    counts = _raw_observations(inp, dropped_parts, ValidationConfig())
    assert sum(len(p) for p in dropped_parts) == 0
    n_kept = sum(len(p) for p in kept_parts)
    assert n_kept > 0 and not any(k.endswith("_implausible_time") for k in allowed)
    assert sum(v for k, v in counts.items() if k.endswith("_implausible_time")) == n_kept
    assert {k for k in counts if k.endswith("_implausible_time")} == {
        f"{k}_implausible_time" for k in ("ppg", "acc", "eda", "temp")}


def test_convert_one_fitabase_merged_csv(tmp_path, capsys):
    folder = DUMMY_ROOT / "fitbit_fitabase"
    f = folder / "Fitabase Data 3.9.24-11.3.24" / "minuteStepsNarrow_merged.csv"
    out = tmp_path / "steps.parquet"
    assert main(["convert", "--source", "fitbit_fitabase", str(f), "-o", str(out), "--participants",
                 str(folder / "participants.csv")]) == 0
    df = pq.read_table(out).to_pandas()
    src = pd.read_csv(f)
    assert set(df.channel) == {"steps"} and set(df.source_file) == {str(f)}
    assert sorted(df.participant_id.unique()) == sorted(src.Id.astype(str).unique())
    first = df[(df.participant_id == "1503960366")].sort_values("t_utc").iloc[0]
    assert first.value == 13 and first.t_utc == pd.Timestamp("2024-03-10 06:00", tz="UTC")   # 1:00 AM EST
    capsys.readouterr()
    other = tmp_path / "dailyActivity_merged.csv"
    other.write_text("Id,ActivityDate\n")
    assert main(["convert", "--source", "fitbit_fitabase", str(other), "-o", str(out), "--tz", "UTC"]) == 2
    assert "'dailyActivity_merged.csv' is not a Fitabase file read here" in capsys.readouterr().err
