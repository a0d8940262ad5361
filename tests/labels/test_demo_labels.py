"""Labels in the written demo dataset: the leakage guard, the demo carries every label, and the TFDS schema."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tensorflow_datasets as tfds

import sensorpipe
from sensorpipe.core.labels import LABELS, LABEL_SCHEMA_VERSION
from sensorpipe.privacy.pseudonym import pseudonym
from tests.conftest import KEY


@pytest.fixture(scope="module")
def windows(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    return [ex for split in ds.splits for ex in ds[split]]


def _local_day(ex) -> int:
    return int((ex["start_utc"] + 60 * int(ex["tz_offset_min"])) // 86400)


def _value(ex, name):
    v = ex["labels"][name]
    return float(v) if np.ndim(v) == 0 else tuple(np.asarray(v).tolist())


def test_participant_labels_never_vary_between_windows_of_a_participant(windows):
    per_participant = defaultdict(lambda: defaultdict(set))
    n_windows = defaultdict(int)
    for ex in windows:
        who = (ex["dataset"], ex["participant_id"])
        n_windows[who] += 1
        for spec in LABELS:
            if spec.scope == "participant":
                per_participant[who][spec.name].add(repr(_value(ex, spec.name)))   # repr: NaN == NaN
    assert len(per_participant) >= 8 and sum(n > 1 for n in n_windows.values()) >= 5
    varying = {(who, name): vals for who, labels in per_participant.items() for name, vals in labels.items()
               if len(vals) > 1}
    assert not varying


def test_participant_time_labels_change_only_with_the_local_date(windows):
    series = defaultdict(list)
    for ex in windows:
        for name in ("pregnancy_week", "days_since_symptom_onset"):
            if ex["labels"][f"has_{name}"]:
                series[(ex["participant_id"], name)].append((_local_day(ex), float(ex["labels"][name])))
    assert {name for _, name in series} == {"pregnancy_week", "days_since_symptom_onset"}
    for (_, name), points in series.items():
        day, value = np.array(sorted(points)).T
        if name == "days_since_symptom_onset":
            assert np.unique(value - day).size == 1       # one onset day per participant
        else:
            lmp = day - 7 * value                          # the LMP lies within the week before each value
            assert lmp.max() - lmp.min() < 7 and (np.diff(value) >= 0).all()


def test_demo_carries_every_label_of_its_sources(windows, sources_dir):
    known = defaultdict(set)
    for ex in windows:
        lab = ex["labels"]
        for spec in LABELS:
            has = lab[f"has_{spec.name}"] if spec.kind == "float" else (np.asarray(lab[spec.name]) >= 0).any()
            if has:
                known[spec.name].add(ex["dataset"])
    present = {ex["dataset"] for ex in windows}   # the short lab sessions give no day windows
    assert {"fitbit_cohort", "metabolic_study", "covid_cohort"} <= present
    assert known["age_band"] == known["sex"] == known["bmi"] == present
    assert known["diabetes_status"] == known["glucose_mean_mgdl"] == {"metabolic_study"}
    assert known["pregnancy_week"] == {"fitbit_cohort"}
    assert known["days_since_symptom_onset"] == {"covid_cohort"}
    assert {"fitbit_cohort", "covid_cohort"} <= known["sleep_stage"] == known["total_sleep_min"]
    # the written BMI is the participants table's weight / height^2 (fitbit cohort writes weight and height)
    table = pd.read_csv(sources_dir / "fitbit_cohort" / "participants.csv")
    bmi = {pseudonym(KEY.encode(), "fitbit_cohort", p): w / (h / 100) ** 2
           for p, w, h in zip(table.participant_id, table.weight_kg, table.height_cm)}
    for ex in windows:
        if ex["dataset"] == "fitbit_cohort":
            assert ex["labels"]["bmi"] == pytest.approx(bmi[ex["participant_id"]], rel=1e-6)


def test_cgm_targets_agree_with_the_window_glucose(windows, local_run):
    ds = sensorpipe.open(local_run.output_dir)
    j = list(ds.channels).index("glucose")
    checked = 0
    for ex in windows:
        lab = ex["labels"]
        if not lab["has_glucose_mean_mgdl"]:
            continue
        observed = ~ex["mask"][:, j]
        readings = ds.denormalize(ex["input"])[observed, j]
        assert lab["glucose_mean_mgdl"] == pytest.approx(readings.mean(), abs=0.05)
        assert lab["time_below_range_pct"] == pytest.approx(100 * (readings < 70).mean(), abs=1e-3)
        assert lab["hypo_events"] >= 0 and lab["hyper_events"] >= 0
        checked += 1
    assert checked >= 3


def test_tfds_features_carry_class_names_and_units(local_run):
    info = tfds.builder_from_directory(local_run.version_dir).info
    labels = info.features["labels"]
    side = json.loads((Path(local_run.version_dir) / "sensorpipe.json").read_text())
    assert side["label_schema_version"] == LABEL_SCHEMA_VERSION
    for spec in LABELS:
        feature = labels[spec.name]
        if spec.kind == "class":
            assert isinstance(feature, tfds.features.ClassLabel)
            assert list(feature.names) == list(spec.names)
        elif spec.kind == "float":
            assert spec.unit and feature.doc.value_range == spec.unit, spec.name
            assert spec.doc in feature.doc.desc
            assert labels[f"has_{spec.name}"].dtype == np.bool_
        else:
            assert feature.shape == (1440,) and "0 awake" in feature.doc.desc
