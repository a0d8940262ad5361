"""WESAD condition labels per window and condition events, checked against the subject's 700-Hz label stream.

The subject is the real-format S2.pkl the WESAD adapter tests use (70 s from
2017-05-22 09:11:00 UTC; labels 0 for 0-5 s, baseline 5-25, 0 25-28, stress
28-48, 7 48-53, amusement 53-63, meditation 63-70). Expected labels are
counted here directly from the label array (samples per condition id), not
from the segments the processor uses.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from sensorpipe.core.labels import BY_NAME, LabelEvent
from sensorpipe.labels.base import events_for_windows, labels_for_windows, processors_for
from sensorpipe.labels.conditions import WesadCondition
from sensorpipe.sources.wesad import CONDITIONS
from tests.labels._batch import batch, minute
from tests.sources.test_wesad import MK, adapter, generated

NAMES = BY_NAME["condition"].names
T0 = minute("2017-05-22T09:11")


def expected_from_stream(label: np.ndarray, starts: list[int], size_min: int) -> list[int]:
    """Majority condition per window by counting 700-Hz samples of each id (ties: first in the schema)."""
    out = []
    for s in starts:
        lo, hi = max((s - T0) * 60 * 700, 0), max((s + size_min - T0) * 60 * 700, 0)
        part = label[lo:hi]
        counts = [int((part == k).sum()) if k is not None else 0
                  for k in ({v: k for k, v in CONDITIONS.items()}.get(n) for n in NAMES)]
        out.append(int(np.argmax(counts)) if sum(counts) else -1)
    return out


WINDOWS = [("2017-05-22T09:10", 1), ("2017-05-22T09:11", 1), ("2017-05-22T09:12", 1), ("2017-05-22T09:13", 1),
           ("2017-05-22T09:10", 3), ("2017-05-22T09:12", 2)]


def _labels(root, windows):
    a = adapter(root)
    (unit,) = a.list_units()
    out = []
    for start, size in windows:  # one batch per window size
        out.append(int(WesadCondition().window_labels(batch(unit, [start], size))["condition"][0]))
    return out


def test_condition_per_window_matches_the_label_stream():
    label = MK.subject()["label"]
    got = _labels(generated(), WINDOWS)
    want = [expected_from_stream(label, [minute(s)], n)[0] for s, n in WINDOWS]
    assert got == want
    # spelled out: no labelled sample before 09:11 or after 09:12:10; 09:11 ties baseline and stress (20 s each,
    # the schema's first wins); 09:12 holds amusement 3 s and meditation 7 s
    assert [NAMES[c] if c >= 0 else None for c in got] == [None, "baseline", "meditation", None, "baseline",
                                                          "meditation"]


def test_longest_condition_wins_after_the_stream_changes(tmp_path):
    """Relabel the ignored 48-53 s run (id 7) as stress: stress now covers 25 s of minute 09:11."""
    root = tmp_path / "wesad"
    shutil.copytree(generated(), root, ignore=shutil.ignore_patterns("*.pkl"))
    obj = MK.subject()
    obj["label"][48 * 700:53 * 700] = 2
    (root / "S2" / "S2.pkl").write_bytes(MK.py2_pickle(obj))
    got = _labels(root, WINDOWS)
    assert got == [expected_from_stream(obj["label"], [minute(s)], n)[0] for s, n in WINDOWS]
    assert NAMES[got[1]] == "stress"


def test_condition_events_cover_the_minutes_they_touch_and_are_clipped_to_windows():
    a = adapter(generated())
    (unit,) = a.list_units()
    assert [p.name for p in processors_for(unit) if "condition" in p.produces] == ["wesad_condition"]
    assert WesadCondition().label_events(unit) == [
        LabelEvent(T0, T0 + 1, "condition", "baseline"), LabelEvent(T0, T0 + 1, "condition", "stress"),
        LabelEvent(T0, T0 + 2, "condition", "amusement"), LabelEvent(T0 + 1, T0 + 2, "condition", "meditation")]
    b = batch(unit, ["2017-05-22T09:10", "2017-05-22T09:12", "2017-05-22T09:13"], 1)
    ev = events_for_windows(b)
    assert ev[0] == [] and ev[2] == []
    assert ev[1] == [LabelEvent(T0 + 1, T0 + 2, "condition", "amusement"),
                     LabelEvent(T0 + 1, T0 + 2, "condition", "meditation")]
    labels = labels_for_windows(b)
    assert labels["condition"].tolist() == [-1, NAMES.index("meditation"), -1]   # missing is explicit -1
    assert WesadCondition().events(unit).tolist() == [T0, T0, T0, T0 + 1]


@pytest.mark.parametrize("prefer", ["chest", "wrist"])
def test_other_adapters_get_no_wesad_condition(prefer):
    a = adapter(generated(), prefer=prefer)
    (unit,) = a.list_units()
    assert WesadCondition().applies(unit)
    other = type(unit)(source=type(unit.source)("e4", "empatica_e4", "x"), base_dir=".", participant=unit.participant,
                       files=unit.files)
    assert not WesadCondition().applies(other)
