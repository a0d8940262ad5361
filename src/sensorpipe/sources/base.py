"""The adapter contract: one class per source format, registered by subclassing.

An adapter knows one vendor or study format. It lists the *units* of work
(one participant of one source) and reads a unit into a :class:`UnitInput`:
a long Arrow table of native rows still holding their original values (so
validation can quarantine them verbatim) plus any dense raw waveforms. It
declares a :class:`~sensorpipe.schema.registry.SourceSchema` saying which
native field maps to which canonical channel, in which unit, and what its
timestamps mean. Parsing, unit conversion, range checks and time zones happen
in the shared stages, not in each adapter.

The data types an adapter returns live in the ground floor
(:mod:`sensorpipe.core.refs`, :mod:`sensorpipe.core.inputs`). ``RawSignal``,
``UnitRef``, ``UnitInput`` and ``Participant`` stay importable from here on
purpose: plugin adapters and the README name ``sensorpipe.sources.base`` as the
one module to import, and this import points down the layers. Code inside the
package imports them from ``sensorpipe.core``.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from sensorpipe import plugins
from sensorpipe.config import ConfigError, SourceConfig, build_dataclass
from sensorpipe.core.inputs import RawSignal, UnitInput  # noqa: F401  (RawSignal: re-exported for plugins)
from sensorpipe.core.refs import Participant, UnitRef
from sensorpipe.registry import Registered, Registry
from sensorpipe.urls import local_path

#: config name -> adapter class; built-ins are found by walking :mod:`sensorpipe.sources`, plugins in
#: the ``sensorpipe.sources`` entry-point group
_ADAPTERS = Registry("sources", what="source adapter name", package="sensorpipe.sources",
                     required=("schema", "list_units", "read_unit"))

#: Columns of each native table part an adapter returns. ``time`` and
#: ``value`` keep the file's own representation (string, integer or float) so
#: quarantine can show them verbatim; ``t_utc_ns`` is the adapter's parse of
#: ``time`` (int64, NAT where it failed, with the reason in ``time_error``);
#: ``unit`` is null unless the file names a unit per row.
NATIVE_COLUMNS = ("participant_id", "field", "time", "t_utc_ns", "time_error", "value", "unit",
                  "source_file", "source_row")


class SourceError(ValueError):
    """An input file that cannot be read at all: names the file and the fix."""


_OPTIONS: dict[tuple, Any] = {}


def _parsed_options(cls: type, source: SourceConfig) -> Any:
    """``cls.Options`` built from the source's options, once per process and distinct options: an adapter is
    made for every unit, and checking a long option tree against its type hints each time adds up."""
    key = (cls, source.name, json.dumps(source.options, sort_keys=True, default=repr))
    opts = _OPTIONS.get(key)
    if opts is None:
        opts = _OPTIONS[key] = build_dataclass(cls.Options, source.options, f"sources[{source.name}].options")
    return opts


class SourceAdapter(Registered, registry=_ADAPTERS):
    """Base class. Subclasses set ``name`` and are registered automatically.

    Subclasses define ``Options`` (a frozen dataclass of their config keys),
    ``schema()``, ``list_units()`` and ``read_unit()``. Adapters are cheap to
    construct and picklable, because workers rebuild them from the config.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    time_convention: ClassVar[str] = ""
    #: canonical channels this format's rows can feed (empty and no raw kinds: any, mapped in the config)
    channels: ClassVar[tuple[str, ...]] = ()
    #: raw waveform kinds it yields; their minute features add to its channels
    #: (:func:`sensorpipe.processing.raw_features.adapter_channels`)
    raw_kinds: ClassVar[tuple[str, ...]] = ()
    #: what the adapter deliberately does not keep, and why (README "Supported sources")
    drops: ClassVar[str] = ""
    #: channel -> the device's nominal reading interval in minutes (e.g. CGM glucose every 5); label processors
    #: get it through ``WindowBatch.reading_interval_min`` and infer it from the data for channels not listed
    reading_interval_min: ClassVar[dict[str, float]] = {}

    @dataclass(frozen=True)
    class Options:
        pass

    def __init__(self, source: SourceConfig, base_dir: str = ".", work_dir: str | None = None) -> None:
        self.source = source
        self.base_dir = base_dir
        #: the run's work folder (``<output>/.work``): planning partitions shared multi-participant files
        #: there (:mod:`sensorpipe.sources.partition`); None outside a run, where files are read whole
        self.work_dir = work_dir
        self.options = _parsed_options(type(self), source)


    # --- paths -----------------------------------------------------------
    def resolve(self, p: str) -> Path:
        path = Path(local_path(p)).expanduser()   # a file:// URL is a local path (sensorpipe.urls)
        return path if path.is_absolute() else (Path(self.base_dir) / path).resolve()

    @property
    def root(self) -> Path:
        root = self.resolve(self.source.path)
        if not root.exists():
            raise SourceError(f"source {self.source.name!r}: path {root} does not exist; fix sources[].path")
        return root

    def folder_root(self, holds: str, levels_up: int = 1) -> Path:
        """The source path, which this format needs to be a folder (``holds``: what lies in it).

        A file there is a :class:`SourceError` naming it and the folder to give
        instead (``levels_up`` folders above the file), not an ``OSError`` from
        listing a file as a folder.
        """
        root = self.root
        if not root.is_dir():
            raise SourceError(f"source {self.source.name!r}: {root} is a file, but the {self.name} adapter reads a "
                              f"folder ({holds}); point sources[].path (or `sensorpipe convert`'s PATH) at that "
                              f"folder, here probably {root.parents[levels_up - 1]}")
        return root

    def files_matching(self, glob: str) -> tuple[Path, list[Path]]:
        """``(folder, files)``: the files under the source path matching ``glob``, relative to that folder.

        For formats with one recording per file, the source path may be one
        such file: it is then the only file, and its folder the one ids and
        paths are taken relative to.
        """
        root = self.root
        if root.is_file():
            return root.parent, [root]
        return root, sorted(p for p in root.glob(glob) if p.is_file())

    # --- participants ------------------------------------------------------
    def participants(self) -> dict[str, Participant]:
        """Participants table: CSV with ``participant_id`` and ``tz`` columns, others kept as attributes."""
        if not self.source.participants:
            return {}
        return read_participants_csv(self.resolve(self.source.participants))

    # --- the contract -----------------------------------------------------
    def schema(self):  # -> SourceSchema
        raise NotImplementedError

    def list_units(self) -> list[UnitRef]:
        raise NotImplementedError

    def read_unit(self, unit: UnitRef) -> UnitInput:
        raise NotImplementedError

    def decodes_from_memory(self, path: str) -> bool:
        """True when :meth:`read_unit` decodes ``path`` from its bytes through :func:`input_source`: pass 1,
        which reads every input whole to fingerprint it, then hands those bytes over (see
        :func:`preloaded_inputs`) instead of the adapter reading the file a second time."""
        return False

    def resolve_participant(self, pid: str, table: dict[str, Participant], where: object) -> Participant:
        """The participants-table row, else ``options.tz`` when the adapter has it; else a clear error.

        Rows with no participant id at all (``pid == ""``) get UTC: validation
        quarantines them as ``no_participant``, so they are counted, not lost.
        """
        if pid in table:
            return table[pid]
        tz = getattr(self.options, "tz", None)
        if tz:
            check_zone(tz, f"sources[{self.source.name}].options.tz")
            return Participant(pid, tz)
        if pid == "":
            return Participant("", "UTC")
        raise SourceError(f"{where}: participant {pid!r} has no time zone: add it to the participants table "
                          f"({self.source.participants}) or set sources[{self.source.name}].options.tz")

    def unit_ref(self, participant: Participant, files: list[Path]) -> UnitRef:
        return UnitRef(self.source, self.base_dir, participant, tuple(str(f) for f in sorted(files)))


