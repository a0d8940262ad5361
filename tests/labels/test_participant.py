"""Participant-level labels from participants-table cells: values, missing cells, and errors that say the fix."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.core.labels import BY_NAME
from sensorpipe.labels.base import labels_for_windows
from sensorpipe.sources.base import SourceError
from tests.labels._channels import channel_batch, unit


def _minute(iso: str) -> int:
    return int(np.datetime64(iso, "m").astype(np.int64))


def _labels(attributes: dict[str, str], starts: tuple[str, ...] = ("2024-03-08T00:00",), offset_min: int = 0):
    ref = unit(attributes, participants="study/participants.csv", pid="p07")
    batch = channel_batch({"heart_rate": np.full((len(starts), 60), 60.0)}, [_minute(s) for s in starts],
                          offset_min, ref)
    return labels_for_windows(batch)


def _code(label: str, name: str) -> int:
    return BY_NAME[label].names.index(name)


def test_demographics_codes():
    lab = _labels({"age": "42", "sex": "F", "weight_kg": "70", "height_cm": "175", "diabetes_status": "T2D"})
    assert lab["age_band"].tolist() == [_code("age_band", "40-49")]
    assert lab["sex"].tolist() == [_code("sex", "female")]
    assert lab["bmi"][0] == pytest.approx(70 / 1.75**2, rel=1e-6)          # 22.857 kg/m^2
    assert lab["diabetes_status"].tolist() == [_code("diabetes_status", "type2")]
    assert _labels({"age": "15"})["age_band"].tolist() == [_code("age_band", "0-17")]
    assert _labels({"age_band": "25-29"})["age_band"].tolist() == [_code("age_band", "18-29")]
    assert _labels({"age_band": "80+"})["age_band"].tolist() == [_code("age_band", "70+")]
    assert _labels({"age": "", "age_band": "60-69"})["age_band"].tolist() == [_code("age_band", "60-69")]
    # a bmi column wins over weight and height
    assert _labels({"bmi": "31.2", "weight_kg": "70", "height_cm": "175"})["bmi"][0] == pytest.approx(31.2)


def test_unknown_cells_are_missing_not_guessed():
    lab = _labels({"age": "", "sex": "unknown", "bmi": "NA", "weight_kg": "80", "diabetes_status": "",
                   "due_date": ""})
    assert lab["age_band"].tolist() == [-1] and lab["sex"].tolist() == [-1]
    assert np.isnan(lab["bmi"]).all()                 # weight without height: no BMI
    assert lab["diabetes_status"].tolist() == [-1] and np.isnan(lab["pregnancy_week"]).all()
    assert _labels({"sex": "other"})["sex"].tolist() == [-1]   # recorded, but not a class of the schema


@pytest.mark.parametrize(("attributes", "column", "fix"), [
    ({"weight_kg": "70kg", "height_cm": "175"}, "weight_kg", "kilograms"),
    ({"height_cm": "1.75", "weight_kg": "70"}, "height_cm", "centimetres"),
    ({"bmi": "245"}, "bmi", "kg/m^2"),
    ({"age": "forty"}, "age", "whole years"),
    ({"age_band": "25-34"}, "age_band", "inside one of"),
    ({"sex": "maybe"}, "sex", "female/male"),
    ({"diabetes_status": "typ 2"}, "diabetes_status", "type2"),
    ({"due_date": "01/09/2024"}, "due_date", "YYYY-MM-DD"),
    ({"symptom_onset_date": "2024-3-7x"}, "symptom_onset_date", "YYYY-MM-DD"),
])
def test_bad_cells_name_file_participant_column_and_fix(attributes, column, fix):
    with pytest.raises(SourceError) as err:
        _labels(attributes)
    msg = str(err.value)
    assert "/data/study/participants.csv" in msg and "'p07'" in msg and f"column {column!r}" in msg
    assert fix in msg


def test_pregnancy_week_at_the_local_date():
    # LMP 2023-11-26: due 2024-09-01 (+280 d), conceived about 2023-12-10 (+14 d)
    starts = ("2023-11-20T00:00", "2024-03-08T00:00", "2024-03-09T23:30", "2024-09-05T00:00")
    expected = [np.nan, 14.0, 15.0, 40.0]   # before the LMP: missing; 103 d -> 14; local 2024-03-10 = 105 d -> 15
    for column, day in (("lmp_date", "2023-11-26"), ("conception_date", "2023-12-10"), ("due_date", "2024-09-01")):
        got = _labels({column: day}, starts, offset_min=60)["pregnancy_week"]
        np.testing.assert_array_equal(got, np.array(expected, np.float32), err_msg=column)
    utc = _labels({"due_date": "2024-09-01"}, ("2024-03-09T23:30",), offset_min=0)["pregnancy_week"]
    assert utc.tolist() == [14.0]                   # same instant, UTC date 2024-03-09
    delivered = _labels({"due_date": "2024-09-01", "delivery_date": "2024-08-20"}, starts, 60)["pregnancy_week"]
    assert np.isnan(delivered[3]) and delivered[1] == 14.0
    assert np.isnan(_labels({"due_date": "2023-09-01"}, ("2024-09-05T00:00",))["pregnancy_week"]).all()  # > 44 w


def test_days_since_symptom_onset_counts_local_days():
    lab = _labels({"symptom_onset_date": "2024-03-07"}, ("2024-03-05T00:00", "2024-03-09T23:30"), offset_min=60)
    assert lab["days_since_symptom_onset"].tolist() == [-2.0, 3.0]


def test_a_bad_cell_stops_the_pipeline_with_file_participant_and_column(copied_sources, base_config):
    import copy

    from sensorpipe.runners.driver import run_pipeline
    from tests.conftest import write_config

    table = copied_sources / "covid_cohort" / "participants.csv"
    lines = table.read_text().splitlines()
    head = lines[0].split(",")
    row = lines[1].split(",")
    row[head.index("bmi")] = "28.5kg"
    table.write_text("\n".join([lines[0], ",".join(row), *lines[2:]]) + "\n")
    cfg = copy.deepcopy(base_config)
    cfg["sources"] = [s for s in cfg["sources"] if s["name"] == "covid_cohort"]
    with pytest.raises(SourceError) as err:
        run_pipeline(str(write_config(copied_sources, cfg, "bad_bmi.yaml")), runner="local")
    msg = str(err.value)
    assert str(table) in msg and f"participant {row[0]!r}" in msg and "column 'bmi'" in msg and "kg/m^2" in msg
