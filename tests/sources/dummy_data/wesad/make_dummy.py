"""Writes a WESAD subject folder ``S2/`` with a 70-s ``S2.pkl`` in the exact layout and pickle dialect of WESAD.

The pickle (3.4 MB: 700-Hz float64 chest arrays) is not checked in: the
adapter test calls :func:`write` into a temporary folder. Checked in, and
rewritten by ``python tests/sources/dummy_data/wesad/make_dummy.py`` (run from
the repository root; add ``--pickle`` to write ``S2/S2.pkl`` here too):
``participants.csv`` (``start_utc`` per subject) and ``S2/S2_respiban.txt``,
the RespiBAN raw file's OpenSignals header (which ``start_from: respiban``
reads: date ``2017-5-22``, time ``11:11:0.0``) and its first five rows. No
WESAD file is available offline: the header's device and sensor fields follow
OpenSignals headers in general, not a WESAD original; only ``date`` and
``time`` are used.

Pickle dialect: WESAD's files were written by Python 2 with numpy 1.x, pickle
protocol 2: dictionary keys and array buffers are Python 2 byte strings
(``SHORT_BINSTRING``/``BINSTRING``, so Python 3 must read them with
``encoding="latin1"``), arrays are rebuilt by
``numpy.core.multiarray._reconstruct`` and dtypes by ``numpy.dtype('f8', 0,
1)``. :func:`py2_pickle` emits exactly those opcodes (Python 3's pickler
cannot: it writes ``BINUNICODE`` keys and ``_codecs.encode`` buffers).

Content (start 2017-05-22 09:11:00 UTC = 11:11:00 Europe/Berlin):

- chest (700 Hz, 49,000 samples, arrays ``(N, 1)`` and ACC ``(N, 3)``):
  ``ECG`` 72 bpm in mV, ``Resp`` 15 breaths/min in %, ``ACC`` (0, 0.66, 0.88) g
  (|a| = 1.1 g: ENMO 100 mg), ``EDA`` 5.0 uS, ``Temp`` 34.0 degC, ``EMG`` noise.
- wrist: ``BVP`` 64 Hz 72 bpm (E4 ``a.u.``), ``ACC`` 32 Hz (0, 0, 64) in
  1/64 g (ENMO 0), ``EDA`` 4 Hz 0.8 uS, ``TEMP`` 4 Hz 32.5 degC. The E4 cut
  its streams a fraction of a second apart, as in real subjects: ``EDA`` has
  281 samples (70.25 s) and ``TEMP`` 279 (69.75 s).
- ``label`` (700 Hz, int32): 0 for 0-5 s, 1 (baseline) 5-25 s, 0 25-28 s,
  2 (stress) 28-48 s, 7 48-53 s, 3 (amusement) 53-63 s, 4 (meditation)
  63-70 s.
"""

import json
import struct
import sys
from pathlib import Path

import neurokit2 as nk
import numpy as np

HERE = Path(__file__).parent
DURATION_S = 70
CHEST_HZ = 700
LABEL_RUNS = ((0, 5), (1, 20), (0, 3), (2, 20), (7, 5), (3, 10), (4, 7))  # (id, seconds)


def _str(b: bytes) -> bytes:
    """A Python 2 ``str``: SHORT_BINSTRING up to 255 bytes, else BINSTRING."""
    if len(b) < 256:
        return b"U" + bytes([len(b)]) + b
    return b"T" + struct.pack("<i", len(b)) + b


def _int(i: int) -> bytes:
    return b"K" + bytes([i]) if 0 <= i < 256 else b"J" + struct.pack("<i", i)


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _array(a: np.ndarray) -> bytes:
    """``numpy.core.multiarray._reconstruct(ndarray, (0,), 'b')`` + BUILD state, as numpy 1.x under Python 2."""
    a = np.ascontiguousarray(a)
    dtype = (b"cnumpy\ndtype\n" + _tuple([_str(a.dtype.str[1:].encode()), _int(0), _int(1)]) + b"R"
             + _tuple([_int(3), _str(a.dtype.str[:1].encode()), b"N", b"N", b"N", _int(-1), _int(-1), _int(0)])
             + b"b")
    state = _tuple([_int(1), _tuple([_int(s) for s in a.shape]), dtype, b"\x89", _str(a.tobytes())])
    return (b"cnumpy.core.multiarray\n_reconstruct\n" + _tuple([b"cnumpy\nndarray\n", _tuple([_int(0)]), _str(b"b")])
            + b"R" + state + b"b")


