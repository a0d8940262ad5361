"""Writes this folder's Garmin activity files: a FIT run, a TCX ride (p01) and a GPX run (p02).

Formats as Garmin writes them: the FIT file follows the FIT protocol 2.0
(14-byte header with ".FIT" and header CRC, definition + data messages,
little endian, file CRC; file_id, record, session and activity messages with
the profile's field numbers, scales and invalid values); the TCX and GPX are
laid out like Garmin Connect's exports (the same namespaces, Lap summaries,
ActivityExtension TPX and TrackPointExtension elements as the real exports in
``tests/data/garmin/``). Faults, as seen in real files:

* FIT: record 10 has an invalid heart rate (0xFF, no reading), record 20 a
  heart rate of 20 bpm (out of range), record 30 a device-relative "system
  time" timestamp (1000 s: before 1998, implausible).
* TCX: a heart rate of 0 (strap lost), the last trackpoint of lap 1 repeated
  as the first of lap 2, a time without a zone, a trackpoint with only a time.
* GPX: a trackpoint without extensions and one with an empty ``hr`` element.

Run from the repository root: ``python tests/sources/dummy_data/garmin_activity/make_dummy.py``.
"""

from __future__ import annotations

import struct
from pathlib import Path

HERE = Path(__file__).parent
FIT_EPOCH_S = 631_065_600
_CRC = [0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
        0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400]


def fit_crc(data: bytes, crc: int = 0) -> int:
    for byte in data:
        for nibble in (byte & 0xF, byte >> 4):
            tmp = _CRC[crc & 0xF]
            crc = ((crc >> 4) & 0x0FFF) ^ tmp ^ _CRC[nibble]
    return crc


#: base types: (code, struct format)
ENUM, UINT8, UINT16, UINT32, UINT32Z = (0x00, "B"), (0x02, "B"), (0x84, "H"), (0x86, "I"), (0x8C, "I")


class FitWriter:
    """Definition + data messages on local message types 0..3, normal headers only."""

    def __init__(self) -> None:
        self.body = bytearray()
        self.defs: dict[int, tuple[int, list]] = {}

    def define(self, local: int, global_num: int, fields: list[tuple[int, tuple[int, str]]]) -> None:
        self.body += struct.pack("<BBBHB", 0x40 | local, 0, 0, global_num, len(fields))
        for num, (code, fmt) in fields:
            self.body += struct.pack("<BBB", num, struct.calcsize(fmt), code)
        self.defs[local] = (global_num, fields)

    def write(self, local: int, *values: int) -> None:
        _, fields = self.defs[local]
        self.body += struct.pack("<B", local)
        for (_, (_, fmt)), v in zip(fields, values):
            self.body += struct.pack("<" + fmt, v)

    def bytes(self) -> bytes:
        header = struct.pack("<BBHI4s", 14, 0x20, 2132, len(self.body), b".FIT")
        header += struct.pack("<H", fit_crc(header))
        data = header + bytes(self.body)
        return data + struct.pack("<H", fit_crc(data))


def fit_run() -> bytes:
    """90 records at 1 Hz from 2024-03-10 06:59:30 UTC (01:59:30 EST, just before the DST jump)."""
    start = 1_710_053_970 - FIT_EPOCH_S
    w = FitWriter()
    w.define(0, 0, [(0, ENUM), (1, UINT16), (2, UINT16), (3, UINT32Z), (4, UINT32)])  # file_id
    w.write(0, 4, 1, 2691, 3950859721, start)  # activity, garmin, fr935
    # record: timestamp, heart_rate, cadence (strides/min), distance (1/100 m), fractional_cadence (1/128)
    w.define(1, 20, [(253, UINT32), (3, UINT8), (4, UINT8), (5, UINT32), (53, UINT8)])
    for i in range(90):
        hr = 0xFF if i == 10 else 20 if i == 20 else 120 + i // 10
        ts = 1000 if i == 30 else start + i
        w.write(1, ts, hr, 85, 300 * i, 64)  # 3 m/s, 85.5 strides/min = 171 steps/min
    # session: timestamp, start_time, total_elapsed_time (ms), sport, sub_sport
    w.define(2, 18, [(253, UINT32), (2, UINT32), (7, UINT32), (5, ENUM), (6, ENUM)])
    w.write(2, start + 90, start, 90_000, 1, 0)  # running, generic
    # activity: timestamp, total_timer_time (ms), num_sessions, type
    w.define(3, 34, [(253, UINT32), (0, UINT32), (1, UINT16), (2, ENUM)])
    w.write(3, start + 90, 90_000, 1, 0)
    return w.bytes()


TCX_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<TrainingCenterDatabase
  xsi:schemaLocation="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2 http://www.garmin.com/xmlschemas/TrainingCenterDatabasev2.xsd"
  xmlns:ns5="http://www.garmin.com/xmlschemas/ActivityGoals/v1"
  xmlns:ns3="http://www.garmin.com/xmlschemas/ActivityExtension/v2"
  xmlns:ns2="http://www.garmin.com/xmlschemas/UserProfile/v2"
  xmlns="http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ns4="http://www.garmin.com/xmlschemas/ProfileExtension/v1">
  <Activities>
    <Activity Sport="Biking">
      <Id>2024-03-11T14:00:00.000Z</Id>
