"""The life of one run around the pipeline's work: its metadata row, its label, its failure record.

* Every run has a ``runs`` row from its start (``running``, committed), moved
  through the stages (plan, pass1, pass2, write, publish) and closed as
  ``succeeded``, ``unchanged``, ``failed`` (with a one-line error) or, for a
  run whose process is gone, ``interrupted`` (by the next run or
  ``sensorpipe versions``; see :func:`reconcile_runs`).
* A label (output.name/output.version) never changes content: :func:`decide_label`
  says whether to write, stop (:class:`VersionConflict`), or do nothing
  (the label already holds this fingerprint).
* A run that keeps no window stops before anything is written with the cause
  (:func:`no_windows_message`).

The publish order (see :mod:`sensorpipe.storage.publish`): the complete
version is recorded with status ``publishing`` in one transaction, renamed
into place, then marked ``succeeded``. Whatever instant a run dies, the
folder and the rows agree once :func:`reconcile_runs` has looked: a
``publishing`` run whose fingerprint is on disk succeeded, any other open run
was interrupted; ``versions`` lists only succeeded runs' versions.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from sensorpipe.runners.lock import run_alive
from sensorpipe.storage.publish import next_patch, on_disk_fingerprint, version_labels

log = logging.getLogger(__name__)

#: Test hook: the driver SIGKILLs itself on reaching the stage this environment variable names
#: (plan, pass1, pass2, write, shards, publish, record, swap, published), so tests can kill a real run at a
#: known point: ``shards`` after the shards are staged, ``record`` after the 'publishing' commit, ``swap``
#: between moving the old version aside and the new one in, ``published`` after the rename.
KILL_AT_ENV = "SENSORPIPE_TEST_KILL_AT"


def checkpoint(stage: str) -> None:
    """Where a test may kill the run (see :data:`KILL_AT_ENV`); nothing otherwise."""
    if os.environ.get(KILL_AT_ENV) == stage:
        os.kill(os.getpid(), signal.SIGKILL)


class VersionConflict(ValueError):
    """The label already holds a different fingerprint (the message names both and the ways out)."""


class NoWindowsError(ValueError):
    """The run would keep no window; the message says why (rows quarantined by reason, windows dropped)."""


@dataclass(frozen=True)
class Label:
    """Where a run's version goes and what to do there."""

    version: str              # the x.y.z label (``auto`` resolved)
    target: Path              # <output.dir>/<name>/<version>
    unchanged: bool           # the label already holds this fingerprint, intact: nothing to write
    replaces: str | None      # fingerprint of the version --overwrite replaces (None: the label is free)


def decide_label(cfg, store, fingerprint: str, overwrite: bool) -> Label:
    """Resolve ``output.version`` and check the label against what the folder and the database hold."""
    out = Path(cfg.output_dir)
    dataset_dir = out / cfg.output.name
    mine = [v for v in store.list_versions()
            if v["dataset_name"] == cfg.output.name and v["output_dir"] == str(out)]
    if cfg.output.version == "auto":
        same = [v for v in mine if v["fingerprint"] == fingerprint and v["status"] == "published"]
        if same:
            version = same[0]["semantic_version"]
        else:
            version = next_patch(version_labels(dataset_dir) + [v["semantic_version"] for v in mine])
    else:
        version = cfg.output.version
    target = dataset_dir / version
    held = on_disk_fingerprint(target)
    if held == fingerprint:
        recorded = any(v["fingerprint"] == fingerprint and v["status"] == "published" for v in mine)
        return Label(version, target, unchanged=recorded, replaces=None)   # not recorded: write it again
    if not target.exists():
        return Label(version, target, unchanged=False, replaces=None)
    if overwrite:
        return Label(version, target, unchanged=False, replaces=held or "incomplete")
    what = f"dataset fingerprint {held}" if held else "an incomplete version (no complete sensorpipe.json/dataset_info.json)"
    raise VersionConflict(
        f"{target} already holds {what}, and this run's fingerprint is {fingerprint} (its config, inputs or code "
        f"differ); a version label never changes content: set output.version to a new version (or auto for the "
        f"next patch version), or pass --overwrite to replace {version}")


