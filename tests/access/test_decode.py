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
                and np.array_equal(a, b, equal_nan=True) and a.flags.writeable == b.flags.writeable
                and a.flags.aligned)
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
    assert decoder._wire is not None and decoder._misses == 0  # every record took the wire path


def test_records_laid_out_otherwise_take_the_exact_path(local_run):
    """A record the wire plan does not expect (here: an unpacked float list) decodes exactly all the same."""
    from tensorflow_datasets.proto import tf_example_pb2

    from sensorpipe.access.decode import _raw_example_class

    ds = sensorpipe.open(local_run.output_dir)
    record = ds["train"].raw(0)
    example = tf_example_pb2.Example.FromString(record)
    key = next(k for k, f in example.features.feature.items()
               if f.WhichOneof("kind") == "float_list" and f.float_list.value[0] == f.float_list.value[0])  # not NaN
    value = example.features.feature[key].float_list.value[0]
    raw = _raw_example_class().FromString(record)  # feature name -> Feature bytes, kept as written
    # field 2 (float_list) holding FloatList{value: one unpacked fixed32}: valid protobuf, not what TFDS writes
    raw.features.feature[key] = b"\x12\x05\x0d" + np.float32(value).tobytes()
    other = raw.SerializeToString()
    assert tf_example_pb2.Example.FromString(other).features.feature[key].float_list.value[0] == value
    decoder = FastDecoder(ds.features)
    assert _same(decoder(other), ds.features.deserialize_example_np(other))
    assert decoder._misses == 1 and decoder._wire is not None
    assert _same(decoder(record), ds.features.deserialize_example_np(record)) and decoder._misses == 1


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


def test_wire_path_copies_payloads_a_view_would_misalign():
    """A float32 tensor of 400 bytes sits behind a 6-byte header: the wire path copies it (aligned) instead
    of viewing it, and still returns what TFDS returns."""
    import tensorflow_datasets as tfds

    features = tfds.features.FeaturesDict({
        "x": tfds.features.Tensor(shape=(100,), dtype=np.float32, encoding=tfds.features.Encoding.BYTES),
        "n": tfds.features.Scalar(dtype=np.int64), "t": tfds.features.Text(),
        "flag": tfds.features.Scalar(dtype=np.bool_), "f": tfds.features.Scalar(dtype=np.float32)})
    decoder = FastDecoder(features)
    for n in (-1, 0, 5, 2**40):
        record = features.serialize_example({"x": np.linspace(-1, 1, 100, dtype=np.float32), "n": n,
                                             "t": "é" * 70, "flag": n > 0, "f": 0.25 * n})
        got = decoder(record)
        assert _same(got, features.deserialize_example_np(record)) and got["n"] == n
    assert decoder._wire is not None and decoder._misses == 0
