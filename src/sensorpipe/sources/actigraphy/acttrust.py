"""Condor Instruments ActTrust ``.txt`` exports (ActTrust 1 and 2, from ActStudio).

Layout: a report header between ``+---- Condor Instruments Report ----+``
and a ``+-----...-----+`` line, one ``KEY : value`` per line
(``DEVICE_MODEL``, ``DEVICE_ID``, ``MODE``, ``INTERVAL`` = epoch seconds,
``DATE_TIME`` of the download, subject fields); then a ``;``-separated table
whose header names ``DATE/TIME`` (``DD/MM/YYYY HH:MM:SS``, the device's
local wall clock), ``MS``, ``EVENT``, temperatures, ``ORIENTATION``, the
activity modes ``PIM``, ``TAT``, ``ZCM`` (and their per-second ``...n``
forms), ``LIGHT`` and the colour/UV light bands, and ``STATE``.

- the activity mode ``options.mode`` (``PIM`` by default: proportional
  integration, the mode most studies report; ``TAT`` or ``ZCM``) ->
  ``activity_counts`` (summed to minutes);
- ``LIGHT`` (lux) -> ``light`` (averaged);
- ``STATE`` -> ``on_wrist``: 0 where the state is one of
  ``options.off_wrist_states`` (ActStudio writes 4 for an epoch its
  off-wrist detection marked), 1 otherwise.

A number with a decimal comma is read with a point. Times: the first epoch
in the participant's zone plus each row's wall time since then, on the
device clock (:mod:`._epochs`). Row numbers are line numbers.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from sensorpipe.core.refs import Participant
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources.actigraphy._epochs import (Device, EpochFileAdapter, check_epoch, clean_number_text,
                                                   linear_times, native_parts, read_text, wall_ns_of)
from sensorpipe.sources.base import SourceError

TIME_COL, LIGHT_COL, STATE_COL = "DATE/TIME", "LIGHT", "STATE"
TIME_FORMAT = "%d/%m/%Y %H:%M:%S"


class ActTrustTxtAdapter(EpochFileAdapter):
    """ActTrust ``.txt`` exports, one per participant; PIM/TAT/ZCM counts, light and off-wrist state."""

    name = "acttrust_txt"
    description = ("Condor ActTrust .txt export (ActStudio; report header, ';' table): PIM, TAT or ZCM activity, "
                   "light and off-wrist state per epoch of 1 s to 1 min")
    time_convention = ("DATE/TIME column DD/MM/YYYY HH:MM:SS (local wall clock); the first epoch in the "
                       "participant's IANA zone (participants table, else options.tz), later ones by their wall time "
                       "since it (no DST jumps)")
    channels = ("activity_counts", "light", "on_wrist")
    suffixes = (".txt",)
    what = "ActTrust .txt export"
    drops = ("the report header's subject fields; the activity modes not chosen (options.mode), the normalized "
             "...n columns, temperatures, orientation, events and the colour/UV light bands")

    @dataclass(frozen=True)
    class Options(EpochFileAdapter.Options):
        mode: Literal["PIM", "TAT", "ZCM"] = "PIM"
        off_wrist_states: tuple[int, ...] = (4,)   # ActStudio's STATE code of an off-wrist epoch

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(
            FieldSpec(self.options.mode, "activity_counts", "counts/min"),
            FieldSpec(LIGHT_COL, "light", "lux"),
            FieldSpec("STATE_worn", "on_wrist", "flag"),
        ))

    def read_file(self, path: Path, participant: Participant) -> list[pa.Table]:
        lines = read_text(path, "an ActTrust .txt export").splitlines()
        head, table_i = _header(lines, path)
        header = [h.strip() for h in lines[table_i].split(";")]
        col = {h: j for j, h in enumerate(header)}
        mode = self.options.mode
        for need in (TIME_COL, mode):
            if need not in col:
                raise SourceError(f"{path}, line {table_i + 1}: the table has no {need} column (found "
                                  f"{', '.join(header)}); choose options.mode among the activity columns present")
        try:
            epoch = float(head.get("INTERVAL", ""))
        except ValueError:
            raise SourceError(f"{path}: the report header's INTERVAL is {head.get('INTERVAL')!r}, not a number of "
                              f"seconds") from None
        model = head.get("DEVICE_MODEL", "").strip() or "ActTrust (model not recorded)"
        device = Device(f"{model} {mode}", check_epoch(epoch, path, "report header INTERVAL"),
                        head.get("DEVICE_ID", "").strip())
        rows, line_no = [], []
        for i, row in enumerate(csv.reader(lines[table_i + 1:], delimiter=";"), start=table_i + 2):
            if any(c.strip() for c in row):
                rows.append(row)
                line_no.append(i)
        width = len(header)
        grid = np.array([(r + [""] * width)[:width] for r in rows], dtype=object).reshape(len(rows), width)
        time_text = np.array([c.strip() for c in grid[:, col[TIME_COL]]], dtype=object)
        t_ns, err = linear_times(wall_ns_of(time_text, TIME_FORMAT), participant.tz, path)
        fields = {mode: clean_number_text(grid[:, col[mode]])}
        if LIGHT_COL in col:
            fields[LIGHT_COL] = clean_number_text(grid[:, col[LIGHT_COL]])
        if STATE_COL in col:
            state = clean_number_text(grid[:, col[STATE_COL]])
            off = np.isin(state, [str(s) for s in self.options.off_wrist_states])
            known = np.array([s.isdigit() for s in state.tolist()], bool)
            fields["STATE_worn"] = np.where(known, np.where(off, "0", "1"), state).astype(object)
        return native_parts(participant, path, device, t_ns, time_text, np.array(line_no, np.int64), fields, err)


def _header(lines: list[str], path: Path) -> tuple[dict[str, str], int]:
    """(report header ``KEY -> value``, index of the table's header line)."""
    if not lines or "condor" not in lines[0].lower():
        raise SourceError(f"{path}, line 1: not an ActTrust export: expected the '+---- Condor Instruments Report "
                          f"----+' line; export the recording from ActStudio as text")
    head: dict[str, str] = {}
    for i, line in enumerate(lines[1:], start=1):
        if line.startswith("+"):
            if i + 1 < len(lines) and TIME_COL in lines[i + 1]:
                return head, i + 1
            break
        key, sep, value = line.partition(":")
        if sep:
            head[key.strip()] = value.strip()
    raise SourceError(f"{path}: the report header is not followed by the DATE/TIME;...;STATE table header line; "
                      f"the export is truncated or not from ActStudio")
