"""Apple Health export: ``export.xml`` (alone, in ``apple_health_export/``, or inside ``export.zip``).

One export is one participant: ``options.participant_id``, else the name of
the folder holding the export (above ``apple_health_export/``). A source path
with no export directly in it is read as one sub-folder per participant, each
holding an export. The zone for local-time features comes from the
participants table, else ``options.tz``. The file is streamed in bounded
memory (:mod:`sensorpipe.sources.apple_health._xml`).

Times: ``startDate``/``endDate`` are local wall-clock times with the UTC
offset in force on the device (``2024-03-10 01:59:00 -0500``), so they are
unambiguous across DST changes and parsed with their offset. Point readings
use ``startDate``.

Types (native field = HealthKit type identifier, kept as written):

* heart rate, resting heart rate, HRV SDNN, respiratory rate: one row per
  record, unit attribute ``count/min`` / ``ms``.
* oxygen saturation: unit "%" but the value is a fraction (0.97), read as
  ``fraction`` so it becomes 97 %.
* step count and active energy (intervals): spread over the minutes the
  interval overlaps, in proportion to the overlap (a row at the interval start
  and at each following minute start, value = count x overlap / duration), so
  the minute sums add up to the record. Energy in ``kJ`` is converted to kcal
  here, ``Cal`` is kcal (HealthKit's large calorie): units.py has no
  case-sensitive ``Cal``.
* sleep analysis: stage records become one row per minute (at the interval
  start and each following minute start) with the stage text mapped to
  sleep_stage codes (Awake 0, AsleepCore 1, AsleepDeep 2, AsleepREM 3,
  AsleepUnspecified / pre-iOS 16 Asleep 4). InBed is time in bed, not a stage,
  and overlaps the stages: one row per record as ``in_bed:<type>``.
* everything else (WalkingHeartRateAverage, a daily aggregate; distance,
  body mass, ...) and every Workout, ActivitySummary, ClinicalRecord, ...:
  one row per element under its own name, quarantined as ``unknown_field``.

Records inside ``<Correlation>`` (blood pressure, food) repeat top-level
records: one row each as ``in_correlation:<type>`` (quarantined, counted).
Interval records longer than 24 h are not expanded: one row as
``over_24h:<type>``. Interval records with a broken start or end, or a
non-numeric value, stay one row under their type (quarantined by time/type).

Sources: when several devices record the same channel in the same minute,
the one earliest in ``options.prefer_sources`` (case-insensitive substrings
of ``sourceName``; default watch, then phone, then any other) wins; the
others' rows in that minute become ``superseded:<type>`` rows (quarantined as
``unknown_field``: counted and kept, not summed twice). An empty list keeps
every source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sensorpipe.core.inputs import UnitInput
from sensorpipe.core.refs import UnitRef
from sensorpipe.schema.registry import FieldSpec, SourceSchema
from sensorpipe.sources.apple_health._rows import SLEEP_STAGES, STAGES, TYPES, Rows
from sensorpipe.sources.apple_health._xml import read_export
from sensorpipe.sources.base import SourceAdapter, SourceError


class AppleHealthAdapter(SourceAdapter):
    """Apple Health export.xml, streamed; one export per participant."""

    name = "apple_health"
    description = "Apple Health export (export.xml / export.zip): heart rate, HRV, SpO2, steps, energy, sleep stages"
    time_convention = ("startDate/endDate as 'YYYY-MM-DD HH:MM:SS +HHMM': device-local wall clock with its UTC "
                       "offset; points at startDate, intervals spread over their minutes")
    channels = ("heart_rate", "resting_heart_rate", "hrv_sdnn", "respiratory_rate", "spo2", "steps", "calories",
                "sleep_stage")
    drops = ("ExportDate and Me (profile), MetadataEntry and HeartRateVariabilityMetadataList children, "
             "export_cda.xml, workout-routes and clinical-records are not read. Counted as unknown_field rows: "
             "unmapped types (WalkingHeartRateAverage: a daily aggregate; distance, body mass, ...), Workout and "
             "ActivitySummary elements, records inside Correlations (in_correlation:, duplicates of top-level "
             "records), InBed sleep records (in_bed:), intervals over 24 h (over_24h:) and readings of a "
             "lower-priority source in a minute a preferred source covers (superseded:)")

    @dataclass(frozen=True)
    class Options:
        participant_id: str | None = None   # for a single export (default: its folder's name)
        tz: str | None = None               # zone for local-time features when the participants table has none
        prefer_sources: tuple[str, ...] = ("watch", "phone")  # sourceName substrings, most trusted first

    def schema(self) -> SourceSchema:
        return SourceSchema(adapter=self.name, version=1, time_convention=self.time_convention, fields=tuple(
            FieldSpec(name, t.channel, t.unit, dict(SLEEP_STAGES) if t.layout == STAGES else {})
            for name, t in sorted(TYPES.items())))

    # --- units -----------------------------------------------------------
    def list_units(self) -> list[UnitRef]:
        root, table = self.root, self.participants()
        single = _find_export(root)
        if single is not None:
            pid = self.options.participant_id or _folder_name(single)
            return [self.unit_ref(self.resolve_participant(pid, table, single), [single])]
        if root.is_file():
            raise SourceError(f"source {self.source.name!r}: {root} is neither export.xml nor export.zip; point "
                              f"sources[].path at the export, its folder, or a folder of participant folders")
        if self.options.participant_id:
            raise SourceError(f"source {self.source.name!r}: options.participant_id needs a single export, but "
                              f"{root} holds no export.xml / export.zip")
        units = [self.unit_ref(self.resolve_participant(d.name, table, d), [f]) for d in sorted(root.iterdir())
                 if d.is_dir() and (f := _find_export(d)) is not None]
        if not units:
            raise SourceError(f"source {self.source.name!r}: no export.xml, apple_health_export/export.xml or "
                              f"export.zip in {root} or its sub-folders; fix sources[].path")
        return units

    # --- reading ---------------------------------------------------------
    def read_unit(self, unit: UnitRef) -> UnitInput:
        path = Path(unit.files[0])
        cols = read_export(path)
        return UnitInput(unit, Rows(cols, self.options.prefer_sources).tables(unit.participant, str(path)))


def _find_export(p: Path) -> Path | None:
    if p.is_file():
        return p if p.suffix.lower() in (".xml", ".zip") else None
    for cand in (p / "export.xml", p / "apple_health_export" / "export.xml", p / "export.zip"):
        if cand.is_file():
            return cand
    return None


def _folder_name(export: Path) -> str:
    folder = export.parent
    return folder.parent.name if folder.name == "apple_health_export" else folder.name


