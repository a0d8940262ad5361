"""The TFDS FeaturesDict of a window record, built from the channel list and window size.

Tensors use ``Encoding.BYTES`` so records are written without TensorFlow and
read back by TFDS (``as_data_source``) or by :mod:`sensorpipe.access` alike.

:func:`record_plan` is the same layout for the planned encoder
(:mod:`sensorpipe.storage.encode`) without importing ``tensorflow_datasets``
(about 0.27 s per process): encoding workers never load TFDS. Writing the
dataset checks it against the FeaturesDict (:func:`check_plan`), and a test
does so too, so the two cannot drift apart.
"""

from __future__ import annotations

import functools

import numpy as np

from sensorpipe.labels.schema import LABELS
from sensorpipe.storage.encode import LeafPlan, RecordPlan, plan_from_features

TIME_FEATURES = ("minute_of_hour", "hour_of_day", "day_of_week", "month")


def record_plan(channels: tuple[str, ...], size_min: int, caption_levels: tuple[str, ...]) -> RecordPlan:
    """The encoder plan of :func:`build_features`'s layout (keys, kinds, dtypes, shapes, class names)."""
    return _record_plan(tuple(channels), int(size_min), tuple(caption_levels))


@functools.lru_cache(maxsize=16)
def _record_plan(channels: tuple[str, ...], size_min: int, caption_levels: tuple[str, ...]) -> RecordPlan:
    W, C = size_min, len(channels)
    leaves = [LeafPlan("input", "tensor", "float32", (W, C)), LeafPlan("mask", "tensor", "bool", (W, C)),
              LeafPlan("time", "tensor", "int16", (W, 4)), LeafPlan("missingness_ratio", "scalar", "float32"),
              LeafPlan("missing_ratio_per_channel", "tensor", "float32", (C,)),
              LeafPlan("longest_gap_min", "tensor", "int32", (C,)),
              LeafPlan("start_utc", "scalar", "int64"), LeafPlan("tz_offset_min", "scalar", "int32"),
              *(LeafPlan(k, "text") for k in ("participant_id", "dataset", "sources", "key", "caption", "caption_claims",
                                              "events", *(f"caption_{level}" for level in caption_levels)))]
    for spec in LABELS:
        key = f"labels/{spec.name}"
        if spec.kind == "class":
            leaves.append(LeafPlan(key, "class", names=tuple(spec.names)))
        elif spec.kind == "sequence":
            leaves.append(LeafPlan(key, "tensor", "int8", (W,)))
        else:
            leaves += [LeafPlan(key, "scalar", "float32"), LeafPlan(f"labels/has_{spec.name}", "scalar", "bool")]
    return RecordPlan(tuple(leaves))


def check_plan(plan: RecordPlan, features) -> None:
    """Raise when records encoded with ``plan`` would not be the layout ``features`` (features.json) declares."""
    declared = plan_from_features(features)
    if declared != plan:
        diff = sorted({leaf.key for leaf in set(declared.leaves) ^ set(plan.leaves)})
        raise ValueError(f"the record encoder's plan differs from the dataset's features at {', '.join(diff)}; "
                         f"sensorpipe.storage.features.record_plan must mirror build_features")


