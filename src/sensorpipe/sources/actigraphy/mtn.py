"""CamNtech MotionWatch ``.mtn`` files (MotionWatch 8 and later): XML.

Layout (``<motionfile>``): a ``<log2>`` of ``<change>`` entries, each
setting ``<property><name>..</name><content>..</content></property>`` (a
later change overrides an earlier one; ``delete="yes"`` removes it) or
holding a ``<channel>``: ``<name>`` (``motion`` or ``Light``), ``<units>``,
``<epoch>`` (seconds), ``<offset>`` (seconds after the start) and
``<data encoding="text">``, the epochs' values separated by commas. The
properties read are ``=Device`` (model), ``=SerialNo``, ``=StartTime``
(``YYYY-MM-DD HH:MM:SS``, the device's local wall clock); the trailing
``<Signature>`` and button annotations are not read.

``motion`` -> ``activity_counts`` (summed to minutes), ``Light`` ->
``light`` (lux, averaged); a channel whose ``<units>`` is not lux gives
``light`` rows with that unit, which validation quarantines as
``unknown_unit``. Epoch ``k`` of a channel is at start + offset + ``k``
epochs on the device clock (:mod:`._epochs`). Row numbers count each
channel's values from 1. MTN has no off-wrist flag.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.core.refs import Participant
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources._toolkit.xml_files import local_name, xml_error
from sensorpipe.sources.actigraphy._epochs import (SECOND_NS, Device, EpochFileAdapter, check_epoch, local_text,
                                                   native_parts, start_utc_ns)
from sensorpipe.sources.base import SourceError

#: channel <name> (lower case) -> (native field, canonical channel, unit when the file names none)
CHANNELS = {"motion": ("motion", "activity_counts", "counts/min"), "light": ("light", "light", "lux")}


class MotionWatchMtnAdapter(EpochFileAdapter):
    """MotionWatch ``.mtn`` XML recordings, one per participant; motion counts and light."""

    name = "motionwatch_mtn"
    description = ("CamNtech MotionWatch .mtn recording (XML; MotionWatch 8): motion counts and light per epoch of "
                   "1 s to 1 min")
    time_convention = ("=StartTime property (local wall clock) in the participant's IANA zone (participants table, "
                       "else options.tz), then each channel's offset and epochs on the device clock (no DST jumps)")
    channels = ("activity_counts", "light")
    suffixes = (".mtn",)
    what = "MotionWatch .mtn file"
    drops = ("subject properties (user id, sex, birth date), battery and firmware properties, button annotations, "
             "the XML signature, and channels other than motion and Light")

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention,
                            fields=tuple(FieldSpec(f, ch, u) for f, ch, u in CHANNELS.values()))

    def read_file(self, path: Path, participant: Participant) -> list[pa.Table]:
        if path.stat().st_size == 0:
            raise SourceError(f"{path}: the file is empty; expected a MotionWatch .mtn (XML) file")
        try:
            root = ET.parse(str(path)).getroot()
        except (ET.ParseError, ValueError, LookupError) as e:   # LookupError: an unknown declared encoding
            raise xml_error(path, "MotionWatch .mtn", e) from None
        props: dict[str, str] = {}
        channels = []
        for el in root.iter():
            tag = local_name(el.tag)
            if tag == "property":
                name = _child_text(el, "name")
                if el.get("delete") == "yes":
                    props.pop(name, None)
                else:
                    props[name] = _child_text(el, "content")
            elif tag == "channel":
                channels.append(el)
        if "=StartTime" not in props:
            raise SourceError(f"{path}: no =StartTime property; not a MotionWatch .mtn recording (or one never "
                              f"started): open it in MotionWare and export it again")
        try:
            start = dt.datetime.strptime(props["=StartTime"].strip(), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            raise SourceError(f"{path}: =StartTime {props['=StartTime']!r} is not YYYY-MM-DD HH:MM:SS") from None
        start_ns = start_utc_ns(start, participant.tz, path)
        wall0 = np.datetime64(start, "ns").astype(np.int64)
        model = props.get("=Device", "").strip() or "MotionWatch (model not recorded)"
        serial = props.get("=SerialNo", "").strip()
        parts: list[pa.Table] = []
        for ch in channels:
            kind = CHANNELS.get(_child_text(ch, "name").strip().lower())
            if kind is None:
                continue
            field, _, unit = kind
            where = f"channel {_child_text(ch, 'name')!r}"
            try:
                epoch_s = float(_child_text(ch, "epoch"))
                offset_s = float(_child_text(ch, "offset") or 0)
            except ValueError:
                raise SourceError(f"{path}, {where}: <epoch> or <offset> is not a number of seconds") from None
            check_epoch(epoch_s, path, f"{where} <epoch>")
            if not (np.isfinite(offset_s) and abs(offset_s) < 366 * 86400):
                raise SourceError(f"{path}, {where}: <offset> {offset_s:g} s is not a plausible offset from the start")
            data = next((c for c in ch if local_name(c.tag) == "data"), None)
            text = (data.text or "") if data is not None else ""
            values = np.array([v.strip() for v in text.split(",")], dtype=object)
            if values.size and values[-1] == "":
                values = values[:-1]   # the list ends with a comma
            elapsed = int(offset_s * SECOND_NS) + np.arange(values.size, dtype=np.int64) * int(epoch_s * SECOND_NS)
            rows = np.arange(1, values.size + 1, dtype=np.int64)
            table, = native_parts(participant, path, Device(model, epoch_s, serial), start_ns + elapsed,
                                  local_text(wall0 + elapsed), rows, {field: values})
            native_unit = _child_text(ch, "units").strip()
            if field == "light" and native_unit and native_unit.lower() != "lux":
                table = table.set_column(table.column_names.index("unit"), "unit",
                                         pa.array([native_unit] * values.size, pa.string()))
            parts.append(table)
        if not parts:
            raise SourceError(f"{path}: no motion or Light channel; not a MotionWatch recording with data")
        return parts


def _child_text(el: ET.Element, name: str) -> str:
    for c in el:
        if local_name(c.tag) == name:
            return c.text or ""
    return ""
