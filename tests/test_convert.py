"""``sensorpipe convert``: the canonical observation table and its quarantine, counts printed."""

from __future__ import annotations

import numpy as np
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
