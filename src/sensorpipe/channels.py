"""The canonical channel registry: the one table every stage agrees on.

Adapters map native fields onto these channels (converting units), the minute
grid aggregates with each channel's rule, imputation and normalization take
their defaults from here, and captions group channels by ``caption_group``.
Changing a row here changes the dataset fingerprint (the registry is hashed
into every dataset version), so downstream caches never mix registries.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from sensorpipe._typing import Aggregation, CaptionGroup, ImputeMethod, NormalizeMethod, OutOfRange


@dataclass(frozen=True)
class Channel:
    """One canonical minute-level channel.

    ``valid_min``/``valid_max`` bound physiologically plausible values in
    ``unit``; ``out_of_range`` says what validation does with a value outside
    them: ``quarantine`` rejects the row (kept in the quarantine file with its
    reason), ``clip`` keeps the row at the bound and counts it as clipped.
    ``categories`` names the integer codes of categorical channels.
    ``duplicate_tolerance`` (in ``unit``): two rows of the channel at the same
    instant whose values differ by at most this much are one reading exported
    twice (validation keeps the first as an ``exact_duplicate``), not a
    conflict. 0 = equal values only. It is set where one recording's exports
    differ by float rounding: a Garmin ride's per-record distance from FIT and
    from TCX differs by micrometres, a calorie or skin-temperature value by the
    last digit a float32 or a unit conversion keeps.
    """

    name: str
    unit: str
    valid_min: float
    valid_max: float
    out_of_range: OutOfRange
    aggregation: Aggregation
    impute: ImputeMethod
    normalize: NormalizeMethod
    caption_group: CaptionGroup
    description: str
    caption_decimals: int = 0
    categories: tuple[str, ...] = ()
    duplicate_tolerance: float = 0.0


_CHANNELS: tuple[Channel, ...] = (
    Channel("heart_rate", "bpm", 25, 250, "quarantine", "mean", "linear", "zscore", "Heart",
            "Heart rate; minute mean of device readings or of PPG/ECG beat intervals."),
    Channel("resting_heart_rate", "bpm", 25, 150, "quarantine", "last", "ffill", "zscore", "Heart",
            "Daily resting heart rate as reported by the device, carried per minute."),
    Channel("hrv_rmssd", "ms", 1, 300, "quarantine", "mean", "linear", "zscore", "Heart",
            "Root mean square of successive beat-interval differences."),
    Channel("hrv_sdnn", "ms", 1, 400, "quarantine", "mean", "linear", "zscore", "Heart",
            "Standard deviation of normal beat intervals."),
    Channel("hrv_rmssd_5min", "ms", 1, 300, "quarantine", "mean", "linear", "zscore", "Heart",
            "RMSSD of the NN intervals of the trailing 5 minutes ending at the minute (PPG/ECG beats)."),
    Channel("hrv_sdnn_5min", "ms", 1, 400, "quarantine", "mean", "linear", "zscore", "Heart",
            "SDNN of the NN intervals of the trailing 5 minutes ending at the minute (PPG/ECG beats)."),
    Channel("ppg_sqi", "0-1", 0, 1, "clip", "mean", "none", "none", "Heart",
            "PPG signal quality: mean correlation of the minute's pulse waves with their average (0-1).", 2),
    Channel("spo2", "%", 50, 100, "quarantine", "mean", "linear", "zscore", "Heart",
            "Blood oxygen saturation; values outside 50-100 % (device codes such as 0 and 127) are quarantined.", 1),
    Channel("respiratory_rate", "breaths/min", 4, 60, "quarantine", "mean", "linear", "zscore", "Heart",
            "Breathing rate.", 1),
    Channel("steps", "steps/min", 0, 300, "quarantine", "sum", "zero", "zscore", "Activity",
            "Step count per minute (sum of readings in the minute)."),
    Channel("calories", "kcal/min", 0, 50, "quarantine", "sum", "zero", "zscore", "Activity",
            "Energy expenditure per minute.", 2, duplicate_tolerance=0.001),
    Channel("enmo", "mg", 0, 4000, "clip", "mean", "zero", "zscore", "Activity",
            "Euclidean norm minus one g of the accelerometer, negatives set to 0, minute mean."),
    Channel("acc_mad", "mg", 0, 4000, "clip", "mean", "zero", "zscore", "Activity",
            "Mean amplitude deviation of the accelerometer magnitude from its 5-s epoch means, minute mean."),
    Channel("acc_zcr", "Hz", 0, 100, "clip", "mean", "zero", "zscore", "Activity",
            "Zero crossings per second of the band-passed (0.5-3 Hz) accelerometer magnitude.", 2),
    Channel("activity_intensity", "level 0-3", 0, 3, "quarantine", "max", "zero", "none", "Activity",
            "Activity intensity class: 0 sedentary, 1 light, 2 moderate, 3 vigorous.", 0,
            ("sedentary", "light", "moderate", "vigorous")),
    Channel("sleep_stage", "stage code", 0, 4, "quarantine", "mode", "zero", "none", "Sleep",
            "Sleep stage: 0 awake/not asleep, 1 light, 2 deep, 3 REM, 4 asleep (unstaged).", 0,
            ("awake", "light", "deep", "rem", "asleep")),
    Channel("on_wrist", "flag", 0, 1, "quarantine", "max", "zero", "none", "Sleep",
            "1 when the device was worn during the minute."),
    Channel("eda_level", "uS", 0, 100, "quarantine", "mean", "linear", "zscore", "EDA",
            "Electrodermal activity (skin conductance) level, minute mean; from raw EDA its tonic part (SCL).", 2),
    Channel("eda_scr_rate", "peaks/min", 0, 60, "clip", "mean", "linear", "log1p", "EDA",
            "Skin conductance responses (phasic peaks of at least 0.05 uS) per minute.", 1),
    Channel("skin_temperature", "degC", 20, 45, "quarantine", "mean", "linear", "zscore", "Temperature",
            "Skin temperature, minute mean.", 1, duplicate_tolerance=0.01),
    Channel("glucose", "mg/dL", 20, 600, "clip", "last", "linear", "zscore", "Metabolic",
            "Interstitial glucose (CGM), placed in the minute of the reading; a reading beyond the sensor's "
            "range (Dexcom Low/High, Libre LO/HI) sits at this channel's bound (20 / 600)."),
    Channel("glucose_censored", "code", 0, 2, "quarantine", "last", "zero", "none", "Metabolic",
            "Censoring of the minute's CGM reading: 0 a real reading, 1 below the sensor's reporting range "
            "(Low/LO), 2 above it (High/HI).", 0, ("real", "below_range", "above_range")),
    Channel("distance", "m/min", 0, 1000, "quarantine", "sum", "zero", "zscore", "Activity",
            "Distance covered per minute.", 1, duplicate_tolerance=0.01),
)

CHANNELS: dict[str, Channel] = {c.name: c for c in _CHANNELS}


def get(name: str) -> Channel:
    """Return a channel by name, or say which names exist."""
    try:
        return CHANNELS[name]
    except KeyError:
        raise KeyError(
            f"unknown channel {name!r}; canonical channels are: {', '.join(CHANNELS)}"
        ) from None


def registry_fingerprint() -> str:
    """Hash of the whole registry; part of every dataset version."""
    blob = json.dumps([asdict(c) for c in _CHANNELS], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def markdown_table() -> str:
    """The registry as the Markdown table the README shows."""
    head = ("| channel | unit | valid range | outside range | minute aggregation | "
            "default imputation | normalization | caption group |")
    rows = [head, "|" + "---|" * 8]
    for c in _CHANNELS:
        rows.append(
            f"| `{c.name}` | {c.unit} | {c.valid_min:g} to {c.valid_max:g} | {c.out_of_range} | "
            f"{c.aggregation} | {c.impute} | {c.normalize} | {c.caption_group} |"
        )
    return "\n".join(rows)
