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
import math
from dataclasses import asdict, dataclass, replace
from typing import ClassVar, get_args

from sensorpipe._typing import Aggregation, CaptionGroup, ImputeMethod, NormalizeMethod, OutOfRange
from sensorpipe.registry import Registered, Registry


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
    ``prior_center``/``prior_scale`` are a documented population prior in
    ``unit`` (a typical value and spread of one minute of an adult; why in
    ``prior_basis``): normalization falls back to them for a channel the train
    split never observed, instead of parameters that fit nothing.
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
    prior_center: float = float("nan")
    prior_scale: float = float("nan")
    prior_basis: str = ""


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
    Channel("activity_counts", "counts/min", 0, 100000, "quarantine", "sum", "zero", "log1p", "Activity",
            "Actigraphy activity counts per minute (sum of the minute's epochs). Counts are per device and "
            "mode (ActiGraph axis 1, Actiwatch, MotionWatch, ActTrust PIM): the adapter records device and epoch."),
    Channel("light", "lux", 0, 200000, "clip", "mean", "linear", "log1p", "Sleep",
            "Ambient (white) light at the wrist, minute mean of the epochs.", 1),
    Channel("floors", "floors/min", 0, 20, "quarantine", "sum", "zero", "zscore", "Activity",
            "Floors climbed per minute."),
)

