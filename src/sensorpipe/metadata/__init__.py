"""Metadata database: dataset versions, runs, schemas, statistics, lineage, audit.

The pipeline fills the records and hands a :class:`RunRecord` to
:meth:`MetadataStore.record_run`; reports and the CLI read them back.

The store (and so SQLAlchemy) is imported at its first use, not with this package: the report's side
process (runners/report_process.py) draws from the plain records and the quality modules that use them, and
opens no database, so importing ``sensorpipe.metadata.records`` must not cost it SQLAlchemy's import.
"""

from typing import Any

from sensorpipe.metadata.records import (
    ChannelStatRecord,
    LineageRecord,
    NormalizationRecord,
    QualityRecord,
    QuarantineRecord,
    RunRecord,
    RunStart,
    SchemaRecord,
    UnitRecord,
)

_FROM_STORE = ("MetadataNotFound", "MetadataStore")


def __getattr__(name: str) -> Any:
    if name in _FROM_STORE:
        from sensorpipe.metadata import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ChannelStatRecord",
    "LineageRecord",
    "MetadataNotFound",
    "MetadataStore",
    "NormalizationRecord",
    "QualityRecord",
    "QuarantineRecord",
    "RunRecord",
    "RunStart",
    "SchemaRecord",
    "UnitRecord",
]
