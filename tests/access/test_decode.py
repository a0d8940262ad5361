"""The fast decoder returns exactly what TFDS's own decode returns, for every field of every record."""

from __future__ import annotations

import numpy as np

import sensorpipe
from sensorpipe.access.decode import FastDecoder


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
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
