"""Writes this folder's Apple Health export: ``apple_health_export/export.xml`` of one participant.

The layout follows a real export made by the Health app ("Export All Health
Data"): the XML declaration, the internal DTD Apple ships (HealthKit Export
Version 13, abridged to the elements used here), ``<HealthData locale>``,
``<ExportDate>``, ``<Me>``, then ``<Record>`` elements with Apple's attribute
order (type, sourceName, sourceVersion, device, unit, creationDate,
startDate, endDate, value), ``MetadataEntry`` and
``HeartRateVariabilityMetadataList`` children, a ``<Correlation>``, a
``<Workout>`` with ``WorkoutStatistics`` and an ``<ActivitySummary>``. Dates
are local with the device's UTC offset (America/New_York; the data spans the
spring-forward night of 2024-03-10). The numbered comments are the expected
outcome per record; ``tests/sources/test_apple_health.py`` adds them up.

Run from the repository root: ``python tests/sources/dummy_data/apple_health/make_dummy.py``.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent
HK = "HKQuantityTypeIdentifier"
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
WATCH = ('sourceName="Ana’s Apple Watch" sourceVersion="10.3" device="&lt;&lt;HKDevice: 0x2818f4be0&gt;, '
         'name:Apple Watch, manufacturer:Apple Inc., model:Watch, hardware:Watch6,2, software:10.3&gt;"')
PHONE = ('sourceName="Ana’s iPhone" sourceVersion="17.3.1" device="&lt;&lt;HKDevice: 0x2818f5a40&gt;, '
         'name:iPhone, manufacturer:Apple Inc., model:iPhone, hardware:iPhone14,5, software:17.3.1&gt;"')
OMRON = 'sourceName="OMRON connect" sourceVersion="202401251"'

DTD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!-- HealthKit Export Version: 13 -->
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary|ClinicalRecord|Audiogram|VisionPrescription)*)>
<!ATTLIST HealthData
  locale CDATA #REQUIRED
>
<!ELEMENT ExportDate EMPTY>
<!ATTLIST ExportDate
  value CDATA #REQUIRED
>
<!ELEMENT Me EMPTY>
<!ATTLIST Me
  HKCharacteristicTypeIdentifierDateOfBirth                   CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBiologicalSex                 CDATA #REQUIRED
  HKCharacteristicTypeIdentifierBloodType                     CDATA #REQUIRED
  HKCharacteristicTypeIdentifierFitzpatrickSkinType           CDATA #REQUIRED
  HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse   CDATA #REQUIRED
>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record
  type          CDATA #REQUIRED
  unit          CDATA #IMPLIED
  value         CDATA #IMPLIED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!-- Note: Any Records that appear as children of a correlation also appear as top-level records in this document. -->
<!ELEMENT Correlation ((MetadataEntry|Record)*)>
<!ATTLIST Correlation
  type          CDATA #REQUIRED
  sourceName    CDATA #REQUIRED
  sourceVersion CDATA #IMPLIED
  device        CDATA #IMPLIED
  creationDate  CDATA #IMPLIED
  startDate     CDATA #REQUIRED
  endDate       CDATA #REQUIRED
>
<!ELEMENT Workout ((MetadataEntry|WorkoutEvent|WorkoutRoute|WorkoutStatistics)*)>
<!ATTLIST Workout
  workoutActivityType   CDATA #REQUIRED
  duration              CDATA #IMPLIED
  durationUnit          CDATA #IMPLIED
  sourceName            CDATA #REQUIRED
  sourceVersion         CDATA #IMPLIED
  device                CDATA #IMPLIED
  creationDate          CDATA #IMPLIED
  startDate             CDATA #REQUIRED
  endDate               CDATA #REQUIRED
>
<!ELEMENT WorkoutStatistics EMPTY>
<!ATTLIST WorkoutStatistics
  type                       CDATA #REQUIRED
  startDate                  CDATA #REQUIRED
  endDate                    CDATA #REQUIRED
  average                    CDATA #IMPLIED
  minimum                    CDATA #IMPLIED
  maximum                    CDATA #IMPLIED
  sum                        CDATA #IMPLIED
  unit                       CDATA #IMPLIED
>
<!ELEMENT ActivitySummary EMPTY>
<!ATTLIST ActivitySummary
  dateComponents           CDATA #IMPLIED
  activeEnergyBurned       CDATA #IMPLIED
  activeEnergyBurnedGoal   CDATA #IMPLIED
  activeEnergyBurnedUnit   CDATA #IMPLIED
  appleMoveTime            CDATA #IMPLIED
  appleMoveTimeGoal        CDATA #IMPLIED
  appleExerciseTime        CDATA #IMPLIED
  appleExerciseTimeGoal    CDATA #IMPLIED
  appleStandHours          CDATA #IMPLIED
  appleStandHoursGoal      CDATA #IMPLIED
>
<!ELEMENT MetadataEntry EMPTY>
<!ATTLIST MetadataEntry
  key   CDATA #REQUIRED
  value CDATA #REQUIRED
>
<!ELEMENT HeartRateVariabilityMetadataList (InstantaneousBeatsPerMinute*)>
<!ELEMENT InstantaneousBeatsPerMinute EMPTY>
<!ATTLIST InstantaneousBeatsPerMinute
  bpm  CDATA #REQUIRED
  time CDATA #REQUIRED
>
]>
<HealthData locale="en_US">
 <ExportDate value="2024-03-12 08:15:41 -0400"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1990-05-17" HKCharacteristicTypeIdentifierBiologicalSex="HKBiologicalSexFemale" HKCharacteristicTypeIdentifierBloodType="HKBloodTypeNotSet" HKCharacteristicTypeIdentifierFitzpatrickSkinType="HKFitzpatrickSkinTypeNotSet" HKCharacteristicTypeIdentifierCardioFitnessMedicationsUse="None"/>
"""


