"""Censored CGM readings: the ``glucose_censored`` channel, derived from glucose at the registry bounds.

A CGM reports a reading beyond its range as text: Dexcom ``Low`` / ``High``
(below 40 / above 400 mg/dL), FreeStyle Libre ``LO`` / ``HI``. The true value
is unknown, only its side. The adapters store such a reading at the
``glucose`` channel's registry bound (``valid_min`` 20, ``valid_max`` 600
mg/dL), and validation keeps every real reading inside the same bounds
(clipping it there, counted, when it lies beyond), so a ``Low`` can never
rank above a real reading (a real 2.2 mmol/L = 39.6 mg/dL reading stays above
it) and a ``High`` never below one, whichever source or unit each came from.

That makes the bound itself the flag: a glucose value at ``valid_min`` is
*below the reporting range*, one at ``valid_max`` *above it* (a real reading
clipped there is censored too: its true value lies beyond the bound). This
module turns that into the categorical channel ``glucose_censored`` (0 real,
1 below range, 2 above range) so a model and a user see the flag next to the
value, and the CGM labels (:mod:`sensorpipe.labels.cgm`) read the same codes.
The flag is derived from the validated observations, not counted as rows of
its own: rows in still equal rows accepted plus rows quarantined.

The channel aggregates with ``last`` like ``glucose``, so a minute's flag
describes the same reading as the minute's value; it is imputed with ``zero``
(the mask marks the minute as imputed; carrying "below range" forward into a
gap would claim a censored reading nobody took) and is not normalized.
"""

from __future__ import annotations

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.core.observations import Observations
from sensorpipe.schema.validate import CHANNEL_INDEX

GLUCOSE, CENSORED = "glucose", "glucose_censored"
REAL, BELOW_RANGE, ABOVE_RANGE = 0, 1, 2
#: how close to a bound a value counts as at it: float32 storage and denormalization move a value by ~1e-4 mg/dL
BOUND_TOLERANCE_MGDL = 0.01


def censoring_codes(glucose_mgdl: np.ndarray) -> np.ndarray:
    """Per value: 0 a real reading, 1 at the lower bound (below range), 2 at the upper bound (int8, same shape).

    NaN (no reading) is 0: callers select readings with their own mask.
    """
    g = np.asarray(glucose_mgdl, np.float64)
    ch = registry.get(GLUCOSE)
    with np.errstate(invalid="ignore"):
        below = g <= ch.valid_min + BOUND_TOLERANCE_MGDL
        above = g >= ch.valid_max - BOUND_TOLERANCE_MGDL
    return np.where(below, BELOW_RANGE, np.where(above, ABOVE_RANGE, REAL)).astype(np.int8)


def censored_flag_observations(obs: Observations, out_channels: tuple[str, ...]) -> Observations:
    """``glucose_censored`` observations (one per glucose reading, same instant, file and row) when it is an
    output channel; none otherwise. Added to a unit's observations after validation, like raw features."""
    if CENSORED not in out_channels or not len(obs):
        return Observations.empty()
    idx = np.flatnonzero(obs.channel == CHANNEL_INDEX[GLUCOSE])
    if not idx.size:
        return Observations.empty()
    flags = obs.take(idx)
    flags.channel = np.full(idx.size, CHANNEL_INDEX[CENSORED], obs.channel.dtype)
    flags.value = censoring_codes(flags.value).astype(np.float64)
    return flags
