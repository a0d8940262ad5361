"""Writes this folder's OpenSignals recordings in OpenSignals (r)evolution's text layout.

Run from the repository root: ``python tests/sources/dummy_data/opensignals/make_dummy.py``.

The headers copy the two styles real files have (both seen in PyPI samples:
pyhrv 0.5.0 ``SampleECG.txt`` and biosignalsnotebooks 0.6.14
``signal_samples/*.txt``): ``# OpenSignals Text File Format``, ``# {JSON}``
(one entry per device MAC), ``# EndOfHeader``, then tab-separated integer rows
ending with a tab. The ADC values are physical test signals passed through the
inverse of each sensor's transfer function (see the adapter's docstring), so
the tests know what the adapter must give back.

- ``bit01/opensignals_201606110703.txt``: BITalino (r)evolution, 100 Hz, 10-bit
  analog, LF line ends, spaced JSON, unpadded ``"time": "7:3:47.29"``
  (07:03:47.029). A1 ``PZT`` respiration 15 breaths/min, A2 ``ECG`` 72 bpm
  (1 mV R waves), A3 ``EDABITREV`` EDA 6 uS. 6,500 sample times (65 s); rows
  2000-2002 were lost in transmission (the 4-bit nSeq jumps 15 -> 3 modulo 16):
  6,497 rows.
- ``plux02/opensignals_201903121356.txt``: biosignalsplux, 50 Hz, 16-bit, CRLF,
  compact JSON, ``"time": "13:56:2.261"``. CH1 ``RESPIRATION`` 12 breaths/min,
  CH2-CH4 ``XYZ`` accelerometer at rest tilted so |a| = 1.2 g (ENMO 200 mg),
  CH5 ``TEMP`` (NTC) 33.0 degC, CH6 ``EMG`` (no minute feature: not used).
  A cut file: nSeq starts at 1000, so the first row is 20 s after the header
  time. 3,250 rows (65 s).
"""

import json
from pathlib import Path

import neurokit2 as nk
import numpy as np

HERE = Path(__file__).parent
NTC_A = (1.12764514e-3, 2.34282709e-4, 8.77303013e-8)


def header(devices: dict, compact: bool = False) -> str:
    sep = (",", ":") if compact else (", ", ": ")
    return "# OpenSignals Text File Format\n# " + json.dumps(devices, separators=sep) + "\n# EndOfHeader\n"


def rows(columns: list[np.ndarray], newline: str = "\n") -> str:
    data = np.column_stack(columns).astype(np.int64)
    return "".join("\t".join(map(str, r)) + "\t" + newline for r in data)


def bitalino() -> str:
    fs, n = 100, 6500
    resp = nk.rsp_simulate(duration=65, sampling_rate=fs, respiratory_rate=15, method="sinusoidal", random_state=1)
    ecg_mv = nk.ecg_simulate(duration=65, sampling_rate=fs, heart_rate=72, random_state=2)
    ecg_mv = ecg_mv / np.max(ecg_mv)  # R waves of 1 mV
    a1 = np.round((resp / np.abs(resp).max() * 0.3 + 0.5) * 1024)           # PZT: (x - 0.5) * 100 %
    a2 = np.round((ecg_mv / 1000 * 1100 / 3.3 + 0.5) * 1024)                 # ECG: (x - 0.5) * 3.3 / 1100 V
    a3 = np.full(n, round(6.0 * 0.132 / 3.3 * 1024))                          # EDA: x * 3.3 / 0.132 uS
    nseq = np.arange(n) % 16
    keep = np.r_[0:2000, 2003:n]
    dev = {"98:D3:31:B2:B8:E1": {
        "sensor": ["PZT", "ECG", "EDABITREV"], "device name": "98:D3:31:B2:B8:E1",
        "column": ["nSeq", "I1", "I2", "O1", "O2", "A1", "A2", "A3"], "sync interval": 2, "time": "7:3:47.29",
        "comments": "", "device connection": "BTH98:D3:31:B2:B8:E1", "channels": [1, 2, 3], "date": "2016-6-11",
        "mode": 0, "digital IO": [0, 0, 1, 1], "firmware version": 1281, "device": "bitalino_rev", "position": 0,
        "sampling rate": fs, "label": ["A1", "A2", "A3"], "resolution": [4, 1, 1, 1, 1, 10, 10, 10],
        "special": [{}, {}, {}]}}
    ones, zeros = np.ones(n), np.zeros(n)
    cols = [nseq, ones, ones, zeros, zeros, a1, a2, a3]
    return header(dev) + rows([c[keep] for c in cols])


def ntc_adc(temp_c: float, bits: int) -> int:
    """Inverse of the NTC transfer function (bisection on x = ADC / 2**bits)."""
    lo, hi = 1e-6, 1 - 1e-6
    for _ in range(80):
        mid = (lo + hi) / 2
        ln_r = np.log(1e4 * mid / (1 - mid))
        t = 1 / (NTC_A[0] + NTC_A[1] * ln_r + NTC_A[2] * ln_r ** 3) - 273.15
        lo, hi = (mid, hi) if t > temp_c else (lo, mid)  # temperature falls as resistance rises
    return round(lo * 2 ** bits)


def plux() -> str:
    fs, n = 50, 3250
    resp = nk.rsp_simulate(duration=65, sampling_rate=fs, respiratory_rate=12, method="sinusoidal", random_state=3)
    ch1 = np.round((resp / np.abs(resp).max() * 0.2 + 0.5) * 65536)
    g_to_adc = lambda g: np.full(n, round((g + 1) / 2 * 10000 + 28000))     # ACC: 2 (ADC - 28000) / 10000 - 1
    ch2, ch3, ch4 = g_to_adc(0.0), g_to_adc(0.72), g_to_adc(0.96)             # |(0, 0.72, 0.96)| = 1.2 g
    ch5 = np.full(n, ntc_adc(33.0, 16))
    ch6 = 32768 + np.round(np.random.default_rng(4).normal(0, 300, n))
    dev = {"00:07:80:4D:2E:AD": {
        "sensor": ["RESPIRATION", "XYZ", "XYZ", "XYZ", "TEMP", "EMG"], "device name": "00:07:80:4D:2E:AD",
        "column": ["nSeq", "DI", "CH1", "CH2", "CH3", "CH4", "CH5", "CH6"], "sync interval": 2,
        "time": "13:56:2.261", "comments": "", "device connection": "BTH00:07:80:4D:2E:AD",
        "channels": [1, 2, 3, 4, 5, 6], "keywords": "", "convertedValues": 0, "mode": 0, "digital IO": [0, 1],
        "firmware version": 773, "device": "biosignalsplux", "position": 0, "sampling rate": fs,
        "label": ["CH1", "CH2", "CH3", "CH4", "CH5", "CH6"], "resolution": [16] * 6, "date": "2019-3-12",
        "special": [{}] * 6}}
    cols = [1000 + np.arange(n), np.zeros(n), ch1, ch2, ch3, ch4, ch5, ch6]
    return header(dev, compact=True).replace("\n", "\r\n") + rows(cols, "\r\n")


if __name__ == "__main__":
    for rel, text in (("bit01/opensignals_201606110703.txt", bitalino()),
                      ("plux02/opensignals_201903121356.txt", plux())):
        (HERE / rel).parent.mkdir(exist_ok=True)
        (HERE / rel).write_bytes(text.encode())
    (HERE / "participants.csv").write_text("participant_id,tz\nbit01,Europe/Lisbon\nplux02,Europe/Lisbon\n")
