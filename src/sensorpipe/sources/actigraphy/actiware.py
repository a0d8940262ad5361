"""Philips Respironics Actiware ``.csv`` exports (Actiwatch 2, Spectrum, Spectrum Plus/Pro), in English, French
or German.

Layout: a preamble of 110-155 lines (subject properties, "Actiwatch Data
Properties" with the device type and the epoch length, analysis inputs and
statistics, the marker list), then the epoch-by-epoch table: a header line
naming ``Date`` and ``Time`` columns, and one line per epoch. The software's
language sets the names (the header is found by them, wherever it lies):

==================  ===================  ======================  ===============================
meaning             English              French                  German
==================  ===================  ======================  ===============================
date, time          Date, Time           Date, Heure             Datum, Zeit
activity counts     Activity             Activité                Aktivität
white light (lux)   White Light          Lumière blanche         Weißes Licht
off-wrist (1 = off) Off-Wrist Status     (not known, below)      Status „Nicht am Handgelenk“
epoch length        Epoch Length         Longueur de la période  Epochenlänge
device type         Actiwatch Type       Type d'Actiwatch        Actiwatch-Typ
serial number       Actiwatch Serial     Numéro de série de      Actiwatch-Seriennummer
                    Number               l'Actiwatch
==================  ===================  ======================  ===============================

Separators are ``,`` or ``;`` (taken from the header line); a number
written with a decimal comma (``"184,13"``, ``2,35E+02``) is read with a
point; ``NaN``/``NAN``/``kZ`` (keine Zahl) are missing values. Dates are
``DD/MM/YYYY`` (UK, French), ``DD.MM.YYYY`` (German) or ``MM/DD/YYYY``
(US): ``options.date_order`` (``auto``, ``DMY``, ``MDY``) says which; ``auto``
reads dotted dates day first and otherwise takes the one order under which consecutive epochs are never more than a day
apart, and asks for the option when both are (a recording of a few days at
the start of a month).

The French off-wrist column is not mapped: no public source names it.
pyActigraphy's reader lists the French columns without one, and its French
sample export (Actiware 5.00) has no off-wrist column; a guessed name would
silently miss the real one. A French export that has the column keeps its
activity and light; its off-wrist is not read.

Activity -> ``activity_counts`` (summed to minutes), white light ->
``light`` (averaged), off-wrist -> ``on_wrist`` (1 - status). Times: the
first epoch in the participant's zone plus each row's wall time since then,
on the device clock (:mod:`._epochs`). Row numbers are line numbers.
"""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from sensorpipe.core import timeparse
from sensorpipe.core.refs import Participant
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources.actigraphy._epochs import (Device, EpochFileAdapter, check_epoch, clean_number_text,
                                                   linear_times, native_parts, read_text, wall_ns_of)
from sensorpipe.sources.base import SourceError

DATE = ("date", "datum")
TIME = ("time", "heure", "zeit")
#: localized column name -> native field
VALUE_COLUMNS = {
    "activity": "activity", "activité": "activity", "aktivität": "activity",
    "white light": "white_light", "lumière blanche": "white_light", "weißes licht": "white_light",
    "off-wrist status": "off_wrist", "status „nicht am handgelenk“": "off_wrist",
}
EPOCH_KEYS = ("epoch length", "longueur de la période", "epochenlänge")
DEVICE_KEYS = ("actiwatch type", "type d'actiwatch", "actiwatch-typ")
SERIAL_KEYS = ("actiwatch serial number", "numéro de série de l'actiwatch", "actiwatch-seriennummer")
ORDERS = {"DMY": "%d/%m/%Y", "MDY": "%m/%d/%Y"}
DAY_NS = 86_400 * 1_000_000_000


def _norm(name: str) -> str:
    """A column or preamble name, compared case- and accent-form-insensitively, without its trailing colon."""
    s = unicodedata.normalize("NFC", name).replace("’", "'").strip().rstrip(":").strip().lower()
    return " ".join(s.split())


