"""Metadata database: dataset versions, runs, schemas, statistics, lineage, audit.

The pipeline fills the records and hands a :class:`RunRecord` to
:meth:`MetadataStore.record_run`; reports and the CLI read them back.
"""

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
from sensorpipe.metadata.store import MetadataNotFound, MetadataStore

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