#: Population priors: (center, scale, basis) per channel, in the channel's unit. They describe one minute
#: of a typical adult's free-living recording (not a patient group), and only stand in for train statistics a
#: dataset lacks; a table of their own so the rows above stay one line of measurement rules each.
_PRIORS: dict[str, tuple[float, float, str]] = {
    "heart_rate": (70, 12, "resting 65 +/- 8 bpm across 92,457 adults (Quer et al. 2020, PLoS One); day minutes "
                           "with activity run higher and wider"),
    "resting_heart_rate": (65, 8, "daily resting heart rate 65.5 +/- 7.7 bpm across 92,457 wearable users "
                                  "(Quer et al. 2020, PLoS One)"),
    "hrv_rmssd": (42, 15, "short-term RMSSD 42 +/- 15 ms in healthy adults (Nunan et al. 2010, PACE, "
                          "systematic review of normal values)"),
    "hrv_sdnn": (50, 16, "short-term SDNN 50 +/- 16 ms in healthy adults (Nunan et al. 2010, PACE)"),
    "hrv_rmssd_5min": (42, 15, "5-minute RMSSD: as hrv_rmssd (Nunan et al. 2010 pooled 5-minute recordings)"),
    "hrv_sdnn_5min": (50, 16, "5-minute SDNN: as hrv_sdnn (Nunan et al. 2010 pooled 5-minute recordings)"),
    "ppg_sqi": (0.5, 0.29, "no population norm for a 0-1 quality index: the midpoint, and the SD of a uniform "
                           "over 0-1 (1/sqrt(12))"),
    "spo2": (97, 2, "healthy adults at sea level read 95-100 % (WHO Pulse Oximetry Training Manual 2011)"),
    "respiratory_rate": (15, 3, "adults at rest breathe 12-20 breaths/min (the clinical normal range)"),
    "steps": (5, 23, "about 7,000 steps/day (Tudor-Locke et al. 2011) over 1,440 min = 5 steps/min; minutes are "
                     "0 or near walking cadence 110 steps/min (Tudor-Locke et al. 2018), SD 110*sqrt(p(1-p)) = 23 "
                     "for p = 5/110"),
    "calories": (1.5, 1.0, "about 2,200 kcal/day of adult energy expenditure = 1.5 kcal/min; 1 MET is about "
                           "1.2 kcal/min at 70 kg and brisk walking (4 MET) about 5 kcal/min"),
    "enmo": (28, 40, "wrist ENMO averages about 28 mg over a week in UK Biobank (Doherty et al. 2017, PLoS One); "
                     "minutes range from ~5 mg at rest to >100 mg walking"),
    "acc_mad": (30, 60, "mean amplitude deviation: sedentary < 22.5 mg, light to 91 mg, moderate to 414 mg "
                        "(Vaha-Ypya et al. 2015); free-living minutes are mostly sedentary or light"),
    "acc_zcr": (2.5, 1.5, "a signal band-passed to 0.5-3 Hz crosses zero about twice per cycle: 1-6 /s, about "
                          "4 /s at walking's 1.8-2 Hz step frequency"),
    "activity_intensity": (0.5, 0.6, "adults spend about 55 % of waking minutes sedentary, most of the rest light "
                                     "and a few % moderate-vigorous (Matthews et al. 2008, NHANES accelerometry)"),
    "sleep_stage": (0.6, 1.0, "about 2/3 of minutes awake (0); sleep is ~55 % light, ~20 % deep, ~20 % REM "
                              "(Ohayon et al. 2004): code mean 0.6, SD 1.0"),
    "on_wrist": (0.9, 0.3, "a wear share of about 90 % of minutes: Bernoulli SD sqrt(0.9 * 0.1) = 0.3"),
    "eda_level": (3, 4, "skin conductance level is typically 2-20 uS at the palm (Boucsein 2012); wrist levels "
                        "are lower, mostly 0.1-10 uS"),
    "eda_scr_rate": (2, 2, "1-3 non-specific skin conductance responses per minute at rest (Boucsein 2012)"),
    "skin_temperature": (33, 1.5, "wrist skin temperature of about 32-35 degC over the day in normal living "
                                  "(Sarabia et al. 2008, Physiol Behav)"),
    "glucose": (120, 40, "between the CGM mean of healthy adults, 99 mg/dL (Shah et al. 2019, JCEM), and of people "
                         "with diabetes, 150-160 mg/dL; center +/- 1.5 scales (60-180 mg/dL) spans the "
                         "70-180 mg/dL target range (Battelino et al. 2019)"),
    "glucose_censored": (0.02, 0.15, "a code (0 real, 1 below, 2 above the sensor's range), normalized with none: "
                                     "about 2 % of CGM readings lie beyond the 40-400 mg/dL range in type 1 "
                                     "diabetes (Battelino et al. 2019 targets < 1 % below 54 mg/dL), code SD 0.15"),
    "distance": (3.5, 16, "about 5 km/day (7,000 steps of 0.7 m) over 1,440 min = 3.5 m/min; minutes are 0 or "
                          "near walking speed 80 m/min, SD 80*sqrt(p(1-p)) = 16 for p = 3.5/80"),
    "activity_counts": (300, 800, "wrist actigraphs read ~0 counts/min asleep and several hundred to a few thousand "
                                  "awake (Actiwatch wake threshold 40 counts/epoch, ActiGraph moderate activity "
                                  ">= 1952 counts/min, Freedson et al. 1998); scale covers that spread"),
    "light": (100, 1000, "wrist light is < 10 lux at night, 50-500 lux indoors and 10,000-100,000 lux outdoors in "
                         "daylight; most waking minutes are indoor"),
    "floors": (0.01, 0.1, "about 10 floors/day (Fitbit users' typical daily floors) over 1,440 min = 0.007 "
                          "floors/min; a minute climbing stairs reads 1-3 floors"),
}


def _with_priors(rows: tuple[Channel, ...]) -> tuple[Channel, ...]:
    missing = [c.name for c in rows if c.name not in _PRIORS]
    if missing:
        raise RuntimeError(f"channels without a population prior in channels._PRIORS: {', '.join(missing)}")
    return tuple(replace(c, prior_center=float(_PRIORS[c.name][0]), prior_scale=float(_PRIORS[c.name][1]),
                         prior_basis=_PRIORS[c.name][2]) for c in rows)


_CHANNELS = _with_priors(_CHANNELS)
_BUILT_IN = _CHANNELS
CHANNELS: dict[str, Channel] = {c.name: c for c in _CHANNELS}


