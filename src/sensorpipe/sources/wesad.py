"""WESAD (Schmidt et al. 2018): chest RespiBAN and wrist Empatica E4 recordings of a lab stress protocol.

Layout: ``<path>/S<k>/S<k>.pkl``, one per subject, as the dataset ships it
(or ``<path>`` is one ``S<k>/S<k>.pkl``: that subject alone)
(the folders also hold ``S<k>_quest.csv``, ``S<k>_readme.txt``,
``S<k>_respiban.txt`` and ``S<k>_E4_Data.zip``, which are not read, except
``S<k>_respiban.txt``'s header with ``start_from: respiban``). The pickle is
a Python 2 dictionary (read with ``encoding="latin1"``)::

    {'subject': 'S2',
     'signal': {'chest': {'ACC': (N, 3) g, 'ECG': (N, 1) mV, 'EMG': (N, 1) mV,
                          'EDA': (N, 1) uS, 'Temp': (N, 1) degC, 'Resp': (N, 1) %},  # 700 Hz
                'wrist': {'ACC': (M, 3) 1/64 g at 32 Hz, 'BVP': 64 Hz, 'EDA': uS at 4 Hz,
                          'TEMP': degC at 4 Hz}},
     'label': (N,) condition id at 700 Hz}

The chest and wrist streams were synchronised by the dataset authors and
start together; the wrist values are the E4's native units.

Security: unpickling can run arbitrary code. Only files named ``S<k>.pkl``
inside a folder ``S<k>`` under the configured path (symbolic links leaving it
are refused) are opened, and they are read by an unpickler that resolves no
global but numpy's array and dtype reconstructors, and those to inert
stand-ins: the arrays are then built from their recorded shape, numeric dtype
and bytes with ``numpy.frombuffer`` (numpy's own unpickling code never sees
the file). Any other object in the file is an error naming it, and so is a
structure that expands past the file's own size through shared references
(a memo-reference bomb: see :class:`_Builder`). Still, only
point this adapter at a WESAD copy you obtained from its authors.

Time: the pickle has no clock time (the dataset's readme gives none either;
``S<k>_quest.csv`` holds the protocol schedule in minutes from the start).
``start_from: participants`` (default) takes each subject's start from the
participants table column ``start_utc`` (ISO 8601 with ``Z`` or an offset);
``start_from: respiban`` reads the local date and time in the OpenSignals
header of ``S<k>_respiban.txt`` (the raw RespiBAN file) and places it in the
subject's zone (participants table, else ``options.tz``, default
``Europe/Berlin``: the study ran in Germany), assuming the pickle's chest
arrays begin with the RespiBAN file's first sample (not stated by the dataset;
check one subject before relying on it). A skipped spring-forward start is an
error naming the file; a repeated fall-back one is the first occurrence.

Channels, without counting any twice: ``prefer: chest`` (default) takes heart
rate from the chest ECG and ENMO, EDA and skin temperature from the chest;
``prefer: wrist`` takes heart rate from the wrist BVP and ENMO, EDA and
temperature from the wrist. Respiration exists only on the chest and is always
read. The other device's signals and EMG (no minute feature) are not used.

Labels: the ``label`` stream is exposed by :meth:`WesadAdapter.condition_segments`
(runs of one condition as UTC intervals), not as native rows: ids 1 baseline,
2 stress, 3 amusement, 4 meditation; 0 (not defined / transient) and 5, 6, 7
("should be ignored", per the dataset readme) give no segment.
"""

from __future__ import annotations

import io
import pickle
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from sensorpipe.core import timeparse
from sensorpipe.core.inputs import RawSignal, UnitInput
from sensorpipe.core.refs import UnitRef
from sensorpipe.schema.registry import SourceSchema
from sensorpipe.sources._toolkit import recording_start as _recording_start
from sensorpipe.sources._toolkit.memo import Memo, file_versions
from sensorpipe.sources._toolkit.opensignals_header import read_header
from sensorpipe.sources.base import SourceAdapter, SourceError

