"""tf.data without TFRecord: a ``tf.data.Dataset`` read straight from the ArrayRecord shards.

TFDS's ``as_dataset`` reads TFRecord only, so a dataset written with
ArrayRecord alone would have to be stored twice for TensorFlow users. This
fallback reads the ArrayRecord shards through the split's own random-access
reader and decodes with TFDS's TensorFlow decode (``FeaturesDict.
deserialize_example``, the op graph ``as_dataset`` uses), so the examples
are the ones ``sensorpipe.open(dir)[split][i]`` returns, byte for byte, as
tensors with static shapes: ``input`` float32 ``[W, C]``, ``mask`` bool
``[W, C]`` (True = missing), strings as ``tf.string``, labels as in
``dataset_info`` (class labels int64).

Pipeline (all of it inside tf.data, so it overlaps with training):
``range(n)`` -> optional seeded full shuffle of the indices (new order each
epoch, same sequence of orders for the same seed) -> chunks of indices (a
batch, or ``read_chunk`` examples when not batching) -> one map per chunk:
raw records read by a ``tf.numpy_function``, TFDS's decode over the chunk
(``tf.map_fn``), channel selection (``num_parallel_calls`` chunks at once;
the order is kept) -> unbatch when not batching -> prefetch. Decoding a
whole batch in one map step avoids a tf.data element per example (unbatch
and re-batch cost more than the decode: 8,000 -> 13,000 examples/s).

Needs the ``tf`` extra: ``pip install sensorpipe[tf]``. TensorFlow is
imported only when this module's functions are called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["to_tf_dataset"]

_PER_CHANNEL = ("input", "mask", "missing_ratio_per_channel", "longest_gap_min")  # last axis = channel


def _tf():
    try:
        import tensorflow as tf
    except ImportError as e:  # pragma: no cover - exercised only without TensorFlow
        raise ImportError("sensorpipe.access.tfdata needs TensorFlow: pip install sensorpipe[tf]") from e
    return tf


class _TfdsDtypeNotice:
    """Drops TFDS's "`FeatureConnector.dtype` is deprecated" log line while our decode graph is traced.

    The deprecated attribute is read inside TFDS itself (``Tensor.decode_example`` checks
    ``self.dtype == tf.uint64``, tensorflow_datasets 4.9), not by us: we call the public
    ``FeaturesDict.deserialize_example``. Without this, each ``to_tf_dataset`` call logged the notice once per
    tensor feature. Only that message, only on the ``absl`` logger, only during ``ds.map``.
    """

    _PREFIX = "`FeatureConnector.dtype` is deprecated"

    def filter(self, record) -> bool:
        return not str(record.getMessage()).startswith(self._PREFIX)

    def __enter__(self):
        import logging

        logging.getLogger("absl").addFilter(self)
        return self

    def __exit__(self, *exc) -> None:
        import logging

        logging.getLogger("absl").removeFilter(self)


def _view(source: Any, split: str, channels: Sequence[str] | None):
    """``(features, split view)`` for a path, an opened ``SensorDataset`` or a ``Split``."""
    from sensorpipe.access.dataset import SensorDataset, Split

    if isinstance(source, Split):
        view = source if channels is None else source.select(channels)
        return view._features, view
    ds = source if isinstance(source, SensorDataset) else SensorDataset(source)
    view = ds[split] if channels is None else ds[split].select(channels)
    return ds.features, view


def _select(example: dict, cols: list[int] | None, fields: tuple[str, ...] | None) -> dict:
    out = dict(example) if fields is None else {k: example[k] for k in fields}
    if cols is not None:
        for k in _PER_CHANNEL:
            if k in out:
                out[k] = _tf().gather(out[k], cols, axis=-1)
    return out


def to_tf_dataset(source: Any, split: str = "train", channels: Sequence[str] | None = None,
                  fields: Sequence[str] | None = None, shuffle_seed: int | None = None,
                  batch_size: int | None = None, drop_remainder: bool = False, read_chunk: int = 32,
                  num_parallel_calls: int | None = None, prefetch: int | None = None):
    """A ``tf.data.Dataset`` over one split, read from its ArrayRecord shards (no TFRecord needed).

    - ``source``: the output directory (or a version dir, an fsspec URL, an
      opened ``SensorDataset``, or a ``Split`` view from ``sensorpipe.open``:
      a filtered view gives its windows only).
    - ``channels``: names to keep in ``input``/``mask`` and the per-channel
      statistics, in that order; ``fields``: the example keys to return.
    - ``shuffle_seed``: None keeps the split's order; a seed shuffles all
      indices (a new permutation each epoch of a ``.repeat()``ed dataset; the
      same seed gives the same sequence of permutations).
    - ``batch_size``: stack examples (``drop_remainder`` for static batch dims).
    - ``read_chunk``: records per read-and-decode step when not batching (a
      batch is one step); ``num_parallel_calls`` (default
      ``tf.data.AUTOTUNE``): steps run at once. Output order is
      deterministic whatever the parallelism.
    """
    tf = _tf()
    features, view = _view(source, split, channels)
    if fields is not None:
        fields = tuple(fields)
        unknown = [f for f in fields if f not in features.keys()]
        if unknown:
            raise KeyError(f"unknown field(s) {', '.join(unknown)}; "
                           f"examples have: {', '.join(sorted(features.keys()))}")
    if read_chunk < 1:
        raise ValueError(f"read_chunk must be >= 1, got {read_chunk}")
    parallel = tf.data.AUTOTUNE if num_parallel_calls is None else int(num_parallel_calls)
    if fields is not None:  # parse and decode only these (the Example parser skips the other features)
        import tensorflow_datasets as tfds

        features = tfds.features.FeaturesDict({k: features[k] for k in fields})
    spec = features.get_tensor_spec()
    cols = view._cols

    def read(idx: np.ndarray) -> np.ndarray:
        return np.array([view.raw(int(i)) for i in idx], dtype=object)

    def read_and_decode(idx):
        records = tf.numpy_function(read, [idx], tf.string, stateful=False)
        records.set_shape([None])
        # TFDS's own per-example decode, over the chunk in one op: no per-example tf.data element until the end
        out = _select(tf.map_fn(features.deserialize_example, records, fn_output_signature=spec), cols, fields)
        if batch_size and drop_remainder:  # a static batch dimension
            for t in tf.nest.flatten(out):
                t.set_shape([chunk] + t.shape[1:])
        return out

    # a chunk is a batch when batching (no unbatch/rebatch), else read_chunk examples that are unbatched
    chunk = int(batch_size) if batch_size else read_chunk
    ds = tf.data.Dataset.range(len(view))
    if shuffle_seed is not None:
        ds = ds.shuffle(max(len(view), 1), seed=int(shuffle_seed), reshuffle_each_iteration=True)
    ds = ds.batch(chunk, drop_remainder=bool(batch_size) and drop_remainder)
    with _TfdsDtypeNotice():   # the decode graph is traced here
        ds = ds.map(read_and_decode, num_parallel_calls=parallel, deterministic=True)
    if not batch_size:
        ds = ds.unbatch()
    return ds.prefetch(tf.data.AUTOTUNE if prefetch is None else int(prefetch))
