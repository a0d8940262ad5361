"""Typed pipeline configuration, read from YAML into frozen dataclasses.

Every stage gets its own small config object; its hash goes into lineage.
Parsing is strict: an unknown key, a wrong type or a value outside the allowed
set raises :class:`ConfigError` naming the key path (``window.alignment``) and
what is allowed, so a typo never silently falls back to a default.

This module is a leaf: it imports only the standard library, yaml and the
ground floor (``_typing``, ``core.errors``; ``channels`` for channel names).
Each section checks itself; names looked up in a registry (adapters and their
options, cleaning rules, windowing strategies, normalizers, caption levels)
and relations between sections are checked by the run plan,
:mod:`sensorpipe.runners.plan`.

Why a hand-written coercer rather than msgspec or pydantic: both were tried on
the window, runner and source sections. The messages, today's first:

- wrong type: ``window.size_min: expected an integer, got 'a day'`` /
  msgspec ``Expected `int`, got `str` - at `$.window.size_min``` / pydantic
  ``window.size_min  Input should be a valid integer, unable to parse string
  as an integer [type=int_parsing, input_value='a day', ...]``
- unknown key: ``unknown key window.sizee_min; allowed keys in window:
  size_min, stride_min, ...`` / msgspec ``Object contains unknown field
  `sizee_min` - at `$.window``` / pydantic ``window.sizee_min  Extra inputs
  are not permitted``
- missing key: ``missing required key sources[0].adapter`` / msgspec ``Object
  missing required field `adapter` - at `$.sources[0]``` / pydantic
  ``sources.0.adapter  Field required``

Neither names the allowed keys (the fix for a typo), msgspec drops the bad
value and names no allowed values for an enumeration, and getting today's text
back means parsing msgspec's message or rebuilding it from pydantic's error
list, while the range-by-key-name rules (:data:`INT_RANGES`) stay hand-written
anyway. Pydantic's lax mode also turns ``"10"`` into 10 and ``3.0`` into 3, and
its strict mode refuses YAML lists for tuple fields; importing it costs about
0.3 s at every start. So the coercer stays.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from sensorpipe._typing import (Alignment, ImputeMethod, MissingnessBasis, OutputFormat, RunnerName, RunnerTuning,
                                StartMethod)
from sensorpipe.core.errors import ConfigError  # noqa: F401  (re-exported: ``from sensorpipe.config import ConfigError``)
from sensorpipe.urls import local_path, protocol


@dataclass(frozen=True)
class SourceConfig:
    """One input dataset: which adapter reads it, from where, with which options."""

    name: str
    adapter: str
    path: str
    participants: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    #: sources with the same study describe the same people (one unit, one grid, one pseudonym and split per
    #: person); empty means the source's own name, so a source on its own is a study of its own
    study: str = ""

    def __post_init__(self) -> None:
        if not self.study:
            object.__setattr__(self, "study", self.name)

    def validate(self, path: str) -> None:
        check_safe_name(self.name, f"{path}.name")
        check_safe_name(self.study, f"{path}.study")


@dataclass(frozen=True)
class StudyConfig:
    """How the sources of one study fuse (see :mod:`sensorpipe.sources.study`).

    ``id_map``: a CSV with columns ``source``, ``source_participant_id`` and
    ``participant_id`` linking a source's own id of a person to the study's id
    (sources that already use the study's ids need no row). ``priority``: per
    channel, the sources in the order they win a minute both observed; channels
    not listed follow the order of ``sources``.
    """

    id_map: str | None = None
    priority: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationConfig:
    """Row validation: the plausible-time range, and strict mode.

    A row (or a raw waveform's minute) timed before ``plausible_from`` or at or
    after ``plausible_until`` (UTC midnights, ISO dates) is quarantined as
    ``implausible_time``: a device clock reset to 1970 or a typo'd year should
    not become a window. The default range suits consumer wearables; archived
    actigraphy from the 1990s needs an earlier ``plausible_from``. Strict mode
    stops a run whose quarantine share in any source exceeds ``max_quarantine_rate``.
    """

    strict: bool = False
    max_quarantine_rate: float = 0.05
    plausible_from: dt.date = dt.date(2000, 1, 1)
    plausible_until: dt.date = dt.date(2040, 1, 1)

    def validate(self, path: str) -> None:
        _unit_interval(self.max_quarantine_rate, f"{path}.max_quarantine_rate")
        if not self.plausible_from < self.plausible_until:
            raise ConfigError(f"{path}: plausible_from ({self.plausible_from}) must be before plausible_until "
                              f"({self.plausible_until})")
        for name in ("plausible_from", "plausible_until"):  # what int64 nanoseconds since 1970 can hold
            if not dt.date(1678, 1, 1) <= getattr(self, name) <= dt.date(2261, 12, 31):
                raise ConfigError(f"{path}.{name}: {getattr(self, name)} is outside 1678-01-01 .. 2261-12-31, "
                                  f"the span UTC nanosecond timestamps can hold")

    @property
    def plausible_utc_ns(self) -> tuple[int, int]:
        """``[from, until)`` as UTC nanoseconds (midnight UTC of each date)."""
        epoch = dt.date(1970, 1, 1)
        return ((self.plausible_from - epoch).days * 86_400 * 10**9,
                (self.plausible_until - epoch).days * 86_400 * 10**9)


@dataclass(frozen=True)
class ChannelCleaningConfig:
    """One channel's overrides of the cleaning rules; ``None`` keeps the built-in default.

    Built-in defaults are listed in :mod:`sensorpipe.processing.clean`: the range
    is the channel registry's (``clip`` channels clip, the others become NaN);
    ``flatline_min: 0`` or ``hampel_k: 0`` turn that rule off for the channel.
    """

    valid_min: float | None = None
    valid_max: float | None = None
    range_action: Literal["clip", "nan"] | None = None
    sentinels: tuple[float, ...] | None = None
    flatline_min: int | None = None
    hampel_window_min: int | None = None
    hampel_k: float | None = None
    hampel_min_deviation: float | None = None

    def validate(self, path: str) -> None:
        if self.valid_min is not None and self.valid_max is not None and not self.valid_min < self.valid_max:
            raise ConfigError(f"{path}: valid_min must be below valid_max, got {self.valid_min} and {self.valid_max}")
        if self.flatline_min is not None and self.flatline_min < 0:
            raise ConfigError(f"{path}.flatline_min must be >= 0 (0 turns the rule off), got {self.flatline_min}")
        if self.hampel_window_min is not None:
            _odd_window(self.hampel_window_min, f"{path}.hampel_window_min")
        for name in ("hampel_k", "hampel_min_deviation"):
            v = getattr(self, name)
            if v is not None and not v >= 0:
                raise ConfigError(f"{path}.{name} must be >= 0, got {v!r}")
        for i, s in enumerate(self.sentinels or ()):
            if s != s or s in (float("inf"), float("-inf")):
                raise ConfigError(f"{path}.sentinels[{i}] must be a finite number, got {s!r}")


@dataclass(frozen=True)
class NonwearConfig:
    """Off-wrist detection: a still accelerometer while heart rate is missing, or cold skin.

    A minute is a non-wear candidate when ENMO is observed and below
    ``enmo_max_mg`` and heart rate is not observed (only in units that have
    heart rate at all when ``require_missing_heart_rate``), or when skin
    temperature is observed below ``temperature_min_c`` (null turns that off).
    Runs of candidates of at least ``min_duration_min`` are non-wear:
    ``mask_channels`` lose their observations there and ``on_wrist`` is set.
    """

    enmo_max_mg: float = 5.0
    min_duration_min: int = 60
    require_missing_heart_rate: bool = True
    temperature_min_c: float | None = 25.0
    mask_channels: tuple[str, ...] = ("heart_rate", "hrv_rmssd", "hrv_sdnn", "spo2", "respiratory_rate",
                                      "eda_level", "skin_temperature")

    def validate(self, path: str) -> None:
        _positive(self.enmo_max_mg, f"{path}.enmo_max_mg")
        _positive(self.min_duration_min, f"{path}.min_duration_min")
        from sensorpipe.channels import CHANNELS, known

        for i, ch in enumerate(self.mask_channels):
            if not known(ch):
                raise ConfigError(f"{path}.mask_channels[{i}]: unknown channel {ch!r}; allowed: {', '.join(CHANNELS)}")


@dataclass(frozen=True)
class CleaningConfig:
    """Per-channel cleaning of the minute grid (:mod:`sensorpipe.processing.clean`).

    ``rules`` run in the listed order (built-ins ``range``, ``sentinel``,
    ``flatline``, ``spike``, ``nonwear``, or a plugin's name); ``hampel_*`` are
    the spike filter's defaults; a flatline run bridges at most
    ``flatline_max_gap_min`` missing minutes; ``per_channel`` overrides any rule setting for
    one channel, and ``options`` hold a plugin rule's own settings by rule name.
    """

    enabled: bool = True
    rules: tuple[str, ...] = ("range", "sentinel", "flatline", "spike", "nonwear")
    hampel_window_min: int = 5
    hampel_k: float = 4.0
    flatline_max_gap_min: int = 2
    per_channel: dict[str, ChannelCleaningConfig] = field(default_factory=dict)
    nonwear: NonwearConfig = field(default_factory=NonwearConfig)
    options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def validate(self, path: str) -> None:
        _odd_window(self.hampel_window_min, f"{path}.hampel_window_min")
        _positive(self.hampel_k, f"{path}.hampel_k")
        if self.flatline_max_gap_min < 0:
            raise ConfigError(f"{path}.flatline_max_gap_min must be >= 0, got {self.flatline_max_gap_min}")


def _odd_window(v: int, path: str) -> None:
    if v < 3 or v % 2 == 0:
        raise ConfigError(f"{path} must be an odd number of minutes >= 3 (centred window), got {v!r}")


@dataclass(frozen=True)
class StratifiedWindowConfig:
    """LSM-style sampling: at most ``per_bucket`` windows per participant per missingness bucket.

    ``buckets`` are edges rising from 0 to 1; a window with missing share m is in
    ``[edge_i, edge_i+1)`` (the last bucket includes 1). The kept windows are the
    ones with the smallest salted hash of (source, participant, window start), so
    the choice never depends on RNG state, runner or unit order.
    """

    per_bucket: int = 10
    buckets: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 0.8, 1.0)
    salt: str = "sensorpipe-windows-v1"

    def validate(self, path: str) -> None:
        _positive(self.per_bucket, f"{path}.per_bucket")
        b = self.buckets
        if len(b) < 2 or b[0] != 0.0 or b[-1] != 1.0 or any(y <= x for x, y in zip(b, b[1:])):
            raise ConfigError(f"{path}.buckets must rise strictly from 0 to 1, e.g. [0, 0.1, 0.3, 0.5, 0.8, 1.0]; "
                              f"got {list(b)}")


@dataclass(frozen=True)
class EventWindowConfig:
    """Event-centred windows: each starts ``offset_before_min`` before a label event."""

    offset_before_min: int = 0

    def validate(self, path: str) -> None:
        if self.offset_before_min < 0:
            raise ConfigError(f"{path}.offset_before_min must be >= 0, got {self.offset_before_min!r}")


@dataclass(frozen=True)
class WindowConfig:
    """Fixed-length windows cut from each participant's minute grid.

    ``strategy`` picks where windows start and which are kept (``fixed``,
    ``event``, ``missingness_stratified`` or an installed plugin's name, see
    :mod:`sensorpipe.processing.windowing`). With ``alignment`` other than
    ``none`` a window starts at every aligned midnight and then every
    ``stride_min`` after it until the next midnight. Windows whose missing share
    exceeds ``max_missing_ratio`` are dropped and counted under ``too_missing``;
    those with a required channel observed less than ``required_coverage[ch]``
    under ``below_min_coverage:<ch>``. ``options`` go to a plugin strategy's own
    ``Options`` dataclass. ``missingness_basis`` says which channels the missing
    share (``max_missing_ratio`` and the records' ``missingness_ratio``) counts:
    ``measured`` (default) only the output channels the person's sources can
    provide, each reading of a device with a declared interval covering that
    many minutes, so a complete CGM day is not "97 % missing" in a wide
    dataset; ``all_channels`` every output channel, minute by minute.
    """

    size_min: int = 1440
    stride_min: int = 1440
    alignment: Alignment = "local_midnight"
    max_missing_ratio: float = 0.8
    missingness_basis: MissingnessBasis = "measured"
    strategy: str = "fixed"
    required_coverage: dict[str, float] = field(default_factory=dict)
    stratified: StratifiedWindowConfig = field(default_factory=StratifiedWindowConfig)
    event: EventWindowConfig = field(default_factory=EventWindowConfig)
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self, path: str) -> None:
        _positive(self.size_min, f"{path}.size_min")
        _positive(self.stride_min, f"{path}.stride_min")
        _unit_interval(self.max_missing_ratio, f"{path}.max_missing_ratio")
        for ch, ratio in self.required_coverage.items():
            _unit_interval(ratio, f"{path}.required_coverage.{ch}")


GAP_LIMITED_IMPUTATION: tuple[str, ...] = ("ffill", "linear")


def _per_channel_specs(mapping: Any, short: Any, full: type, path: str) -> dict[str, Any]:
    """``{channel: short form (a method name) or a mapping for the ``full`` dataclass}``, checked.

    Parsed here rather than through a ``Union`` annotation so that an error
    inside the long form names its key (``...heart_rate.max_gap_min``).
    """
    if not isinstance(mapping, dict):
        raise ConfigError(f"{path}: expected a mapping of channel -> method, got {mapping!r}")
    out = {}
    for ch, spec in mapping.items():
        where = f"{path}.{ch}"
        if isinstance(spec, full):
            out[ch] = spec
        elif isinstance(spec, dict):
            out[ch] = build_dataclass(full, spec, where)
        elif isinstance(spec, str):
            out[ch] = coerce(short, spec, where)
        else:
            raise ConfigError(f"{where}: expected a method name or a mapping with 'method', got {spec!r}")
    return out


@dataclass(frozen=True)
class ChannelImputation:
    """One channel's imputation: a method and, for ``ffill``/``linear``, the longest gap it fills."""

    method: ImputeMethod
    max_gap_min: int | None = None

    def validate(self, path: str) -> None:
        if self.max_gap_min is not None:
            _positive(self.max_gap_min, f"{path}.max_gap_min")
            if self.method not in GAP_LIMITED_IMPUTATION:
                raise ConfigError(f"{path}.max_gap_min only applies to methods {', '.join(GAP_LIMITED_IMPUTATION)}; "
                                  f"method {self.method!r} fills every gap (remove max_gap_min or pick linear)")


@dataclass(frozen=True)
class ImputationConfig:
    """Per-channel imputation (see :mod:`sensorpipe.processing.impute` for the methods).

    A channel uses ``per_channel[ch]`` (a method name, or ``{method, max_gap_min}``),
    else ``default``, else the registry's default for the channel.
    ``max_gap_min`` is the default gap limit of ``ffill`` and ``linear``
    channels: a gap longer than that is not filled by the method but gets the
    channel's neutral value (the one that normalizes to 0); null = no limit.
    """

    default: ImputeMethod | None = None
    max_gap_min: int | None = None
    per_channel: dict[str, Any] = field(default_factory=dict)   # ImputeMethod | ChannelImputation

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_channel", _per_channel_specs(
            self.per_channel, ImputeMethod, ChannelImputation, "imputation.per_channel"))

    def validate(self, path: str) -> None:
        if self.max_gap_min is not None:
            _positive(self.max_gap_min, f"{path}.max_gap_min")


@dataclass(frozen=True)
class ChannelNormalization:
    """One channel's normalization: a method (built in or a plugin's name) and its clipping.

    ``clip_sigma`` null means the section's ``clip_sigma`` (itself null, no
    clipping, by default); ``clip: false`` turns clipping off for this channel.
    """

    method: str
    clip_sigma: float | None = None
    clip: bool = True

    def validate(self, path: str) -> None:
        if self.clip_sigma is not None:
            _positive(self.clip_sigma, f"{path}.clip_sigma")


@dataclass(frozen=True)
class NormalizationConfig:
    """Per-channel normalization fitted on the train split; clipping only when asked.

    A channel uses ``per_channel[ch]`` (a method name, or ``{method,
    clip_sigma, clip}``), else ``default``, else the registry's default.
    Methods: ``zscore``, ``robust`` (median/IQR), ``minmax``, ``log1p``
    (log1p, then z-score), ``none``, or an installed ``sensorpipe.normalizers``
    plugin. ``clip_sigma`` (default null: off, so every observed value
    survives ``denormalize``) clips normalized values to +/- ``clip_sigma``
    (min-max to [0, 1]); clipped observed cells are counted per channel.
    ``missing_train`` says what a channel with no observed value in the train
    split gets: ``prior`` fits the method from the channel registry's
    population prior (and the report warns), ``error`` stops the run naming
    the channel. ``sketch_bins`` sets the quantile sketch's resolution:
    quantiles are exact to half a bin of the channel's valid range.
    """

    default: str | None = None
    per_channel: dict[str, Any] = field(default_factory=dict)   # str | ChannelNormalization
    clip_sigma: float | None = None
    missing_train: Literal["prior", "error"] = "prior"
    sketch_bins: int = 8192

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_channel", _per_channel_specs(
            self.per_channel, str, ChannelNormalization, "normalization.per_channel"))

    def validate(self, path: str) -> None:
        if self.clip_sigma is not None:
            _positive(self.clip_sigma, f"{path}.clip_sigma")
        if not 16 <= self.sketch_bins <= 1 << 20:
            raise ConfigError(f"{path}.sketch_bins must be between 16 and 1048576, got {self.sketch_bins!r}")