def _value(v) -> bytes:
    if isinstance(v, dict):
        return b"}(" + b"".join(_str(k.encode()) + _value(x) for k, x in v.items()) + b"u"
    if isinstance(v, np.ndarray):
        return _array(v)
    if isinstance(v, str):
        return _str(v.encode())
    raise TypeError(type(v))


def py2_pickle(obj: dict) -> bytes:
    """Protocol-2 pickle of nested dicts of str keys, str values and numpy arrays, as Python 2 wrote it."""
    return b"\x80\x02" + _value(obj) + b"."


def subject() -> dict:
    n = DURATION_S * CHEST_HZ
    ecg = nk.ecg_simulate(duration=DURATION_S, sampling_rate=CHEST_HZ, heart_rate=72, random_state=21)
    resp = nk.rsp_simulate(duration=DURATION_S, sampling_rate=CHEST_HZ, respiratory_rate=15, method="sinusoidal",
                           random_state=22)
    bvp = nk.ppg_simulate(duration=DURATION_S, sampling_rate=64, heart_rate=72, random_state=23)
    col = lambda x: np.asarray(x, np.float64).reshape(-1, 1)
    chest = {"ACC": np.tile([0.0, 0.66, 0.88], (n, 1)), "ECG": col(ecg / ecg.max() * 1.2),
             "EMG": col(np.random.default_rng(24).normal(0, 0.01, n)), "EDA": col(np.full(n, 5.0)),
             "Temp": col(np.full(n, 34.0)), "Resp": col(resp / np.abs(resp).max() * 5.0)}
    wrist = {"ACC": np.tile([0.0, 0.0, 64.0], (DURATION_S * 32, 1)), "BVP": col(bvp * 50.0),
             "EDA": col(np.full(281, 0.8)), "TEMP": col(np.full(279, 32.5))}
    label = np.concatenate([np.full(s * CHEST_HZ, i, np.int32) for i, s in LABEL_RUNS])
    return {"signal": {"chest": chest, "wrist": wrist}, "label": label, "subject": "S2"}


RESPIBAN_ROWS = ("0\t0\t32874\t6193\t32802\t29632\t33152\t33568\t30720\t32542",
                 "1\t0\t32880\t6193\t32809\t29632\t33154\t33568\t30722\t32541",
                 "2\t0\t32883\t6194\t32799\t29633\t33151\t33566\t30720\t32540",
                 "3\t0\t32881\t6193\t32801\t29632\t33152\t33569\t30719\t32541",
                 "4\t0\t32879\t6193\t32805\t29632\t33153\t33567\t30721\t32542")


def respiban_text() -> str:
    dev = {"00:07:80:D8:AB:58": {
        "sensor": ["RAW"] * 8, "device name": "00:07:80:D8:AB:58",
        "column": ["nSeq", "DI", "CH1", "CH2", "CH3", "CH4", "CH5", "CH6", "CH7", "CH8"], "sync interval": 2,
        "time": "11:11:0.0", "comments": "", "device connection": "BTH00:07:80:D8:AB:58",
        "channels": [1, 2, 3, 4, 5, 6, 7, 8], "date": "2017-5-22", "mode": 0, "digital IO": [0, 1],
        "firmware version": 770, "device": "virtual_plux", "position": 0, "sampling rate": 700,
        "label": ["CH1", "CH2", "CH3", "CH4", "CH5", "CH6", "CH7", "CH8"], "resolution": [16] * 8,
        "special": [{}] * 8}}
    return "# OpenSignals Text File Format\n# " + json.dumps(dev) + "\n# EndOfHeader\n" + "\n".join(RESPIBAN_ROWS) + "\n"


def write(folder: Path, pickle: bool = True) -> Path:
    """Write ``participants.csv``, ``S2/S2_respiban.txt`` and (``pickle``) ``S2/S2.pkl`` under ``folder``."""
    path = folder / "S2" / "S2.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    (folder / "participants.csv").write_text("participant_id,tz,start_utc\nS2,Europe/Berlin,2017-05-22T09:11:00Z\n")
    (path.parent / "S2_respiban.txt").write_text(respiban_text())
    if pickle:
        path.write_bytes(py2_pickle(subject()))
    return path


if __name__ == "__main__":
    write(HERE, pickle="--pickle" in sys.argv[1:])
