"""An example sensorpipe plugin: the ``.pulselog`` format, a CSV of its own, the channel and the labels it carries.

A ``.pulselog`` file holds one participant (the file stem): a header line
``utc,bpm,pi,activity`` and one row per reading, ``utc`` an ISO time with a
zone (``2024-05-02T09:30:00Z``), ``bpm`` the heart rate, ``pi`` the pulse
oximeter's perfusion index in percent, ``activity`` one of the unified
activity classes or empty. The adapter feeds ``heart_rate`` and the channel
this plugin adds, ``perfusion_index``; the label processor turns the activity
column into the window label ``activity``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.channels import Channel, ChannelPlugin
from sensorpipe.core import timeparse
from sensorpipe.core.labels import BY_NAME
from sensorpipe.labels.base import LabelProcessor
from sensorpipe.labels.intervals import majority_class
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources._toolkit.export_files import list_export_units, native_table
from sensorpipe.sources.base import SourceAdapter, SourceError, UnitInput, UnitRef, check_zone_option

HEADER = ["utc", "bpm", "pi", "activity"]


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or rows[0] != HEADER:
        raise SourceError(f"{path}: not a pulselog file: line 1 must be {','.join(HEADER)}")
    return rows[1:]


class PerfusionIndex(ChannelPlugin):
    """The channel the adapter adds: pulsatile over static infrared absorption at the finger, in percent."""

    channel = Channel("perfusion_index", "%", 0.02, 20, "quarantine", "mean", "linear", "zscore", "Heart",
                      "Perfusion index of a pulse oximeter (pulsatile / static infrared absorption).",
                      caption_decimals=1, prior_center=3.0, prior_scale=2.0,
                      prior_basis="finger perfusion index of resting adults, median about 3 % (0.3-10 %)")


class PulseLog(SourceAdapter):
    """``.pulselog`` files, one per participant; ``bpm`` feeds ``heart_rate``, ``pi`` ``perfusion_index``."""

    name = "pulselog"
    description = "pulselog CSV (utc,bpm,pi,activity), one file per participant"
    time_convention = "ISO 8601 UTC instants with a zone"
    channels = ("heart_rate", "perfusion_index")

    @dataclass(frozen=True)
    class Options:
        participant_id: str | None = None
        tz: str | None = None

        def validate(self, path: str) -> None:
            check_zone_option(self.tz, f"{path}.tz")

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention,
                            fields=(FieldSpec("bpm", "heart_rate", "bpm"), FieldSpec("pi", "perfusion_index", "%")))

    def list_units(self) -> list[UnitRef]:
        return list_export_units(self, (".pulselog",), "pulselog file")

    def read_unit(self, unit: UnitRef) -> UnitInput:
        parts = []
        for f in unit.files:
            rows = _rows(Path(f))
            n = len(rows)
            time_text = np.array([r[0] for r in rows] * 2, object)   # one native row per reading and field
            t_ns, err = timeparse.parse_iso(pa.array(time_text, pa.string()))
            field = np.array(["bpm"] * n + ["pi"] * n, object)
            value = np.array([r[1] for r in rows] + [r[2] for r in rows], object)
            lines = np.tile(np.arange(2, n + 2, dtype=np.int64), 2)
            parts.append(native_table(unit.participant, field, time_text, t_ns, err, value,
                                      pa.nulls(2 * n, pa.string()), Path(f), lines))
        return UnitInput(unit, parts)


class PulseLogActivity(LabelProcessor):
    """The ``activity`` column of pulselog files: each row labels its minute."""

    name = "pulselog_activity"
    produces = ("activity",)

    def applies(self, unit: UnitRef) -> bool:
        return unit.source.adapter == "pulselog"

    def window_labels(self, batch):
        segs = []
        for f in batch.unit.files:
            for r in _rows(Path(f)):
                if r[3]:
                    m = int(np.datetime64(r[0].rstrip("Z"), "m").astype(np.int64))
                    segs.append((m, m + 1, r[3]))
        return {"activity": majority_class(segs, BY_NAME["activity"].names, batch.start_utc_min, batch.size_min)}
