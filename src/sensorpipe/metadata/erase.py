"""One person's rows out of the metadata database (``sensorpipe wipeout``), and the free pages vacuumed.

What names or describes the person, by table:

- ``lineage``, ``unit_accounting``, ``unit_devices``, ``unit_errors``: rows whose ``participant`` is the
  pseudonym: deleted;
- ``quarantine_counts``: rows of the source files that fed only this person (their lineage's file tokens
  that no other person's lineage names): deleted. A shared file's counts are everyone's and stay;
- ``runs.input_fingerprints_json`` and ``dataset_versions.input_fingerprints_json``: those same files'
  tokens and content digests: removed from the JSON;
- ``runs.split_sizes_json`` / ``runs.windows_kept``: reduced by the windows taken out of the run's version;
- ``channel_stats``: the per-split statistics of a run the person was in are replaced by
  ``restated_stats`` (recomputed by the caller from the remaining people's cached statistics) or, where
  those are not at hand, deleted for the person's split: a minimum or maximum can be one person's value.

Quality metrics are counts and shares over a whole study or source (no id, no single person's value) and
normalization parameters are the caller's decision (``--keep-normalization``); both stay. On SQLite the
file is vacuumed and its WAL truncated afterwards, so deleted text does not survive in free pages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update

from sensorpipe.metadata import tables as t


@dataclass
class DbErasure:
    """Rows removed or rewritten per table, and what the rest of the erasure needs to know."""

    rows: dict[str, int] = field(default_factory=dict)
    run_ids: list[str] = field(default_factory=list)        # runs that held the person
    files: list[str] = field(default_factory=list)          # source-file tokens only the person's lineage named
    splits: dict[str, str] = field(default_factory=dict)    # run id -> the person's split


def find_person(store, pseudonym: str) -> DbErasure:
    """The runs, split and person-only source files of ``pseudonym``, from lineage and unit accounting."""
    found = DbErasure()
    with store.engine.connect() as conn:
        mine = conn.execute(select(t.lineage.c.run_id, t.lineage.c.split, t.lineage.c.source_files_json)
                            .where(t.lineage.c.participant == pseudonym)).all()
        units = conn.execute(select(t.unit_accounting.c.run_id, t.unit_accounting.c.split)
                             .where(t.unit_accounting.c.participant == pseudonym)).all()
        files = {f for _, _, js in mine for f in json.loads(js)}
        lc = t.lineage.c
        for f in sorted(files):     # a file another person's lineage names is shared: the database searches
            if conn.execute(select(lc.id).where(lc.participant != pseudonym, lc.source_files_json.contains(
                    json.dumps(f), autoescape=True)).limit(1)).first() is not None:
                files.discard(f)
    found.splits = {run: split for run, split, *_ in [*mine, *units]}
    found.rows = {"lineage": len(mine), "unit_accounting": len(units)}
    found.run_ids = sorted(found.splits)
    found.files = sorted(files)
    return found


def erase_person(store, pseudonym: str, removed: dict[str, dict[str, int]],
                 restated_stats: dict[str, list[dict[str, Any]]]) -> DbErasure:
    """Delete and rewrite ``pseudonym``'s rows (see the module docstring) in one transaction, then vacuum.

    ``removed``: dataset fingerprint -> split -> windows taken out of that version (every run of the
    fingerprint, unchanged re-runs included, gets the new split sizes); ``restated_stats``: run id ->
    the ``channel_stats`` rows of the person's split recomputed without them (absent: delete those rows).
    """
    done = find_person(store, pseudonym)
    files = set(done.files)
    with store.engine.begin() as conn:
        for table in (t.lineage, t.unit_accounting, t.unit_devices, t.unit_errors):
            done.rows[table.name] = conn.execute(table.delete().where(table.c.participant == pseudonym)).rowcount
        q = t.quarantine_counts
        done.rows[q.name] = conn.execute(q.delete().where(q.c.source_file.in_(files))).rowcount if files else 0
        done.rows["channel_stats"] = 0
        for run_id, split in done.splits.items():
            cs = t.channel_stats
            done.rows["channel_stats"] += conn.execute(
                cs.delete().where(cs.c.run_id == run_id, cs.c.split == split)).rowcount
            if restated_stats.get(run_id):
                conn.execute(cs.insert(), [dict(r, run_id=run_id) for r in restated_stats[run_id]])
        done.rows["runs"] = _rewrite_runs(conn, removed, files)
        done.rows["dataset_versions"] = _rewrite_versions(conn, files)
    vacuum(store)
    return done


def _without(js: str, files: set[str]) -> str:
    d = json.loads(js)
    return json.dumps({k: v for k, v in d.items() if k not in files}, sort_keys=True)


def _rewrite_runs(conn, removed: dict[str, dict[str, int]], files: set[str]) -> int:
    r = t.runs
    changed = 0
    for run_id, fp, sizes_js, windows, inputs_js in conn.execute(select(
            r.c.run_id, r.c.fingerprint, r.c.split_sizes_json, r.c.windows_kept, r.c.input_fingerprints_json)).all():
        values: dict[str, Any] = {}
        gone = removed.get(fp or "", {})
        if sum(gone.values()):
            sizes = json.loads(sizes_js)
            for split, n in gone.items():
                sizes[split] = max(0, int(sizes.get(split, 0)) - n)
            values["split_sizes_json"] = json.dumps(sizes, sort_keys=True)
            if windows is not None:
                values["windows_kept"] = max(0, int(windows) - sum(gone.values()))
        if files and files & set(json.loads(inputs_js)):
            values["input_fingerprints_json"] = _without(inputs_js, files)
        if values:
            conn.execute(update(r).where(r.c.run_id == run_id).values(**values))
            changed += 1
    return changed


def _rewrite_versions(conn, files: set[str]) -> int:
    v = t.dataset_versions
    changed = 0
    if not files:
        return 0
    for vid, js in conn.execute(select(v.c.id, v.c.input_fingerprints_json)).all():
        if files & set(json.loads(js)):
            conn.execute(update(v).where(v.c.id == vid).values(input_fingerprints_json=_without(js, files)))
            changed += 1
    return changed


def vacuum(store) -> None:
    """SQLite keeps deleted rows' bytes in free pages and in its WAL until vacuumed and checkpointed."""
    if store.engine.dialect.name == "sqlite":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