def read_participants_csv(path: Path) -> dict[str, Participant]:
    """Parse a participants table, naming the line of any problem."""
    if not path.exists():
        raise SourceError(f"participants table {path} does not exist; fix sources[].participants")
    out: dict[str, Participant] = {}
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        if "participant_id" not in cols or "tz" not in cols:
            raise SourceError(f"{path}: needs columns participant_id and tz (IANA zone); found {cols}")
        for line, row in enumerate(reader, start=2):
            pid = (row.get("participant_id") or "").strip()
            if not pid:
                raise SourceError(f"{path}, line {line}: empty participant_id")
            tz = (row.get("tz") or "").strip()
            check_zone(tz, f"{path}, line {line}")
            attrs = {k: (v or "").strip() for k, v in row.items() if k not in ("participant_id", "tz")}
            out[pid] = Participant(pid, tz, attrs)
    return out


def check_zone_option(tz: str | None, path: str) -> None:
    """For ``Options.validate``: an IANA zone option, reported as a config error naming the key."""
    if tz is not None:
        try:
            check_zone(tz, path)
        except SourceError as e:
            raise ConfigError(str(e)) from None


def check_zone(tz: str, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise SourceError(f"{where}: {tz!r} is not an IANA time zone (e.g. Europe/Berlin)") from None


def get_adapter(name: str, where: str = "adapter") -> type[SourceAdapter]:
    """Look up an adapter class by config name: built-ins first, then installed ``sensorpipe.sources`` plugins.

    With a plugin of the group installed, every built-in and plugin is loaded (so one taking a built-in's name
    is refused whichever name the config uses); without one, the module of the name's own name is enough.
    """
    if name not in _ADAPTERS:
        _ADAPTERS.builtin(name)
    if name not in _ADAPTERS or plugins.any_installed(_ADAPTERS.group):
        _ADAPTERS.with_plugins()
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise ConfigError(f"{where}: unknown adapter {name!r}; registered: {', '.join(sorted(_ADAPTERS))} (built "
                          f"in, plus installed plugins of entry-point group sensorpipe.sources)") from None


def register_adapter(cls: type) -> type[SourceAdapter]:
    """Add an adapter class under its ``name`` (subclassing already did: a no-op then; the checks run again).

    A plugin adapter whose name a built-in or another plugin holds fails while its module is imported
    (``__init_subclass__``), which the plugin loader reports with the entry point.
    """
    return _ADAPTERS.add(cls)


def registered_adapters() -> dict[str, type[SourceAdapter]]:
    """Every adapter, built in and installed as a plugin (the ``sensorpipe sources`` listing)."""
    return dict(sorted(_ADAPTERS.with_plugins().items()))


def make_adapter(source: SourceConfig, base_dir: str, work_dir: str | None = None) -> SourceAdapter:
    return get_adapter(source.adapter)(source, base_dir, work_dir)


_ZERO_CODES = np.zeros(0, np.int32)


#: Input files pass 1 already holds in memory (it hashed their bytes), by path; set only while one unit is read.
#: A context variable, so two units read at once in threads of one process never see each other's bytes.
_PRELOADED: contextvars.ContextVar[dict[str, bytes]] = contextvars.ContextVar("sensorpipe_preloaded", default={})


@contextlib.contextmanager
def preloaded_inputs(blobs: dict[str, bytes]):
    """Within the block, :func:`input_source` serves these files' bytes (by path) instead of the files."""
    token = _PRELOADED.set(dict(blobs))
    try:
        yield
    finally:
        _PRELOADED.reset(token)


def input_source(path: str | Path) -> str | Path | pa.BufferReader:
    """What a reader opens for ``path``: a zero-copy reader over the bytes pass 1 read to fingerprint the file
    (Parquet footer and column chunks then come from memory, not a second read), else the path itself."""
    blob = _PRELOADED.get().get(str(path))
    return pa.BufferReader(blob) if blob is not None else path


def repeat_string(value: str, n: int) -> pa.Array:
    """``value`` repeated ``n`` times as a dictionary array (no Python loop, no copies).

    The codes are a zero-copy slice of one shared, read-only buffer of zeros
    (grown on demand): Arrow arrays are immutable, and writing 4 bytes of
    zeros per row for every repeated column cost a few percent of a read.
    """
    global _ZERO_CODES
    if _ZERO_CODES.size < n:
        _ZERO_CODES = np.zeros(max(n, 2 * _ZERO_CODES.size), np.int32)
        _ZERO_CODES.flags.writeable = False
    # all codes are 0 and the dictionary has one entry: nothing to validate (safe=True scans every code)
    return pa.DictionaryArray.from_arrays(pa.array(_ZERO_CODES[:n]), pa.array([value], pa.string()), safe=False)


def replace_options(source: SourceConfig, **changes: Any) -> SourceConfig:
    return dataclasses.replace(source, options={**source.options, **changes})