@dataclass(frozen=True)
class StructuralCaptionConfig:
    """Thresholds of the structural caption (trends, peaks, drops, spikes over coarse bins).

    ``bin_min`` 0 means the window's length / 36 (40-minute bins for a day,
    at least 5 minutes). A bin counts when at least ``min_bin_observed_min``
    of its minutes were observed. ``min_change`` overrides, per channel and in
    the channel's unit, the change a trend needs and the prominence a peak or
    drop needs (spikes need twice that); unlisted channels use the defaults of
    :mod:`sensorpipe.captions.structural`. Per channel at most ``max_trends``
    changing trends (plus one stable stretch) and ``max_peaks`` each of peaks,
    drops and spikes are kept, and per window the ``max_claims`` strongest.
    """

    bin_min: int = 0
    min_bin_observed_min: int = 3
    max_trends: int = 2
    max_peaks: int = 2
    max_claims: int = 12
    spike_max_width_min: int = 5
    min_change: dict[str, float] = field(default_factory=dict)

    def validate(self, path: str) -> None:
        if self.bin_min < 0:
            raise ConfigError(f"{path}.bin_min must be >= 0 (0 = window / 36), got {self.bin_min}")
        _check_fields(self, path, positive=("min_bin_observed_min", "spike_max_width_min"),
                      non_negative=("max_trends", "max_peaks", "max_claims"))
        from sensorpipe import channels as registry

        for ch, v in self.min_change.items():
            if not registry.known(ch):
                raise ConfigError(f"{path}.min_change.{ch}: unknown channel; allowed: {', '.join(registry.CHANNELS)}")
            _positive(v, f"{path}.min_change.{ch}")


