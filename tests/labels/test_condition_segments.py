"""The shared majority-of-labelled-time rule and the segments.csv condition processor of the synthetic lab study."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.config import SourceConfig
from sensorpipe.core.labels import BY_NAME, LabelEvent
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.labels.base import events_for_windows, labels_for_windows
from sensorpipe.labels.intervals import majority_class, minute_events
from sensorpipe.labels.processors import ConditionSegments
from sensorpipe.sources.base import SourceError
from tests.labels._batch import batch, minute

NAMES = BY_NAME["condition"].names


def test_majority_class_counts_overlap_per_class_and_breaks_ties_by_schema_order():
    segs = [(0, 20, "baseline"), (20, 30, "stress"), (30, 50, "recovery"), (55, 60, "stress"), (60, 65, "stress")]
    starts = np.array([-10, 0, 15, 25, 40, 50, 70])
    got = majority_class(segs, NAMES, starts, 10)
    # [-10,0): none; [0,10): baseline; [15,25): baseline 5 = stress 5 -> baseline; [25,35): stress 5 = recovery 5
    # -> stress; [40,50): recovery; [50,60): stress 5 (gap 50-55 unlabelled); [70,80): none
    assert [NAMES[c] if c >= 0 else None for c in got] == [None, "baseline", "baseline", "stress", "recovery",
                                                          "stress", None]
    # two stress segments add up: 10 min of stress beat 9 of recovery
    assert NAMES[majority_class([(0, 9, "recovery"), (10, 15, "stress"), (15, 20, "stress")], NAMES,
                                np.array([0]), 20)[0]] == "stress"
    with pytest.raises(ValueError):
        majority_class([(0, 5, "sleepy")], NAMES, np.array([0]), 5)


def test_minute_events_cover_touched_minutes_and_drop_empty_intervals():
    m = 60_000_000_000
    assert minute_events([(5 * m + 1, 7 * m, "stress"), (8 * m, 8 * m, "baseline"), (9 * m, 9 * m + 1, "recovery")],
                         "condition") == [LabelEvent(5, 7, "condition", "stress"),
                                          LabelEvent(9, 10, "condition", "recovery")]


def _unit(tmp_path, pid="p1") -> UnitRef:
    (tmp_path / "lab").mkdir(exist_ok=True)
    (tmp_path / "lab" / "segments.csv").write_text(
        "participant_id,start_utc,end_utc,condition\n"
        "p1,2024-03-08T10:00:00Z,2024-03-08T10:20:00Z,baseline\n"
        "p1,2024-03-08T10:20:00Z,2024-03-08T10:30:00Z,stress\n"
        "p1,2024-03-08T10:30:00Z,2024-03-08T10:50:00Z,recovery\n"
        "p2,2024-03-08T11:00:00Z,2024-03-08T11:20:00Z,stress\n")
    src = SourceConfig(name="lab", adapter="empatica_e4", path="lab", options={"segments": "segments.csv"})
    return UnitRef(src, str(tmp_path), Participant(pid, "UTC"), ())


def test_segments_give_window_labels_events_clipped_to_windows_and_minus_one_elsewhere(tmp_path):
    unit = _unit(tmp_path)
    t = minute("2024-03-08T10:00")
    b = batch(unit, ["2024-03-08T09:30", "2024-03-08T10:15", "2024-03-08T10:25", "2024-03-08T11:00"], 15)
    assert [NAMES[c] if c >= 0 else None for c in labels_for_windows(b)["condition"]] == [
        None, "stress", "recovery", None]                     # 10:25-10:40: stress 5 min, recovery 10 min
    assert events_for_windows(b) == [
        [],
        [LabelEvent(t + 15, t + 20, "condition", "baseline"), LabelEvent(t + 20, t + 30, "condition", "stress")],
        [LabelEvent(t + 25, t + 30, "condition", "stress"), LabelEvent(t + 30, t + 40, "condition", "recovery")],
        []]
    assert ConditionSegments().events(unit).tolist() == [t, t + 20, t + 30]
    p2 = _unit(tmp_path, "p2")
    assert labels_for_windows(batch(p2, ["2024-03-08T10:15"], 15))["condition"].tolist() == [-1]


def test_bad_segment_rows_name_the_line(tmp_path):
    unit = _unit(tmp_path)
    (tmp_path / "lab" / "segments.csv").write_text("participant_id,start_utc,end_utc,condition\n"
                                                   "p1,2024-03-08T10:00:00Z,2024-03-08T10:20:00Z,panic\n")
    with pytest.raises(SourceError, match=r"segments.csv, line 2: condition 'panic' is not one of baseline"):
        ConditionSegments().label_events(unit)
