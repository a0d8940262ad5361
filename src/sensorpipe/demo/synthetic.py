"""Built-in demo sources: realistic synthetic wearable datasets written to disk.

``generate_demo_sources(out_dir)`` writes four small studies in the native
formats the adapters read, plus a ``pipeline.yaml`` that ingests them, so the
whole pipeline can run end to end without real data (examples, tests,
benchmarks):

(a) ``fitbit_cohort/``   Fitbit-like minute/second data, long Parquet per participant.
(b) ``metabolic_study/`` wearable CSV (UTC ISO times) and, as a second source of the same
    study, Dexcom Clarity CSV exports of the same people's CGM (``cgm/<id>.csv``, local
    wall clock, half the participants in mg/dL and half in mmol/L, ``Low``/``High``
    beyond the sensor's range): the two fuse into one grid per person.
(c) ``stress_lab/``      Empatica E4 session folders (BVP/ACC/EDA/TEMP/HR/tags) with a
    baseline / TSST-like stress / recovery protocol.
(d) ``covid_cohort/``    like (a) with respiratory rate and symptom-onset labels.

(a) and (d) also get ``activities.csv``, an exercise log of the walks and runs
the watch recorded (local times with offsets), read by the
``logged_activities`` label processor (``options.activities``).

Every participants table carries demographics in the shapes real studies use
(age in years or an age band, sex, BMI or weight and height), and in (a)
every third participant (index 1, 4, ...) is pregnant, with a due date, so the
demo has every participant-level label of the unified schema.

Each participant lives in its own IANA zone and behaves on its LOCAL clock
(sleep ~22:30-07:00, daytime walks and runs, off-wrist gaps), so the date
range crossing 2024-03-10 exercises the US DST change. Output is a pure
function of the seed and sizes: every draw comes from ``numpy.random.default_rng``
seeded with ``[seed, participant, stream]`` and files are byte-identical across
runs. The signal models are in :mod:`sensorpipe.demo._synth_signals`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from sensorpipe.demo import _synth_signals as sig
from sensorpipe.demo._clarity_writer import clarity_seconds, write_clarity_csv

TIME_ZONES = ("America/New_York", "Europe/Berlin", "Asia/Kolkata", "America/Los_Angeles", "Australia/Sydney",
              "Europe/London")
AGE_BANDS = ("18-29", "30-39", "40-49", "50-59", "60-69")
DIABETES = ("none", "prediabetes", "type2")
BASIC_METRICS = ("heart_rate", "steps", "calories", "sleep_stage")
FULL_METRICS = BASIC_METRICS + ("hrv_rmssd", "spo2", "skin_temp_f", "resting_heart_rate", "eda_scl")
OUTCOME_METRICS = BASIC_METRICS + ("resting_heart_rate", "respiratory_rate")
MIN_LOGGED_MIN = 10  # shortest logged exercise bout (trackers auto-log from about 10 min)
# the participants-table columns each cohort writes (the shapes real studies use)
MINUTE_DEMOGRAPHICS = ("age", "sex", "weight_kg", "height_cm")
METABOLIC_DEMOGRAPHICS = ("age_band", "sex", "bmi")
LAB_DEMOGRAPHICS = ("age", "sex", "height_cm", "weight_kg")
OUTCOME_DEMOGRAPHICS = ("age_band", "sex", "bmi")

Stream = tuple[np.ndarray, np.ndarray]  # (UTC epoch seconds, values)
_METRICS: dict[str, Callable[[np.random.Generator, sig.Timeline, int | None], Stream]] = {
    "heart_rate": lambda rng, tl, onset: sig.hr_5s(rng, tl),
    "steps": lambda rng, tl, onset: (tl.t[tl.worn], tl.steps[tl.worn]),
    "calories": lambda rng, tl, onset: (tl.t, tl.kcal),
    "sleep_stage": lambda rng, tl, onset: _worn_only(tl, tl.stage_t, tl.stage),
    "hrv_rmssd": lambda rng, tl, onset: sig.hrv_rmssd(rng, tl),
    "spo2": lambda rng, tl, onset: sig.spo2(rng, tl),
    "skin_temp_f": lambda rng, tl, onset: sig.skin_temp_f(rng, tl),
    "resting_heart_rate": lambda rng, tl, onset: sig.resting_hr(rng, tl, onset),
    "eda_scl": lambda rng, tl, onset: sig.eda_scans(rng, tl),
    "respiratory_rate": lambda rng, tl, onset: sig.respiratory_rate(rng, tl),
}
_STREAM_ID = {name: 10 + i for i, name in enumerate(_METRICS)}  # independent rng stream per metric
_PROFILE, _TIMELINE, _DEMOGRAPHICS, _CGM, _E4, _DATASET = 1, 2, 3, 4, 5, 1_000_000


# --- public API ------------------------------------------------------------------
def generate_demo_sources(out_dir: str | Path, seed: int = 0, scale: float = 1.0) -> Path:
    """Write the four demo datasets under out_dir and a pipeline config; return the path of out_dir/pipeline.yaml.

    ``scale`` multiplies the participant counts (6, 4, 3, 4 at 1.0; at least 2
    each) and, below 1, shortens the E4 sessions (8 h at 1.0, at least 1.5 h);
    the cohorts always span 7 days so they cross the US DST change.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = np.random.default_rng(seed)
    seeds = [int(s) for s in root.integers(0, 2**31, 4)]
    write_minute_cohort(out / "fitbit_cohort", _count(6, scale), 7, seeds[0])
    write_metabolic_study(out / "metabolic_study", _count(4, scale), 7, seeds[1])
    write_e4_study(out / "stress_lab", _count(3, scale), max(1.5, 8.0 * min(scale, 1.0)), seeds[2])
    write_outcome_cohort(out / "covid_cohort", _count(4, scale), 7, seeds[3])
    (out / "pseudonym.key").write_text(root.bytes(16).hex())
    path = out / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline_config(), sort_keys=False))
    return path