def reconcile_runs(store, out_dir: str | None = None, mine: str | None = None,
                   hold_lock: bool = False) -> list[str]:
    """Close the rows of runs whose process is gone; returns their run ids.

    ``hold_lock``: the caller holds the output folder's lock, so every other open run of that folder is dead.
    Otherwise a run counts as alive while the lock file of its output folder names it (and, on this host, its
    PID lives). A dead ``publishing`` run whose fingerprint is in its version folder did publish: it becomes
    ``succeeded``; any other dead run becomes ``interrupted``, with the stage it reached.
    """
    closed = []
    for r in store.open_runs(out_dir):
        if r["run_id"] == mine:
            continue
        if not hold_lock and run_alive(r["output_dir"], r["run_id"], r["pid"], r["host"]):
            continue
        target = Path(r["output_dir"]) / (r["dataset_name"] or "") / (r["dataset_version"] or "")
        if r["status"] == "publishing" and r["fingerprint"] and on_disk_fingerprint(target) == r["fingerprint"]:
            store.publish_version(r["run_id"])
            log.warning("run %s was killed after publishing %s; recorded it as succeeded", r["run_id"], target)
        else:
            store.finish_run(r["run_id"], "interrupted",
                             error=f"the run's process (pid {r['pid']} on {r['host']}) ended during stage "
                                   f"{r['stage']} without finishing; nothing of it was published")
            log.warning("run %s (pid %s on %s) ended during stage %s without finishing; recorded as interrupted",
                        r["run_id"], r["pid"], r["host"], r["stage"])
        closed.append(r["run_id"])
    return closed


#: What to check when every row of a source is quarantined for one reason.
_HINTS = {
    "unparseable_time": "check the source's time format (options.local_time_format / time_format) against a "
                        "row of the file",
    "nonexistent_local_time": "check the participants' time zones (tz) and the local-time format",
    "implausible_time": "check the time unit (epoch_s vs epoch_ms) and validation.plausible_from / plausible_until",
    "no_participant": "check the participant id column and the participants table",
    "unknown_field": "check the field mapping (options.fields) against the file's columns",
    "missing_value": "check the value column mapping",
    "wrong_type": "check the value column mapping (a text column where numbers were expected)",
    "unknown_unit": "check the unit mapping (options.units)",
    "out_of_range": "check the unit conversion (e.g. mmol/L vs mg/dL) or the channel's valid range",
    "exact_duplicate": "the files repeat each other: check the source's path/glob",
}


def no_windows_message(cfg, summaries: list) -> str:
    """Why a run kept no window: the top quarantine reasons per source with counts, else the window drops."""
    from sensorpipe.runners.driver import _sum_dicts, source_parts

    causes = []
    for src in cfg.sources:
        parts = source_parts(summaries, src.name)
        rows_in = sum(p.rows_in for p in parts)
        reasons = _sum_dicts(p.reason_counts for p in parts)
        raw = sum(p.raw_samples_in for p in parts)
        if not parts or (rows_in == 0 and raw == 0):
            causes.append(f"source {src.name!r} gave no rows (check its path {src.path!r} and file names)")
            continue
        top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        if top and sum(reasons.values()) * 2 >= rows_in > 0:
            reason, n = top[0]
            text = f"{n:,} of {rows_in:,} rows {reason} in source {src.name!r}"
            if len(top) > 1:
                text += " (then " + ", ".join(f"{k} {v:,}" for k, v in top[1:]) + ")"
            hint = _HINTS.get(reason)
            causes.append(text + (f"; {hint}" if hint else ""))
    dropped = _sum_dicts(s.stats.under("windows_dropped") for s in summaries)
    if dropped:
        causes.append("windows dropped: " + ", ".join(f"{k} {v:,}" for k, v in
                                                       sorted(dropped.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
                      + " (see window.max_missing_ratio / required_coverage / size_min)")
    elif not causes:
        causes.append(f"the accepted rows span less than one window of {cfg.window.size_min} minutes")
    return (f"no window kept from {len(summaries)} unit(s), nothing was written: " + "; ".join(causes))

