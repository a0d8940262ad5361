"""The synthetic demo sources: determinism, local-time behaviour across DST, and native file formats."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from sensorpipe.demo.synthetic import generate_demo_sources, write_minute_cohort

SCALE = 0.2  # 2 participants per dataset, 1.6-h E4 sessions, 7 days (crosses 2024-03-10)
US_ZONES = {"America/New_York", "America/Los_Angeles"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return generate_demo_sources(tmp_path_factory.mktemp("demo"), seed=0, scale=SCALE).parent


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _minute(root: Path, cohort: str, pid: str) -> dict[str, pd.DataFrame]:
    df = pq.read_table(root / cohort / "minute" / f"{pid}.parquet").to_pandas()
    return {m: d.reset_index(drop=True) for m, d in df.groupby("metric")}


def _nights(stage: pd.DataFrame) -> list[tuple[int, int]]:
    """(first, last) epoch second of each sleep episode."""
    t = stage.timestamp_ms.to_numpy() // 1000
    cut = np.nonzero(np.diff(t) > 3600)[0]
    return list(zip(t[np.r_[0, cut + 1]], t[np.r_[cut, t.size - 1]]))


def _e4(path: Path) -> tuple[list[str], np.ndarray]:
    lines = path.read_text().splitlines()
    return lines[:2], np.loadtxt(lines[2:], delimiter=",", ndmin=2)


# --- determinism and config -----------------------------------------------------------
def test_same_seed_gives_byte_identical_files(demo, tmp_path):
    again = generate_demo_sources(tmp_path / "again", seed=0, scale=SCALE).parent
    first = _hashes(demo)
    assert len(first) > 20
    assert _hashes(again) == first
    other = write_minute_cohort(tmp_path / "other", 1, 2, seed=1)
    same = write_minute_cohort(tmp_path / "same", 1, 2, seed=1)
    changed = write_minute_cohort(tmp_path / "changed", 1, 2, seed=2)
    assert _hashes(other) == _hashes(same) != _hashes(changed)


def test_pipeline_yaml_and_key(demo):
    cfg = yaml.safe_load((demo / "pipeline.yaml").read_text())
    assert [(s["name"], s["adapter"]) for s in cfg["sources"]] == [
        ("fitbit_cohort", "long_table"), ("metabolic_study", "long_table"), ("metabolic_cgm", "dexcom_clarity"),
        ("stress_lab", "empatica_e4"), ("covid_cohort", "long_table")]
    assert cfg["sources"][2]["study"] == "metabolic_study"     # the CGM exports are the same people's
    for s in cfg["sources"]:
        assert (demo / s["path"]).is_dir() and (demo / s["participants"]).is_file()
    assert cfg["sources"][0]["options"]["fields"]["skin_temp_f"] == {"channel": "skin_temperature", "unit": "degF"}
    assert set(cfg["sources"][4]["options"]["fields"]) == {"heart_rate", "steps", "calories", "sleep_stage",
                                                           "resting_heart_rate", "respiratory_rate"}
    assert cfg["window"]["alignment"] == "local_midnight" and cfg["privacy"]["key_file"] == "pseudonym.key"
    key = (demo / "pseudonym.key").read_text()
    assert len(key) == 32 and int(key, 16) >= 0


# --- (a) minute cohort ------------------------------------------------------------------
def test_parquet_schema_sorted_by_metric_then_time(demo):
    table = pq.read_table(demo / "fitbit_cohort" / "minute" / "fc001.parquet")
    assert table.schema.names == ["user_id", "metric", "timestamp_ms", "value"]
    types = [table.schema.field(n).type for n in table.schema.names]
    assert types == [pa.string(), pa.string(), pa.int64(), pa.float64()]
    df = table.to_pandas()
    assert set(df.metric) == {"heart_rate", "steps", "calories", "sleep_stage", "hrv_rmssd", "spo2", "skin_temp_f",
                              "resting_heart_rate", "eda_scl"}
    assert df.equals(df.sort_values(["metric", "timestamp_ms"], kind="stable").reset_index(drop=True))
    assert set(df.user_id) == {"fc001"}
    m = {k: d for k, d in df.groupby("metric")}
    assert (np.diff(m["heart_rate"].timestamp_ms) % 5000 == 0).all()
    assert set(m["sleep_stage"].value) == {0.0, 1.0, 2.0, 3.0}
    assert m["spo2"].value.between(92, 99).all() and m["skin_temp_f"].value.between(91, 95).all()
    assert len(m["resting_heart_rate"]) == 7


def test_participant0_sleeps_at_local_2230_across_dst(demo):
    participants = pd.read_csv(demo / "fitbit_cohort" / "participants.csv")
    tz = participants.tz[0]
    assert participants.participant_id[0] == "fc001" and tz in US_ZONES
    zone = ZoneInfo(tz)
    offsets, onset_minutes = set(), {"before": [], "after": []}
    for first, _ in _nights(_minute(demo, "fitbit_cohort", "fc001")["sleep_stage"])[1:]:  # night 0 is cut at the start
        local = datetime.fromtimestamp(first, timezone.utc).astimezone(zone)
        offsets.add(local.utcoffset().total_seconds() / 3600)
        minute = (local.hour * 60 + local.minute - 12 * 60) % 1440 + 12 * 60  # 00:30 -> 24:30
        onset_minutes["before" if local.date() < datetime(2024, 3, 10).date() else "after"].append(minute)
    assert len(offsets) == 2  # nights on both sides of the change
    for side, minutes in onset_minutes.items():
        assert minutes, side
        assert abs(np.median(minutes) - (22 * 60 + 30)) <= 45, (side, minutes)


def test_no_steps_during_sleep_and_hr_higher_in_activity(demo):
    m = _minute(demo, "fitbit_cohort", "fc001")
    steps = m["steps"].set_index(m["steps"].timestamp_ms // 60000).value
    sleep_minutes = np.unique(m["sleep_stage"].timestamp_ms // 60000)
    in_sleep = steps[steps.index.isin(sleep_minutes)]
    assert len(in_sleep) > 500 and (in_sleep == 0).all()
    hr = m["heart_rate"].groupby(m["heart_rate"].timestamp_ms // 60000).value.mean()
    active = hr[hr.index.isin(steps.index[steps >= 100])]
    asleep = hr[hr.index.isin(sleep_minutes)]
    assert len(active) > 30
    assert active.median() > asleep.median() + 25
    assert steps.max() < 200 and 90 <= steps[steps >= 90].median() <= 170


def test_off_wrist_gaps_in_daytime(demo):
    m = _minute(demo, "fitbit_cohort", "fc001")
    t = m["heart_rate"].timestamp_ms.to_numpy() // 1000
    gap = np.diff(t)
    starts = t[:-1][gap > 1800]
    assert starts.size >= 1
    zone = ZoneInfo("America/New_York")
    hours = [datetime.fromtimestamp(s, timezone.utc).astimezone(zone).hour for s in starts]
    assert any(7 <= h <= 22 for h in hours)
    s0, e0 = starts[0], t[:-1][gap > 1800][0] + gap[gap > 1800][0]
    st = m["steps"].timestamp_ms.to_numpy() // 1000
    assert not ((st > s0 + 60) & (st < e0 - 60)).any()  # steps rows absent while off-wrist too


# --- (b) metabolic study ---------------------------------------------------------------
def test_cgm_units_and_dst_hour(demo):
    people = pd.read_csv(demo / "metabolic_study" / "participants.csv")
    assert set(people.diabetes_status) <= {"none", "prediabetes", "type2"}

    for i, (pid, tz) in enumerate(zip(people.participant_id, people.tz)):
        path = demo / "metabolic_study" / "cgm" / f"{pid}.csv"
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf\"Index\",") and b"\r\n" in raw   # Clarity's BOM, quoting, CRLF
        cgm = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
        unit = "mmol/L" if i % 2 else "mg/dL"
        assert list(cgm.columns)[:8] == ["Index", "Timestamp (YYYY-MM-DDThh:mm:ss)", "Event Type", "Event Subtype",
                                         "Patient Info", "Device Info", "Source Device ID", f"Glucose Value ({unit})"]
        egv = cgm[cgm["Event Type"] == "EGV"]
        assert cgm["Event Type"].iloc[:3].tolist() == ["FirstName", "LastName", "DateOfBirth"]
        text = egv[f"Glucose Value ({unit})"]
        censored = text.isin(["Low", "High"])
        assert (egv["Event Subtype"].fillna("") == text.where(censored, "")).all()   # Clarity's own flag

        value = pd.to_numeric(text[~censored])
        mgdl = value * (18.0156 if i % 2 else 1.0)  # mmol/L values are mg/dL / 18.0156
        assert 70 <= mgdl.median() <= 250 and mgdl.between(39, 401).all()
        assert (value == value.round(1 if i % 2 else 0)).all()
        stamps = egv["Timestamp (YYYY-MM-DDThh:mm:ss)"]
        if tz in US_ZONES:
            day = stamps[stamps.str.startswith("2024-03-10T")].str[11:13]
            assert "02" not in set(day) and {"01", "03"} <= set(day)
        gaps = pd.to_datetime(stamps).diff().dt.total_seconds()
        assert (gaps.between(300, 301)).mean() > 0.95 and (gaps == 301).any()   # the transmitter clock drifts
    wear = pd.read_csv(demo / "metabolic_study" / "wearable" / "ms001.csv")
    assert list(wear.columns) == ["participant", "timestamp_utc", "signal", "value"]
    assert set(wear.signal) == {"hr", "steps", "kcal"} and wear.timestamp_utc.str.endswith("Z").all()


# --- (c) E4 sessions ------------------------------------------------------------------
def test_e4_headers_rates_and_acc_at_rest(demo):
    segments = pd.read_csv(demo / "stress_lab" / "segments.csv")
    for pid in pd.read_csv(demo / "stress_lab" / "participants.csv").participant_id:
        folder = demo / "stress_lab" / pid
        head, acc = _e4(folder / "ACC.csv")
        start = float(head[0].split(",")[0])
        assert [float(x) for x in head[0].split(",")] == [start] * 3
        assert [float(x) for x in head[1].split(",")] == [32.0] * 3 and acc.shape[1] == 3
        assert head[0].split(",")[0].endswith(".000000")
        for name, rate in (("BVP", 64), ("EDA", 4), ("TEMP", 4), ("HR", 1)):
            h, values = _e4(folder / f"{name}.csv")
            assert float(h[1]) == rate
            assert float(h[0]) == start + (10 if name == "HR" else 0)
        seg = segments[segments.participant_id == pid]
        assert list(seg.condition) == ["baseline", "stress", "recovery"]
        t = {c: (pd.Timestamp(a).timestamp() - start, pd.Timestamp(b).timestamp() - start)
             for c, a, b in zip(seg.condition, seg.start_utc, seg.end_utc)}
        a, b = (int(x * 32) for x in t["baseline"])
        magnitude = np.linalg.norm(acc[a:b], axis=1)
        assert abs(magnitude.mean() - 64) < 3
        assert np.linalg.norm(acc, axis=1).std() > magnitude.std() * 3  # walking later in the session
        _, hr = _e4(folder / "HR.csv")
        mean = {c: hr[int(x - 10):int(y - 10)].mean() for c, (x, y) in t.items()}
        assert mean["stress"] > mean["baseline"] + 10
        _, eda = _e4(folder / "EDA.csv")
        level = {c: eda[int(x * 4):int(y * 4)].mean() for c, (x, y) in t.items()}
        assert level["stress"] > level["baseline"]
        tags = [float(x) for x in (folder / "tags.csv").read_text().split()]
        assert len(tags) == 4 and tags[0] == start + t["baseline"][0]


# --- (d) outcome cohort -------------------------------------------------------------------
def test_symptom_onset_for_some_participants(demo):
    people = pd.read_csv(demo / "covid_cohort" / "participants.csv", dtype=str, keep_default_na=False)
    assert list(people.columns) == ["participant_id", "tz", "symptom_onset_date", "age_band", "sex", "bmi"]
    onset = people.symptom_onset_date
    assert 0 < (onset != "").sum() < len(people)
    for pid, tz, date in zip(people.participant_id, people.tz, onset):
        m = _minute(demo, "covid_cohort", pid)
        assert set(m) == {"heart_rate", "steps", "calories", "sleep_stage", "resting_heart_rate", "respiratory_rate"}
        assert m["respiratory_rate"].value.between(12, 21).all()
        if date:
            assert "2024-03-04" <= date <= "2024-03-10"
            rhr = m["resting_heart_rate"]
            day = pd.to_datetime(rhr.timestamp_ms, unit="ms", utc=True).dt.tz_convert(tz).dt.strftime("%Y-%m-%d")
            assert rhr.value[day > date].mean() >= rhr.value[day < date].mean() + 2


def test_basic_metrics_only(tmp_path):
    root = write_minute_cohort(tmp_path / "bench", 1, 2, seed=5, metrics="basic")
    df = pq.read_table(root / "minute" / "fc001.parquet").to_pandas()
    assert set(df.metric) == {"heart_rate", "steps", "calories", "sleep_stage"}
    assert (root / "participants.csv").read_text().splitlines()[0] == \
        "participant_id,tz,age,sex,weight_kg,height_cm,due_date"
