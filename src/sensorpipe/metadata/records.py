"""Plain records the pipeline hands to the metadata store at the end of a run.

They are the interface between the pipeline and the database: the pipeline
fills them, :class:`sensorpipe.metadata.store.MetadataStore` persists them in
one transaction, so a killed run leaves no half-recorded state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Quantile levels of ``channel_quantiles`` (metadata/tables.py): 0, 0.01, ..., 1 (101 values, the extremes
#: exact). Here, beside the records, so that what fills them need not import the tables (SQLAlchemy).
QUANTILE_LEVELS = tuple(i / 100 for i in range(101))


@dataclass(frozen=True)
class SchemaRecord:
    """A source's declared schema as used in this run."""

    source: str            # dataset name from the config
    adapter: str           # adapter name
    version: int           # schema version declared by the adapter
    fingerprint: str       # hash of schema_json
    schema_json: str       # full schema, JSON


@dataclass(frozen=True)
class ChannelStatRecord:
    """Per-channel statistics of one split (observed minutes of kept windows, real units)."""

    split: str
    channel: str
    count: int
    mean: float
    std: float
    min: float
    max: float
    missing_ratio: float


@dataclass(frozen=True)
class NormalizationRecord:
    """Normalization parameters of one channel, fitted on the train split only."""

    channel: str
    method: str            # zscore | robust | minmax | log1p | none | a plugin's name
    mean: float            # train mean / std of the channel (real units)
    std: float
    clip_sigma: float      # the section's clip_sigma (NaN = no clipping); per channel see clip_low/high
    fitted_on_split: str = "train"
    count: int = 0
    center: float = float("nan")   # z = (transform(x) - center) / scale, in transformed units
    scale: float = float("nan")
    clip_low: float = float("nan")  # normalized units; NaN = not clipped
    clip_high: float = float("nan")
    fallback: float = float("nan")  # real-unit value imputation gives cells it cannot fill
    median: float = float("nan")   # train median / IQR / min / max (real units)
    iqr: float = float("nan")
    min: float = float("nan")
    max: float = float("nan")
    quantile_error: float = float("nan")  # bound on the median/IQR error (half a sketch bin)


@dataclass(frozen=True)
class QualityRecord:
    """One quality metric. ``scope`` is 'dataset', a source name, or 'channel:<name>'."""

    scope: str
    name: str              # e.g. missing_ratio, out_of_range_rate, windows_kept, windows_dropped:too_missing
    value: float


@dataclass(frozen=True)
class QuarantineRecord:
    source: str
    source_file: str
    reason: str
    count: int


@dataclass(frozen=True)
class FileRowsRecord:
    """Row accounting of one source file (named by its keyed token, privacy/paths.py): in = accepted +
    quarantined, file by file, for the report."""

    source: str
    source_file: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int


@dataclass(frozen=True)
class UnitRecord:
    """Row accounting for one unit (participant of a source)."""

    source: str
    participant: str       # pseudonymized id
    split: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    raw_samples_in: int
    windows_kept: int
    windows_dropped: int


@dataclass(frozen=True)
class LineageRecord:
    """Where one window came from."""

    window_key: str
    split: str
    source: str
    participant: str
    source_files_json: str     # JSON list of file paths
    row_ranges_json: str       # JSON {file: [first_row, last_row]}
    stage_hashes_json: str     # JSON {stage: config hash}


@dataclass(frozen=True)
class DeviceRecord:
    """The recording device of one source file of a unit (actigraphy: counts are per device and epoch).

    ``source_file`` is the file's keyed token and ``device_serial`` a keyed digest of the serial
    (``serial:<16 hex>``; "" when the file gives none), as everything that could name the person is in the DB.
    """

    study: str
    participant: str       # pseudonymized id
    source: str            # the source (config name) that read the file
    source_file: str       # token (privacy/paths.py)
    device_model: str
    device_serial: str
    epoch_s: float


@dataclass(frozen=True)
class UnitErrorRecord:
    """A unit (one person of one study) left out under ``run.on_unit_error: skip``, with its error."""

    study: str
    participant: str       # pseudonymized id
    source: str            # the failing source (comma-separated sources when the error names none)
    source_file: str       # the file the error names ("" when none)
    stage: str             # prepare (pass 1) | encode (pass 2)
    error: str             # "<ExceptionType>: <message>", one line


@dataclass(frozen=True)
class QuantileRecord:
    """A channel's quantiles in one split (or ``all``) at ``tables.QUANTILE_LEVELS``, JSON (null: unobserved)."""

    split: str
    channel: str
    values_json: str


@dataclass(frozen=True)
class StageTimingRecord:
    """Wall seconds one stage of the run took."""

    stage: str
    seconds: float


@dataclass(frozen=True)
class AlertRecord:
    """A breached ``quality.alerts`` rule: which, on what, the value seen and the threshold it crossed."""

    rule: str
    scope: str
    value: float
    threshold: float
    message: str


@dataclass(frozen=True)
class RunStart:
    """What a run records the moment it starts (committed at once, so a killed run still leaves its row)."""

    run_id: str
    started_at: str            # ISO-8601 UTC
    runner: str
    workers: int
    code_version: str
    config_json: str
    output_dir: str
    dataset_name: str          # output.name
    dataset_version: str       # output.version as configured (``auto`` until resolved)
    pid: int                   # the driver process, on ``host``
    host: str


@dataclass(frozen=True)
class RunRecord:
    """Everything one finished run records."""

    run_id: str
    started_at: str            # ISO-8601 UTC
    finished_at: str
    runner: str
    workers: int
    status: str                # succeeded | publishing | failed (see metadata.tables.RUN_STATUSES)
    dataset_name: str
    dataset_version: str       # semantic version from the config
    fingerprint: str           # config + inputs + code version
    code_version: str
    config_json: str
    output_dir: str
    input_fingerprints: dict[str, str] = field(default_factory=dict)   # file -> content hash
    split_sizes: dict[str, int] = field(default_factory=dict)
    schemas: list[SchemaRecord] = field(default_factory=list)
    channel_stats: list[ChannelStatRecord] = field(default_factory=list)
    normalization: list[NormalizationRecord] = field(default_factory=list)
    quality: list[QualityRecord] = field(default_factory=list)
    quarantine: list[QuarantineRecord] = field(default_factory=list)
    units: list[UnitRecord] = field(default_factory=list)
    lineage: list[LineageRecord] = field(default_factory=list)
    unit_errors: list[UnitErrorRecord] = field(default_factory=list)
    file_rows: list[FileRowsRecord] = field(default_factory=list)
    devices: list[DeviceRecord] = field(default_factory=list)
    units_cached: int | None = None     # units whose pass 1 came from the cache (None: not counted)
    windows_kept: int | None = None
    quantiles: list[QuantileRecord] = field(default_factory=list)
    stage_timings: list[StageTimingRecord] = field(default_factory=list)
    alerts: list[AlertRecord] = field(default_factory=list)
    peak_rss_mib: float | None = None