def _check_channel(cls: type) -> None:
    """A plugin channel carries everything the built-ins carry and takes no built-in name."""
    if not isinstance(cls.channel, Channel):
        raise TypeError(f"{cls!r} must subclass {__name__}.ChannelPlugin and set channel = Channel(...)")
    c = cls.channel
    if c.name in CHANNELS and (CHANNELS[c.name] != c or c in _BUILT_IN):
        raise TypeError(f"channel {c.name!r} is already registered (built in or by another plugin)")
    if not c.name.isidentifier():
        raise TypeError(f"channel name must be an identifier, got {c.name!r}")
    for attr, kind in (("out_of_range", OutOfRange), ("aggregation", Aggregation), ("impute", ImputeMethod),
                       ("normalize", NormalizeMethod), ("caption_group", CaptionGroup)):
        if getattr(c, attr) not in get_args(kind):
            raise TypeError(f"channel {c.name!r}: {attr} {getattr(c, attr)!r} is not one of {get_args(kind)}")
    if not (math.isfinite(c.valid_min) and math.isfinite(c.valid_max) and c.valid_min < c.valid_max):
        raise TypeError(f"channel {c.name!r}: valid_min < valid_max (finite) is required, got "
                        f"{c.valid_min} to {c.valid_max}")
    if not (math.isfinite(c.prior_center) and math.isfinite(c.prior_scale) and c.prior_scale > 0 and c.prior_basis):
        raise TypeError(f"channel {c.name!r}: set prior_center, prior_scale (> 0) and prior_basis (the population "
                        f"prior normalization falls back to)")


#: channel name -> plugin class; the built-in channels are the table above, not classes
_PLUGINS = Registry("channels", what="channel", package=None, check=_check_channel)


class ChannelPlugin(Registered, registry=_PLUGINS):
    """What a ``sensorpipe.channels`` entry point names: a class holding the new :class:`Channel`.

    The class's name is the channel's name (and the entry point's). A feature
    or source plugin adds the channel it produces this way; the channel must
    carry everything the built-ins carry, a population prior included
    (normalization's fallback). Defining the class registers and checks it;
    the channel joins :data:`CHANNELS` only when its entry point is loaded
    (:func:`with_plugins`), so the order never depends on import order.
    """

    name: ClassVar[str] = ""
    channel: ClassVar[Channel | None] = None

    def __init_subclass__(cls, **kw) -> None:
        if isinstance(cls.channel, Channel):
            cls.name = cls.channel.name
        super().__init_subclass__(**kw)


def register_channel(cls: type) -> type[ChannelPlugin]:
    """Check a channel plugin class and add it to the plugin registry (subclassing already did: a no-op then)."""
    return _PLUGINS.add(cls)


def with_plugins() -> dict[str, Channel]:
    """The whole registry: built-ins, then the installed ``sensorpipe.channels`` plugins (loaded once per process).

    Stages that index channels by position (validation, the minute grid) take
    their order from this, so every process, spawned workers included, agrees
    on it: plugin channels follow the built-ins in entry-point name order.
    """
    global _CHANNELS
    from sensorpipe.plugins import load_plugins

    for name in load_plugins(_PLUGINS.group):   # entry-point name order: every process appends the same way
        c = _PLUGINS[name].channel
        if c.name not in CHANNELS:
            _CHANNELS = _CHANNELS + (c,)
            CHANNELS[c.name] = c
    return CHANNELS


def get(name: str) -> Channel:
    """Return a channel by name (loading channel plugins for a name not built in), or say which names exist."""
    if name not in CHANNELS:
        with_plugins()
    try:
        return CHANNELS[name]
    except KeyError:
        raise KeyError(
            f"unknown channel {name!r}; canonical channels are: {', '.join(CHANNELS)}"
        ) from None


def known(name: str) -> bool:
    """Whether ``name`` is a channel, built in or from an installed plugin (config checks)."""
    return name in CHANNELS or name in with_plugins()


def registry_fingerprint() -> str:
    """Hash of the whole registry, plugin channels included; part of every dataset version."""
    with_plugins()
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


def priors_markdown_table() -> str:
    """The population priors (normalization's fallback for a channel without train data) as the README shows them."""
    rows = ["| channel | unit | prior center | prior scale | basis |", "|---|---|---|---|---|"]
    for c in _CHANNELS:
        rows.append(f"| `{c.name}` | {c.unit} | {c.prior_center:g} | {c.prior_scale:g} | {c.prior_basis} |")
    return "\n".join(rows)
