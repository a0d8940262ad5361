"""Fitbit Web API responses saved as JSON: intraday activity and heart rate, and the daily series.

This is what the Fitbit Web API (``api.fitbit.com/1/user/-/activities/...``)
returns and what most research apps store: one response per file, or a JSON
array of responses (apps that append one day after another). The layout of the
source path is the Takeout adapter's: a folder of participant folders (the
folder name is the participant id), or with ``options.participant_id`` one
participant's folder or one file. Every ``*.json`` file found is read.

A response is a JSON object with any of these keys (``<res>``: ``steps``,
``calories``, ``distance``, ``floors``, ``elevation``, ``heart``, and the
``tracker-`` variants such as ``tracker-steps``):

=====================================  ==============================================================
key                                    shape
=====================================  ==============================================================
``activities-<res>``                   daily series ``[{"dateTime": "2024-03-10", "value": "8123"}]``
                                       (heart: ``"value": {"restingHeartRate": 61, "heartRateZones":
                                       [...]}``)
``activities-<res>-intraday``          ``{"dataset": [{"time": "00:00:00", "value": 0}, ...],
                                       "datasetInterval": 1, "datasetType": "minute"}`` (heart at 1 s:
                                       ``"datasetType": "second"``; activity at 1, 5 or 15 minutes)
=====================================  ==============================================================

What becomes what:

- intraday ``steps``, ``calories``, ``distance`` -> channels ``steps``,
  ``calories``, ``distance``; intraday ``heart`` -> ``heart_rate``. A point
  of a 5- or 15-minute series stands for its whole interval: a total (a
  channel whose minute aggregation is ``sum``: steps, calories, distance) is
  **spread evenly** over the interval's minutes, a rate (heart rate) is
  **repeated** on each of them, so 15-minute steps do not land in one minute
  at 15 times their rate. Every minute row keeps the point's index as its row.
- intraday ``floors`` -> channel ``floors`` (spread like steps).
- daily ``heart`` -> ``resting_heart_rate`` at local midnight of its date.
- daily totals (``activities-steps`` and the other daily series), intraday
  ``elevation`` (no channel holds height climbed) and resources this adapter
  has no channel for -> unmapped fields ``daily.<res>`` / ``intraday.<res>``,
  quarantined as ``unknown_field``: counted, never mixed into the minutes.

Times: an intraday point's ``time`` carries no date. The date is the
response's own daily series date (``activities-<res>[0].dateTime``), else a
``YYYY-MM-DD`` in the file name, else the file is refused. A time earlier than
the one before it starts the next day (a window across midnight). Times are
the account's local wall clock (the API's default), read in the participant's
IANA zone with the DST rules of :mod:`sensorpipe.core.timeparse`;
``options.times: utc`` reads responses fetched with ``timezone=UTC``.

Distance is in kilometres or miles depending on the request's
``Accept-Language`` (``en_US``: miles, else metric). The file does not say
which, so a response with distance needs ``options.distance_unit`` (``km`` or
``mi``): there is no silent default.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from sensorpipe import channels
from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources._toolkit.intervals import spread_table
from sensorpipe.sources._toolkit.text_csv import json_text, native_part, parse_local_safe, read_json
from sensorpipe.sources.base import SourceAdapter, SourceError, check_zone_option

#: intraday resource -> canonical channel
INTRADAY_CHANNELS = {"steps": "steps", "calories": "calories", "distance": "distance", "floors": "floors",
                     "heart": "heart_rate"}
RESTING = "daily.heart.restingHeartRate"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_KEY = re.compile(r"activities-(?:tracker-)?(?P<res>[A-Za-z][\w-]*?)(?P<intraday>-intraday)?")
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")
_INTERVAL_MIN = (1, 5, 15)


def _intraday_field(res: str) -> str:
    return f"intraday.{res}"


def _fields(distance_unit: str) -> tuple[FieldSpec, ...]:
    out = [FieldSpec(_intraday_field("steps"), "steps", "steps/min"),
           FieldSpec(_intraday_field("calories"), "calories", "kcal/min"),
           FieldSpec(_intraday_field("distance"), "distance", f"{distance_unit}/min"),
           FieldSpec(_intraday_field("heart"), "heart_rate", "bpm"),
           FieldSpec(RESTING, "resting_heart_rate", "bpm"),
           FieldSpec(_intraday_field("floors"), "floors", "floors/min")]
    return tuple(out)


class FitbitWebApiAdapter(SourceAdapter):
    """Fitbit Web API JSON responses (activity and heart rate, intraday and daily), one folder per participant."""

    name = "fitbit_webapi"
    description = ("Fitbit Web API JSON responses (activities-<resource>[-intraday]): intraday steps, calories, "
                   "distance, floors (1/5/15 min, spread or repeated per minute), heart rate (1 s/1 min), daily "
                   "resting heart rate")
    time_convention = ("intraday 'HH:MM:SS' on the response's daily-series date (else a YYYY-MM-DD in the file "
                       "name; a time earlier than the previous one is the next day), the account's local wall clock "
                       "in the participant's IANA zone (options.times: utc for timezone=UTC responses); daily values "
                       "at local midnight")
    channels = ("steps", "calories", "distance", "floors", "heart_rate", "resting_heart_rate")
    drops = ("daily totals (activities-steps and other daily series), heart-rate zones, intraday elevation and "
             "resources without a channel are kept as unmapped fields daily.<res> / intraday.<res> and quarantined "
             "as unknown_field; intraday 'level'/'mets' extras are not kept")

    @dataclass(frozen=True)
    class Options:
        participant_id: str | None = None     # the source path is this participant's folder or file
        tz: str | None = None                 # IANA zone when the participants table has no row
        times: Literal["local", "utc"] = "local"
        distance_unit: Literal["km", "mi"] | None = None  # km (metric accounts) or mi (Accept-Language en_US)

        def validate(self, path: str) -> None:
            check_zone_option(self.tz, f"{path}.tz")

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention,
                            fields=_fields(self.options.distance_unit or "km"))

    # --- units -----------------------------------------------------------
    def list_units(self) -> list[UnitRef]:
        table, root = self.participants(), self.root
        pid = self.options.participant_id
        if root.is_file():
            if not pid:
                raise SourceError(f"{root}: one response file names no participant: set "
                                  f"sources[{self.source.name}].options.participant_id (convert: --participant ID)")
            return [self.unit_ref(self.resolve_participant(pid, table, root), [root])]
        groups = [(pid, root)] if pid else [(p.name, p) for p in sorted(root.iterdir()) if p.is_dir()]
        if not pid:
            loose = [p for p in sorted(root.iterdir()) if p.is_file() and p.suffix.lower() == ".json"]
            if loose:
                raise SourceError(f"{loose[0]}: response files directly under {root}; put each participant's "
                                  f"files in a folder named after the participant, or set options.participant_id")
        units = []
        for who, folder in groups:
            files = sorted(p for p in folder.rglob("*.json") if p.is_file() and not p.name.startswith("."))
            if files:
                units.append(self.unit_ref(self.resolve_participant(who, table, folder), files))
        if not units:
            raise SourceError(f"source {self.source.name!r}: no Fitbit Web API response (*.json) under {root}")
        return units

    # --- reading ---------------------------------------------------------
    def read_unit(self, unit: UnitRef) -> UnitInput:
        parts: list[pa.Table] = []
        for f in unit.files:
            parts.extend(_FileReader(Path(f), unit.participant, self.options).parts())
        return UnitInput(unit, parts)


class _FileReader:
    """One response file -> native parts: one per (response, series), every point counted once as a row."""

    def __init__(self, path: Path, who: Participant, options: Any) -> None:
        self.path, self.who, self.options = path, who, options
        self.row = 0          # running index of points in the file: a point's rows share it
        self.stream = 0       # one time stream per series, for the repeated DST hour

    def parts(self) -> list[pa.Table]:
        responses = _responses(self.path)
        out: list[pa.Table] = []
        for i, resp in enumerate(responses):
            where = f"{self.path}, response {i + 1}" if len(responses) > 1 else str(self.path)
            keys = [(k, _KEY.fullmatch(k)) for k in resp]
            series = [(k, m) for k, m in keys if m]
            if not series:
                raise SourceError(f"{where}: not a Fitbit Web API activities response (keys {sorted(resp)[:6]}); "
                                  f"expected 'activities-<resource>' and/or 'activities-<resource>-intraday'")
            dates = {m["res"]: _first_date(resp[k]) for k, m in series if not m["intraday"]}
            for key, m in series:
                res = m["res"]
                if m["intraday"]:
                    out.extend(self._intraday(resp[key], res, dates.get(res), f"{where}, {key}"))
                else:
                    out.extend(self._daily(resp[key], res, f"{where}, {key}"))
        return out

    # --- daily series ------------------------------------------------------
    def _daily(self, series: Any, res: str, where: str) -> list[pa.Table]:
        if not isinstance(series, list):
            raise SourceError(f"{where}: expected a list of {{dateTime, value}} records, found {type(series).__name__}")
        n = len(series)
        dates = [json_text(d.get("dateTime")) if isinstance(d, dict) else None for d in series]
        values = [d.get("value") if isinstance(d, dict) else d for d in series]
        rows = self._rows(n)
        field = np.full(n, f"daily.{res}", object)
        if res == "heart":
            values = [v.get("restingHeartRate") if isinstance(v, dict) and "restingHeartRate" in v else v
                      for v in values]
            resting = np.array([isinstance(d, dict) and isinstance(d.get("value"), dict)
                                and "restingHeartRate" in d["value"] for d in series], bool)
            field[resting] = RESTING
        time = [f"{d} 00:00:00" if isinstance(d, str) and _DATE.fullmatch(d) else d for d in dates]
        return [self._part(field, time, _value_array(values), rows)]

    # --- intraday series ---------------------------------------------------
    def _intraday(self, body: Any, res: str, date: str | None, where: str) -> list[pa.Table]:
        if not isinstance(body, dict) or not isinstance(body.get("dataset"), list):
            raise SourceError(f"{where}: expected {{\"dataset\": [...], \"datasetInterval\": n, \"datasetType\": "
                              f"...}}, found {type(body).__name__}")
        points = body["dataset"]
        interval_min = self._interval_min(body, where)
        if not points:
            return []
        date = date or _date_in_name(self.path)
        if date is None:
            raise SourceError(f"{where}: the intraday times carry no date and the response has no daily "
                              f"'activities-{res}' series; put the date (YYYY-MM-DD) in the file name")
        times = [json_text(p.get("time")) if isinstance(p, dict) else None for p in points]
        values = [p.get("value") if isinstance(p, dict) else p for p in points]
        try:
            stamps = _dated_times(date, times)
        except ValueError:   # a YYYY-MM-DD that is no calendar date (2024-13-45)
            raise SourceError(f"{where}: the series date {date!r} is not a calendar date; fix the response's "
                              f"dateTime or the date in the file name") from None
        rows = self._rows(len(points))
        channel = INTRADAY_CHANNELS.get(res)
        mapped = channel is not None
        if res == "distance" and self.options.distance_unit is None:
            raise SourceError(f"{where}: distance without a unit: the Web API writes km or miles by the request's "
                              f"Accept-Language (en_US: miles); set options.distance_unit to km or mi")
        field = np.full(len(points), _intraday_field(res), object)
        part = self._part(field, stamps, _value_array(values), rows)
        if interval_min == 1 or not mapped:
            return [part]
        return [spread_table(part, interval_min, np.full(len(points), channels.get(channel).aggregation == "sum"))]

    def _interval_min(self, body: dict, where: str) -> int:
        """The series' spacing in minutes: 1 for seconds (each sample is placed at its second)."""
        kind, n = body.get("datasetType", "minute"), body.get("datasetInterval", 1)
        if kind == "second":
            return 1
        if kind != "minute" or n not in _INTERVAL_MIN:
            raise SourceError(f"{where}: datasetType {kind!r} with datasetInterval {n!r} is not a Web API detail "
                              f"level (1sec, 1min, 5min, 15min)")
        return int(n)

    # --- helpers -------------------------------------------------------------
    def _rows(self, n: int) -> np.ndarray:
        rows = np.arange(self.row, self.row + n, dtype=np.int64)
        self.row += n
        return rows

    def _times(self, stamps: list) -> tuple[np.ndarray, np.ndarray | None]:
        raw = pa.array(stamps, pa.string())
        tz = "UTC" if self.options.times == "utc" else self.who.tz
        self.stream += 1
        return parse_local_safe(raw, TIME_FORMAT, tz, np.full(len(stamps), self.stream, np.int64), self.path)

    def _part(self, field: np.ndarray, stamps: list, value: pa.Array, rows: np.ndarray) -> pa.Table:
        t_ns, err = self._times(stamps)
        return native_part(self.who.participant_id, pa.array(field, pa.string()), pa.array(stamps, pa.string()),
                           t_ns, err, value, self.path, rows)


