"""The three header lines of an OpenSignals text file: its devices, their columns, sensors and start.

Shared because two formats carry this header: OpenSignals exports (the
``opensignals`` adapter) and WESAD's ``S<k>_respiban.txt``, whose header gives
the acquisition start (the ``wesad`` adapter). Errors name the file and line.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path

from sensorpipe.sources.base import SourceError

FIRST_LINE = "# OpenSignals Text File Format"
#: sensor name (upper case, BITalino suffix ``BIT``/``BITREV`` removed) -> raw signal kind
SENSOR_KINDS = {"ECG": "ecg", "EDA": "eda", "GSR": "eda", "RESPIRATION": "resp", "RESP": "resp", "PZT": "resp",
                "RIP": "resp", "ACC": "acc", "CACC": "acc", "XYZ": "acc", "TEMP": "temp", "TMP": "temp",
                "NTC": "temp", "BVP": "ppg", "PPG": "ppg"}
PLUX_DEVICES = {"biosignalsplux", "channeller", "bioplux", "bioplux_exp", "swifter", "rachimeter",
                "biosignalspluxsolo", "ddme_openbanplux", "virtual_plux", "openbanplux", "respiban", "muscleban",
                "biosignalsplux_hybrid8", "plux"}


@dataclass(frozen=True)
class Channel:
    """One analog column of one device."""

    column: int          # index among all the file's columns
    label: str
    sensor: str          # normalized sensor name
    kind: str | None     # raw signal kind, None = not used
    resolution: int


@dataclass(frozen=True)
class Device:
    """One device's block of columns and what its header says."""

    mac: str
    device: str          # the header's device name
    family: str          # "bitalino" | "plux" | "" (unknown: no transfer function)
    rate_hz: float
    start: dt.datetime   # naive local acquisition start
    nseq_column: int
    channels: tuple[Channel, ...]
    converted: bool


@dataclass(frozen=True)
class Header:
    n_lines: int
    n_columns: int
    devices: tuple[Device, ...]


def read_header(path: Path, sensors: dict[str, str] | None = None,
                families: dict[str, str] | None = None) -> Header:
    """Parse the three header lines; errors name the file and line."""
    with path.open("rb") as fh:
        head = [fh.readline() for _ in range(3)]
    text = [h.decode("utf-8", errors="replace").rstrip("\r\n") for h in head]
    if not text[0].startswith(FIRST_LINE):
        raise SourceError(f"{path}, line 1: not an OpenSignals text file (expected {FIRST_LINE!r}); export the "
                          f"recording from OpenSignals as .txt")
    if not text[1].startswith("# {"):
        raise SourceError(f"{path}, line 2: expected '# {{...}}' (the JSON device header)")
    try:
        meta = json.loads(text[1][2:])
    except json.JSONDecodeError as e:
        raise SourceError(f"{path}, line 2: the JSON device header is damaged ({e})") from None
    if not text[2].startswith("# EndOfHeader"):
        raise SourceError(f"{path}, line 3: expected '# EndOfHeader'")
    if not isinstance(meta, dict) or not meta or not all(isinstance(v, dict) for v in meta.values()):
        raise SourceError(f"{path}, line 2: the JSON header must map each device to its settings")
    kinds = {**SENSOR_KINDS, **{k.upper(): v for k, v in (sensors or {}).items()}}
    devices, col = [], 0
    for mac, d in sorted(meta.items(), key=lambda kv: _int(kv[1].get("position"), 0)):
        try:
            dev, col = _device(mac, d, col, kinds, families or {})
        except (KeyError, TypeError, ValueError) as e:
            raise SourceError(f"{path}, line 2: device {mac}: header entry missing or malformed ({e!s}); "
                              f"expected sampling rate, column, label, sensor, resolution, date, time") from None
        devices.append(dev)
    return Header(3, col, tuple(devices))


def _int(v, default: int) -> int:
    return v if isinstance(v, int) else default


def _device(mac: str, d: dict, first_col: int, kinds: dict[str, str],
            families: dict[str, str]) -> tuple[Device, int]:
    columns, labels, sensors = list(d["column"]), list(d["label"]), list(d["sensor"])
    if len(labels) != len(sensors) or not set(labels) <= set(columns) or columns[0] != "nSeq":
        raise ValueError("column, label and sensor do not match")
    resolution = [int(r) for r in d["resolution"]][-len(labels):] if labels else []
    if len(resolution) != len(labels) or not all(1 <= r <= 24 for r in resolution):
        raise ValueError(f"resolution {d['resolution']}")
    rate = float(d["sampling rate"])
    if not 0 < rate <= 100_000:
        raise ValueError(f"sampling rate {rate}")
    device = str(d.get("device", ""))
    family = families.get(device) or ("bitalino" if device.lower().startswith("bitalino") else
                                      "plux" if device.lower() in PLUX_DEVICES else "")
    chans = []
    for label, sensor, res in zip(labels, sensors, resolution):
        norm = re.sub(r"(BITREV|BIT)$", "", str(sensor).upper()) or str(sensor).upper()
        kind = kinds.get(str(sensor).upper(), kinds.get(norm))
        chans.append(Channel(first_col + columns.index(label), label, norm, None if kind == "ignore" else kind, res))
    return Device(mac, device, family, rate, _start(str(d["date"]), str(d["time"])), first_col, tuple(chans),
                  bool(d.get("convertedValues", 0))), first_col + len(columns)


def _start(date: str, time: str) -> dt.datetime:
    """``2016-6-11`` + ``7:3:47.29`` (unpadded fields; the part after the dot is whole milliseconds)."""
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", date.strip())
    t = re.fullmatch(r"(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,3}))?", time.strip())
    if not m or not t:
        raise ValueError(f"date {date!r} / time {time!r}")
    return dt.datetime(int(m[1]), int(m[2]), int(m[3]), int(t[1]), int(t[2]), int(t[3]), int(t[4] or 0) * 1000)
