"""Semantic captions: events in the window, in local clock time.

* sleep periods (onset, wake time, duration, minutes asleep) from the
  ``sleep_stage`` channel;
* activity bouts of at least ``bout_min_min`` minutes from
  ``activity_intensity``, else steps, else ENMO, with their type when a logged
  activity overlaps them;
* off-wrist periods from an observed ``on_wrist`` = 0, and spans with no data
  at all (stated as missing data, never guessed as off-wrist);
* glucose excursions by the consensus level-1 event definition of
  :func:`sensorpipe.labels.cgm.glucose_events` (the same function as the
  hypo/hyper event labels; the reading interval inferred from the window); a
  censored extreme (Low/LO, High/HI) is said as "under 40" / "over 400";
* stress-protocol condition segments and other label events (logged or
  annotated activities), stated as labels, not as measurements.

Definitions and thresholds are in :class:`sensorpipe.config.SemanticCaptionConfig`.
Only observed minutes are evidence: an unobserved minute is never asleep,
active or off-wrist.
"""

from __future__ import annotations

import numpy as np

from sensorpipe.captions.base import (CaptionLevel, Claim, bridged_runs_rows, clock, clocks, duration_text,
                                      runs)
from sensorpipe.core.windows import WindowBatch

ASLEEP_CODES = (1, 2, 3, 4)       # light, deep, REM, unstaged asleep (sleep_stage channel); consecutive


def _code(batch: WindowBatch, i: int, ch: str) -> tuple[np.ndarray, np.ndarray] | None:
    j = batch.index(ch)
    if j is None:
        return None
    v_cm, o_cm = batch.channel_major()
    return v_cm[i, j].astype(np.float64), o_cm[i, j]


def _active_rows(batch: WindowBatch, cfg) -> tuple[np.ndarray, list[str | None]]:
    """Active minutes ``[N, W]`` of every window and the criterion each used: the first channel (intensity,
    steps, ENMO) observed in that window; no criterion (and no active minute) when none is."""
    N = len(batch)
    active = np.zeros((N, batch.size_min), bool)
    criterion: list[str | None] = [None] * N
    todo = np.ones(N, bool)
    v_cm, o_cm = batch.channel_major()     # a channel's minutes contiguous: 5x the gather across channels
    for ch, test, text in (("activity_intensity", lambda v: np.round(v) >= 2, "activity intensity moderate or above"),
                           ("steps", lambda v: v >= cfg.bout_steps_per_min - 1e-3,
                            f"at least {cfg.bout_steps_per_min:g} steps/min"),
                           ("enmo", lambda v: v >= cfg.bout_enmo_mg - 1e-3, f"ENMO at least {cfg.bout_enmo_mg:g} mg")):
        j = batch.index(ch)
        if j is None:
            continue
        use = todo & o_cm[:, j].any(axis=1)
        if not use.any():
            continue
        v, obs = v_cm[use, j].astype(np.float64), o_cm[use, j]
        active[use] = obs & test(np.where(obs, v, -np.inf))
        for i in np.flatnonzero(use).tolist():
            criterion[i] = text
        todo &= ~use
    return active, criterion


def _glucose_events(batch: WindowBatch, i: int):
    got = _code(batch, i, "glucose")
    if got is None or not got[1].any():
        return []
    from sensorpipe.labels.cgm import glucose_events

    return [e for e in glucose_events(np.where(got[1], got[0], np.nan)) if e.level == 1]


def _glucose_events_all(batch: WindowBatch) -> list[list]:
    """:func:`_glucose_events` of every window (the same events), the windows' reading intervals found at once
    and windows without a long enough excursion not searched (:func:`sensorpipe.labels.cgm.may_have_events`)."""
    j = batch.index("glucose")
    if j is None:
        return [[] for _ in range(len(batch))]
    from sensorpipe.labels.cgm import glucose_events_per_window

    v_cm, o_cm = batch.channel_major()
    g = np.where(o_cm[:, j], v_cm[:, j].astype(np.float64), np.nan)
    return [[e for e in events if e.level == 1] for events in glucose_events_per_window(g)]


def _extreme_text(mgdl: float) -> str:
    """A glucose extreme as said: a censored reading (stored at the channel's bound) is beyond the sensor's
    reporting limit, not the bound's number."""
    from sensorpipe.labels.cgm import CENSORED_HIGH_AS_MGDL, CENSORED_LOW_AS_MGDL
    from sensorpipe.processing.glucose_censoring import ABOVE_RANGE, BELOW_RANGE, censoring_codes

    code = int(censoring_codes(np.array([mgdl]))[0])
    if code == BELOW_RANGE:
        return f"under {CENSORED_LOW_AS_MGDL:.0f}"
    if code == ABOVE_RANGE:
        return f"over {CENSORED_HIGH_AS_MGDL:.0f}"
    return f"{mgdl:.0f}"


