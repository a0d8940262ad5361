"""The per-unit array cache between the passes gives back exactly what was saved."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.storage.writer import load_arrays, save_arrays


def test_arrays_round_trip_with_names_dtypes_and_shapes(tmp_path):
    arrays = {"values": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "observed": np.eye(3, dtype=bool),
              "start_utc_min": np.array([5, 7], np.int64), "event_kind": np.array(["sleep", "workout"]),
              "empty": np.zeros((0, 1440), np.int16), "scalar": np.float32(2.5)}
    path = str(tmp_path / "u.arrays")
    save_arrays(path, arrays)
    back = load_arrays(path)
    assert list(back) == list(arrays)
    for k, a in arrays.items():
        a = np.asanyarray(a)
        assert back[k].dtype == a.dtype and back[k].shape == a.shape and np.array_equal(back[k], a)
    assert not (tmp_path / "u.arrays.tmp").exists()


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(ValueError):
        save_arrays(str(tmp_path / "o.arrays"), {"x": np.array([{"a": 1}], dtype=object)})