class ActiwareCsvAdapter(EpochFileAdapter):
    """Actiware CSV exports (EN/FR/DE), one per participant; activity, white light and off-wrist per epoch."""

    name = "actiware_csv"
    description = ("Philips Respironics Actiware .csv export (Actiwatch 2/Spectrum; English, French or German; ',' "
                   "or ';' separators, decimal comma): activity counts, white light and off-wrist per epoch "
                   "(off-wrist from English and German exports: no public export or reader names the French column, "
                   "pyActigraphy's French sample export has none)")
    time_convention = ("Date and Time columns (local wall clock; DD/MM, DD.MM or MM/DD per options.date_order); the "
                       "first epoch in the participant's IANA zone (participants table, else options.tz), later ones "
                       "by their wall time since it (no DST jumps)")
    channels = ("activity_counts", "light", "on_wrist")
    suffixes = (".csv",)
    what = "Actiware .csv export"
    drops = ("the preamble (subject properties, analysis inputs, statistics, marker list); the Line, Marker, "
             "red/green/blue light, Sleep/Wake, Mobility and interval-status columns; blank lines are not epochs")

    @dataclass(frozen=True)
    class Options(EpochFileAdapter.Options):
        date_order: Literal["auto", "DMY", "MDY"] = "auto"

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(
            FieldSpec("activity", "activity_counts", "counts/min"),
            FieldSpec("white_light", "light", "lux"),
            FieldSpec("off_wrist", "on_wrist", "flag", {"0": 1, "1": 0}),
        ))

    def read_file(self, path: Path, participant: Participant) -> list[pa.Table]:
        lines = read_text(path, "an Actiware .csv export").splitlines()
        head_i, delim, header = _find_header(lines, path)
        meta = _preamble(lines[:head_i], delim)
        col = {_norm(h): j for j, h in enumerate(header)}
        di, ti = next(col[n] for n in DATE if n in col), next(col[n] for n in TIME if n in col)
        rows, line_no = [], []
        for i, row in enumerate(csv.reader(lines[head_i + 1:], delimiter=delim), start=head_i + 2):
            if any(c.strip() for c in row):
                rows.append(row)
                line_no.append(i)
        width = len(header)
        grid = np.array([(r + [""] * width)[:width] for r in rows], dtype=object).reshape(len(rows), width)
        dotted = any("." in c for c in grid[:8, di])   # DD.MM.YYYY: German, never month first
        order = "DMY" if dotted and self.options.date_order == "auto" else self.options.date_order
        date = np.array([c.strip().replace(".", "/").replace("-", "/") for c in grid[:, di]], dtype=object)
        time = np.array([c.strip() for c in grid[:, ti]], dtype=object)
        wall = _wall(date, time, order, path)
        epoch = _epoch_s(meta, wall, path)
        device = Device(meta.get("device") or "Actiwatch (type not recorded)", epoch, meta.get("serial", ""))
        t_ns, err = linear_times(wall, participant.tz, path)
        fields = {}
        for name, j in col.items():
            field = VALUE_COLUMNS.get(name)
            if field is not None and field not in fields:
                fields[field] = clean_number_text(grid[:, j])
        if "activity" not in fields:
            raise SourceError(f"{path}, line {head_i + 1}: the epoch table has no Activity / Activité / Aktivität "
                              f"column; export the activity column from Actiware")
        time_text = np.array([f"{d} {t}" for d, t in zip(grid[:, di], grid[:, ti])], dtype=object)
        return native_parts(participant, path, device, t_ns, time_text, np.array(line_no, np.int64), fields, err)


def _find_header(lines: list[str], path: Path) -> tuple[int, str, list[str]]:
    """(index, separator, names) of the epoch table's header: the first line naming a date, a time and activity."""
    for i, line in enumerate(lines):
        low = line.lower()
        if not any(d in low for d in DATE) or not any(t in low for t in TIME):
            continue
        for delim in (",", ";", "\t"):
            names = next(csv.reader([line], delimiter=delim), [])
            norm = {_norm(n) for n in names}
            if any(d in norm for d in DATE) and any(t in norm for t in TIME) and \
                    any(VALUE_COLUMNS.get(n) == "activity" for n in norm):
                return i, delim, names
    raise SourceError(f"{path}: no epoch-by-epoch table: no line names Date/Datum, Time/Heure/Zeit and "
                      f"Activity/Activité/Aktivität columns; export the epoch-by-epoch data from Actiware "
                      f"(English, French or German)")


def _preamble(lines: list[str], delim: str) -> dict[str, str]:
    """Device type, serial number and epoch length from the preamble's ``"Name:","value",...`` lines."""
    out: dict[str, str] = {}
    for row in csv.reader(lines, delimiter=delim):
        if len(row) < 2:
            continue
        key = _norm(row[0])
        if key in EPOCH_KEYS:
            out["epoch"] = row[1].strip()
        elif key in DEVICE_KEYS:
            out["device"] = row[1].strip()
        elif key in SERIAL_KEYS:
            out["serial"] = row[1].strip()
    return out


def _wall(date: np.ndarray, time: np.ndarray, order: str, path: Path) -> np.ndarray:
    """Naive wall ns of each epoch under the date order (module docstring); NAT where a cell does not parse."""
    text = np.array([f"{d} {t}" for d, t in zip(date, time)], dtype=object)
    tfmt = "%H:%M:%S"
    candidates = {o: wall_ns_of(text, f"{ORDERS[o]} {tfmt}") for o in (ORDERS if order == "auto" else (order,))}
    if order != "auto":
        return candidates[order]
    fits = {o: w for o, w in candidates.items() if _consecutive(w)}
    if len(fits) == 1:
        return next(iter(fits.values()))
    if len(fits) == 2 and np.array_equal(fits["DMY"], fits["MDY"]):
        return fits["DMY"]
    if len(fits) == 2:
        raise SourceError(f"{path}: the dates read as DD/MM and as MM/DD both give consecutive epochs; set "
                          f"options.date_order to DMY (UK, French, German exports) or MDY (US exports)")
    # neither order fits everywhere (damaged rows): the one that parses more cells
    return max(candidates.values(), key=lambda w: int((w != timeparse.NAT).sum()))


def _consecutive(wall: np.ndarray) -> bool:
    ok = wall[wall != timeparse.NAT]
    if ok.size == 0 or ok.size < wall.size:
        return False
    step = np.diff(ok)
    return bool(((step >= 0) & (step <= DAY_NS)).all())


def _epoch_s(meta: dict[str, str], wall: np.ndarray, path: Path) -> float:
    """The preamble's epoch length, else the most common step between rows."""
    if "epoch" in meta:
        try:
            return check_epoch(float(meta["epoch"].replace(",", ".")), path, "preamble epoch length")
        except ValueError:
            raise SourceError(f"{path}: the preamble's epoch length {meta['epoch']!r} is not a number of "
                              f"seconds") from None
    ok = wall[wall != timeparse.NAT]
    steps = np.diff(ok)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise SourceError(f"{path}: no epoch length in the preamble and fewer than two timed epochs to infer it from")
    vals, counts = np.unique(steps, return_counts=True)
    return check_epoch(int(vals[np.argmax(counts)]) / 1e9, path, "epoch inferred from the rows")