@dataclass(frozen=True)
class SemanticCaptionConfig:
    """Event definitions of the semantic caption (all durations in minutes).

    Sleep periods are runs of asleep minutes (sleep_stage light/deep/REM/asleep)
    bridging awake or unobserved gaps up to ``sleep_merge_gap_min``, at least
    ``sleep_min_min`` long. Activity bouts are runs of active minutes
    (activity_intensity >= moderate, else steps >= ``bout_steps_per_min``,
    else ENMO >= ``bout_enmo_mg``) bridging gaps up to ``bout_gap_min``, at
    least ``bout_min_min`` long. Off-wrist periods are observed ``on_wrist``
    = 0 runs of ``off_wrist_min_min``; spans with no channel observed for
    ``no_data_min_min`` are stated as gaps in the data.
    """

    sleep_min_min: int = 60
    sleep_merge_gap_min: int = 15
    bout_min_min: int = 20
    bout_gap_min: int = 2
    bout_steps_per_min: float = 60.0
    bout_enmo_mg: float = 100.0
    off_wrist_min_min: int = 30
    no_data_min_min: int = 120

    def validate(self, path: str) -> None:
        _check_fields(self, path, positive=("sleep_min_min", "bout_min_min", "bout_steps_per_min", "bout_enmo_mg",
                                            "off_wrist_min_min", "no_data_min_min"),
                      non_negative=("sleep_merge_gap_min", "bout_gap_min"))


