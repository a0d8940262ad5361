"""A unit's files are parsed once per process: the read stores what the label processors need too."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sensorpipe.core.labels import BY_NAME
from sensorpipe.labels.activity import GarminSport
from sensorpipe.labels.base import labels_for_windows
from sensorpipe.labels.conditions import WesadCondition
from sensorpipe.sources import wesad
from sensorpipe.sources.garmin import activity as garmin_activity
from sensorpipe.sources._toolkit.memo import Memo, file_versions
from sensorpipe.sources.base import make_adapter
from tests.labels._batch import batch
from tests.labels.test_activity_garmin import NAMES, unit_of
from tests.sources.test_wesad import adapter, generated


def test_memo_keeps_recent_values_and_a_changed_file_misses(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("one")
    memo, calls = Memo(2), []
    key = file_versions([f])
    assert memo.get(key, lambda: calls.append(1) or "v1") == "v1"
    assert memo.get(key, lambda: calls.append(1) or "other") == "v1" and calls == [1]
    f.write_text("three")                                  # another size (and time): another key
    os.utime(f, ns=(1, 1))
    assert file_versions([f]) != key and memo.get(file_versions([f]), lambda: "v2") == "v2"
    memo.put("x", 1)                                       # two entries kept: the oldest goes
    assert key not in memo and "x" in memo and file_versions([f]) in memo


def test_garmin_files_are_parsed_once_for_the_read_and_the_sport_labels(tmp_path, monkeypatch):
    unit = unit_of(tmp_path, "6471559601_ACTIVITY.fit")
    parsed = []
    real = garmin_activity.READERS[".fit"]
    monkeypatch.setitem(garmin_activity.READERS, ".fit", lambda p: parsed.append(p) or real(p))
    make_adapter(unit.source, unit.base_dir).read_unit(unit)
    b = batch(unit, ["2021-03-22T10:48", "2021-03-22T10:49"], 1)
    assert [NAMES[c] for c in labels_for_windows(b)["activity"]] == ["running", "other_exercise"]  # rowing
    assert GarminSport().label_events(unit)
    assert parsed == [Path(unit.files[0])]
    # a changed file is parsed again
    shutil.copy(unit.files[0], Path(unit.files[0]).with_suffix(".tmp"))
    os.replace(Path(unit.files[0]).with_suffix(".tmp"), unit.files[0])
    os.utime(unit.files[0], ns=(10**18, 10**18))
    garmin_activity.file_sport_bouts(Path(unit.files[0]))
    assert len(parsed) == 2


def test_a_wesad_subject_is_unpickled_once_for_the_read_and_the_condition_labels(monkeypatch):
    loads = []
    real = wesad.load_subject
    monkeypatch.setattr(wesad, "load_subject", lambda *a: loads.append(a[0]) or real(*a))
    a = adapter(generated())
    (unit,) = a.list_units()
    wesad._SEGMENTS._values.clear()       # this process may have read the subject in another test
    a.read_unit(unit)
    got = WesadCondition().window_labels(batch(unit, ["2017-05-22T09:11"], 1))["condition"].tolist()
    events = WesadCondition().label_events(unit)
    assert len(loads) == 1 and got == [BY_NAME["condition"].names.index("baseline")] and len(events) == 4  # 20 s each: the first
