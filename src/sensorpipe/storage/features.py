"""The TFDS FeaturesDict of a window record, built from the channel list and window size.

Tensors use ``Encoding.BYTES`` so records are written without TensorFlow and
read back by TFDS (``as_data_source``) or by :mod:`sensorpipe.access` alike.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from sensorpipe.labels.schema import LABELS

TIME_FEATURES = ("minute_of_hour", "hour_of_day", "day_of_week", "month")
_BYTES = tfds.features.Encoding.BYTES


def build_features(channels: tuple[str, ...], size_min: int, caption_levels: tuple[str, ...]) -> tfds.features.FeaturesDict:
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
        "missingness_ratio": tfds.features.Scalar(np.float32, doc="Share of masked cells in the window."),
        "missing_ratio_per_channel": tfds.features.Tensor(
            shape=(C,), dtype=np.float32, encoding=_BYTES,
            doc=f"Share of the window's minutes missing (masked), per channel in order: {', '.join(channels)}."),
        "longest_gap_min": tfds.features.Tensor(
            shape=(C,), dtype=np.int32, encoding=_BYTES,
            doc="Longest run of missing minutes in the window, per channel (an edge gap counts up to the "
                "window's edge; W = channel never observed in the window)."),
        "participant_id": tfds.features.Text(doc="Pseudonymized participant id (keyed hash)."),
        "dataset": tfds.features.Text(doc="Source dataset name."),
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
    """

    def __init__(self, features: tfds.features.FeaturesDict) -> None:
        from tensorflow_datasets.core import example_serializer

        self.features = features
        self._serializer = example_serializer.ExampleSerializer(features.get_serialized_info())

    def encode(self, example: dict) -> bytes:
        proto = self._serializer.get_tf_example(self.features.encode_example(example))
        return proto.SerializeToString(deterministic=True)
