"""Window lineage (source files and row ranges per window) against a direct per-window recomputation."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.core.observations import Observations
from sensorpipe.runners.stages import _lineage, window_key


def _direct(obs: Observations, starts: np.ndarray, W: int) -> list[dict]:
    minute = obs.t_utc_ns // MINUTE_NS
    out = []
    for s in starts.tolist():
        files = {}
        for f, name in enumerate(obs.files):
            rows = obs.source_row[(minute >= s) & (minute < s + W) & (obs.file_index == f)]
            if rows.size:
                files[name] = [int(rows.min()), int(rows.max())]
        out.append({"key": window_key("src", "pid", s), "files": files})
    return out


@pytest.mark.parametrize("layout", ["sorted_runs", "shuffled"])
@pytest.mark.parametrize("stride", [1440, 1380, 600])  # 1380: a 23-hour local day overlaps the next window
def test_lineage_matches_direct_recomputation(layout, stride):
    rng = np.random.default_rng(stride)
    n, n_files, W = 5000, 3, 1440
    t = rng.integers(0, 6 * 1440, n) * MINUTE_NS + rng.integers(0, MINUTE_NS, n)
    f = rng.integers(0, n_files, n).astype(np.int32)
    rows = np.arange(n, dtype=np.int64) + 2
    if layout == "sorted_runs":  # per file, time and row increasing: the usual order after validation
        o = np.lexsort((t, f))
        t, f = t[o], f[o]
    else:
        rows = rng.permutation(rows)
    obs = Observations(np.zeros(n, np.int16), t, np.zeros(n), f, rows, [f"f{i}.csv" for i in range(n_files)],
                       np.arange(n))
    starts = np.arange(0, 5 * 1440, stride, dtype=np.int64)
    starts = np.delete(starts, 2)  # a dropped window
    got = _lineage(obs, 0, starts, W, "src", "pid")
    assert got == _direct(obs, starts, W)
    assert [list(w["files"]) for w in got] == [list(w["files"]) for w in _direct(obs, starts, W)]  # file order too
    assert sum(bool(w["files"]) for w in got) == len(starts)


def test_lineage_of_no_rows_or_no_windows():
    obs = Observations.empty()
    assert _lineage(obs, 0, np.array([0], np.int64), 1440, "s", "p") == []
    one = Observations(np.zeros(1, np.int16), np.array([5 * MINUTE_NS]), np.zeros(1), np.zeros(1, np.int32),
                       np.array([9]), ["a.csv"], np.zeros(1, np.int64))
    assert _lineage(one, 0, np.zeros(0, np.int64), 1440, "s", "p") == []
    assert _lineage(one, 0, np.array([0, 1440], np.int64), 1440, "s", "p")[0]["files"] == {"a.csv": [9, 9]}
    assert _lineage(one, 0, np.array([0, 1440], np.int64), 1440, "s", "p")[1]["files"] == {}