def write_minute_cohort(out_dir, n_participants: int, days: int, seed: int, start_date="2024-03-04",
                        metrics="full") -> Path:
    """Dataset (a) format (also used by the benchmark for 50 participants x 14 days). Returns the dataset dir.

    ``metrics`` is ``"full"``, ``"basic"`` (heart_rate, steps, calories,
    sleep_stage) or an iterable of metric names.
    """
    presets = {"full": FULL_METRICS, "basic": BASIC_METRICS}
    if isinstance(metrics, str) and metrics not in presets:
        raise ValueError(f"metrics={metrics!r}: use 'full', 'basic' or a list of metric names")
    names = presets[metrics] if isinstance(metrics, str) else metrics
    return _write_long_cohort(Path(out_dir), "fc", n_participants, days, seed, start_date, tuple(names), None,
                              MINUTE_DEMOGRAPHICS, pregnancies=True)


def write_metabolic_study(out_dir, n_participants, days, seed, start_date="2024-03-04") -> Path:
    """Dataset (b): wearable minute CSV (UTC ISO) and 5-min CGM Clarity exports (local wall clock). Returns the
    dataset dir."""
    root = _prepare(Path(out_dir), ["wearable/*.csv", "cgm/*.csv"])
    rows = []
    for p in range(n_participants):
        pid, tz, status = f"ms{p + 1:03d}", _tz(p), DIABETES[p % 3]
        tl = _timeline(seed, p, tz, start_date, days)
        _write_wearable_csv(root / "wearable" / f"{pid}.csv", pid, tl)
        rng = _rng(seed, p, _CGM)
        t, mgdl = sig.cgm_readings(rng, tl, status)
        local_s = sig.utc_to_local(t + clarity_seconds(rng, t.size), tz)   # the drift is in time, not on the clock
        write_clarity_csv(root / "cgm" / f"{pid}.csv", local_s, mgdl, mmol=p % 2 == 1,
                          transmitter=f"8{p:02d}DEM", first_name=pid.upper())
        demo = _demographics(seed, p)
        rows.append([pid, tz, status, *(demo[c] for c in METABOLIC_DEMOGRAPHICS)])
    header = ["participant_id", "tz", "diabetes_status", *METABOLIC_DEMOGRAPHICS]
    _write_csv(root / "participants.csv", header, _columns(rows))
    return root


