"""Activity from the sport of real Garmin files (sweat 0.25.0 examples, tests/data/garmin).

The Edge 1000 ride of 2020-06-01 (FIT ``cycling``, TCX ``Biking``, GPX
``cycling``) runs 14:52:40-14:54:46 UTC; the Forerunner 935 multisport file
of 2021-03-22 is running 10:48:16-10:48:39, a transition, then rowing
10:48:52-10:49:15.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sensorpipe.config import SourceConfig
from sensorpipe.core.labels import BY_NAME, LabelEvent
from sensorpipe.labels.activity import GarminSport, activity_of
from sensorpipe.labels.base import events_for_windows, labels_for_windows
from sensorpipe.sources.base import make_adapter
from tests.labels._batch import batch, minute

DATA = Path(__file__).resolve().parents[1] / "data" / "garmin"
NAMES = BY_NAME["activity"].names


def unit_of(tmp_path: Path, name: str):
    root = tmp_path / name.replace(".", "_")
    root.mkdir()
    shutil.copy(DATA / name, root / name)
    (unit,) = make_adapter(SourceConfig("g", "garmin_activity", str(root), options={"tz": "UTC"}),
                           str(root)).list_units()
    return unit


@pytest.mark.parametrize("name", ["2020-06-01-16-52-40.fit", "activity_5039744860.tcx", "activity_5039744860.gpx"])
def test_the_ride_is_cycling_in_every_format(tmp_path, name):
    unit = unit_of(tmp_path, name)
    b = batch(unit, ["2020-06-01T14:51", "2020-06-01T14:52", "2020-06-01T14:54", "2020-06-01T14:55"], 1)
    assert [NAMES[c] if c >= 0 else None for c in labels_for_windows(b)["activity"]] == [
        None, "cycling", "cycling", None]
    t = minute("2020-06-01T14:52")
    assert GarminSport().label_events(unit) == [LabelEvent(t, t + 3, "activity", "cycling")]
    assert events_for_windows(batch(unit, ["2020-06-01T14:54"], 60)) == [[LabelEvent(t + 2, t + 3, "activity",
                                                                                     "cycling")]]


def test_multisport_file_gives_running_then_rowing_and_no_transition(tmp_path):
    unit = unit_of(tmp_path, "6471559601_ACTIVITY.fit")
    t = minute("2021-03-22T10:48")
    assert GarminSport().label_events(unit) == [LabelEvent(t, t + 1, "activity", "running"),
                                               LabelEvent(t, t + 2, "activity", "other_exercise")]
    # minute 10:48: running 24 s, rowing 8 s; 10:49: rowing 16 s
    got = labels_for_windows(batch(unit, ["2021-03-22T10:48", "2021-03-22T10:49"], 1))["activity"]
    assert [NAMES[c] for c in got] == ["running", "other_exercise"]


def test_native_sport_names_map_to_activity_classes():
    assert [activity_of(n) for n in ("cycling", "Biking", "Running", "trail_running", "walking", "hiking",
                                     "lap_swimming", "tennis", "Badminton", "strength_training", "Weights",
                                     "rowing", "Other", "transition", "", "standing")] == [
        "cycling", "cycling", "running", "running", "walking", "walking", "swimming", "racket_sports",
        "racket_sports", "strength_training", "strength_training", "other_exercise", "other_exercise", None, None,
        "standing"]
