"""Actiwatch ``.AWD`` files (Cambridge Neurotechnology / CamNtech Actiwatch 4, 7, L, L-Plus, Mini, ...).

Layout (plain text, one value per line, CRLF): a 7-line header, then one
line per epoch.

=====  ==================================================================
line   header field
=====  ==================================================================
1      subject name (not used: the participant id is the file stem)
2      start date ``DD-Mon-YYYY`` (English month abbreviation)
3      start time ``HH:MM`` (sometimes ``HH:MM:SS``)
4      epoch code: 1 = 15 s, 2 = 30 s, 4 = 1 min, 8 = 2 min, 20 = 5 min,
       81 = 2 s, C1 = 5 s, C2 = 10 s
5      age
6      device serial; its first letter names the model (D Actiwatch 7,
       L Actiwatch-L, P Actiwatch-L-Plus, M Mini, V Actiwatch 4, ...); the
       serial goes with the model into the device metadata (:mod:`._epochs`)
7      sex
=====  ==================================================================

Each data line is the epoch's activity count, then for devices with a light
sensor (models D, L, P) ``, <lux>``, and an ``M`` where the event-marker
button was pressed. Activity -> ``activity_counts`` (summed per minute),
light -> ``light`` (averaged). Other extra columns (pressure, sound,
temperature of the I, S, T models) and markers are not kept. Blank lines are
not epochs; row numbers are line numbers (line 8 = first epoch).

Times: the start in the participant's zone plus ``k`` epochs on the device
clock (:mod:`._epochs`). AWD has no off-wrist flag.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.core.refs import Participant
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources.actigraphy._epochs import (SECOND_NS, Device, EpochFileAdapter, check_epoch, local_text,
                                                   native_parts, read_text, start_utc_ns)
from sensorpipe.sources.base import SourceError

EPOCH_CODES_S = {"1": 15, "2": 30, "4": 60, "8": 120, "20": 300, "81": 2, "C1": 5, "C2": 10}
MODELS = {"D": "Actiwatch 7", "I": "Actiwatch Insomnia", "L": "Actiwatch-L", "M": "Actiwatch Mini",
          "P": "Actiwatch-L-Plus", "S": "Actiwatch-S", "T": "Actiwatch-T", "V": "Actiwatch 4"}
LIGHT_MODELS = ("D", "L", "P")
MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                                      "dec"), start=1)}
ACTIVITY, LIGHT = "activity", "light"
HEADER_LINES = 7
_DATE = re.compile(r"^\s*(\d{1,2})-([A-Za-z]{3})-(\d{4})\s*$")
_TIME = re.compile(r"^\s*(\d{1,2}):(\d{2})(?::(\d{2}))?\s*$")


class ActiwatchAwdAdapter(EpochFileAdapter):
    """Actiwatch ``.AWD`` recordings, one per participant; activity counts and (L, L-Plus, 7) light."""

    name = "actiwatch_awd"
    description = ("Actiwatch .AWD recording (CamNtech Actiwatch 4/7/L/L-Plus/Mini): 7-line header with start and "
                   "epoch code, then activity counts (and light) per epoch of 2 s to 1 min")
    time_convention = ("header start date and time (local wall clock) in the participant's IANA zone (participants "
                       "table, else options.tz), then one epoch after another on the device clock (no DST jumps)")
    channels = ("activity_counts", "light")
    suffixes = (".awd",)
    what = "Actiwatch .AWD file"
    drops = ("subject name, age and sex (header lines 1, 5, 7); event markers (M); the pressure, sound and "
             "temperature columns of the Insomnia, S and T models; blank lines are not epochs")

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(
            FieldSpec(ACTIVITY, "activity_counts", "counts/min"),
            FieldSpec(LIGHT, "light", "lux"),
        ))

    def read_file(self, path: Path, participant: Participant) -> list[pa.Table]:
        lines = read_text(path, "an Actiwatch .AWD file (7 header lines, then one epoch per line)").splitlines()
        if len(lines) < HEADER_LINES:
            raise SourceError(f"{path}: only {len(lines)} lines; an AWD file has a 7-line header (name, start "
                              f"date, start time, epoch code, age, serial, sex) before its epochs")
        start = _start(lines, path)
        code = lines[3].strip().upper()
        if code not in EPOCH_CODES_S:
            raise SourceError(f"{path}, line 4: unknown epoch code {lines[3].strip()!r}; known: "
                              f"{', '.join(f'{k} = {v} s' for k, v in EPOCH_CODES_S.items())}")
        epoch_s = check_epoch(EPOCH_CODES_S[code], path, "line 4 (epoch code)")
        serial = lines[5].strip()
        letter = serial[:1].upper()
        device = Device(MODELS.get(letter, f"Actiwatch ({serial[:1] or '?'})"), epoch_s, serial)
        rows = [(i, s) for i, s in enumerate(lines[HEADER_LINES:], start=HEADER_LINES + 1) if s.strip()]
        line_no = np.array([i for i, _ in rows], np.int64)
        cells = [re.split(r"[\s,]+", s.strip()) for _, s in rows]
        activity = np.array([c[0] for c in cells], dtype=object)
        k = np.arange(len(rows), dtype=np.int64)
        elapsed = k * int(epoch_s * SECOND_NS)
        t_ns = start_utc_ns(start, participant.tz, path) + elapsed
        wall0 = np.datetime64(start, "ns").astype(np.int64)
        fields = {ACTIVITY: activity}
        if letter in LIGHT_MODELS:
            fields[LIGHT] = np.array([c[1] if len(c) > 1 and c[1].upper() != "M" else "" for c in cells], object)
        return native_parts(participant, path, device, t_ns, local_text(wall0 + elapsed), line_no, fields)


def _start(lines: list[str], path: Path) -> dt.datetime:
    d, t = _DATE.match(lines[1]), _TIME.match(lines[2])
    if d is None or d.group(2).lower() not in MONTHS:
        raise SourceError(f"{path}, line 2: start date {lines[1].strip()!r} is not DD-Mon-YYYY (e.g. 23-Jan-2018)")
    if t is None:
        raise SourceError(f"{path}, line 3: start time {lines[2].strip()!r} is not HH:MM (e.g. 13:58)")
    try:
        return dt.datetime(int(d.group(3)), MONTHS[d.group(2).lower()], int(d.group(1)), int(t.group(1)),
                           int(t.group(2)), int(t.group(3) or 0))
    except ValueError as e:
        raise SourceError(f"{path}, lines 2-3: start {lines[1].strip()} {lines[2].strip()} is not a date and "
                          f"time ({e})") from None