def build_features(channels: tuple[str, ...], size_min: int, caption_levels: tuple[str, ...]):
    """The ``tfds.features.FeaturesDict`` of a window record."""
    from sensorpipe._gc import collector_paused

    with collector_paused():     # TFDS's first import (see sensorpipe._gc)
        import tensorflow_datasets as tfds

    _BYTES = tfds.features.Encoding.BYTES
    W, C = size_min, len(channels)
    label_features = {}
    for spec in LABELS:
        if spec.kind == "class":
            label_features[spec.name] = tfds.features.ClassLabel(names=list(spec.names), doc=f"{spec.doc} -1 = missing.")
        elif spec.kind == "sequence":
            label_features[spec.name] = tfds.features.Tensor(
                shape=(W,), dtype=np.int8, encoding=_BYTES,
                doc=f"{spec.doc} Codes: " + ", ".join(f"{i} {n}" for i, n in enumerate(spec.names)) + ".")
        else:
            label_features[spec.name] = tfds.features.Scalar(np.float32, doc=tfds.features.Documentation(
                desc=f"{spec.doc} NaN = missing (see has_{spec.name}).", value_range=spec.unit))
            label_features[f"has_{spec.name}"] = tfds.features.Scalar(np.bool_, doc=f"True when {spec.name} is known.")
    feats = {
        "input": tfds.features.Tensor(shape=(W, C), dtype=np.float32, encoding=_BYTES,
                                      doc=f"Normalized, imputed minute values; channels in order: {', '.join(channels)}."),
        "mask": tfds.features.Tensor(shape=(W, C), dtype=np.bool_, encoding=_BYTES,
                                     doc="True = the minute was missing and its value imputed."),
        "time": tfds.features.Tensor(shape=(W, 4), dtype=np.int16, encoding=_BYTES,
                                     doc="Local time per minute: " + ", ".join(TIME_FEATURES) + " (Monday = 0)."),
        "missingness_ratio": tfds.features.Scalar(
            np.float32, doc="Share of masked cells in the window, over the channels the participant's sources can "
                            "provide (window.missingness_basis: measured) or over every channel (all_channels)."),
        "missing_ratio_per_channel": tfds.features.Tensor(
            shape=(C,), dtype=np.float32, encoding=_BYTES,
            doc=f"Share of the window's minutes missing (masked), per channel in order: {', '.join(channels)}."),
        "longest_gap_min": tfds.features.Tensor(
            shape=(C,), dtype=np.int32, encoding=_BYTES,
            doc="Longest run of missing minutes in the window, per channel (an edge gap counts up to the "
                "window's edge; W = channel never observed in the window)."),
        "participant_id": tfds.features.Text(doc="Pseudonymized participant id (keyed hash)."),
        "dataset": tfds.features.Text(doc="Study name (sources[].study; a source's own name by default)."),
        "sources": tfds.features.Text(doc="The sources that contributed an observed minute to the window, "
                                          "comma-separated in config order (sources[].name)."),
        "start_utc": tfds.features.Scalar(np.int64, doc="Window start, seconds since 1970-01-01 UTC."),
        "tz_offset_min": tfds.features.Scalar(np.int32, doc="Local UTC offset in minutes at the window start."),
        "key": tfds.features.Text(doc="Unique window key: dataset/participant/start."),
        "caption": tfds.features.Text(doc="Caption of the window (all levels joined)."),
        "caption_claims": tfds.features.Text(
            doc="JSON list of every caption claim (level, kind, template index and the values and local times as "
                "stated); sensorpipe.captions.faithfulness re-derives each from input, mask, time and events."),
        "events": tfds.features.Text(
            doc="JSON list of the label events overlapping the window, [start_min, end_min, kind, name] with "
                "minutes from the window start (end exclusive; clipped to the window)."),
        "labels": tfds.features.FeaturesDict(label_features),
    }
    for level in caption_levels:
        feats[f"caption_{level}"] = tfds.features.Text(doc=f"{level.capitalize()} caption.")
    return tfds.features.FeaturesDict(feats)


class RecordEncoder:
    """Serializes examples as TFDS does, but with deterministic protobuf map order.

    ``FeaturesDict.serialize_example`` calls ``SerializeToString()``, whose map
    order depends on the process's string hash seed, so two processes would
    write different bytes for the same example. Sorting the map keeps the
    bytes identical on every runner while TFDS parses them as usual.

    The pipeline writes with :class:`sensorpipe.storage.encode.PlannedEncoder`
    (same bytes, about 7x faster, no TFDS import); this is the reference the
    tests hold it to.
    """

    def __init__(self, features) -> None:
        from tensorflow_datasets.core import example_serializer

        self.features = features
        self._serializer = example_serializer.ExampleSerializer(features.get_serialized_info())

    def encode(self, example: dict) -> bytes:
        proto = self._serializer.get_tf_example(self.features.encode_example(example))
        return proto.SerializeToString(deterministic=True)
