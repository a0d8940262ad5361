"""The exercise log is parsed once per process and file content, grouped by participant; errors unchanged."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from sensorpipe.labels import activity
from sensorpipe.labels.activity import read_activity_log
from sensorpipe.sources.base import SourceError

HEADER = "participant_id,start,end,type\n"


def _ns(iso: str) -> int:
    return int(np.datetime64(iso, "ns").astype(np.int64))


def test_log_is_parsed_once_for_all_participants(tmp_path, monkeypatch):
    f = tmp_path / "log.csv"
    f.write_text(HEADER + "p1,2024-03-09T10:00:00Z,2024-03-09T11:00:00Z,Run\n"
                 " p2 ,2024-03-09T12:00:00Z,2024-03-09T12:30:00Z,walking\n"
                 "p1,2024-03-09T08:00:00Z,2024-03-09T09:00:00Z,Tennis\n")
    parses, reader = [], csv.DictReader
    monkeypatch.setattr(activity.csv, "DictReader", lambda *a, **k: parses.append(1) or reader(*a, **k))
    assert read_activity_log(f, "p1", "UTC") == [(_ns("2024-03-09T08:00"), _ns("2024-03-09T09:00"), "racket_sports"),
                                                 (_ns("2024-03-09T10:00"), _ns("2024-03-09T11:00"), "running")]
    assert read_activity_log(f, "p2", "UTC") == [(_ns("2024-03-09T12:00"), _ns("2024-03-09T12:30"), "walking")]
    assert read_activity_log(f, "p3", "UTC") == []
    assert len(parses) == 1


def test_a_rewritten_log_is_read_again_even_with_the_same_size_and_mtime(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text(HEADER + "p1,2024-03-09T10:00:00Z,2024-03-09T11:00:00Z,Run\n")
    st = os.stat(f)
    assert read_activity_log(f, "p1", "UTC")[0][2] == "running"
    f.write_text(HEADER + "p1,2024-03-09T10:00:00Z,2024-03-09T11:00:00Z,Hik\n")   # same size
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))                              # same modification time
    assert read_activity_log(f, "p1", "UTC")[0][2] == "walking"


def test_another_participants_bad_row_fails_only_that_participant(tmp_path):
    f = tmp_path / "log.csv"
    f.write_text(HEADER + "p1,2024-03-09T10:00:00Z,2024-03-09T11:00:00Z,Run\n"
                 "p2,2024-03-09T12:00:00Z,2024-03-09T11:00:00Z,walking\n"
                 "p2,soon,2024-03-09T11:00:00Z,walking\n")
    assert len(read_activity_log(f, "p1", "UTC")) == 1
    with pytest.raises(SourceError, match=r"log.csv, line 3: end '2024-03-09T11:00:00Z' is not after start"):
        read_activity_log(f, "p2", "UTC")
    with pytest.raises(SourceError, match=r"log.csv, line 3: end"):   # again: the error is not cached away
        read_activity_log(f, "p2", "UTC")
    f.write_text("participant_id,begin,end,type\n")
    with pytest.raises(SourceError, match="log.csv: needs columns participant_id, start, end, type; missing start"):
        read_activity_log(f, "p1", "UTC")