class SemanticLevel(CaptionLevel):
    name = "semantic"
    templates = {
        "sleep": ("slept from {t0} to {t1} ({duration}, {asleep} of it asleep)",
                  "a sleep period ran from {t0} to {t1}: {duration}, {asleep} asleep",
                  "asleep between {t0} and {t1} ({asleep} asleep over {duration})"),
        "activity_bout": ("a {duration} {type} bout from {t0} to {t1}{steps}",
                          "from {t0} to {t1}, {duration} of {type}{steps}"),
        "off_wrist": ("the device was off the wrist from {t0} to {t1} ({duration})",
                      "off-wrist from {t0} to {t1} ({duration})"),
        "no_data": ("no data was recorded from {t0} to {t1} ({duration})",
                    "a {duration} gap without data from {t0} to {t1}"),
        "glucose_excursion": ("glucose was {direction} from {t0} to {t1}, reaching {extreme} mg/dL",
                              "a {event} from {t0} to {t1} ({extreme} mg/dL at its extreme)"),
        "condition": ("{name} condition from {t0} to {t1}",
                      "the protocol's {name} segment ran from {t0} to {t1}"),
        "label_event": ("{name} from {t0} to {t1} ({what} label)",
                        "labelled {name} ({what}) between {t0} and {t1}"),
    }

    def claims(self, batch: WindowBatch) -> list[list[Claim]]:
        found: list[list[tuple]] = []      # per window: (kind, start, end, data) of each event, in finding order
        glucose = _glucose_events_all(batch)
        for i in range(len(batch)):   # run finding is vectorized over windows
            events = [("sleep", s, e, {"asleep_min": n}) for s, e, n in self._sleep(batch, i)]
            bouts = self._bouts(batch, i)
            events += [("activity_bout", s, e, {"type": typ, "steps": steps, "criterion": criterion})
                       for s, e, typ, steps, criterion in bouts]
            events += [("off_wrist", s, e, {}) for s, e in self._off_wrist(batch, i)]
            events += [("no_data", s, e, {}) for s, e in self._no_data(batch, i)]
            events += [("glucose_excursion", ev.start_min, ev.end_min,
                        {"event": ev.kind, "extreme_mgdl": float(ev.extreme_mgdl)}) for ev in glucose[i]]
            for s, e, kind, name in batch.events[i]:
                if kind == "activity" and any(min(e, be) > max(s, bs) and t == name for bs, be, t, _, _ in bouts):
                    continue     # already the type of a measured bout it overlaps: said once
                if kind == "condition":
                    events.append(("condition", s, e, {"name": name}))
                else:
                    events.append(("label_event", s, e, {"event_kind": kind, "name": name}))
            found.append(events)
        # the local clock of every start and end in one gather (not a numpy scalar each)
        rows = [i for i, events in enumerate(found) for _ in events]
        edges = [int(ev[1]) for events in found for ev in events] + [int(ev[2]) for events in found for ev in events]
        times = clocks(batch.local_min, rows + rows, edges)
        t1_at, pos, name = len(rows), 0, self.name
        out = []
        for events in found:
            claims = []
            for kind, start, end, data in events:
                claims.append(Claim(name, kind, {"start_min": edges[pos], "end_min": edges[t1_at + pos],
                                                 "t0": times[pos], "t1": times[t1_at + pos],
                                                 "duration_min": int(end - start), **data}))
                pos += 1
            claims.sort(key=lambda c: (c.data["start_min"], c.data["end_min"], c.kind))
            out.append(claims)
        return out

    # --- event finders (shared by generation and checking) -------------------------------------------------
    def _sleep(self, batch, i) -> list[tuple[int, int, int]]:
        """Sleep periods of window ``i``: found for every window of the batch at once, the first time."""
        if "sleep" not in batch._cache:
            batch._cache["sleep"] = self._sleep_rows(batch)
        return batch._cache["sleep"][i]

    def _sleep_rows(self, batch) -> list[list[tuple[int, int, int]]]:
        j = batch.index("sleep_stage")
        if j is None:
            return [[] for _ in range(len(batch))]
        v_cm, o_cm = batch.channel_major()
        v, obs = v_cm[:, j].astype(np.float64), o_cm[:, j]
        code = np.round(np.where(obs, v, 0))     # whole numbers: in ASLEEP_CODES (1..4) is a range test
        asleep = obs & (code >= ASLEEP_CODES[0]) & (code <= ASLEEP_CODES[-1])
        c = self.cfg.semantic
        spans, counts = bridged_runs_rows(asleep, c.sleep_merge_gap_min, c.sleep_min_min)
        n = iter(counts.tolist())
        return [[(s, e, next(n)) for s, e in row] for row in spans]

    def _bouts(self, batch, i) -> list[tuple[int, int, str | None, int | None, str]]:
        """Activity bouts of window ``i``: found for every window of the batch at once, the first time."""
        if "bouts" not in batch._cache:
            batch._cache["bouts"] = self._bouts_rows(batch)
        return batch._cache["bouts"][i]

    def _bouts_rows(self, batch) -> list[list[tuple[int, int, str | None, int | None, str]]]:
        c = self.cfg.semantic
        active, criteria = _active_rows(batch, c)
        spans = bridged_runs_rows(active, c.bout_gap_min, c.bout_min_min)[0]
        j = batch.index("steps")
        if j is not None:
            v_cm, o_cm = batch.channel_major()
            steps_v, steps_o = v_cm[:, j].astype(np.float64), o_cm[:, j]
        out = []
        for i, (row, criterion) in enumerate(zip(spans, criteria)):
            if not row:
                out.append([])
                continue
            acts = [(s, e, n) for s, e, k, n in batch.events[i] if k == "activity"]
            bouts = []
            for s, e in row:
                overlap = [(min(e, ae) - max(s, a_s), n) for a_s, ae, n in acts if min(e, ae) > max(s, a_s)]
                typ = max(overlap)[1] if overlap else None
                total = None
                if j is not None and steps_o[i, s:e].any():
                    total = int(round(float(np.where(steps_o[i, s:e], steps_v[i, s:e], 0.0).sum())))
                bouts.append((s, e, typ, total, criterion))
            out.append(bouts)
        return out

    def _off_wrist(self, batch, i) -> list[tuple[int, int]]:
        got = _code(batch, i, "on_wrist")
        if got is None:
            return []
        v, obs = got
        s, e = runs(obs & (np.round(np.where(obs, v, 1)) == 0))
        ok = (e - s) >= self.cfg.semantic.off_wrist_min_min
        return list(zip(s[ok].tolist(), e[ok].tolist()))

    def _no_data(self, batch, i) -> list[tuple[int, int]]:
        """Spans without any data in window ``i`` (for every window of the batch at once, the first time):
        :func:`runs` of at least ``no_data_min_min`` minutes, which bridging by 0 minutes keeps as they are."""
        if "no_data" not in batch._cache:
            batch._cache["no_data"] = bridged_runs_rows(~batch.any_observed(), 0, self.cfg.semantic.no_data_min_min)[0]
        return batch._cache["no_data"][i]

    # --- text -----------------------------------------------------------------------------------------------
    def fields(self, claim: Claim) -> dict[str, str]:
        d = claim.data
        f = {"t0": d["t0"], "t1": d["t1"], "duration": duration_text(d["duration_min"])}
        if claim.kind == "sleep":
            f["asleep"] = duration_text(d["asleep_min"])
        elif claim.kind == "activity_bout":
            f["type"] = d["type"].replace("_", " ") if d["type"] else "activity"
            f["steps"] = f" with {d['steps']:,} steps" if d["steps"] is not None else ""
        elif claim.kind == "glucose_excursion":
            hypo = d["event"] == "hypo"
            f["direction"] = "below 70 mg/dL" if hypo else "above 180 mg/dL"
            f["event"] = "hypoglycaemic event" if hypo else "hyperglycaemic event"
            f["extreme"] = _extreme_text(d["extreme_mgdl"])
        elif claim.kind in ("condition", "label_event"):
            f["name"] = d["name"].replace("_", " ")
            f["what"] = d.get("event_kind", "condition").replace("_", " ")
        return f

    # --- faithfulness ---------------------------------------------------------------------------------------
    def check(self, claim: Claim, batch: WindowBatch) -> str | None:
        d = claim.data
        lm = batch.local_min[0]
        s, e = d["start_min"], d["end_min"]
        if clock(lm, s) != d["t0"] or clock(lm, e) != d["t1"] or d["duration_min"] != e - s:
            return f"times {d['t0']}-{d['t1']} ({d['duration_min']} min) do not match minutes {s}-{e}"
        k = claim.kind
        if k == "sleep":
            found = {(a, b): n for a, b, n in self._sleep(batch, 0)}
            if found.get((s, e)) != d["asleep_min"]:
                return f"no sleep period {d['t0']}-{d['t1']} with {d['asleep_min']} min asleep in the data"
        elif k == "activity_bout":
            found = {(a, b): (t, n, c) for a, b, t, n, c in self._bouts(batch, 0)}
            if found.get((s, e)) != (d["type"], d["steps"], d["criterion"]):
                return f"no activity bout {d['t0']}-{d['t1']} ({d['type']}, {d['steps']} steps) in the data"
        elif k in ("off_wrist", "no_data"):
            spans = self._off_wrist(batch, 0) if k == "off_wrist" else self._no_data(batch, 0)
            if (s, e) not in spans:
                return f"no {k.replace('_', ' ')} span {d['t0']}-{d['t1']} in the data"
        elif k == "glucose_excursion":
            hit = [ev for ev in _glucose_events(batch, 0) if (ev.start_min, ev.end_min, ev.kind) == (s, e, d["event"])]
            if not hit or abs(float(hit[0].extreme_mgdl) - d["extreme_mgdl"]) > 1e-3 * max(1.0, d["extreme_mgdl"]):
                return f"no {d['event']} glucose event {d['t0']}-{d['t1']} reaching {d['extreme_mgdl']} mg/dL"
        elif k in ("condition", "label_event"):
            kind = "condition" if k == "condition" else d["event_kind"]
            if (s, e, kind, d["name"]) not in batch.events[0]:
                return f"no {kind} label event {d['name']} {d['t0']}-{d['t1']} in the window's labels"
        else:
            return f"unknown semantic claim kind {k!r}"
        return None