CHEST_HZ = 700.0
#: (device, key) -> (raw signal kind, native unit, sample rate, columns)
SIGNALS = {
    ("chest", "ECG"): ("ecg", "mV", CHEST_HZ, 1),
    ("chest", "Resp"): ("resp", "%", CHEST_HZ, 1),
    ("chest", "ACC"): ("acc", "g", CHEST_HZ, 3),
    ("chest", "EDA"): ("eda", "uS", CHEST_HZ, 1),
    ("chest", "Temp"): ("temp", "degC", CHEST_HZ, 1),
    ("chest", "EMG"): (None, "mV", CHEST_HZ, 1),
    ("wrist", "BVP"): ("ppg", "a.u.", 64.0, 1),
    ("wrist", "ACC"): ("acc", "1/64 g", 32.0, 3),
    ("wrist", "EDA"): ("eda", "uS", 4.0, 1),
    ("wrist", "TEMP"): ("temp", "degC", 4.0, 1),
}
USED = {
    "chest": (("chest", "ECG"), ("chest", "Resp"), ("chest", "ACC"), ("chest", "EDA"), ("chest", "Temp")),
    "wrist": (("wrist", "BVP"), ("chest", "Resp"), ("wrist", "ACC"), ("wrist", "EDA"), ("wrist", "TEMP")),
}
CONDITIONS = {1: "baseline", 2: "stress", 3: "amusement", 4: "meditation"}
IGNORED_LABELS = (0, 5, 6, 7)
_SUBJECT = re.compile(r"S\d+")


