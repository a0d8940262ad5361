"""Writes this folder's EDF+ recordings with pyedflib (EDFlib), as a polysomnography or lab recorder would.

Run from the repository root: ``python tests/sources/dummy_data/edf/make_dummy.py``.

Both files are EDF+C with 1-s data records, 16-bit samples, an annotation
signal, and a filled-in patient field (EDF+ order: code, sex, birth date, name with '_' for
spaces; the name must never reach the output).
Signals are physical test signals written as digital values through each
signal's header scaling, so the tests know what the adapter must give back.

- ``rec01.edf``: starts 2024-06-03 10:00:00 local, 70 s. ``ECG II`` in uV at
  128 Hz, 72 bpm with 1000-uV R waves; three R peaks (samples 2242, 4803,
  5865) are clipped at the digital maximum (saturated: read as NaN). ``Thor`` and
  ``Abdo`` respiration belts at 16 Hz (15 breaths/min; only ``Thor`` is
  used), ``EDA`` in uS at 8 Hz (4.0 uS), ``Temp skin`` in degC at 1 Hz
  (33.5 degC), ``EMG chin`` in uV at 128 Hz (no minute feature: not used).
- ``rec02.edf``: starts 2024-06-04 22:30:00 local, 70 s. ``EKG`` in mV at
  256 Hz, 60 bpm; ``GSR`` in uS at 4 Hz (2.5 uS).
"""

import datetime as dt
from pathlib import Path

import neurokit2 as nk
import numpy as np
import pyedflib

HERE = Path(__file__).parent
DURATION_S = 70


def signal(label, unit, fs, pmin, pmax, prefilter=""):
    return {"label": label, "dimension": unit, "sample_frequency": fs, "physical_min": pmin, "physical_max": pmax,
            "digital_min": -32768, "digital_max": 32767, "transducer": "", "prefilter": prefilter}


def to_digital(x, h):
    scale = (h["digital_max"] - h["digital_min"]) / (h["physical_max"] - h["physical_min"])
    d = np.round((np.asarray(x, float) - h["physical_min"]) * scale + h["digital_min"])
    return np.clip(d, h["digital_min"], h["digital_max"]).astype(np.int32)


def write(path, start, headers, physical, patient):
    w = pyedflib.EdfWriter(str(path), len(headers), file_type=pyedflib.FILETYPE_EDFPLUS)
    try:
        w.setSignalHeaders(headers)
        w.setStartdatetime(start)
        w.setPatientName(patient)
        w.setPatientCode("MRN-0042")
        w.setBirthdate(dt.date(1980, 1, 2))
        w.setSex(0)
        w.setEquipment("LabRecorder_2")
        w.writeSamples([to_digital(x, h) for x, h in zip(physical, headers)], digital=True)
    finally:
        w.close()


def rec01():
    n = DURATION_S
    ecg_uv = nk.ecg_simulate(duration=n, sampling_rate=128, heart_rate=72, random_state=5)
    ecg_uv = ecg_uv / ecg_uv.max() * 1000.0
    peaks = np.flatnonzero(ecg_uv > 990)[:8]
    ecg_uv[peaks] = 5000.0                                     # clipped at the recorder's range
    resp = nk.rsp_simulate(duration=n, sampling_rate=16, respiratory_rate=15, method="sinusoidal", random_state=6)
    emg = np.random.default_rng(7).normal(0, 20, n * 128)
    headers = [signal("ECG II", "uV", 128, -3000, 3000, "HP:0.5Hz LP:40Hz"),
               signal("Thor", "mV", 16, -2, 2), signal("Abdo", "mV", 16, -2, 2),
               signal("EDA", "uS", 8, 0, 50), signal("Temp skin", "degC", 1, 20, 45),
               signal("EMG chin", "uV", 128, -500, 500)]
    physical = [ecg_uv, resp, 0.5 * resp, np.full(n * 8, 4.0), np.full(n, 33.5), emg]
    write(HERE / "rec01.edf", dt.datetime(2024, 6, 3, 10, 0, 0), headers, physical, "Jane_Doe")


def rec02():
    n = DURATION_S
    ecg_mv = nk.ecg_simulate(duration=n, sampling_rate=256, heart_rate=60, random_state=8)
    headers = [signal("EKG", "mV", 256, -5, 5), signal("GSR", "uS", 4, 0, 25)]
    physical = [ecg_mv / ecg_mv.max(), np.full(n * 4, 2.5)]
    write(HERE / "rec02.edf", dt.datetime(2024, 6, 4, 22, 30, 0), headers, physical, "John_Roe")


if __name__ == "__main__":
    rec01()
    rec02()
    (HERE / "participants.csv").write_text("participant_id,tz\nrec01,America/New_York\nrec02,America/New_York\n")
