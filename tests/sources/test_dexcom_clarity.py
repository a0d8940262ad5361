"""Dexcom Clarity exports: EGV rows, High/Low, units, privacy, sensor switch and DST."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from sensorpipe.config import ConfigError, SourceConfig
from sensorpipe.processing.glucose_censoring import censored_flag_observations
from sensorpipe.schema.validate import validate_unit
from sensorpipe.sources.base import SourceError, make_adapter
from sensorpipe.sources.dexcom_clarity import censored_counts
from tests.sources.adapter_case import DUMMY_ROOT, AdapterCase

DUMMY = DUMMY_ROOT / "dexcom_clarity"
MMOL = 18.0156
HEADER = ("Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,Device Info,"
          "Source Device ID,Glucose Value (mg/dL),Insulin Value (u),Carb Value (grams),Duration (hh:mm:ss),"
          "Glucose Rate of Change (mg/dL/min),Transmitter Time (Long Integer),Transmitter ID")


def utc_ns(*args, tz: str) -> int:
    return int(dt.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()) * 10**9


def read(root: Path, participants: Path | None = None, **options):
    """Validate every unit; returns {participant: (UnitInput, ValidationResult)}."""
    src = SourceConfig("cgm", "dexcom_clarity", str(root), str(participants) if participants else None, options)
    adapter = make_adapter(src, str(root.parent))
    return {u.participant.participant_id: (inp := adapter.read_unit(u), validate_unit(inp, adapter.schema()))
            for u in adapter.list_units()}


def by_row(res) -> dict[int, tuple[int, float]]:
    o = res.observations
    return {int(r): (int(t), float(v)) for r, t, v in zip(o.source_row, o.t_utc_ns, o.value)}


def clarity_csv(path: Path, egvs: list[tuple[str, str, str]]) -> Path:
    """A Clarity CSV (mg/dL) with a name preamble and EGV rows (timestamp, value, transmitter)."""
    rows = ['"1","","FirstName","","Ann","","","","","","","",""',
            '"2","","LastName","","Example","","","","","","","",""']
    for i, (ts, v, tid) in enumerate(egvs, start=3):
        rows.append(f'"{i}","{ts}","EGV","","","","iOS G6","{v}","","","","","{i * 300}","{tid}"')
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode())
    return path


class TestDexcomClarityAdapter(AdapterCase):
    """dx01.csv (mg/dL, G6, New York) and dx02.xlsx (mmol/L, G7, Berlin); see make_dummy.py."""

    ADAPTER = "dexcom_clarity"
    DUMMY = "dexcom_clarity"
    PARTICIPANTS = "participants.csv"
    EXPECTED_UNITS = 2
    # dx01: 24 + 6 EGVs - 1 empty - 1 bad date - 1 exact dup - 2 conflicting = 25; dx02: 12 EGVs - 1 no time = 11
    EXPECTED_CHANNELS = {"glucose": 36}
    # dx01: 11 preamble + 5 events (insulin, carbs, calibration, exercise, health); dx02: 10 preamble + 1 carbs
    EXPECTED_REASONS = {"unknown_field": 27, "missing_value": 1, "unparseable_time": 2, "exact_duplicate": 1,
                        "conflicting_duplicate": 2}


@pytest.fixture(scope="module")
def dummy():
    return read(DUMMY, DUMMY / "participants.csv")


def test_mg_dl_readings_land_at_their_utc_instant(dummy):
    rows = by_row(dummy["dx01"][1])
    assert rows[13] == (utc_ns(2024, 6, 1, 8, 2, 41, tz="America/New_York"), 180.0)  # first EGV, line 13
    assert rows[13][0] == int(dt.datetime(2024, 6, 1, 12, 2, 41, tzinfo=dt.timezone.utc).timestamp()) * 10**9
    assert rows[47] == (utc_ns(2024, 6, 1, 10, 10, 10, tz="America/New_York"), 101.0)  # last, new transmitter


def test_high_and_low_become_the_registry_bounds_and_are_counted(dummy):
    inp, res = dummy["dx01"]
    rows = by_row(res)
    assert rows[25] == (utc_ns(2024, 6, 1, 8, 47, 41, tz="America/New_York"), 600.0)  # "High": glucose valid_max
    assert rows[38] == (utc_ns(2024, 6, 1, 9, 42, 41, tz="America/New_York"), 20.0)  # "Low": glucose valid_min
    assert censored_counts(inp) == {"egv_high": 1, "egv_low": 1}
    assert censored_counts(dummy["dx02"][0]) == {"egv_high": 0, "egv_low": 1}
    native = inp.native[0].to_pandas()
    assert native.loc[native.field == "egv_high", "value"].tolist() == ["High"]  # original text kept


def test_a_low_never_ranks_above_a_real_reading_nor_a_high_below_one(tmp_path):
    """A Low and a real 2.2 mmol/L (39.6 mg/dL) reading in one export: the Low stays below, flagged censored."""
    f = tmp_path / "p.csv"
    f.write_text(HEADER.replace("mg/dL", "mmol/L") + "\n"
                 "1,2024-06-01T08:00:00,EGV,,,,G7,2.2,,,,,100,T1\n"
                 "2,2024-06-01T08:05:00,EGV,,,,G7,Low,,,,,400,T1\n"
                 "3,2024-06-01T08:10:00,EGV,,,,G7,33.3,,,,,700,T1\n"    # 599.9 mg/dL: the highest real reading
                 "4,2024-06-01T08:15:00,EGV,,,,G7,High,,,,,1000,T1\n")
    (_, res), = read(f, tz="UTC").values()
    rows = by_row(res)
    real_low, low, real_high, high = (rows[r][1] for r in (2, 3, 4, 5))
    assert real_low == pytest.approx(39.63, abs=0.01) and low == 20.0 and low < real_low
    assert real_high == pytest.approx(599.92, abs=0.01) and high == 600.0 and high > real_high
    assert res.rows_in == 4 and len(res.observations) == 4 and res.reason_counts == {}
    codes = censored_flag_observations(res.observations, ("glucose", "glucose_censored"))
    assert dict(zip(codes.source_row.tolist(), codes.value.tolist())) == {2: 0, 3: 1, 4: 0, 5: 2}
    assert not len(censored_flag_observations(res.observations, ("glucose",)))  # only as an output channel


def test_declared_reading_interval_and_removed_bound_options():
    assert make_adapter(SourceConfig("cgm", "dexcom_clarity", str(DUMMY)), ".").reading_interval_min == \
        {"glucose": 5.0}
    with pytest.raises(ConfigError, match="low_mg_dl"):   # High/Low are the registry bounds, not options
        read(DUMMY, DUMMY / "participants.csv", low_mg_dl=39)


def test_mmol_export_from_xlsx_is_converted(dummy):
    rows = by_row(dummy["dx02"][1])
    t, v = rows[12]  # 4.2 mmol/L at 07:01:15 CEST
    assert t == utc_ns(2024, 6, 1, 7, 1, 15, tz="Europe/Berlin") and v == pytest.approx(4.2 * MMOL)
    assert rows[24][1] == pytest.approx(6.8 * MMOL)
    assert rows[17][1] == 20.0  # "Low" is the mg/dL bound, not 20 * 18
    q = dummy["dx02"][1].quarantine.to_pandas()
    assert q.loc[q.reason == "unparseable_time", "source_row"].tolist() == [19]


def test_patient_info_never_reaches_quarantine(dummy):
    for inp, res in dummy.values():
        text = " ".join(str(v) for v in res.quarantine.to_pandas().to_numpy().ravel())
        native = " ".join(str(v) for v in inp.native[0].to_pandas().to_numpy().ravel())
        for secret in ("Jane", "Doe", "1985-04-12"):
            assert secret not in text and secret not in native
    q = dummy["dx01"][1].quarantine.to_pandas()
    assert q.loc[q.field.isin(["event:FirstName", "event:LastName", "event:DateOfBirth"]), "value"].tolist() == \
        ["<redacted>"] * 3
    assert Counter(q.field)["event:Calibration"] == 1  # fingersticks are not CGM readings: kept, counted


def test_sensor_switch_overlap_counts_each_instant_once(tmp_path):
    egvs = [("2024-06-01T10:00:00", "120", "8AAAAA"), ("2024-06-01T10:05:00", "124", "8AAAAA"),
            ("2024-06-01T10:05:00", "124", "8BBBBB"),   # same instant, same value: exact duplicate
            ("2024-06-01T10:10:00", "127", "8AAAAA"),
            ("2024-06-01T10:10:00", "131", "8BBBBB"),   # same instant, other value: both quarantined
            ("2024-06-01T10:12:30", "133", "8BBBBB"),   # overlap, own instant: kept
            ("2024-06-01T10:15:00", "130", "8AAAAA"), ("2024-06-01T10:17:30", "135", "8BBBBB")]
    f = clarity_csv(tmp_path / "p1.csv", egvs)
    inp, res = read(f, tz="America/New_York")["p1"]
    assert res.reason_counts == {"unknown_field": 2, "exact_duplicate": 1, "conflicting_duplicate": 2}
    t = res.observations.t_utc_ns
    assert len(t) == 5 and len(np.unique(t)) == 5
    assert sorted(res.observations.source_row.tolist()) == [4, 5, 9, 10, 11]  # header line 1, names lines 2-3


@pytest.mark.parametrize("step_s", [300, 301])  # exact repeats of the wall clock, and drifting seconds
def test_fall_back_hour_places_every_reading_once(tmp_path, step_s):
    ny = ZoneInfo("America/New_York")
    start = dt.datetime(2024, 11, 3, 4, 32, 10, tzinfo=dt.timezone.utc)  # 00:32:10 EDT
    instants = [start + dt.timedelta(seconds=step_s * k) for k in range(36)]  # to about 02:27 EST
    egvs = [(i.astimezone(ny).strftime("%Y-%m-%dT%H:%M:%S"), str(100 + k), "8AAAAA") for k, i in enumerate(instants)]
    walls = [e[0] for e in egvs]
    assert len([w for w in walls if w[11:13] == "01"]) > 12  # the 1 o'clock hour happens twice
    inp, res = read(clarity_csv(tmp_path / "p1.csv", egvs), tz="America/New_York")["p1"]
    assert res.reason_counts == {"unknown_field": 2}
    order = np.argsort(res.observations.source_row)
    got = res.observations.t_utc_ns[order]
    assert got.tolist() == [int(i.timestamp()) * 10**9 for i in instants]
    minutes = got // 60_000_000_000
    assert len(np.unique(minutes)) == len(minutes)


def test_spring_forward_hour_is_quarantined(tmp_path):
    egvs = [("2024-03-10T01:55:00", "110", "8AAAAA"), ("2024-03-10T02:30:00", "112", "8AAAAA"),
            ("2024-03-10T03:00:00", "114", "8AAAAA")]
    inp, res = read(clarity_csv(tmp_path / "p1.csv", egvs), tz="America/New_York")["p1"]
    assert res.reason_counts == {"unknown_field": 2, "nonexistent_local_time": 1}
    rows = by_row(res)
    assert rows[4][0] == int(dt.datetime(2024, 3, 10, 6, 55, tzinfo=dt.timezone.utc).timestamp()) * 10**9  # EST
    assert rows[6][0] == int(dt.datetime(2024, 3, 10, 7, 0, tzinfo=dt.timezone.utc).timestamp()) * 10**9  # EDT
    q = res.quarantine.to_pandas()
    assert q.loc[q.reason == "nonexistent_local_time", "time"].tolist() == ["2024-03-10T02:30:00"]


def test_mmol_csv_header_sets_the_unit(tmp_path):
    f = tmp_path / "p2.csv"
    f.write_text(HEADER.replace("mg/dL", "mmol/L") + "\n"
                 '1,2024-06-01T08:00:00,EGV,,,,android G7,5.5,,,,,100,312345678901\n'
                 '2,2024-06-01T08:05:00,EGV,High,,,android G7,High,,,,,400,312345678901\n')
    (_, res), = read(f, tz="UTC").values()
    assert by_row(res) == {2: (utc_ns(2024, 6, 1, 8, 0, tz="UTC"), pytest.approx(5.5 * MMOL)),
                           3: (utc_ns(2024, 6, 1, 8, 5, tz="UTC"), 600.0)}


def test_single_file_participant_and_zone_options(tmp_path):
    f = clarity_csv(tmp_path / "Clarity_Export_Example_Ann.csv", [("2024-06-01T08:00:00", "100", "8AAAAA")])
    got = read(f, participant_id="P7", tz="Asia/Tokyo")
    (inp, res), = got.values()
    assert list(got) == ["P7"] and by_row(res)[4][0] == utc_ns(2024, 6, 1, 8, 0, tz="Asia/Tokyo")
    with pytest.raises(SourceError, match="options.tz"):
        read(f)
    with pytest.raises(SourceError, match="participant_id applies to a single export"):
        read(tmp_path, participant_id="P7", tz="UTC")
    with pytest.raises(ConfigError, match="IANA"):
        read(f, tz="Mars/Olympus")


def test_folder_groups_files_by_stem_and_skips_the_participants_table(tmp_path):
    clarity_csv(tmp_path / "a.csv", [("2024-06-01T08:00:00", "100", "8AAAAA")])
    clarity_csv(tmp_path / "b.csv", [("2024-06-01T08:00:00", "90", "8AAAAA")])
    (tmp_path / "notes.txt").write_text("not an export")
    (tmp_path / "participants.csv").write_text("participant_id,tz\na,Europe/Paris\n")
    got = read(tmp_path, tmp_path / "participants.csv", tz="UTC")
    assert list(got) == ["a", "b"]
    assert by_row(got["a"][1])[4][0] == utc_ns(2024, 6, 1, 8, 0, tz="Europe/Paris")
    assert by_row(got["b"][1])[4][0] == utc_ns(2024, 6, 1, 8, 0, tz="UTC")


def test_rows_with_extra_fields_are_quarantined_not_lost(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text(HEADER + "\n1,2024-06-01T08:00:00,EGV,,,,x,100,,,,,1,T\n"
                 "2,2024-06-01T08:05:00,EGV,,,,x,101,,,,,2,T,oops\n")
    (_, res), = read(f, tz="UTC").values()
    assert res.reason_counts == {"unknown_field": 1} and len(res.observations) == 1
    assert res.quarantine.column("field").to_pylist() == ["malformed_row"]


@pytest.mark.parametrize("content, needle", [
    ("", "empty"),
    ("Device,Serial Number,Device Timestamp,Record Type\n", "not a Dexcom Clarity export"),
    (HEADER + '\n1,"2024-06-01T08:00:00,EGV\n', "unclosed quote"),
])
def test_unreadable_files_name_the_file(tmp_path, content, needle):
    f = tmp_path / "p.csv"
    f.write_text(content)
    with pytest.raises(SourceError, match=needle) as e:
        read(f, tz="UTC")
    assert "p.csv" in str(e.value)


def test_damaged_xlsx_names_the_file(tmp_path):
    f = tmp_path / "p.xlsx"
    f.write_bytes((DUMMY / "dx02.xlsx").read_bytes()[:3000])
    with pytest.raises(SourceError, match="cannot read as XLSX") as e:
        read(f, tz="UTC")
    assert "p.xlsx" in str(e.value)


def test_a_jittered_clarity_day_with_lows_end_to_end(tmp_path):
    """Adapter -> validation -> minute grid -> labels (runners.stages.prepare_unit) on a realistic export:
    readings every 300 s written at second 59 or 00 (minute bins 4-6 apart), a hypo of six readings whose
    last three are 'Low'; then a day missing every other reading, which the declared 5-min interval (not an
    inferred 10) leaves without targets."""
    from sensorpipe.config import load_config
    from sensorpipe.runners.stages import RunContext, prepare_unit
    from sensorpipe.core.arrays import load_arrays

    start = dt.datetime(2024, 6, 2, 0, 1, 59)
    k = np.arange(288)
    instants = [start + dt.timedelta(seconds=int(s)) for s in 300 * k + (k % 5 == 2)]
    values = ["120"] * 288
    values[100:106] = ["60", "58", "55", "Low", "Low", "Low"]      # 30 min below 70, 15 min of it 'Low'
    day2 = [start + dt.timedelta(days=1, seconds=600 * j) for j in range(144)]   # every other reading missing
    instants, values = instants + day2, values + ["130"] * 144
    egvs = [(i.strftime("%Y-%m-%dT%H:%M:%S"), v, "8AAAAA") for i, v in zip(instants, values)]
    clarity_csv(tmp_path / "p1.csv", egvs)
    cfg = load_config({"sources": [{"name": "cgm", "adapter": "dexcom_clarity", "path": "p1.csv",
                                    "options": {"tz": "UTC"}}],
                       "channels": ["glucose", "glucose_censored"],
                       "window": {"size_min": 1440, "stride_min": 1440, "alignment": "local_midnight",
                                  "max_missing_ratio": 0.95},
                       "privacy": {"pseudonymize": False}}, str(tmp_path))
    unit, = make_adapter(cfg.sources[0], cfg.base_dir).list_units()
    summary = prepare_unit(RunContext(cfg, None, str(tmp_path / "cache")), unit)
    assert (summary.rows_in, summary.rows_accepted, summary.rows_quarantined) == (434, 432, 2)  # 2 name rows
    arrays = load_arrays(summary.cache)
    day = np.flatnonzero(arrays["observed"][:, :, 0].sum(axis=1) == 288)
    assert day.size == 1
    i = int(day[0])
    g, flag = arrays["values"][i, :, 0], arrays["values"][i, :, 1]
    seen = arrays["observed"][i, :, 0]
    assert (arrays["observed"][i, :, 1] == seen).all()
    assert sorted(np.unique(flag[seen]).tolist()) == [0.0, 1.0] and int((flag[seen] == 1).sum()) == 3
    assert (g[seen & (flag == 1)] == 20.0).all()
    labels = {name[len("label_"):]: v[i] for name, v in arrays.items() if name.startswith("label_")}
    assert labels["hypo_events"] == 1 and labels["hypo_l2_events"] == 1   # 3 x 'Low' = 15 min below 54
    assert labels["time_below_range_pct"] == pytest.approx(100 * 6 / 288, rel=1e-5)
    assert labels["time_below_range_l2_pct"] == pytest.approx(100 * 3 / 288, rel=1e-5)
    mean = (282 * 120 + 60 + 58 + 55 + 3 * 40) / 288                     # a 'Low' enters the mean as 40
    assert labels["glucose_mean_mgdl"] == pytest.approx(mean, rel=1e-5)
    assert labels["gmi_pct"] == pytest.approx(3.31 + 0.02392 * mean, rel=1e-5)
    sparse, = np.flatnonzero(arrays["observed"][:, :, 0].sum(axis=1) == 144)
    assert np.isnan(arrays["label_glucose_mean_mgdl"][sparse])   # 144 of 288 readings at the declared 5 min
