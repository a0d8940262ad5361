"""The per-unit array cache between the passes gives back exactly what was saved."""

from __future__ import annotations

import numpy as np
import pytest

from sensorpipe.core.arrays import load_arrays, save_arrays


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


def test_loaded_arrays_are_writable_aligned_c_order_views(tmp_path):
    fortran = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4))
    path = str(tmp_path / "f.arrays")
    save_arrays(path, {"f": fortran, "flags": np.array([True, False, True]), "odd": np.arange(3, dtype=np.int8),
                       "after_odd": np.array([1.5, np.nan], np.float64)})
    back = load_arrays(path)
    assert np.array_equal(back["f"], fortran) and back["f"].flags.c_contiguous
    assert np.array_equal(back["after_odd"], [1.5, np.nan], equal_nan=True)
    for a in back.values():
        assert a.flags.writeable and a.flags.aligned
    back["flags"][0] = False                              # the cache's arrays may be changed in place
    assert back["flags"].tolist() == [False, False, True]


def test_a_truncated_or_foreign_cache_file_names_the_fix(tmp_path):
    path = tmp_path / "t.arrays"
    save_arrays(str(path), {"x": np.arange(10.0)})
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match=r"t.arrays ends before array 'x' its index says is there .* delete it"):
        load_arrays(str(path))
    np.save(tmp_path / "n.npy", np.arange(3))
    with pytest.raises(ValueError, match=r"n.npy is not a complete sensorpipe array cache; delete it"):
        load_arrays(str(tmp_path / "n.npy"))
