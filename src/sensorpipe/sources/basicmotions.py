"""Activity-labelled motion recordings in the aeon/sktime ``.ts`` format (BasicMotions and its kind).

BasicMotions (UEA multivariate archive; shipped in aeon and sktime) holds 80
cases of 10 s of a smartwatch's 3-axis accelerometer and 3-axis gyroscope at
10 Hz, each labelled Standing, Walking, Running or Badminton (four students,
five recordings per activity). Layout: ``<path>`` is one ``.ts`` file or a
folder of them (``BasicMotions_TRAIN.ts``, ``BasicMotions_TEST.ts``); each file
is one unit whose participant id is the file stem (the files do not say which
student recorded which case).

The ``.ts`` format (aeon's "ts File Format"): ``#`` description lines, then
``@`` metadata lines (``@problemName``, ``@timeStamps``, ``@missing``,
``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
``@classLabel true <labels...>``) ending with ``@data``; then one case per
line: the dimensions separated by ``:``, each a comma-separated series
(``?`` = missing), and the class label last. Timestamped series
(``@timeStamps true``) and files without class labels are refused.

Time: the files hold no clock time and no sample rate. A file's recording
starts at the participants table's ``start_utc``, else ``options.start_utc``,
at ``options.sample_rate_hz`` (10 Hz for BasicMotions). Cases are laid out in
file order, back to back; each *run* of consecutive cases with the same label
starts on a new UTC minute, so no minute mixes two activities (the files
group cases by class, so BasicMotions' 10 cases of one class are 100 s: one
full minute and one of 40 s). Each run is one raw signal; a run shorter
than half a minute gives no minute features (the coverage rule), but keeps
its activity label.

Acceleration: dimensions ``options.acc_dims`` (default 0-2) in
``options.acc_unit`` (m/s^2). BasicMotions' acceleration has gravity removed
(at rest every axis averages about 0, not 9.8 m/s^2 in one direction), while
ENMO, MAD and the step counter work on ``|a|`` with gravity's 1 g in it. With
``gravity_removed: true`` (default) each sample is scaled along its own
direction so that ``|a'| = 1 g + |a|``: the extractor then sees the dynamic
magnitude on top of 1 g, ENMO is the mean dynamic acceleration magnitude and
steps are peaks of it (the orientation of gravity is not recorded, so it
cannot be added back as a vector). Set ``gravity_removed: false`` for files
whose acceleration includes gravity.

Labels: :meth:`BasicMotionsAdapter.activity_bouts` gives each run as a UTC
interval with its unified activity name (``options.labels`` maps the file's
class labels: Badminton -> racket_sports, Running, Standing, Walking); the
``basicmotions_activity`` label processor turns them into window labels and
events. The label is not a native row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from sensorpipe.config import ConfigError
from sensorpipe.core import timeparse
from sensorpipe.core.grid import MINUTE_NS
from sensorpipe.core.inputs import RawSignal, UnitInput
from sensorpipe.core.refs import UnitRef
from sensorpipe.schema.registry import SourceSchema
from sensorpipe.sources.base import SourceAdapter, SourceError, check_zone_option
from sensorpipe.units import UnitError, convert

DEFAULT_LABELS = {"Badminton": "racket_sports", "Running": "running", "Standing": "standing", "Walking": "walking"}


@dataclass(frozen=True)
class TsCases:
    """The cases of one ``.ts`` file: per case ``(dims, n)`` float64 values, its label and line number."""

    values: list[np.ndarray]
    labels: list[str]
    lines: list[int]
    class_labels: tuple[str, ...]


@dataclass(frozen=True)
class Run:
    """Consecutive cases of one label laid out as one recording."""

    label: str
    start_ns: int
    values: np.ndarray   # (n, dims)
    n_cases: int


class BasicMotionsAdapter(SourceAdapter):
    """aeon/sktime ``.ts`` files of activity-labelled accelerometer cases; one unit per file."""

    name = "basicmotions"
    description = ("Activity-labelled accelerometer cases in the aeon/sktime .ts format (BasicMotions: smartwatch, "
                   "10 Hz, 10-s cases of Standing, Walking, Running, Badminton); one unit per file")
    time_convention = ("no clock time in the file: cases laid out in file order from start_utc (participants table "
                       "or options), each run of one label starting on a new UTC minute, at options.sample_rate_hz")
    raw_kinds = ("acc",)
    drops = ("gyroscope dimensions (no canonical channel); the .ts description block; class labels become the "
             "activity label (not rows)")

    @dataclass(frozen=True)
    class Options:
        start_utc: str = "2018-01-01T00:00:00Z"   # ISO 8601 with Z or an offset; the files hold no time
        tz: str = "UTC"                            # zone for local-time features of participants not in the table
        sample_rate_hz: float = 10.0
        acc_dims: tuple[int, ...] = (0, 1, 2)
        acc_unit: str = "m/s^2"
        gravity_removed: bool = True
        labels: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_LABELS))

        def validate(self, path: str) -> None:
            from sensorpipe.core.labels import ACTIVITIES

            check_zone_option(self.tz, f"{path}.tz")
            if not self.sample_rate_hz > 0:
                raise ConfigError(f"{path}.sample_rate_hz must be positive, got {self.sample_rate_hz}")
            if len(self.acc_dims) != 3 or min(self.acc_dims) < 0:
                raise ConfigError(f"{path}.acc_dims must be three dimension indices (x, y, z), got {self.acc_dims}")
            try:
                convert(np.zeros(1), self.acc_unit, "mg")
            except UnitError as e:
                raise ConfigError(f"{path}.acc_unit: {e}") from None
            bad = {k: v for k, v in self.labels.items() if v not in ACTIVITIES}
            if bad:
                raise ConfigError(f"{path}.labels maps {bad} to names outside the activity classes "
                                  f"({', '.join(ACTIVITIES)})")
            if _start_ns(self.start_utc) is None:
                raise ConfigError(f"{path}.start_utc {self.start_utc!r} is not ISO 8601 with Z or an offset")

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=(),
                            raw_signals=(f"dims {list(self.options.acc_dims)}:acc[{self.options.acc_unit}]",))

    def list_units(self) -> list[UnitRef]:
        root = self.root
        files = [root] if root.is_file() else sorted(p for p in root.glob("*.ts") if p.is_file())
        if not files:
            raise SourceError(f"source {self.source.name!r}: no .ts file under {root}; fix sources[].path")
        table = self.participants()
        return [self.unit_ref(self.resolve_participant(f.stem, table, f), [f]) for f in files]

    def read_unit(self, unit: UnitRef) -> UnitInput:
        path = Path(unit.files[0])
        sigs = []
        for run in self.runs(unit):
            acc = _acc_mg(run.values[:, list(self.options.acc_dims)], self.options.acc_unit,
                          self.options.gravity_removed)
            sigs.append(RawSignal("acc", run.start_ns, self.options.sample_rate_hz, acc, "mg", str(path)))
        return UnitInput(unit, [], sigs)

    def runs(self, unit: UnitRef) -> list[Run]:
        """The file's cases grouped into runs of one label, each starting on a whole UTC minute."""
        path = Path(unit.files[0])
        cases = read_ts(path)
        need = max(self.options.acc_dims) + 1
        if cases.values and cases.values[0].shape[0] < need:
            raise SourceError(f"{path}: cases have {cases.values[0].shape[0]} dimensions but options.acc_dims "
                              f"{list(self.options.acc_dims)} needs {need}; fix options.acc_dims")
        unknown = sorted(set(cases.labels) - set(self.options.labels))
        if unknown:
            line = cases.lines[cases.labels.index(unknown[0])]
            raise SourceError(f"{path}, line {line}: class label {unknown[0]!r} has no activity: add it to "
                              f"sources[{self.source.name}].options.labels (e.g. {unknown[0]}: other_exercise)")
        t_ns = self._start_ns(unit, path)
        step_ns = 1e9 / self.options.sample_rate_hz
        edges = [0] + [i for i in range(1, len(cases.labels)) if cases.labels[i] != cases.labels[i - 1]]
        out = []
        for a, b in zip(edges, edges[1:] + [len(cases.labels)]):
            values = np.concatenate([v.T for v in cases.values[a:b]])
            out.append(Run(self.options.labels[cases.labels[a]], t_ns, values, b - a))
            end_ns = t_ns + round(values.shape[0] * step_ns)
            t_ns = -(-end_ns // MINUTE_NS) * MINUTE_NS
        return out

    def activity_bouts(self, unit: UnitRef) -> list[tuple[int, int, str]]:
        """``(start_utc_ns, end_utc_ns, activity)`` of each run: the span of its samples (end exclusive)."""
        step_ns = 1e9 / self.options.sample_rate_hz
        return [(r.start_ns, r.start_ns + round(r.values.shape[0] * step_ns), r.label) for r in self.runs(unit)]

    def _start_ns(self, unit: UnitRef, path: Path) -> int:
        text = unit.participant.attributes.get("start_utc", "").strip() or self.options.start_utc
        t = _start_ns(text)
        if t is None:
            raise SourceError(f"{path}: start_utc {text!r} of {unit.participant.participant_id} (participants table "
                              f"{self.source.participants}) is not ISO 8601 with Z or an offset")
        return t


def _start_ns(text: str) -> int | None:
    t_ns, err = timeparse.parse_iso(pa.array([text]))
    return None if err is not None else int(t_ns[0])


def _acc_mg(a: np.ndarray, unit: str, gravity_removed: bool) -> np.ndarray:
    """Acceleration in mg; gravity-free vectors lengthened by 1 g along themselves (``|a'| = 1000 + |a|`` mg)."""
    mg = convert(np.asarray(a, np.float64), unit, "mg")
    if not gravity_removed:
        return mg
    r = np.sqrt((mg ** 2).sum(axis=1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = mg * (1.0 + 1000.0 / r)
    still = (r[:, 0] == 0)
    out[still] = (0.0, 0.0, 1000.0)   # no motion at all: any direction, magnitude 1 g
    return out


# --- the .ts format ---------------------------------------------------------------------------------------------
def read_ts(path: Path) -> TsCases:
    """Parse a classification ``.ts`` file; errors name the file, the line and the fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not a UTF-8 text .ts file ({e}); re-export it or move it out of the "
                          f"source folder") from None
    meta: dict[str, str] = {}
    lines = text.splitlines()
    data_at = None
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not s.startswith("@"):
            raise SourceError(f"{path}, line {i + 1}: data before the @data line; not a .ts file (a .ts file has "
                              f"#-comments, @-metadata, then @data and one case per line)")
        key, _, value = s[1:].partition(" ")
        if key.lower() == "data":
            data_at = i + 1
            break
        meta[key.lower()] = value.strip()
    if data_at is None:
        raise SourceError(f"{path}: no @data line; not a .ts file (truncated, or another format)")
    if meta.get("timestamps", "false").lower() == "true":
        raise SourceError(f"{path}: @timeStamps true is not supported; export the series without timestamps")
    cl = meta.get("classlabel", "").split()
    if not cl or cl[0].lower() != "true" or len(cl) < 2:
        raise SourceError(f"{path}: needs '@classLabel true <labels...>': the activity label of each case comes "
                          f"from its class label")
    class_labels = tuple(cl[1:])
    n_dims = _int_meta(meta, "dimensions", path)
    length = _int_meta(meta, "serieslength", path) if meta.get("equallength", "").lower() == "true" else None
    values, labels, where = [], [], []
    for i in range(data_at, len(lines)):
        s = lines[i].strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split(":")
        label, dims = parts[-1].strip(), parts[:-1]
        if label not in class_labels:
            raise SourceError(f"{path}, line {i + 1}: class label {label!r} is not declared in @classLabel "
                              f"({' '.join(class_labels)}); the line may be cut short")
        if not dims or (n_dims is not None and len(dims) != n_dims):
            raise SourceError(f"{path}, line {i + 1}: {len(dims)} dimensions, the header says {n_dims}")
        try:
            arr = [np.array([np.nan if v.strip() == "?" else float(v) for v in d.split(",")]) for d in dims]
        except ValueError as e:
            raise SourceError(f"{path}, line {i + 1}: not a number ({e}); each dimension is a comma-separated "
                              f"series of numbers or ?") from None
        n = {a.size for a in arr}
        if len(n) != 1 or (length is not None and n != {length}):
            raise SourceError(f"{path}, line {i + 1}: dimension lengths {sorted(a.size for a in arr)}; every "
                              f"dimension of a case must have the same length" +
                              (f" (@seriesLength {length})" if length is not None else ""))
        if values and len(arr) != values[0].shape[0]:
            raise SourceError(f"{path}, line {i + 1}: {len(arr)} dimensions, earlier cases have {values[0].shape[0]}")
        values.append(np.vstack(arr))
        labels.append(label)
        where.append(i + 1)
    if not values:
        raise SourceError(f"{path}: no case after @data; the file is empty or truncated")
    return TsCases(values, labels, where, class_labels)


def _int_meta(meta: dict[str, str], key: str, path: Path) -> int | None:
    if key not in meta:
        return None
    try:
        v = int(meta[key])
    except ValueError:
        raise SourceError(f"{path}: @{key} {meta[key]!r} is not a whole number") from None
    if v < 1:
        raise SourceError(f"{path}: @{key} {v} must be at least 1")
    return v