def write_e4_study(out_dir, n_participants, hours: float, seed, start_date="2024-03-07") -> Path:
    """Dataset (c): one Empatica E4 session folder per participant plus segments.csv. Returns the dataset dir."""
    files = ("BVP.csv", "ACC.csv", "EDA.csv", "TEMP.csv", "HR.csv", "tags.csv")
    root = _prepare(Path(out_dir), [f"*/{name}" for name in files])
    day0 = int(np.datetime64(start_date, "D").astype("datetime64[s]").astype(np.int64))
    participants, segments = [], []
    for p in range(n_participants):
        pid, tz, rng = f"sl{p + 1:03d}", _tz(p), _rng(seed, p, _E4)
        local_start = day0 + p * sig.DAY + 8.5 * 3600 + int(rng.integers(0, 90 * 60))
        session = sig.e4_session(rng, int(sig.local_to_utc([local_start], tz)[0]), hours)
        _write_e4_folder(root / pid, session)
        demo = _demographics(seed, p)
        participants.append([pid, tz, *(demo[c] for c in LAB_DEMOGRAPHICS)])
        segments += [[pid, _iso(a), _iso(b), cond] for cond, a, b in session.segments]
    _write_csv(root / "participants.csv", ["participant_id", "tz", *LAB_DEMOGRAPHICS], _columns(participants))
    _write_csv(root / "segments.csv", ["participant_id", "start_utc", "end_utc", "condition"], _columns(segments))
    return root


