"""TCX and GPX activity files, streamed with ElementTree ``iterparse``.

TCX (Garmin Training Center Database v2): ``Activity[@Sport]/Lap/Track/
Trackpoint`` with ``Time``, ``HeartRateBpm/Value``, ``DistanceMeters``
(cumulative), ``Cadence`` and the ActivityExtension ``TPX/RunCadence``.
GPX 1.1: ``trk[type]/trkseg/trkpt`` with ``time`` and the Garmin
TrackPointExtension (v1 or v2) ``hr`` and ``cad``; GPX has no distance.
Elements are matched by local name, so any namespace prefix works. Times are
ISO-8601 with ``Z``. ``source_row`` is the 1-based ordinal of the trackpoint
in the file. Lap summaries, positions, altitude, speed, power and
temperature are not read (see the adapter's ``drops``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.core import timeparse
from sensorpipe.sources._toolkit.xml_files import local_name, xml_error
from sensorpipe.sources.garmin._common import Track, is_step_sport, to_float
from sensorpipe.sources.base import SourceError


class _Points:
    """Column lists filled one trackpoint at a time."""

    def __init__(self) -> None:
        self.time: list = []
        self.hr: list = []
        self.cad: list = []
        self.dist: list = []
        self.step: list = []
        self.sport: list = []

    def add(self, time, hr, cad, dist, step: bool, sport: str = "") -> None:
        self.time.append(time)
        self.hr.append(hr)
        self.cad.append(cad)
        self.dist.append(dist)
        self.step.append(step)
        self.sport.append(sport)

    def track(self) -> Track:
        n = len(self.time)
        time = pa.array(self.time, pa.string())
        t_ns, err = timeparse.parse_iso(time) if n else (np.zeros(0, np.int64), None)
        return Track(time=time, t_utc_ns=t_ns, time_error=err, heart_rate=pa.array(self.hr, pa.string()),
                     cadence=to_float(self.cad), step_sport=np.array(self.step, bool),
                     distance_m=to_float(self.dist), has_distance=np.array([d is not None for d in self.dist], bool),
                     row=np.arange(1, n + 1, dtype=np.int64), sport=np.array(self.sport, dtype=str))


def _events(path: Path, root_name: str, kind: str):
    """(event, local name, element) from iterparse; checks the root element."""
    try:
        it = ET.iterparse(str(path), events=("start", "end"))
        first = True
        for ev, el in it:
            name = local_name(el.tag)
            if first:
                first = False
                if name != root_name:
                    raise SourceError(f"{path}: root element is <{name}>, not <{root_name}>: not a {kind} file; "
                                      f"give it the right extension or move it out of the source folder")
            yield ev, name, el
    except ET.ParseError as e:
        raise xml_error(path, kind, e) from None
    except LookupError as e:   # the XML declaration names an encoding Python does not know
        raise SourceError(f"{path}: the XML declaration's encoding is not readable ({e}); the {kind} file is "
                          f"damaged: export it again") from None


def read_tcx(path: Path) -> Track:
    pts = _Points()
    step, sport = False, ""
    for ev, name, el in _events(path, "TrainingCenterDatabase", "TCX"):
        if ev == "start":
            if name == "Activity":
                sport = (el.get("Sport") or "").strip()
                step = is_step_sport(sport)
            continue
        if name != "Trackpoint":
            continue
        t = hr = cad = run_cad = dist = None
        for c in el.iter():
            n = local_name(c.tag)
            if n == "Time":
                t = c.text
            elif n == "Value":  # HeartRateBpm/Value: the only Value inside a Trackpoint
                hr = (c.text or "").strip()
            elif n == "DistanceMeters":
                dist = (c.text or "").strip()
            elif n == "Cadence":
                cad = c.text
            elif n == "RunCadence":
                run_cad = c.text
        pts.add(t, hr, run_cad if run_cad is not None else cad, dist, step, sport)
        el.clear()
    return pts.track()


def read_gpx(path: Path) -> Track:
    pts = _Points()
    step = in_trk = False
    sport = ""
    depth = 0
    for ev, name, el in _events(path, "gpx", "GPX"):
        if ev == "start":
            depth += 1
            if name == "trk":
                step, in_trk, sport = False, True, ""
            continue
        depth -= 1
        if name == "trk":
            in_trk = False
        elif name == "type" and in_trk and depth == 2:  # gpx/trk/type, not a trkpt's or a waypoint's type
            sport = (el.text or "").strip()
            step = is_step_sport(sport)
        if name != "trkpt":
            continue
        t = hr = cad = None
        for c in el.iter():
            n = local_name(c.tag)
            if n == "time":
                t = c.text
            elif n == "hr":
                hr = (c.text or "").strip()
            elif n == "cad":
                cad = c.text
        pts.add(t, hr, cad, None, step, sport)
        el.clear()
    return pts.track()