class WesadAdapter(SourceAdapter):
    """One WESAD subject pickle per unit; raw waveforms go through sensor processing."""

    name = "wesad"
    description = ("WESAD subject pickles: chest RespiBAN (ECG, respiration, ACC, EDA, temperature at 700 Hz) "
                   "and wrist E4")
    time_convention = ("no clock time in the pickle: the start is the participants table's start_utc (UTC) or the "
                       "local start in S<k>_respiban.txt's header; samples evenly spaced at each signal's rate")
    raw_kinds = ('ecg', 'ppg', 'resp', 'acc', 'eda', 'temp')
    drops = ("EMG; the non-preferred device's ECG/BVP, ACC, EDA and temperature (prefer: chest|wrist), so no "
             "channel is counted twice; the label stream (exposed by condition_segments, not as rows); "
             "S<k>_quest.csv, S<k>_readme.txt, S<k>_E4_Data.zip")

    @dataclass(frozen=True)
    class Options:
        prefer: Literal["chest", "wrist"] = "chest"
        start_from: Literal["participants", "respiban"] = "participants"
        tz: str = "Europe/Berlin"

    def schema(self) -> SourceSchema:
        used = USED[self.options.prefer]
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(),
                            raw_signals=tuple(f"{d}.{k}:{SIGNALS[(d, k)][0]}[{SIGNALS[(d, k)][1]}]" for d, k in used))

    def list_units(self) -> list[UnitRef]:
        root = self.root
        table = self.participants()
        if root.is_file():  # one subject's S<k>/S<k>.pkl: that subject alone (load_subject checks the name)
            if not (_SUBJECT.fullmatch(root.stem) and root.suffix == ".pkl" and root.parent.name == root.stem):
                raise SourceError(f"source {self.source.name!r}: {root} is not a WESAD subject file S<k>/S<k>.pkl; "
                                  f"give one (e.g. WESAD/S2/S2.pkl) or the WESAD folder holding the S<k> folders")
            who = _recording_start.participant(root.stem, table, self.options.tz, str(root), self.source.participants)
            return [self.unit_ref(who, [root])]
        units = []
        for folder in sorted((p for p in root.iterdir() if p.is_dir() and _SUBJECT.fullmatch(p.name)),
                             key=lambda p: int(p.name[1:])):
            pkl = folder / f"{folder.name}.pkl"
            if not pkl.is_file():
                continue
            _inside(pkl, root)
            who = _recording_start.participant(folder.name, table, self.options.tz, str(pkl), self.source.participants)
            units.append(self.unit_ref(who, [pkl]))
        if not units:
            raise SourceError(f"source {self.source.name!r}: no WESAD subject file S<k>/S<k>.pkl under {root}")
        return units

    def read_unit(self, unit: UnitRef) -> UnitInput:
        path = Path(unit.files[0])
        data = load_subject(path, self.root)
        start_ns = self._start_ns(unit, path)
        try:   # the condition labels need the label stream too: derived here, not by unpickling again
            _SEGMENTS.put(self._segments_key(unit, path), label_segments(data["label"], start_ns, CHEST_HZ, str(path)))
        except SourceError:
            pass   # a bad label stream is reported by the condition labels (condition_segments), not by the read
        signals = []
        for device, key in USED[self.options.prefer]:
            kind, native_unit, rate, _ = SIGNALS[(device, key)]
            values = data[device][key]
            signals.append(RawSignal(kind, start_ns, rate, values[:, 0] if values.shape[1] == 1 else values,
                                     native_unit, str(path)))
        return UnitInput(unit, [], signals)

    def condition_segments(self, unit: UnitRef) -> list[tuple[int, int, str]]:
        """``(start_utc_ns, end_utc_ns, condition)`` for each run of one protocol condition.

        ``end`` is exclusive (the first sample after the run). Runs of 0, 5, 6
        and 7 give no segment; any other id is an error naming the file.
        """
        path = Path(unit.files[0])

        def from_pickle() -> list[tuple[int, int, str]]:
            return label_segments(load_subject(path, self.root)["label"], self._start_ns(unit, path), CHEST_HZ, str(path))

        return list(_SEGMENTS.get(self._segments_key(unit, path), from_pickle))

    def _segments_key(self, unit: UnitRef, pkl: Path) -> tuple:
        """What places a subject's segments: the pickle's version, and the start (options, the participant's
        zone and start_utc, the RespiBAN header's version when the start comes from it)."""
        files = [pkl]
        if self.options.start_from == "respiban" and pkl.with_name(f"{pkl.stem}_respiban.txt").is_file():
            files.append(pkl.with_name(f"{pkl.stem}_respiban.txt"))
        return (file_versions(files), repr(sorted(self.source.options.items())), unit.participant.tz,
                unit.participant.attributes.get("start_utc", ""))

    def _start_ns(self, unit: UnitRef, pkl: Path) -> int:
        if self.options.start_from == "respiban":
            txt = pkl.with_name(f"{pkl.stem}_respiban.txt")
            if not txt.is_file():
                raise SourceError(f"{txt}: not found; start_from: respiban needs the subject's raw RespiBAN file "
                                  f"next to {pkl.name} (or use start_from: participants with a start_utc column)")
            dev = read_header(txt).devices[0]
            return _recording_start.local_start_ns(dev.start, unit.participant.tz, str(txt))
        text = unit.participant.attributes.get("start_utc", "").strip()
        if not text:
            raise SourceError(f"{pkl}: subject {unit.participant.participant_id} has no start time: add a start_utc "
                              f"column (ISO 8601 with Z or an offset) to the participants table "
                              f"({self.source.participants}) or set start_from: respiban")
        t_ns, err = timeparse.parse_iso(pa.array([text]))
        if err is not None:
            raise SourceError(f"participants table {self.source.participants}: start_utc {text!r} of "
                              f"{unit.participant.participant_id} is not ISO 8601 with Z or an offset")
        return int(t_ns[0])


#: condition segments per subject (small), stored by the read: a subject pickle is about 1 GB
_SEGMENTS = Memo(64)


def label_segments(label: np.ndarray, start_ns: int, rate_hz: float, where: str) -> list[tuple[int, int, str]]:
    """Runs of equal condition ids as UTC intervals (vectorized run-length encoding)."""
    lab = np.asarray(label).ravel()
    if lab.size == 0:
        return []
    known = np.isin(lab, list(CONDITIONS) + list(IGNORED_LABELS))
    if not known.all():
        i = int(np.argmin(known))
        raise SourceError(f"{where}: label {lab[i].item()!r} at sample {i} is not a WESAD condition id (0-7)")
    lab = lab.astype(np.int64)
    edges = np.flatnonzero(np.diff(lab)) + 1
    starts = np.r_[0, edges]
    ends = np.r_[edges, lab.size]
    to_ns = 1e9 / rate_hz
    return [(start_ns + int(round(s * to_ns)), start_ns + int(round(e * to_ns)), CONDITIONS[int(lab[s])])
            for s, e in zip(starts, ends) if int(lab[s]) in CONDITIONS]


