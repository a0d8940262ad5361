"""The fast decoder returns exactly what TFDS's own decode returns, for every field of every record."""

from __future__ import annotations

import numpy as np

import sensorpipe
from sensorpipe.access.decode import FastDecoder


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)  # same key order
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=True) and a.flags.writeable == b.flags.writeable)
    return type(a) is type(b) and (a == b or (a != a and b != b))


def test_fast_decoder_equals_tfds_for_every_record(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    decoder = FastDecoder(ds.features)
    n = 0
    for split in ds.splits.values():
        for i in range(len(split)):
            record = split.raw(i)
            assert _same(decoder(record), ds.features.deserialize_example_np(record)), (split.name, i)
            n += 1
    assert n == sum(local_run.split_sizes.values())


def test_decoder_survives_pickling_and_falls_back_for_unplanned_layouts(local_run):
    import pickle

    import tensorflow_datasets as tfds

    ds = sensorpipe.open(local_run.output_dir)
    record = ds["train"].raw(0)
    decoder = pickle.loads(pickle.dumps(FastDecoder(ds.features)))  # workers re-plan from the features
    assert _same(decoder(record), ds.features.deserialize_example_np(record))
    ragged = tfds.features.FeaturesDict({"x": tfds.features.Tensor(shape=(None,), dtype=np.float32,
                                                                   encoding=tfds.features.Encoding.BYTES)})
    blob = ragged.serialize_example({"x": np.arange(3, dtype=np.float32)})
    got = FastDecoder(ragged)(blob)  # no static shape: TFDS's own decode
    np.testing.assert_array_equal(got["x"], np.arange(3, dtype=np.float32))
