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
        d = ex["dataset"]
        lab = ex["labels"]
        if d == "metabolic_study":
            assert lab["diabetes_status"] == expected[ex["participant_id"]]
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
        if ex["dataset"] != "covid_cohort":
            continue
        day = onset[ex["participant_id"]]
        lab = ex["labels"]
        if not day:
            assert not lab["has_days_since_symptom_onset"]
            continue
        local_start = np.datetime64(int(ex["start_utc"] + 60 * ex["tz_offset_min"]), "s").astype("datetime64[D]")
        assert lab["days_since_symptom_onset"] == (local_start - np.datetime64(day)).astype(int)
        checked += 1
    assert checked > 0