def record(kind: str, src: str, unit: str | None, start: str, end: str, value: str | None,
           children: str = "") -> str:
    d = "2024-03-{}".format
    attrs = f'type="{kind}" {src}' + (f' unit="{unit}"' if unit else "")
    attrs += f' creationDate="{d(end[:2])} {end[3:]}" startDate="{d(start[:2])} {start[3:]}"'
    attrs += f' endDate="{d(end[:2])} {end[3:]}"' + (f' value="{value}"' if value is not None else "")
    if not children:
        return f" <Record {attrs}/>\n"
    return f" <Record {attrs}>\n{children} </Record>\n"


MOTION = '  <MetadataEntry key="HKMetadataKeyHeartRateMotionContext" value="0"/>\n'
HRV_LIST = ("  <HeartRateVariabilityMetadataList>\n" + "".join(
    f'   <InstantaneousBeatsPerMinute bpm="{b}" time="12:10:0{i}.{i}3 AM"/>\n' for i, b in enumerate((61, 63, 60)))
    + "  </HeartRateVariabilityMetadataList>\n")


def body() -> str:
    r = []
    hr = HK + "HeartRate"
    # times are "DD HH:MM:SS -0500" (day of March 2024)
    r.append(record(hr, WATCH, "count/min", "09 22:00:05 -0500", "09 22:00:05 -0500", "62", MOTION))  # 1 ok
    r.append(record(hr, WATCH, "count/min", "09 22:01:10 -0500", "09 22:01:10 -0500", "64", MOTION))  # 2 ok
    r.append(record(hr, PHONE, "count/min", "09 22:01:40 -0500", "09 22:01:40 -0500", "70"))  # 3 superseded
    r.append(record(hr, PHONE, "count/min", "09 22:03:00 -0500", "09 22:03:00 -0500", "71"))  # 4 ok (no watch)
    r.append(record(hr, WATCH, "count/min", "09 22:04:00 -0500", "09 22:04:00 -0500", "300"))  # 5 out_of_range
    r.append(record(hr, WATCH, "count/min", "09 2205:00 -0500", "09 2205:00 -0500", "66"))  # 6 unparseable
    r.append(record(hr, WATCH, "count/min", "10 01:59:00 -0500", "10 01:59:00 -0500", "58"))  # 7 ok, EST
    r.append(record(hr, WATCH, "count/min", "10 03:00:30 -0400", "10 03:00:30 -0400", "59"))  # 8 ok, EDT
    r.append(record(HK + "HeartRateVariabilitySDNN", WATCH, "ms", "10 00:10:00 -0500", "10 00:11:00 -0500",
                    "48.5", HRV_LIST))  # 9 ok
    r.append(record(HK + "RestingHeartRate", WATCH, "count/min", "09 07:12:00 -0500", "09 21:58:00 -0500",
                    "55"))  # 10 ok
    r.append(record(HK + "RespiratoryRate", WATCH, "count/min", "10 00:20:00 -0500", "10 00:21:00 -0500",
                    "14.5"))  # 11 ok
    r.append(record(HK + "OxygenSaturation", WATCH, "%", "10 00:30:00 -0500", "10 00:30:00 -0500",
                    "0.97"))  # 12 ok -> 97 %
    r.append(record(HK + "WalkingHeartRateAverage", PHONE, "count/min", "09 09:00:00 -0500",
                    "09 21:00:00 -0500", "98"))  # 13 unmapped
    steps = HK + "StepCount"
    r.append(record(steps, WATCH, "count", "09 22:10:00 -0500", "09 22:12:00 -0500", "120"))  # 14: 2 rows
    r.append(record(steps, PHONE, "count", "09 22:10:30 -0500", "09 22:15:30 -0500", "300"))  # 15: 6 rows, 2 sup.
    r.append(record(steps, WATCH, "count", "09 22:20:00 -0500", "09 22:20:00 -0500", "45"))  # 16: 1 row
    energy = HK + "ActiveEnergyBurned"
    r.append(record(energy, WATCH, "Cal", "09 22:10:00 -0500", "09 22:11:00 -0500", "3.2"))  # 17: 1 row
    r.append(record(energy, WATCH, "kJ", "09 22:11:00 -0500", "09 22:13:00 -0500", "41.84"))  # 18: 2 x 5 kcal
    r.append(record(energy, WATCH, "kcal", "09 22:13:00 -0500", "09 22:14:00 -0500", "n/a"))  # 19 wrong_type
    s = "HKCategoryValueSleepAnalysis"
    r.append(record(SLEEP, PHONE, None, "09 23:00:00 -0500", "10 01:00:00 -0500", s + "InBed"))  # 20 in_bed
    r.append(record(SLEEP, WATCH, None, "09 23:10:30 -0500", "09 23:14:00 -0500", s + "AsleepCore"))  # 21: 4
    r.append(record(SLEEP, WATCH, None, "09 23:14:00 -0500", "09 23:16:00 -0500", s + "AsleepDeep"))  # 22: 2
    r.append(record(SLEEP, WATCH, None, "09 23:16:00 -0500", "09 23:17:20 -0500", s + "AsleepREM"))  # 23: 2
    r.append(record(SLEEP, WATCH, None, "09 23:17:20 -0500", "09 23:18:00 -0500", s + "Awake"))  # 24: 1
    r.append(record(SLEEP, PHONE, None, "09 23:12:00 -0500", "09 23:20:00 -0500",
                    s + "AsleepUnspecified"))  # 25: 8 rows, 6 superseded
    r.append(record(SLEEP, WATCH, None, "09 23:30:00 -0500", "09 23:31:00 -0500", s + "AsleepBogus"))  # 26 wrong
    bp = ('  <Record type="{t}" ' + OMRON + ' unit="mmHg" creationDate="2024-03-10 08:01:12 -0400" '
          'startDate="2024-03-10 08:00:00 -0400" endDate="2024-03-10 08:00:00 -0400" value="{v}"/>\n')
    r.append(' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" ' + OMRON + ' creationDate="2024-03-10 '
             '08:01:12 -0400" startDate="2024-03-10 08:00:00 -0400" endDate="2024-03-10 08:00:00 -0400">\n'
             '  <MetadataEntry key="HKWasUserEntered" value="0"/>\n'
             + bp.format(t=HK + "BloodPressureSystolic", v=121) + bp.format(t=HK + "BloodPressureDiastolic", v=79)
             + " </Correlation>\n")  # 27, 28 in_correlation
    r += [bp.format(t=HK + "BloodPressureSystolic", v=121)[1:],
          bp.format(t=HK + "BloodPressureDiastolic", v=79)[1:]]  # 29, 30 unmapped
    r.append(record(HK + "BodyMass", PHONE, "lb", "10 07:30:00 -0400", "10 07:30:00 -0400", "141.2"))  # 31
    r.append(' <Workout workoutActivityType="HKWorkoutActivityTypeWalking" duration="21.5" durationUnit="min" '
             + WATCH + ' creationDate="2024-03-10 17:22:03 -0400" startDate="2024-03-10 17:00:30 -0400" '
             'endDate="2024-03-10 17:22:00 -0400">\n'
             '  <MetadataEntry key="HKIndoorWorkout" value="0"/>\n'
             '  <WorkoutStatistics type="HKQuantityTypeIdentifierActiveEnergyBurned" startDate="2024-03-10 17:00:30 '
             '-0400" endDate="2024-03-10 17:22:00 -0400" sum="96.4" unit="Cal"/>\n'
             ' </Workout>\n')  # 32 unmapped element
    r.append(' <ActivitySummary dateComponents="2024-03-10" activeEnergyBurned="312.5" activeEnergyBurnedGoal="400" '
             'activeEnergyBurnedUnit="Cal" appleMoveTime="0" appleMoveTimeGoal="0" appleExerciseTime="24" '
             'appleExerciseTimeGoal="30" appleStandHours="9" appleStandHoursGoal="12"/>\n')  # 33 unmapped element
    return "".join(r)


if __name__ == "__main__":
    out = HERE / "apple_health_export"
    out.mkdir(exist_ok=True)
    (out / "export.xml").write_text(DTD + body() + "</HealthData>\n", encoding="utf-8")