def write_outcome_cohort(out_dir, n_participants, days, seed, start_date="2024-03-04") -> Path:
    """Dataset (d): like (a) with basic metrics, resting HR and respiratory rate, plus symptom onsets."""
    rng = _rng(seed, _DATASET)
    sick = rng.permutation(n_participants)[: max(1, n_participants // 2)]
    onset_days = [None] * n_participants
    for p in sorted(sick):
        onset_days[p] = int(min(days - 1, rng.integers(2, max(3, days - 1))))
    return _write_long_cohort(Path(out_dir), "cc", n_participants, days, seed, start_date, OUTCOME_METRICS, onset_days,
                              OUTCOME_DEMOGRAPHICS)


def pipeline_config() -> dict:
    """The demo pipeline config (paths relative to the folder of pipeline.yaml)."""
    def minute_files():  # a fresh list per source, so the YAML has no anchors
        return [{"glob": "minute/*.parquet", "participant_column": "user_id", "field_column": "metric",
                 "time_column": "timestamp_ms", "time_format": "epoch_ms", "value_column": "value"}]

    fields = {"heart_rate": ("heart_rate", "bpm"), "steps": ("steps", "steps/min"),
              "calories": ("calories", "kcal/min"), "sleep_stage": ("sleep_stage", "stage code"),
              "hrv_rmssd": ("hrv_rmssd", "ms"), "spo2": ("spo2", "%"),
              "skin_temp_f": ("skin_temperature", "degF"), "resting_heart_rate": ("resting_heart_rate", "bpm"),
              "eda_scl": ("eda_level", "uS"), "respiratory_rate": ("respiratory_rate", "breaths/min")}

    def field_map(names):
        return {n: {"channel": fields[n][0], "unit": fields[n][1]} for n in names}

    def long_source(name, names, files, activities=False):
        options = {"files": files, "fields": field_map(names)}
        if activities:  # the exercise log written next to the minute files (labels: activity)
            options["activities"] = "activities.csv"
        return {"name": name, "adapter": "long_table", "path": name, "participants": f"{name}/participants.csv",
                "options": options}

    metabolic_files = [
        {"glob": "wearable/*.csv", "participant_column": "participant", "field_column": "signal",
         "time_column": "timestamp_utc", "time_format": "iso", "value_column": "value"}]
    metabolic = long_source("metabolic_study", [], metabolic_files)
    metabolic["options"]["fields"] = {"hr": {"channel": "heart_rate", "unit": "bpm"},
                                      "steps": {"channel": "steps", "unit": "steps/min"},
                                      "kcal": {"channel": "calories", "unit": "kcal/min"}}
    # the same people's CGM, as the Dexcom Clarity exports a study receives: a second source of the study
    cgm = {"name": "metabolic_cgm", "adapter": "dexcom_clarity", "path": "metabolic_study/cgm",
           "participants": "metabolic_study/participants.csv", "study": "metabolic_study"}
    return {
        "sources": [
            long_source("fitbit_cohort", FULL_METRICS, minute_files(), activities=True),
            metabolic,
            cgm,
            {"name": "stress_lab", "adapter": "empatica_e4", "path": "stress_lab",
             "participants": "stress_lab/participants.csv", "options": {"segments": "segments.csv"}},
            long_source("covid_cohort", OUTCOME_METRICS, minute_files(), activities=True),
        ],
        "channels": ["heart_rate", "resting_heart_rate", "hrv_rmssd", "spo2", "respiratory_rate", "steps", "calories",
                     "enmo", "sleep_stage", "eda_level", "skin_temperature", "glucose"],
        "window": {"size_min": 1440, "stride_min": 1440, "alignment": "local_midnight", "max_missing_ratio": 0.9},
        "splits": {"train": 0.6, "validation": 0.2, "test": 0.2},
        "output": {"dir": "out", "name": "sensorpipe_demo", "version": "1.0.0", "formats": ["array_record", "tfrecord"],
                   "target_shard_mb": 2.0},
        "runner": {"name": "local", "workers": 2},
        "privacy": {"pseudonymize": True, "key_file": "pseudonym.key"},
    }


# --- cohorts ------------------------------------------------------------------------
def _write_long_cohort(root: Path, prefix: str, n: int, days: int, seed: int, start_date: str,
                       metrics: tuple[str, ...], onset_days: list[int | None] | None,
                       demographics: tuple[str, ...], pregnancies: bool = False) -> Path:
    unknown = sorted(set(metrics) - set(_METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; choose from {sorted(_METRICS)}")
    _prepare(root, ["minute/*.parquet"])
    (root / "minute").mkdir(exist_ok=True)
    rows, log = [], []
    for p in range(n):
        pid, tz = f"{prefix}{p + 1:03d}", _tz(p)
        onset = onset_days[p] if onset_days else None
        tl = _timeline(seed, p, tz, start_date, days, onset)
        streams = {m: _METRICS[m](_rng(seed, p, _STREAM_ID[m]), tl, onset) for m in metrics}
        pq.write_table(_long_table(pid, streams), root / "minute" / f"{pid}.parquet", compression="zstd")
        log += _activity_log(pid, tl)
        extra = [] if onset_days is None else [_date(start_date, onset) if onset is not None else ""]
        demo = _demographics(seed, p, start_date if pregnancies else None)
        rows.append([pid, tz, *extra, *(demo[c] for c in demographics)] + ([demo["due_date"]] if pregnancies else []))
    header = (["participant_id", "tz"] + ([] if onset_days is None else ["symptom_onset_date"]) + list(demographics)
              + (["due_date"] if pregnancies else []))
    _write_csv(root / "participants.csv", header, _columns(rows))
    _write_csv(root / "activities.csv", ["participant_id", "start", "end", "type"], _columns(log))
    return root


def _activity_log(pid: str, tl: sig.Timeline) -> list[list[str]]:
    """Logged walks and runs like a Fitbit/Apple exercise log: local times with their UTC offset.

    Only what the watch saw: the minutes of each scheduled bout that are
    awake and on-wrist (so the log matches the steps and heart rate), split
    where sleep or an off-wrist gap cuts a bout, and kept when at least
    ``MIN_LOGGED_MIN`` minutes long, as trackers auto-log exercise only from
    about 10 minutes on.
    """
    b = tl.bouts
    idx = sig.interval_index(tl.t, b[:, 0], b[:, 1]) if len(b) else np.full(tl.t.size, -1)
    idx = np.where(tl.asleep | ~tl.worn, -1, idx)
    edges = np.flatnonzero(np.diff(idx)) + 1
    starts, ends = np.r_[0, edges], np.r_[edges, idx.size]
    keep = (idx[starts] >= 0) & (ends - starts >= MIN_LOGGED_MIN)
    starts, ends = starts[keep], ends[keep]
    t0, t1 = tl.t[starts], tl.t[ends - 1] + 60
    kind = np.where(b[idx[starts], 2] == 1, "running", "walking") if starts.size else np.zeros(0, str)
    return [[pid, a, z, k] for a, z, k in zip(_iso_local(t0, tl.profile.tz), _iso_local(t1, tl.profile.tz), kind)]


def _iso_local(utc_s: np.ndarray, tz: str) -> list[str]:
    """UTC seconds as local ISO 8601 with the offset in force, e.g. 2024-03-04T08:15:00-05:00."""
    local = sig.utc_to_local(utc_s, tz)
    off = (local - np.asarray(utc_s, np.int64)) // 60
    text = np.datetime_as_string(local.astype("datetime64[s]"), unit="s")
    return [f"{s}{'-' if o < 0 else '+'}{abs(o) // 60:02d}:{abs(o) % 60:02d}" for s, o in zip(text, off.tolist())]


def _timeline(seed: int, p: int, tz: str, start_date: str, days: int, onset: int | None = None) -> sig.Timeline:
    profile = sig.draw_profile(_rng(seed, p, _PROFILE), tz)
    return sig.build_timeline(_rng(seed, p, _TIMELINE), profile, start_date, days, onset)


def _worn_only(tl: sig.Timeline, t: np.ndarray, v: np.ndarray) -> Stream:
    keep = tl.worn[((t - tl.t[0]) // 60).clip(0, tl.t.size - 1)]
    return t[keep], v[keep]


def _long_table(pid: str, streams: dict[str, Stream]) -> pa.Table:
    """Long rows sorted by metric, then time: user_id, metric, timestamp_ms, value."""
    names = sorted(streams)
    order = [np.argsort(streams[m][0], kind="stable") for m in names]
    t = np.concatenate([streams[m][0][o] for m, o in zip(names, order)]).astype(np.int64) * 1000
    v = np.concatenate([np.asarray(streams[m][1], np.float64)[o] for m, o in zip(names, order)])
    metric = np.repeat(np.array(names), [len(streams[m][0]) for m in names])
    return pa.table({"user_id": pa.array(np.full(t.size, pid)), "metric": pa.array(metric),
                     "timestamp_ms": pa.array(t, pa.int64()), "value": pa.array(v, pa.float64())})


def _write_wearable_csv(path: Path, pid: str, tl: sig.Timeline) -> None:
    """participant,timestamp_utc,signal,value: hr and steps per worn minute, kcal every minute; time-major.

    Like real merged exports it is not clean (see :func:`_export_faults`).
    """
    w = tl.worn
    parts = [(tl.t[w], "hr", _fixed(np.round(tl.hr[w]), 0)), (tl.t[w], "steps", _fixed(tl.steps[w], 0)),
             (tl.t, "kcal", _fixed(tl.kcal, 3))]
    t = np.concatenate([p[0] for p in parts])
    code = np.repeat(np.arange(3), [p[0].size for p in parts])
    order = np.lexsort((code, t))
    signal = pa.array(np.repeat(np.array([p[1] for p in parts]), [p[0].size for p in parts]))
    values = pa.concat_arrays([p[2] for p in parts])
    columns = [pa.array(np.full(t.size, pid)), _iso_array(t), signal, values]
    idx, overrides = _export_faults(pid, order, np.asarray(signal.to_pylist(), dtype=object)[order] == "hr",
                                    np.asarray(values.to_pylist(), dtype=object)[order])
    out = [c.take(pa.array(order[idx])) for c in columns]
    if overrides:
        v = out[3].to_pylist()
        for pos, text in overrides.items():
            v[pos] = text
        out[3] = pa.array(v, pa.string())
    _write_csv(path, ["participant", "timestamp_utc", "signal", "value"], out)


def _export_faults(pid: str, order: np.ndarray, is_hr: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Row order with the faults real merged exports have, and the values to overwrite.

    An overlapping re-export repeats 30 consecutive rows (exact duplicates), a
    device resync writes a second, different heart rate for 3 timestamps
    (conflicting duplicates), and 2 rows lost their value (empty field).
    Seeded from the participant id, so files stay byte-identical per seed.
    """
    n = order.size
    rng = np.random.default_rng(zlib.crc32(pid.encode()))
    k = int(rng.integers(0, max(1, n - 60)))
    idx = np.r_[np.arange(k + 30), np.arange(k, k + 30), np.arange(k + 30, n)]
    hr_rows = np.flatnonzero(is_hr)
    conflicts = np.sort(rng.choice(hr_rows, size=min(3, hr_rows.size), replace=False))
    blanks = np.sort(rng.choice(np.setdiff1d(np.arange(n), np.r_[conflicts, np.arange(k, k + 30)]), size=2,
                                replace=False))
    overrides: dict[int, str] = {}
    extra = []
    for j in conflicts:  # three rows, not per sample
        extra.append(j)
        overrides[idx.size + len(extra) - 1] = str(int(float(values[j])) + int(rng.integers(6, 15)))
    for j in blanks:
        extra.append(j)
        overrides[idx.size + len(extra) - 1] = ""
    return np.r_[idx, np.array(extra, np.int64)], overrides


def _write_e4_folder(folder: Path, s: sig.E4Session) -> None:
    """E4 export: no header line; row 1 start (UTC s), row 2 rate (Hz), then samples."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_e4_file(folder / "BVP.csv", s.start_s, 64, [_fixed(s.bvp, 2)])
    _write_e4_file(folder / "ACC.csv", s.start_s, 32, [pa.array(s.acc[:, j]) for j in range(3)])
    _write_e4_file(folder / "EDA.csv", s.start_s, 4, [_fixed(s.eda, 6)])
    _write_e4_file(folder / "TEMP.csv", s.start_s, 4, [_fixed(s.temp, 2)])
    _write_e4_file(folder / "HR.csv", s.start_s + 10, 1, [_fixed(s.hr, 2)])
    tags = sorted({b for _, a, b in s.segments} | {a for _, a, _ in s.segments})
    (folder / "tags.csv").write_text("".join(f"{t:.2f}\n" for t in tags))


def _write_e4_file(path: Path, start_s: int, rate: int, columns: list[pa.Array]) -> None:
    k = len(columns)
    head = ", ".join([f"{start_s:.6f}"] * k) + "\n" + ", ".join([f"{rate:.6f}"] * k) + "\n"
    _write_lines(path, head, columns)


# --- file helpers ---------------------------------------------------------------------
def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *keys])


def _count(base: int, scale: float) -> int:
    return max(2, int(round(base * scale)))


def _tz(p: int) -> str:
    return TIME_ZONES[p % len(TIME_ZONES)]


def _demographics(seed: int, p: int, pregnancy_start_date: str | None = None) -> dict[str, str]:
    """One participant's table cells: age, age_band, sex, height_cm, weight_kg, bmi, due_date.

    Adult heights by sex (mean 163 / 177 cm, SD 7) and a right-skewed BMI
    (median ~26 kg/m^2), so weight = BMI x height^2 stays plausible. With a
    ``pregnancy_start_date``, participants 1, 4, 7, ... are women of 24-37
    years, 8-34 weeks pregnant on that date (due date = 40 weeks after the LMP);
    everyone else has a blank due date.
    """
    rng = _rng(seed, p, _DEMOGRAPHICS)
    band = AGE_BANDS[int(rng.integers(0, len(AGE_BANDS)))]
    sex = "F" if rng.random() < 0.5 else "M"
    lo = int(band.split("-")[0])
    age = lo + int(rng.integers(0, 10 if lo >= 30 else 12))
    z_height, bmi = rng.normal(), float(np.clip(np.exp(rng.normal(np.log(26.0), 0.17)), 17.5, 45.0))
    week, due = int(rng.integers(8, 35)), ""
    if pregnancy_start_date is not None and p % 3 == 1:
        sex, age = "F", 24 + int(rng.integers(0, 14))
        band = next(b for b in AGE_BANDS if int(b[:2]) <= age <= int(b[3:]))
        due = _date(pregnancy_start_date, 280 - 7 * week - int(rng.integers(0, 7)))
    height = round((163.0 if sex == "F" else 177.0) + 7.0 * z_height)
    return {"age": str(age), "age_band": band, "sex": sex, "height_cm": str(height),
            "weight_kg": f"{bmi * (height / 100) ** 2:.1f}", "bmi": f"{bmi:.1f}", "due_date": due}


def _date(start_date: str, day: int) -> str:
    return str(np.datetime64(start_date, "D") + day)


def _iso(t: int) -> str:
    return str(np.datetime_as_string(np.datetime64(int(t), "s"), unit="s", timezone="UTC"))


def _iso_array(t: np.ndarray) -> pa.Array:
    return pa.array(np.datetime_as_string(np.asarray(t, np.int64).astype("datetime64[s]"), unit="s", timezone="UTC"))


def _fixed(values, decimals: int) -> pa.Array:
    """Numbers as fixed-point strings like printf ``%.{decimals}f``, vectorized in Arrow."""
    scaled = np.round(np.asarray(values, np.float64) * 10**decimals).astype(np.int64)
    digits = pc.cast(pa.array(np.abs(scaled)), pa.string())
    if decimals:
        digits = pc.utf8_lpad(digits, width=decimals + 1, padding="0")
        digits = pc.binary_join_element_wise(pc.utf8_slice_codeunits(digits, 0, -decimals),
                                             pc.utf8_slice_codeunits(digits, -decimals), ".")
    return pc.binary_join_element_wise(pa.array(np.where(scaled < 0, "-", "")), digits, "")


def _columns(rows: list[list[str]]) -> list[pa.Array]:
    return [pa.array([r[j] for r in rows], pa.string()) for j in range(len(rows[0]))] if rows else []


def _write_csv(path: Path, header: list[str], columns: Iterable[pa.Array]) -> None:
    _write_lines(path, ",".join(header) + "\n", list(columns))


def _write_lines(path: Path, head: str, columns: list[pa.Array]) -> None:
    """``head`` verbatim, then the columns as unquoted comma-separated rows ("\\n" line ends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(head.encode())
        if columns and len(columns[0]):
            table = pa.table({f"c{i}": c for i, c in enumerate(columns)})
            pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def _prepare(root: Path, stale_globs: list[str]) -> Path:
    """Create ``root`` and remove files a previous (larger) generation left there."""
    root.mkdir(parents=True, exist_ok=True)
    for pattern in stale_globs:
        for f in root.glob(pattern):
            f.unlink()
    return root