"""


def tcx_point(time: str, hr: int | None = None, dist: float | None = None, cad: int | None = None) -> str:
    if hr is None:
        return f"          <Trackpoint>\n            <Time>{time}</Time>\n          </Trackpoint>\n"
    return f"""          <Trackpoint>
            <Time>{time}</Time>
            <Position>
              <LatitudeDegrees>52.15776275843382</LatitudeDegrees>
              <LongitudeDegrees>4.491067975759506</LongitudeDegrees>
            </Position>
            <AltitudeMeters>-20.200000762939453</AltitudeMeters>
            <DistanceMeters>{dist}</DistanceMeters>
            <HeartRateBpm>
              <Value>{hr}</Value>
            </HeartRateBpm>
            <Cadence>{cad}</Cadence>
            <Extensions>
              <ns3:TPX>
                <ns3:Speed>5.5</ns3:Speed>
                <ns3:Watts>162</ns3:Watts>
              </ns3:TPX>
            </Extensions>
          </Trackpoint>
"""


def tcx_lap(start: str, points: list[str], seconds: float, meters: float) -> str:
    return (f"""      <Lap StartTime="{start}">
        <TotalTimeSeconds>{seconds}</TotalTimeSeconds>
        <DistanceMeters>{meters}</DistanceMeters>
        <MaximumSpeed>5.5</MaximumSpeed>
        <Calories>1</Calories>
        <AverageHeartRateBpm>
          <Value>113</Value>
        </AverageHeartRateBpm>
        <Intensity>Active</Intensity>
        <Cadence>80</Cadence>
        <TriggerMethod>Manual</TriggerMethod>
        <Track>
""" + "".join(points) + """        </Track>
        <Extensions>
          <ns3:LX>
            <ns3:AvgSpeed>5.5</ns3:AvgSpeed>
            <ns3:AvgWatts>160</ns3:AvgWatts>
          </ns3:LX>
        </Extensions>
      </Lap>
""")


def tcx_ride() -> str:
    t = "2024-03-11T14:00:0{}.000Z".format
    lap1 = [tcx_point(t(0), 110, 0.0, 80), tcx_point(t(1), 112, 5.5, 81), tcx_point(t(2), 0, 11.0, 82),
            tcx_point(t(3), 115, 16.5, 82)]
    lap2 = [tcx_point(t(3), 115, 16.5, 82),                       # lap 1's last point, repeated
            tcx_point("2024-03-11T14:00:04.000", 116, 22.0, 83),  # no zone: unparseable
            tcx_point(t(5)),                                       # time only (paused)
            tcx_point(t(6), 118, 33.0, 84)]
    laps = tcx_lap(t(0), lap1, 3.0, 16.5) + tcx_lap(t(3), lap2, 3.0, 16.5)
    return (TCX_HEAD + laps + """      <Creator xsi:type="Device_t">
        <Name>Edge 1000</Name>
        <UnitId>3907354759</UnitId>
        <ProductID>1836</ProductID>
      </Creator>
    </Activity>
  </Activities>
</TrainingCenterDatabase>
""")


def gpx_point(time: str, hr: str | None, cad: int | None) -> str:
    ext = "" if hr is None else f"""
        <extensions>
          <ns3:TrackPointExtension>
            <ns3:atemp>9.0</ns3:atemp>
            <ns3:hr>{hr}</ns3:hr>
            <ns3:cad>{cad}</ns3:cad>
          </ns3:TrackPointExtension>
        </extensions>"""
    return f"""      <trkpt lat="52.157762758433818817138671875" lon="4.4910679757595062255859375">
        <ele>-20.200000762939453125</ele>
        <time>{time}</time>{ext}
      </trkpt>
"""


def gpx_run() -> str:
    pts = [("2024-11-03T05:59:58.000Z", "140", 88), ("2024-11-03T05:59:59.000Z", "141", 88),
           ("2024-11-03T06:00:00.000Z", "142", 89), ("2024-11-03T06:00:01.000Z", None, None),
           ("2024-11-03T06:00:02.000Z", "", 90), ("2024-11-03T06:00:03.000Z", "143", 90)]
    return ("""<?xml version="1.0" encoding="UTF-8"?>
<gpx creator="Garmin Connect" version="1.1"
  xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/11.xsd"
  xmlns:ns3="http://www.garmin.com/xmlschemas/TrackPointExtension/v1"
  xmlns="http://www.topografix.com/GPX/1/1"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:ns2="http://www.garmin.com/xmlschemas/GpxExtensions/v3">
  <metadata>
    <link href="connect.garmin.com">
      <text>Garmin Connect</text>
    </link>
    <time>2024-11-03T05:59:58.000Z</time>
  </metadata>
  <trk>
    <name>Berlin Running</name>
    <type>running</type>
    <trkseg>
""" + "".join(gpx_point(*p) for p in pts) + """    </trkseg>
  </trk>
</gpx>
""")


if __name__ == "__main__":
    (HERE / "p01").mkdir(exist_ok=True)
    (HERE / "p02").mkdir(exist_ok=True)
    (HERE / "p01" / "2024-03-10-01-59-30.fit").write_bytes(fit_run())
    (HERE / "p01" / "activity_ride.tcx").write_text(tcx_ride())
    (HERE / "p02" / "activity_run.gpx").write_text(gpx_run())
    (HERE / "participants.csv").write_text("participant_id,tz\np01,America/New_York\np02,Europe/Berlin\n")