def _responses(path: Path) -> list[dict]:
    """The file's responses: one JSON object, or an array of them."""
    doc = read_json(path, "a Fitbit Web API response is a JSON object with activities-* keys", "fetch it again")
    docs = doc if isinstance(doc, list) else [doc]
    bad = next((i for i, d in enumerate(docs) if not isinstance(d, dict)), None)
    if bad is not None or not docs:
        found = type(docs[bad]).__name__ if bad is not None else "an empty array"
        raise SourceError(f"{path}: expected a Web API response (a JSON object) or an array of them, found "
                          f"{found}{f' at index {bad}' if isinstance(doc, list) and bad is not None else ''}")
    return docs


def _first_date(series: Any) -> str | None:
    if isinstance(series, list) and series and isinstance(series[0], dict):
        d = series[0].get("dateTime")
        if isinstance(d, str) and _DATE.fullmatch(d):
            return d
    return None


def _date_in_name(path: Path) -> str | None:
    m = _DATE_IN_NAME.search(path.name)
    return m.group(1) if m else None


def _dated_times(date: str, times: list[str | None]) -> list[str | None]:
    """``date`` + each ``HH:MM[:SS]``; a time earlier than the previous one moves to the next day.

    A time that is not a clock time keeps its text (``<date> <text>``), so
    the time parser quarantines it as written.
    """
    day = dt.date.fromisoformat(date)
    prev = -1
    out = []
    for t in times:
        m = _TIME.fullmatch(t.strip()) if isinstance(t, str) else None
        if m is None:
            out.append(f"{day.isoformat()} {t}")
            continue
        sec = int(m[1]) * 3600 + int(m[2]) * 60 + int(m[3] or 0)
        if sec < prev:
            day += dt.timedelta(days=1)
        prev = sec
        out.append(f"{day.isoformat()} {int(m[1]):02d}:{m[2]}:{m[3] or '00'}")
    return out


def _value_array(values: list) -> pa.Array:
    """Numbers stay numbers; a series that mixes in text or objects is kept as text (quarantine shows it)."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return pa.array([float(v) for v in values], pa.float64())
    return pa.array([json_text(v) for v in values], pa.string())
