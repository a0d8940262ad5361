"""Labels in the written windows come from the right processor and are explicit when missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

import sensorpipe
from sensorpipe.privacy.pseudonym import pseudonym
from tests.conftest import KEY


def _all(ds):
    return [ex for s in ds.splits for ex in ds[s]]


def test_labels_per_dataset(local_run, sources_dir):
    ds = sensorpipe.open(local_run.output_dir)
    windows = _all(ds)
    status = pd.read_csv(sources_dir / "metabolic_study" / "participants.csv")
    names = list(ds.features["labels"]["diabetes_status"].names)
    expected = {pseudonym(KEY.encode(), "metabolic_study", p): names.index(s)
                for p, s in zip(status.participant_id, status.diabetes_status)}
    per_participant: dict[str, set] = {}
    for ex in windows:
        d = ex["dataset"].decode()
        lab = ex["labels"]
        if d == "metabolic_study":
            assert lab["diabetes_status"] == expected[ex["participant_id"].decode()]
            per_participant.setdefault(ex["participant_id"], set()).add(int(lab["diabetes_status"]))
        else:
            assert lab["diabetes_status"] == -1
        if d == "stress_lab":
            assert lab["condition"] in (0, 1, 2)   # the session's labelled minutes
        else:
            assert lab["condition"] == -1
        if d != "covid_cohort":
            assert np.isnan(lab["days_since_symptom_onset"]) and not lab["has_days_since_symptom_onset"]
    assert all(len(v) == 1 for v in per_participant.values())  # participant-level label never varies


def test_days_since_onset_counts_local_days(local_run, sources_dir):
    ds = sensorpipe.open(local_run.output_dir)
    parts = pd.read_csv(sources_dir / "covid_cohort" / "participants.csv", dtype=str).fillna("")
    onset = {pseudonym(KEY.encode(), "covid_cohort", p): d for p, d in zip(parts.participant_id, parts.symptom_onset_date)}
    checked = 0
    for ex in _all(ds):
        if ex["dataset"].decode() != "covid_cohort":
            continue
        day = onset[ex["participant_id"].decode()]
        lab = ex["labels"]
        if not day:
            assert not lab["has_days_since_symptom_onset"]
            continue
        local_start = np.datetime64(int(ex["start_utc"] + 60 * ex["tz_offset_min"]), "s").astype("datetime64[D]")
        assert lab["days_since_symptom_onset"] == (local_start - np.datetime64(day)).astype(int)
        checked += 1
    assert checked > 0


def test_record_label_and_event_fields_are_the_per_window_conversions():
    """The record loop converts label columns once and writes event JSON from cached strings: the values
    must be what per-window int()/float()/astype(int8) and json.dumps give, escapes included."""
    import json

    from sensorpipe.core.labels import LABELS
    from sensorpipe.runners.stages import _events_json, _window_labels

    rng = np.random.default_rng(1)
    n, W = 3, 6
    labels = {}
    for spec in LABELS:
        if spec.kind == "sequence":
            labels[spec.name] = rng.integers(-1, 4, (n, W)).astype(np.int64)
        elif spec.kind == "float":
            labels[spec.name] = np.array([1.5, np.nan, -0.0], np.float32)
        else:
            labels[spec.name] = np.array([-1, 0, 2], np.int64)
    rows = _window_labels(labels, n)
    for i, row in enumerate(rows):
        want = {}
        for spec in LABELS:
            v = labels[spec.name][i]
            if spec.kind == "sequence":
                want[spec.name] = v.astype(np.int8)
                continue
            want[spec.name] = int(v) if spec.kind == "class" else float(v)
            if spec.kind == "float":
                want[f"has_{spec.name}"] = bool(np.isfinite(v))
        assert list(row) == list(want)
        for k, v in want.items():
            got = row[k]
            if isinstance(v, np.ndarray):
                assert got.dtype == np.int8 and got.tobytes() == v.tobytes()
            else:
                assert type(got) is type(v) and (got == v or (np.isnan(v) and np.isnan(got))), k
    events = [(0, 12, "activity", "walking"), (-3, 1440, 'say "hi"', "caf\u00e9 \\ run")]
    for evs in ([], events):
        assert _events_json(evs) == json.dumps([[a, b, k, nm] for a, b, k, nm in evs], separators=(",", ":"))
