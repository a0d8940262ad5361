"""Activity labels and events from the BasicMotions case labels (real files, tests/data/basicmotions).

BasicMotions_TRAIN.ts laid out from 2018-01-01 00:00 UTC: standing 00:00-00:01:40,
running 00:02-00:03:40, walking 00:04-00:05:40, badminton (racket_sports)
00:06-00:07:40; nothing after 00:08.
"""

from __future__ import annotations

from pathlib import Path

from sensorpipe.config import SourceConfig
from sensorpipe.core.labels import BY_NAME, LabelEvent
from sensorpipe.labels.activity import BasicMotionsActivity
from sensorpipe.labels.base import events_for_windows, labels_for_windows
from sensorpipe.sources.base import make_adapter
from tests.labels._batch import batch, minute

DATA = Path(__file__).resolve().parents[1] / "data" / "basicmotions"
NAMES = BY_NAME["activity"].names
T0 = minute("2018-01-01T00:00")


def train_unit():
    a = make_adapter(SourceConfig("bm", "basicmotions", str(DATA)), str(DATA))
    return {u.participant.participant_id: u for u in a.list_units()}["BasicMotions_TRAIN"]


def names(codes) -> list:
    return [NAMES[c] if c >= 0 else None for c in codes]


def test_one_minute_windows_get_their_case_label_and_empty_minutes_minus_one():
    unit = train_unit()
    b = batch(unit, [f"2018-01-01T00:{m:02d}" for m in range(10)], 1)
    got = labels_for_windows(b)["activity"]
    assert names(got) == ["standing", "standing", "running", "running", "walking", "walking", "racket_sports",
                          "racket_sports", None, None]
    assert BasicMotionsActivity().window_labels(b)["activity"].tolist() == got.tolist()


def test_longer_windows_take_the_activity_with_most_labelled_time():
    unit = train_unit()
    # 00:01-00:04: standing 40 s, running 100 s; 00:05-00:07: walking 40 s, racket 60 s; 00:07-00:12: racket 40 s
    b = batch(unit, ["2018-01-01T00:01", "2018-01-01T00:05", "2018-01-01T00:07", "2017-12-31T23:50"], 3)
    assert names(labels_for_windows(b)["activity"]) == ["running", "racket_sports", "racket_sports", None]


def test_activity_events_cover_each_run_and_are_clipped_to_windows():
    unit = train_unit()
    assert BasicMotionsActivity().label_events(unit) == [
        LabelEvent(T0 + 2 * k, T0 + 2 * k + 2, "activity", n)
        for k, n in enumerate(["standing", "running", "walking", "racket_sports"])]
    ev = events_for_windows(batch(unit, ["2018-01-01T00:01", "2018-01-01T00:07", "2018-01-01T00:08"], 2))
    assert ev == [[LabelEvent(T0 + 1, T0 + 2, "activity", "standing"), LabelEvent(T0 + 2, T0 + 3, "activity", "running")],
                  [LabelEvent(T0 + 7, T0 + 8, "activity", "racket_sports")],
                  []]