def _inside(path: Path, root: Path) -> None:
    if not path.resolve().is_relative_to(root.resolve()):
        raise SourceError(f"{path}: resolves to {path.resolve()}, outside the source path {root}; refusing to "
                          f"unpickle it (pickles can run code)")


class _ArrayState:
    """Stands in for an array while unpickling: records what numpy's ``__setstate__`` would be given."""

    def __init__(self, *_: Any) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _DtypeState(_ArrayState):
    """Stands in for ``numpy.dtype(spec, align, copy)``."""

    def __init__(self, spec: Any = None, *_: Any) -> None:
        super().__init__()
        self.spec = spec


def _latin1(text: Any, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3 pickles bytes at protocol 2; only latin-1 text."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode is only accepted for latin-1 byte strings")
    return text.encode("latin1")


class _ArraysOnly(pickle.Unpickler):
    """Resolves only the globals a pickled numpy array needs, to inert stand-ins.

    numpy's own ``_reconstruct`` and ``dtype.__setstate__`` are never run on
    the file's bytes (a damaged dtype state can crash numpy's internals):
    :class:`_Builder` validates each recorded state and builds the array with
    ``numpy.frombuffer``. The only call that makes data, ``_codecs.encode``, may
    make no more bytes in all than the file holds: a pickle can call it again
    and again on one memoized string for a few bytes each (a memo-reference
    bomb), where a genuine pickle encodes each array's bytes once.
    """

    def __init__(self, file: io.BytesIO, size_bytes: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._bytes_left = size_bytes

    def _encode(self, text: Any, encoding: str = "latin1") -> bytes:
        out = _latin1(text, encoding)
        self._bytes_left -= len(out)
        if self._bytes_left < 0:
            raise _Bomb("its byte strings add up to more than the file's own size")
        return out

    def find_class(self, module: str, name: str) -> Any:
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return _ArrayState
        if (module, name) == ("numpy", "ndarray"):
            return _ArrayState
        if (module, name) == ("numpy", "dtype"):
            return _DtypeState
        if (module, name) == ("_codecs", "encode"):
            return self._encode
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a WESAD pickle holds only numpy arrays")


class _Bomb(Exception):
    """The pickle's shared references expand past what its size allows (a memo-reference bomb)."""


class _Builder:
    """Replaces every array stand-in of an unpickled object by its array (dicts, lists and tuples walked).

    Pickles share objects through their memo: a few bytes reference an
    earlier list again, so 700 bytes can describe nested lists of billions
    of elements that load as a small graph but expand when walked as a tree.
    A genuine pickle spends at least a byte per container or array, so the
    walk visits at most ``size_bytes`` of them, and the arrays' bytes (each
    shared array built once) add up to at most ``size_bytes`` as well; past
    either, :class:`_Bomb`.
    """

    def __init__(self, size_bytes: int) -> None:
        self.visits_left = size_bytes
        self.bytes_left = size_bytes
        self._built: dict[int, np.ndarray] = {}   # id(stand-in) -> its array (a shared array built once)

    def build(self, obj: Any) -> Any:
        self.visits_left -= 1
        if self.visits_left < 0:
            raise _Bomb("its shared references expand to more objects than the file has bytes")
        if isinstance(obj, _DtypeState):
            raise ValueError("a bare dtype where data was expected")
        if isinstance(obj, _ArrayState):
            if id(obj) not in self._built:
                arr = _to_array(obj)
                self.bytes_left -= arr.nbytes
                if self.bytes_left < 0:
                    raise _Bomb("its arrays add up to more bytes than the file holds")
                self._built[id(obj)] = arr
            return self._built[id(obj)]
        if isinstance(obj, dict):
            return {k: self.build(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.build(v) for v in obj)
        return obj


def _to_array(a: _ArrayState) -> np.ndarray:
    """A numeric array from a recorded ``(version, shape, dtype, fortran, data)`` state; ValueError if malformed."""
    st = a.state
    if not (isinstance(st, tuple) and len(st) == 5 and isinstance(st[2], _DtypeState)):
        raise ValueError("an array without the (version, shape, dtype, fortran, data) state")
    _, shape, dtype, fortran, data = st
    dstate = dtype.state if isinstance(dtype.state, tuple) and len(dtype.state) > 1 else (3, "<")
    order = dstate[1] if dstate[1] in ("<", ">", "|", "=") else None
    spec = dtype.spec
    if order is None or not isinstance(spec, str) or not re.fullmatch(r"[fiub]\d{1,2}", spec):
        raise ValueError(f"array dtype {spec!r} is not numeric")
    dt_ = np.dtype(("<" if order == "|" else order) + spec)
    if not (isinstance(shape, tuple) and all(isinstance(n, int) and n >= 0 for n in shape)):
        raise ValueError(f"array shape {shape!r}")
    buf = data.encode("latin1") if isinstance(data, str) else data
    if not isinstance(buf, bytes) or len(buf) != int(np.prod(shape, dtype=np.int64)) * dt_.itemsize:
        raise ValueError(f"array data does not fill shape {shape} of {dt_}")
    return np.frombuffer(buf, dt_).reshape(shape, order="F" if fortran else "C")


def load_subject(path: Path, root: Path) -> dict:
    """Unpickle one subject safely and check its structure; errors name the file and the fix."""
    if not (_SUBJECT.fullmatch(path.stem) and path.suffix == ".pkl" and path.parent.name == path.stem):
        raise SourceError(f"{path}: only WESAD subject files S<k>/S<k>.pkl are unpickled")
    _inside(path, root)
    try:
        raw = path.read_bytes()
        obj = _Builder(len(raw)).build(_ArraysOnly(io.BytesIO(raw), len(raw), encoding="latin1").load())
    except _Bomb as e:
        raise SourceError(f"{path}: refused: {e} (a memo-reference bomb: a few bytes that expand to a huge "
                          f"structure); this is not a WESAD subject pickle, re-extract it from the WESAD "
                          f"archive") from None
    except pickle.UnpicklingError as e:
        raise SourceError(f"{path}: not a WESAD subject pickle ({e})") from None
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, MemoryError,
            UnicodeError, RecursionError, struct.error) as e:
        raise SourceError(f"{path}: damaged or truncated pickle ({type(e).__name__}: {e}); re-extract it from the "
                          f"WESAD archive") from None
    return _checked(obj, path)


def _checked(obj: Any, path: Path) -> dict:
    """The subject dictionary with every used array as float64 ``(n, columns)``, or SourceError."""
    def fail(what: str) -> SourceError:
        return SourceError(f"{path}: {what}; not the WESAD S<k>.pkl layout ({{'subject', 'signal': {{'chest', "
                           f"'wrist'}}, 'label'}})")

    if not isinstance(obj, dict) or not isinstance(obj.get("signal"), dict) or "label" not in obj:
        raise fail("the top level is not a dict with 'signal' and 'label'")
    label = obj["label"]
    if not isinstance(label, np.ndarray) or label.ndim != 1 or label.dtype.kind not in "iuf":
        raise fail("'label' is not a 1-D numeric array")
    out: dict[str, Any] = {"label": label, "chest": {}, "wrist": {}}
    durations = {}
    for (device, key), (_, _, rate, cols) in SIGNALS.items():
        block = obj["signal"].get(device)
        if not isinstance(block, dict) or key not in block:
            raise fail(f"signal[{device!r}] has no {key!r}")
        arr = block[key]
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "iuf" or arr.size == 0:
            raise fail(f"signal[{device!r}][{key!r}] is not a numeric array")
        arr = arr.reshape(-1, 1) if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != cols:
            raise fail(f"signal[{device!r}][{key!r}] has shape {arr.shape}, expected (n, {cols})")
        out[device][key] = arr.astype(np.float64, copy=False)
        durations[f"{device}.{key}"] = arr.shape[0] / rate
    if label.shape[0] != out["chest"]["ECG"].shape[0]:
        raise fail(f"'label' has {label.shape[0]} samples but the chest signals {out['chest']['ECG'].shape[0]}")
    lo, hi = min(durations.values()), max(durations.values())
    if hi - lo > 1.0:
        listing = ", ".join(f"{k} {v:.1f} s" for k, v in durations.items())
        raise fail(f"signal durations differ by {hi - lo:.1f} s ({listing})")
    return out
