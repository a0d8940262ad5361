"""TensorFlow access: TFDS ``as_data_source``/``as_dataset`` and the ArrayRecord tf.data fallback match open().

Whole examples are compared generically (every field, nested labels
included, whatever the label and caption schema holds), so new fields are
covered without listing them here.
"""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow not installed: pip install sensorpipe[tf]")

import tensorflow_datasets as tfds  # noqa: E402

import sensorpipe  # noqa: E402
from sensorpipe.access.tfdata import to_tf_dataset  # noqa: E402


def _same(got, want, where: str = "") -> None:
    """``got`` (numpy, from TensorFlow or TFDS) equals ``want`` (from open()): keys, dtypes, shapes, values."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (where, sorted(set(got) ^ set(want)))
        for k in want:
            _same(got[k], want[k], f"{where}/{k}")
    elif isinstance(want, np.ndarray):
        assert isinstance(got, np.ndarray) and got.dtype == want.dtype and got.shape == want.shape, where
        assert np.array_equal(got, want, equal_nan=want.dtype.kind == "f"), where
    elif isinstance(want, str):   # open() gives text as str; TFDS and tf.data keep the UTF-8 bytes on disk
        assert isinstance(got, bytes) and got.decode("utf-8") == want, where
    else:  # a Python scalar from open(); TensorFlow gives the numpy scalar of the feature's dtype
        assert np.ndim(got) == 0 and type(np.asarray(got).item()) is type(want), (where, got, want)
        assert got == want or (want != want and got != got), (where, got, want)


def _splits(local_run):
    return [s for s, n in local_run.split_sizes.items() if n]


def test_tfds_as_data_source_and_as_dataset_equal_open(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    for split in _splits(local_run):
        ref = ds[split]
        # as_data_source switches a builder to ArrayRecord for good (as_dataset then refuses): one builder each
        src = tfds.builder_from_directory(local_run.version_dir).as_data_source(split)
        assert len(src) == len(ref)
        for i in range(len(ref)):
            _same(src[i], ref[i], f"{split}[{i}] as_data_source")
        builder = tfds.builder_from_directory(local_run.version_dir)
        assert builder.info.file_format == tfds.core.FileFormat.TFRECORD  # TFRecord output enabled in the fixture
        tf_ds = builder.as_dataset(split, shuffle_files=False,
                                   read_config=tfds.ReadConfig(interleave_cycle_length=1))  # shards in order
        got = list(tfds.as_numpy(tf_ds))
        assert len(got) == len(ref)
        for i, ex in enumerate(got):
            _same(ex, ref[i], f"{split}[{i}] as_dataset")


def test_tf_dataset_from_array_record_equals_open_in_order(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    for split in _splits(local_run):
        ref = ds[split]
        tf_ds = to_tf_dataset(local_run.output_dir, split, read_chunk=3, num_parallel_calls=2)
        spec = tf_ds.element_spec
        w, c = ref[0]["input"].shape
        assert spec["input"] == tf.TensorSpec((w, c), tf.float32)
        assert spec["mask"] == tf.TensorSpec((w, c), tf.bool)
        assert spec["caption"] == tf.TensorSpec((), tf.string)
        got = list(tf_ds.as_numpy_iterator())
        assert len(got) == len(ref)
        for i, ex in enumerate(got):
            _same(ex, ref[i], f"{split}[{i}] to_tf_dataset")


def test_tf_dataset_shuffles_by_seed_each_epoch(local_run):
    split = _splits(local_run)[0]
    ref = sensorpipe.open(local_run.output_dir)[split]
    keys = [ex["key"].encode() for ex in ref]   # tf.data keeps text as bytes (tf.string)
    assert len(keys) >= 4

    def epochs(seed, n=2):
        tf_ds = to_tf_dataset(local_run.output_dir, split, fields=["key"], shuffle_seed=seed).repeat(n)
        flat = [ex["key"] for ex in tf_ds.as_numpy_iterator()]
        return [flat[i * len(keys):(i + 1) * len(keys)] for i in range(n)]

    first, second = epochs(7)
    assert sorted(first) == sorted(keys) and sorted(second) == sorted(keys)  # each epoch: every window once
    assert first != keys and first != second  # shuffled, and a new order each epoch
    assert epochs(7) == [first, second]  # the same seed gives the same sequence of orders
    assert epochs(8)[0] != first


def test_tf_dataset_batches_channels_fields_and_views(local_run):
    ds = sensorpipe.open(local_run.output_dir)
    split = _splits(local_run)[0]
    chans = [ds.channels[2], ds.channels[0]]
    ref = ds[split].select(chans)
    tf_ds = to_tf_dataset(local_run.output_dir, split, channels=chans, batch_size=2, drop_remainder=True,
                          fields=["input", "mask", "missing_ratio_per_channel", "labels"])
    w = ref[0]["input"].shape[0]
    assert tf_ds.element_spec["input"].shape == (2, w, 2)
    assert set(tf_ds.element_spec) == {"input", "mask", "missing_ratio_per_channel", "labels"}
    batches = list(tf_ds.as_numpy_iterator())
    assert len(batches) == len(ref) // 2
    for b, batch in enumerate(batches):
        for j in range(2):
            want = ref[2 * b + j]
            one = {k: (v[j] if not isinstance(v, dict) else {kk: vv[j] for kk, vv in v.items()})
                   for k, v in batch.items()}
            _same(one, {k: want[k] for k in one}, f"batch {b}[{j}]")
    # without drop_remainder: every example once, in order, the last batch partial
    keys = [k for b in to_tf_dataset(local_run.output_dir, split, fields=["key"], batch_size=3).as_numpy_iterator()
            for k in b["key"]]
    assert keys == [ex["key"].encode() for ex in ds[split]]
    # a filtered Split view reads only its windows
    pid = ds[split][0]["participant_id"]
    view = ds[split].filter(participant=pid)
    got = [ex["key"] for ex in to_tf_dataset(view, fields=["key"]).as_numpy_iterator()]
    assert got == [ex["key"].encode() for ex in view] and 0 < len(got) < len(ds[split])


def test_tf_dataset_rejects_unknown_fields_and_channels(local_run):
    with pytest.raises(KeyError, match="unknown field"):
        to_tf_dataset(local_run.output_dir, _splits(local_run)[0], fields=["inputs"])
    with pytest.raises(ValueError, match="unknown channel"):
        to_tf_dataset(local_run.output_dir, _splits(local_run)[0], channels=["no_such_channel"])


def test_to_tf_dataset_logs_no_tfds_deprecation(local_run):
    """TFDS logs "`FeatureConnector.dtype` is deprecated" from inside its own decode (once per tensor feature
    per call); sensorpipe.access.tfdata keeps it out of the user's log while the decode graph is traced."""
    import logging

    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    handler = Collect()
    for name in ("absl", ""):
        logging.getLogger(name).addHandler(handler)
    try:
        tf_ds = to_tf_dataset(local_run.output_dir, _splits(local_run)[0], batch_size=2)
        next(iter(tf_ds))
    finally:
        for name in ("absl", ""):
            logging.getLogger(name).removeHandler(handler)
    assert not [m for m in seen if "deprecated" in m], seen