@dataclass(frozen=True)
class CaptionConfig:
    """Caption levels to generate (registered components, see :mod:`sensorpipe.captions`).

    ``seed`` picks the paraphrase templates (per window, from the seed and the
    window key: deterministic per run, varied between windows). A channel
    observed in less than ``min_coverage`` of the window's minutes is
    described as missing instead of by numbers from a few minutes.
    """

    levels: tuple[str, ...] = ("statistical", "structural", "semantic")
    seed: int = 0
    min_coverage: float = 0.05
    structural: StructuralCaptionConfig = field(default_factory=StructuralCaptionConfig)
    semantic: SemanticCaptionConfig = field(default_factory=SemanticCaptionConfig)

    def validate(self, path: str) -> None:
        _unit_interval(self.min_coverage, f"{path}.min_coverage")
        if not self.levels:
            raise ConfigError(f"{path}.levels: name at least one caption level, e.g. [statistical]")
        if len(set(self.levels)) != len(self.levels):
            raise ConfigError(f"{path}.levels: a level is listed twice")


@dataclass(frozen=True)
class SplitConfig:
    """Participant-level split by keyed hash: fractions must sum to 1."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    salt: str = "sensorpipe-split-v1"

    def validate(self, path: str) -> None:
        for name in ("train", "validation", "test"):
            _unit_interval(getattr(self, name), f"{path}.{name}")
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(f"{path}: train + validation + test must sum to 1, got {total:g}")


@dataclass(frozen=True)
class OutputConfig:
    """Where and how the TFDS-layout dataset directory is written."""

    dir: str = "out"
    name: str = "sensorpipe_dataset"
    version: str = "1.0.0"   # or "auto": bump the patch past the highest version of ``name`` (storage.publish)
    formats: tuple[OutputFormat, ...] = ("array_record",)
    target_shard_mb: float = 64.0
    compression: Literal["none", "zstd", "brotli", "snappy"] = "none"
    description: str = ""     # prepended to the generated description in dataset_info.json
    citation: str = ""        # BibTeX, shown by TFDS
    homepage: str = ""
    release_notes: str = ""   # what changed in this version (dataset_info.json releaseNotes)
    # Access to everything under ``dir`` (storage/permissions.py): set explicitly after each run, whatever the
    # umask; octal text because YAML reads a bare 0640 as a number. ``group``: the group that may read.
    file_mode: str = "0640"
    dir_mode: str = "0750"
    group: str | None = None

    def validate(self, path: str) -> None:
        _positive(self.target_shard_mb, f"{path}.target_shard_mb")
        for name in ("file_mode", "dir_mode"):
            text = str(getattr(self, name))
            if not (len(text) in (3, 4) and set(text) <= set("01234567")):
                raise ConfigError(f"{path}.{name} must be an octal mode in quotes such as '0640', got {text!r}")
        if "array_record" not in self.formats:
            raise ConfigError(f"{path}.formats must include 'array_record' (random access); got {list(self.formats)}")
        check_safe_name(self.name, f"{path}.name")
        check_safe_name(self.version, f"{path}.version")
        parts = self.version.split(".")
        if self.version != "auto" and (len(parts) != 3 or not all(p.isdigit() for p in parts)):
            raise ConfigError(f"{path}.version must look like 1.2.3, or be auto (the next patch version), "
                              f"got {self.version!r}")
        if not self.name.replace("_", "").isalnum() or not self.name[0].isalpha() or self.name.lower() != self.name:
            raise ConfigError(f"{path}.name must be snake_case letters/digits (TFDS dataset name), got {self.name!r}")


def without_password(url: str) -> str:
    """A database URL (``postgresql://user:secret@host/db``) without the password after the user name
    (``postgresql://user@host/db``); any other string unchanged. SQLAlchemy URLs percent-encode ``@`` and ``:``
    in passwords, so the user information ends at the last ``@`` before the host."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^:@/]*):[^/]*@", r"\1\2@", url)


@dataclass(frozen=True)
class MetadataConfig:
    """SQLAlchemy URL of the metadata database; empty means ``<output>/metadata.db``.

    Not an fsspec URL: SQLite needs a local file (its locks do not work on object storage), so beside a
    remote ``output.dir`` the default database is a local SQLite file (storage/remote.py says where).
    """

    url: str = ""

    def validate(self, path: str) -> None:
        if protocol(self.url) in OBJECT_STORE_PROTOCOLS:
            raise ConfigError(f"{path}.url: {self.url!r} is a file URL, not a SQLAlchemy database URL; leave it "
                              f"empty (a local SQLite file) or use sqlite:////abs/path.db or "
                              f"postgresql+psycopg://user@host/db")


#: fsspec protocols that name files, not databases (metadata.url refuses them)
OBJECT_STORE_PROTOCOLS = ("s3", "s3a", "gs", "gcs", "memory", "file", "az", "abfs", "abfss", "hdfs", "http",
                          "https", "ftp", "sftp")


@dataclass(frozen=True)
class RunnerConfig:
    """Which runner executes the units, with how many worker processes, and how they start.

    ``start_method`` (multiprocess only): ``auto`` forks the workers from the
    driver where that is safe (Linux, no other Python thread running, no
    TensorFlow runtime loaded), so they start at once with the
    driver's imports; otherwise they fork from a clean forkserver, which first
    imports the pipeline. ``fork``, ``forkserver`` and ``spawn``
    force one; the output is the same whichever starts them.

    ``beam_options`` (``name: beam`` only): Apache Beam pipeline options, a
    list of ``--key=value`` flags or a mapping (``runner: DataflowRunner``);
    ``--beam-option KEY=VALUE`` adds to them (:mod:`sensorpipe.runners.beam`).

    ``tuning`` (``multiprocess``; opt-in speed plumbing, same output): ``none``
    imports only the caption levels' slow imports (``scipy.signal``) while pass 1 runs;
    ``fast``, under ``fork``, imports everything pass 2 and the run's tail
    need; either way pass 2 runs in fresh forks that have them
    (:mod:`sensorpipe.runners.executors`).
    """

    name: RunnerName = "local"
    workers: int = 2
    start_method: StartMethod = "auto"
    tuning: RunnerTuning = "none"
    beam_options: tuple[str, ...] | dict[str, Any] = ()

    def validate(self, path: str) -> None:
        lo, hi = INT_RANGES["workers"]   # also checked here: ``--workers`` replaces the field after loading
        if not lo <= self.workers <= hi:
            raise ConfigError(f"{path}.workers must be between {lo} and {hi}, got {self.workers}")


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds on memory for hostile or huge input (README "Limits and long recordings").

    ``max_decompressed_bytes`` and ``max_compression_ratio`` bound what one
    compressed input (an export.zip, an XLSX workbook, a ``.csv.gz``) may
    expand to (:mod:`sensorpipe.sources._toolkit.limits`); an input past either is
    refused with an error naming the file and the key to raise. ``chunk_days``:
    a long recording's rows are read, validated and reduced to the minute grid
    this many days at a time (:mod:`sensorpipe.runners.chunked`, which says
    who qualifies), so memory stays a chunk's whatever the recording's
    length; 0 reads each participant whole. None of these change the output,
    so none is part of the dataset's fingerprint.
    """

    max_decompressed_bytes: int = 20 * (1 << 30)
    max_compression_ratio: float = 200.0
    chunk_days: int = 30

    def validate(self, path: str) -> None:
        _positive(self.max_decompressed_bytes, f"{path}.max_decompressed_bytes")
        if not self.max_compression_ratio >= 1.0:
            raise ConfigError(f"{path}.max_compression_ratio must be >= 1, got {self.max_compression_ratio!r}")
        if self.chunk_days < 0:
            raise ConfigError(f"{path}.chunk_days must be >= 0 (0: each participant whole), got {self.chunk_days}")


@dataclass(frozen=True)
class PrivacyConfig:
    """Pseudonymization of participant ids with a keyed hash (HMAC-SHA256).

    The key is read from ``key_file`` or the environment variable ``key_env``;
    it is never written to the output or the metadata database.
    ``quarantine_key_file``: a key of its own that encrypts the quarantine files
    (AES-GCM, privacy/sealed.py); unset, they are plain Parquet.
    """

    pseudonymize: bool = True
    key_env: str = "SENSORPIPE_PSEUDONYM_KEY"
    key_file: str | None = None
    quarantine_key_file: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """How a run treats a unit (one person of one study) whose pass 1 or pass 2 raises.

    ``stop`` (default): the run stops with the error, which names the file and the
    fix. ``skip``: the unit is left out and the run goes on; every skipped unit is
    listed with its error in the CLI summary, the HTML report and the metadata
    database (table ``unit_errors``). Not part of the dataset fingerprint: a
    skipped unit's inputs are missing from the dataset's inputs, which changes it.
    """

    on_unit_error: Literal["stop", "skip"] = "stop"
    min_split_participants: int = 1   # fewer participants in a split is a run warning (runners/run_warnings.py)
    progress_interval_s: float = 10.0   # off a terminal: one progress line per pass this often (0: none)

    def validate(self, path: str) -> None:
        if self.progress_interval_s < 0:
            raise ConfigError(f"{path}.progress_interval_s must be >= 0 (0: no progress lines), "
                              f"got {self.progress_interval_s}")


@dataclass(frozen=True)
class AlertsConfig:
    """Thresholds a finished run is checked against (quality/alerts.py); each rule is off until set.

    A breached rule marks the run ``alert`` in the metadata database, is printed with its value and
    threshold, is exported as ``sensorpipe_alert`` in ``metrics.prom`` and, with ``--strict``
    (``validation.strict``), stops the publish: the previous version stays.
    ``max_missing_ratio`` and ``min_label_coverage`` map a channel / label to its threshold (``"*"``: every
    channel / label without its own).
    """

    max_quarantine_share: float | None = None       # per source: quarantined rows / rows in
    max_missing_ratio: dict[str, float] = field(default_factory=dict)   # channel -> missing share of kept windows
    max_drift_psi: float | None = None              # per channel, against the version this one follows
    max_windows_dropped_share: float | None = None  # dropped / (kept + dropped)
    min_label_coverage: dict[str, float] = field(default_factory=dict)  # label -> share of windows labelled
    max_run_duration_s: float | None = None         # from the start to the check before the publish

    def validate(self, path: str) -> None:
        for name in ("max_quarantine_share", "max_windows_dropped_share"):
            if getattr(self, name) is not None:
                _unit_interval(getattr(self, name), f"{path}.{name}")
        from sensorpipe import channels as registry
        from sensorpipe.core.labels import BY_NAME

        known = {"max_missing_ratio": (registry.known, "channel", ", ".join(registry.CHANNELS)),
                 "min_label_coverage": (BY_NAME.__contains__, "label", ", ".join(BY_NAME))}
        for name, (ok, what, allowed) in known.items():
            for key, v in getattr(self, name).items():
                if key != "*" and not ok(key):
                    raise ConfigError(f"{path}.{name}: unknown {what} {key!r}; use '*' (every {what}) or one of: "
                                      f"{allowed}")
                _unit_interval(v, f"{path}.{name}.{key}")
        for name in ("max_drift_psi", "max_run_duration_s"):
            if getattr(self, name) is not None:
                _positive(getattr(self, name), f"{path}.{name}")


@dataclass(frozen=True)
class QualityConfig:
    """Monitoring of runs: alert thresholds, and where the run's Prometheus metrics go besides
    ``<output>/metrics.prom`` (``pushgateway_url``: a Prometheus Pushgateway, pushed as ``pushgateway_job``)."""

    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    pushgateway_url: str = ""
    pushgateway_job: str = "sensorpipe"


@dataclass(frozen=True)
class PipelineConfig:
    """The whole job; ``base_dir`` resolves relative paths (the YAML's folder)."""

    sources: tuple[SourceConfig, ...]
    channels: tuple[str, ...]
    studies: dict[str, StudyConfig] = field(default_factory=dict)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    imputation: ImputationConfig = field(default_factory=ImputationConfig)
    normalization: NormalizationConfig = field(default_factory=NormalizationConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    splits: SplitConfig = field(default_factory=SplitConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    metadata: MetadataConfig = field(default_factory=MetadataConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    run: RunConfig = field(default_factory=RunConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    base_dir: str = "."

    def validate(self, path: str) -> None:
        """The whole config's own checks; relations between sections are the run plan's."""
        from sensorpipe import channels as registry

        if not self.sources:
            raise ConfigError("sources: at least one source is needed")
        if not self.channels:
            raise ConfigError("channels: list the canonical channels to output, e.g. [heart_rate, steps]")
        for i, ch in enumerate(self.channels):
            if not registry.known(ch):
                raise ConfigError(f"channels[{i}]: unknown channel {ch!r}; allowed: {', '.join(registry.CHANNELS)}")
        if len(set(self.channels)) != len(self.channels):
            raise ConfigError("channels: a channel is listed twice")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ConfigError("sources: two sources share a name; each dataset name must be unique")

    def resolve(self, p: str) -> str:
        """A config path made absolute against the config file's folder (URLs pass through, ``file://`` ones
        as the local path they name: sensorpipe.urls)."""
        if "://" in p:
            if protocol(p) != "file":
                return p
            p = local_path(p)
        path = Path(p).expanduser()
        return str(path if path.is_absolute() else (Path(self.base_dir) / path).resolve())

    @property
    def output_dir(self) -> str:
        return self.resolve(self.output.dir)

    @property
    def metadata_url(self) -> str:
        if self.metadata.url:
            url = self.metadata.url
            if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
                url = "sqlite:///" + self.resolve(url[len("sqlite:///"):])
            return url
        return f"sqlite:///{Path(self.output_dir) / 'metadata.db'}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("base_dir")
        return d

    def shareable_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` as it may be written where readers of the output see it (``sensorpipe.json``, the
        metadata database's ``configs``): no key file paths, and the database URL without its password (the
        driver that libpq or the role's ``.pgpass`` uses gets it from the environment again)."""
        d = self.to_dict()
        d["privacy"].pop("key_file", None)
        d["privacy"].pop("quarantine_key_file", None)
        d["metadata"]["url"] = without_password(d["metadata"]["url"])
        return d

    def fingerprint(self) -> str:
        """Hash of everything that shapes the records (runner and paths excluded)."""
        d = self.to_dict()
        d.pop("runner")
        d.pop("metadata")
        d.pop("run")   # the failure policy shapes no record (see RunConfig)
        d.pop("limits")   # bounds on memory: a run either stays inside them with the same output or stops
        d.pop("quality")   # monitoring: alerts and metrics judge the records, they shape none
        d["validation"] = [str(self.validation.plausible_from), str(self.validation.plausible_until)]  # shapes rows
        d["output"] = {k: v for k, v in d["output"].items() if k not in ("dir", "file_mode", "dir_mode", "group")}
        d["privacy"] = {"pseudonymize": self.privacy.pseudonymize}
        d["sources"] = [{k: v for k, v in s.items() if k not in ("path", "participants")} for s in d["sources"]]
        return stable_hash(d)


def stable_hash(obj: Any) -> str:
    """Short SHA-256 of a JSON-able object, key order independent."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _positive(v: float, path: str) -> None:
    if not v > 0:
        raise ConfigError(f"{path} must be > 0, got {v!r}")


def _check_fields(obj: Any, path: str, positive: tuple[str, ...] = (), non_negative: tuple[str, ...] = ()) -> None:
    for name in positive:
        _positive(getattr(obj, name), f"{path}.{name}")
    for name in non_negative:
        if getattr(obj, name) < 0:
            raise ConfigError(f"{path}.{name} must be >= 0, got {getattr(obj, name)}")


def _unit_interval(v: float, path: str) -> None:
    if not 0.0 <= v <= 1.0:
        raise ConfigError(f"{path} must be between 0 and 1, got {v!r}")


#: what a name that becomes a path component may look like (sources, studies, output name and version)
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
SAFE_NAME_RULE = ("1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit, no '..' "
                  "(it becomes a folder or file name)")


def check_safe_name(value: str, path: str) -> None:
    """Refuse a name that could leave the output folder or clash as a path (``../../x``, ``a/b``, ``.hidden``)."""
    if not SAFE_NAME.fullmatch(value) or ".." in value:
        raise ConfigError(f"{path}: {value!r} is not a safe name; use {SAFE_NAME_RULE}")


#: minutes in 366 days: the longest span a minute-valued setting (a window, a gap, a duration) may have
MAX_MINUTES = 366 * 24 * 60
INT64 = (-(1 << 63), (1 << 63) - 1)
#: allowed range of integer settings by key name; keys ending in ``_min`` are minutes (0 .. MAX_MINUTES) and
#: any other integer (plugin and adapter options included) must fit int64, where numpy would overflow
INT_RANGES: dict[str, tuple[int, int]] = {
    "size_min": (1, MAX_MINUTES), "stride_min": (1, MAX_MINUTES), "workers": (1, 4096),
    "per_bucket": (1, 10**9), "sketch_bins": (16, 1 << 20), "seed": (0, (1 << 63) - 1),
    "max_trends": (0, 10_000), "max_peaks": (0, 10_000), "max_claims": (0, 10_000),
}


def int_range(path: str) -> tuple[int, int]:
    """The allowed range of the integer setting at ``path`` (see :data:`INT_RANGES`)."""
    name = path.rsplit(".", 1)[-1]
    if name in INT_RANGES:
        return INT_RANGES[name]
    return (0, MAX_MINUTES) if name.endswith("_min") else INT64


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return f"a list of {_describe(typing.get_args(tp)[0])}"
    if origin is dict:
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against the annotation ``tp``; raise ConfigError naming ``path``."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, path)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{path}: {value!r} is not allowed; use {_describe(tp)}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return coerce(arg, value, path)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{path}: expected {_describe(tp)}, got {value!r}")
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"{path}: expected null, got {value!r}")
        return None
    if origin in (tuple, list):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected {_describe(tp)}, got {value!r}")
        (item,) = typing.get_args(tp)[:1]
        return tuple(coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        kt, vt = typing.get_args(tp)
        return {coerce(kt, k, f"{path}") : coerce(vt, v, f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected an integer, got {value!r}")
        lo, hi = int_range(path)
        if not lo <= value <= hi:
            unit = " minutes" if (lo, hi) == (0, MAX_MINUTES) or path.endswith(("size_min", "stride_min")) else ""
            raise ConfigError(f"{path} must be between {lo} and {hi}{unit}, got {value}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected a string, got {value!r}")
        return value
    if tp is dt.date:  # YAML reads an unquoted 2000-01-01 as a date; quoted, JSON or a dict give text
        if isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value.strip())
            except ValueError:
                raise ConfigError(f"{path}: {value!r} is not an ISO date; write YYYY-MM-DD") from None
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise ConfigError(f"{path}: expected an ISO date (YYYY-MM-DD), got {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported type {tp!r}")  # pragma: no cover - programming error


def build_dataclass(cls: type, data: Any, path: str) -> Any:
    """Build a frozen dataclass from a mapping, rejecting unknown keys by name."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]}; allowed keys{' in ' + path if path else ''}: {', '.join(fields)}"
        )
    kwargs = {}
    for name, f in fields.items():
        key_path = f"{path}.{name}" if path else name
        if name in data:
            kwargs[name] = coerce(hints[name], data[name], key_path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {key_path}")
    obj = cls(**kwargs)
    if hasattr(obj, "validate"):
        obj.validate(path or cls.__name__)
    return obj


def load_config(source: str | Path | dict[str, Any], base_dir: str | None = None) -> PipelineConfig:
    """Read a YAML file (or an already-parsed mapping) into a PipelineConfig with its local checks done.

    What needs the registries (adapter, strategy, rule, normalizer and caption level names, an
    adapter's options) or relates one section to another is checked by
    :func:`sensorpipe.runners.plan.build_plan`, which every run goes through.
    """
    if isinstance(source, dict):
        data = dict(source)
        base = base_dir or "."
    else:
        p = Path(source)
        if not p.exists():
            raise ConfigError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as e:
            raise ConfigError(f"{p} is not valid YAML: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections (sources, channels, ...)")
        base = base_dir or str(p.resolve().parent)
    data.pop("base_dir", None)
    cfg = build_dataclass(PipelineConfig, data, "")
    return dataclasses.replace(cfg, base_dir=str(Path(base).resolve()))
