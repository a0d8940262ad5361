"""The window record's layout, declared once: every field's key, kind, dtype, shape and doc.

One spec drives everything that has to agree on the record: the TFDS
``FeaturesDict`` (and so features.json and its docs,
:func:`sensorpipe.storage.features.to_features`), the planned encoder that
writes the records (:mod:`sensorpipe.storage.encode`) and the decoders that
read them back, the C one included (:mod:`sensorpipe.access.decode`). Because
they all derive from this one spec, nothing has to be reconciled at write
time. A dataset read back is turned into the same spec from its features.json
(:func:`sensorpipe.storage.features.layout_of`), so a reader plans any dataset
the same way.

This module imports neither TFDS nor numpy: encoding workers build their
encoder from a layout without loading ``tensorflow_datasets``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sensorpipe.core.labels import LABELS

FieldKind = Literal["tensor", "scalar", "text", "class"]
TIME_FEATURES = ("minute_of_hour", "hour_of_day", "day_of_week", "month")


@dataclass(frozen=True)
class Field:
    """One leaf of a record.

    ``tensor``: a BYTES-encoded array of static ``shape`` (its bytes are the
    array's raw C-order bytes); ``scalar``: a shape-() number or bool; ``text``:
    one utf-8 string; ``class``: a class label among ``names`` (-1 = missing).
    ``key`` is flat, ``a/b`` for a field of the nested dict ``a``.
    """

    key: str
    kind: FieldKind
    dtype: str = ""                # numpy dtype name (tensor, scalar)
    shape: tuple[int, ...] = ()    # tensor shape
    names: tuple[str, ...] = ()    # class names (class)
    doc: str = ""                  # features.json description
    value_range: str = ""          # features.json value range (a unit), scalars only


@dataclass(frozen=True)
class RecordLayout:
    """The fields of a record in the order the ``FeaturesDict`` (features.json) lists them."""

    fields: tuple[Field, ...]


def record_layout(channels: tuple[str, ...], size_min: int, caption_levels: tuple[str, ...]) -> RecordLayout:
    """The layout of a window record for these channels, window size and caption levels."""
    channels, caption_levels, W = tuple(channels), tuple(caption_levels), int(size_min)
    C = len(channels)
    in_order = ", ".join(channels)
    fields = [
        Field("input", "tensor", "float32", (W, C),
              doc=f"Normalized, imputed minute values; channels in order: {in_order}."),
        Field("mask", "tensor", "bool", (W, C), doc="True = the minute was missing and its value imputed."),
        Field("time", "tensor", "int16", (W, 4),
              doc="Local time per minute: " + ", ".join(TIME_FEATURES) + " (Monday = 0)."),
        Field("missingness_ratio", "scalar", "float32",
              doc="Share of masked cells in the window, over the channels the participant's sources can "
                  "provide (window.missingness_basis: measured) or over every channel (all_channels)."),
        Field("missing_ratio_per_channel", "tensor", "float32", (C,),
              doc=f"Share of the window's minutes missing (masked), per channel in order: {in_order}."),
        Field("longest_gap_min", "tensor", "int32", (C,),
              doc="Longest run of missing minutes in the window, per channel (an edge gap counts up to the "
                  "window's edge; W = channel never observed in the window)."),
        Field("participant_id", "text", doc="Pseudonymized participant id (keyed hash)."),
        Field("dataset", "text", doc="Study name (sources[].study; a source's own name by default)."),
        Field("sources", "text", doc="The sources that contributed an observed minute to the window, "
                                     "comma-separated in config order (sources[].name)."),
        Field("start_utc", "scalar", "int64", doc="Window start, seconds since 1970-01-01 UTC."),
        Field("tz_offset_min", "scalar", "int32", doc="Local UTC offset in minutes at the window start."),
        Field("key", "text", doc="Unique window key: dataset/participant/start."),
        Field("caption", "text", doc="Caption of the window (all levels joined)."),
        Field("caption_claims", "text",
              doc="JSON list of every caption claim (level, kind, template index and the values and local times "
                  "as stated); sensorpipe.captions.faithfulness re-derives each from input, mask, time and events."),
        Field("events", "text",
              doc="JSON list of the label events overlapping the window, [start_min, end_min, kind, name] with "
                  "minutes from the window start (end exclusive; clipped to the window)."),
        *_label_fields(W),
        *(Field(f"caption_{level}", "text", doc=f"{level.capitalize()} caption.") for level in caption_levels),
    ]
    return RecordLayout(tuple(fields))


def _label_fields(size_min: int) -> list[Field]:
    """The ``labels/...`` fields, one (or a value and a ``has_`` flag) per unified label."""
    out: list[Field] = []
    for spec in LABELS:
        key = f"labels/{spec.name}"
        if spec.kind == "class":
            out.append(Field(key, "class", names=tuple(spec.names), doc=f"{spec.doc} -1 = missing."))
        elif spec.kind == "sequence":
            codes = ", ".join(f"{i} {n}" for i, n in enumerate(spec.names))
            out.append(Field(key, "tensor", "int8", (size_min,), doc=f"{spec.doc} Codes: {codes}."))
        else:
            out += [Field(key, "scalar", "float32", doc=f"{spec.doc} NaN = missing (see has_{spec.name}).",
                          value_range=spec.unit),
                    Field(f"labels/has_{spec.name}", "scalar", "bool", doc=f"True when {spec.name} is known.")]
    return out
