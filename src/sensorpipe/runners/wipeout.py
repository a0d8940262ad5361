"""Erase one person from an output folder: every published version, the cache, quarantine and the metadata.

``sensorpipe wipeout OUT --participant RAW_ID --study S`` (the key from ``--key-file``, ``--config`` or
the environment variable the run read it from) or ``--pseudonym P`` (:func:`wipeout`), under the output
folder's lock, so no run writes meanwhile:

1. every version folder holding the person's windows is rebuilt without them and swapped in atomically
   (:func:`sensorpipe.storage.rewrite.drop_participant`): the other records stay byte-identical, split
   sizes, ``dataset_info.json`` and the manifest are updated, so ``sensorpipe verify`` passes;
2. the cache under ``.work/``: the person's pass-1 unit files (summary, arrays, sketch, quarantine spills)
   and pass-2 record spills are deleted, and so is every partition of a shared multi-participant file
   that holds their rows (a re-run partitions the file again, from its edited copy); the version
   manifests stop listing the deleted entries. Stale staging folders of killed runs are removed;
3. the quarantine Parquet files are rewritten without the person's rows (new file, then a rename);
4. the metadata rows (:mod:`sensorpipe.metadata.erase`); per-split statistics are recomputed from the
   remaining people's cached unit statistics where the cache holds them; the SQLite file is vacuumed;
5. ``report.html`` is deleted if it names the person (``sensorpipe report`` writes it again);
6. a ``wipeout`` audit row: who, when, which versions, how many windows, a sha256 of the removed window
   keys, the counts above; never the raw id, nor the pseudonym.

Normalization parameters are fitted on the train split. When the person's windows were in it, their
values shaped the parameters (a per-channel center and scale, and the min/max/quantiles they are
derived from). Refitting would change every other record's ``input``, so records would no longer stay
byte-identical; wipeout refuses unless ``keep_normalization`` is set (the parameters are then kept as
fitted, the audit row says so), and the way to refit is a re-run of the config after the person's input
is deleted, which makes a new version fitted without them.

``dry_run`` lists what would go and changes nothing; :mod:`sensorpipe.runners.trace_scan` is ``--verify``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sensorpipe.config import ConfigError, load_config
from sensorpipe.privacy.sealed import is_sealed, load_quarantine_key, read_key_file
from sensorpipe.runners.cache import MANIFESTS
from sensorpipe.runners.lock import OutputLock
from sensorpipe.runners.wipeout_plan import (Person, WipeoutPlan, find_cache, metadata_url, plan_wipeout,
                                              quarantine_without, restated_stats)
from sensorpipe.storage.publish import STAGING, recover
from sensorpipe.storage.rewrite import drop_participant, keys_digest


@dataclass
class Wipeout:
    """What a wipeout removed (or, on a dry run, would remove)."""

    plan: WipeoutPlan
    dry_run: bool
    metadata_rows: dict[str, int] = field(default_factory=dict)
    stats_restated: list[str] = field(default_factory=list)       # runs whose per-split statistics were recomputed
    staging_removed: list[str] = field(default_factory=list)

    def text(self) -> str:
        p, verb = self.plan, ("would remove" if self.dry_run else "removed")
        lines = [f"{verb} {p.windows} window(s) of one person (study {p.person.study or '?'}):"]
        lines += [f"  {label}: " + ", ".join(f"{s} {n}" for s, n in sorted(v.windows_by_split.items()))
                  for label, v in p.versions.items() if v.windows] or ["  no published version holds them"]
        lines.append(f"  window keys sha256 {keys_digest(p.window_keys)}")
        lines.append(f"{verb} {len(p.cache_files)} cache file(s) and {len(p.partitions)} shared-file "
                     f"partition(s) under .work/")
        lines.append(f"{verb} {sum(p.quarantine_rows.values())} quarantine row(s) from "
                     f"{len([f for f, n in p.quarantine_rows.items() if n])} file(s)")
        rows = self.metadata_rows or p.db_rows
        lines.append(f"{verb if not self.dry_run else 'would delete or rewrite'} metadata rows: "
                     + (", ".join(f"{k} {v}" for k, v in sorted(rows.items()) if v) or "none"))
        if p.report_names_person:
            lines.append(f"{verb} report.html (it names the person; `sensorpipe report` writes it again)")
        lines.append(f"normalization: {p.normalization}" + (
            "; needs --keep-normalization (see --help)" if self.dry_run and p.fitted_with else ""))
        return "\n".join(lines)


def wipeout(out_dir: str | Path, participant: str | None = None, study: str | None = None,
            pseudonym: str | None = None, key_file: str | None = None, config: str | None = None,
            db_url: str | None = None, keep_normalization: bool = False, dry_run: bool = False,
            quarantine_key_file: str | None = None) -> Wipeout:
    """Erase one person from ``out_dir`` (see the module docstring)."""
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder; pass the output directory of a run (output.dir)")
    wipe_id = f"wipeout-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    started = dt.datetime.now(dt.timezone.utc).isoformat()
    with OutputLock(out, wipe_id, started):
        person = Person.resolve(out, participant, study, pseudonym, key_file, config)
        # first: a killed run's staging folder may hold the person's records, and the version it had moved
        # aside comes back into place, where the plan then finds it
        staging_removed = [] if dry_run else recover(out)
        plan = plan_wipeout(out, person, db_url, _quarantine_key(out, quarantine_key_file, config))
        if plan.normalization.startswith("fitted with") and not (keep_normalization or dry_run):
            raise ConfigError(
                f"wipeout: the person's windows are in the train split of {', '.join(plan.fitted_with)}, whose "
                f"normalization parameters were fitted with their values; refitting would change every other "
                f"record. Pass --keep-normalization to erase them and keep the parameters (recorded in the audit "
                f"row), or delete their input and re-run the config: the new version is fitted without them")
        result = Wipeout(plan, dry_run, staging_removed=staging_removed)
        if dry_run:
            return result
        if plan.normalization.startswith("fitted with"):
            plan.normalization = "kept (--keep-normalization): " + plan.normalization
        _rewrite_versions(out, plan, wipe_id)
        _remove_cache(out, plan)
        _rewrite_quarantine(out, plan)
        if plan.report_names_person:
            (out / "report.html").unlink()
        _erase_metadata(out, plan, result, wipe_id, db_url)
    return result


def _rewrite_versions(out: Path, plan: WipeoutPlan, wipe_id: str) -> None:
    for i, (label, found) in enumerate(plan.versions.items()):
        if not found.windows:
            continue
        root = out / STAGING / f"{wipe_id}-{i}"
        root.mkdir(parents=True)
        (root / "TARGET").write_text(label)      # recover() puts the version back if this process dies mid-swap
        drop_participant(out / label, root, plan.person.pseudonym)
    base = out / STAGING
    if base.is_dir() and not any(base.iterdir()):
        base.rmdir()


def _remove_cache(out: Path, plan: WipeoutPlan) -> None:
    work = out / ".work"
    for f in plan.cache_files:
        (work / f).unlink(missing_ok=True)
    for d in plan.partitions:
        shutil.rmtree(work / d, ignore_errors=True)
    gone = {Path(f).name for f in plan.cache_files}
    for m in sorted((work / MANIFESTS).glob("*.json")) if (work / MANIFESTS).is_dir() else ():
        body = json.loads(m.read_text())
        kept_units = [u for u in body.get("units", []) if not any(g.startswith(u + ".") for g in gone)]
        kept_records = [r for r in body.get("records", []) if not any(g.startswith(r + ".") for g in gone)]
        if (kept_units, kept_records) != (body.get("units", []), body.get("records", [])):
            body.update(units=kept_units, records=kept_records)
            tmp = m.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(body, indent=1))
            os.replace(tmp, m)


def _rewrite_quarantine(out: Path, plan: WipeoutPlan) -> None:
    from sensorpipe.schema.quarantine import QuarantineWriter

    for name, n in plan.quarantine_rows.items():
        if not n:
            continue
        path = out / "quarantine" / name
        kept = quarantine_without(path, plan.person.pseudonym, plan.files, plan.quarantine_key)
        mode = path.stat().st_mode
        tmp = path.with_name(f".{name}.wipeout")
        sealed = plan.quarantine_key if is_sealed(path) else None     # a sealed file stays sealed, same key
        with QuarantineWriter(tmp, sealed) as writer:     # with no row left, a valid empty file
            writer.write(kept)
        os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, path)


def _quarantine_key(out: Path, quarantine_key_file: str | None, config: str | None) -> bytes | None:
    """The key the quarantine files were sealed with (``--quarantine-key-file``, else the config's
    ``privacy.quarantine_key_file``), or None; a sealed file with no key is an error before anything changes."""
    if quarantine_key_file:
        key = read_key_file(Path(quarantine_key_file).expanduser())
    elif config:
        key = load_quarantine_key(load_config(config), None)
    else:
        key = None
    q_dir = out / "quarantine"
    sealed = [f for f in sorted(q_dir.glob("*.parquet")) if is_sealed(f)] if q_dir.is_dir() else []
    if sealed and key is None:
        raise ConfigError(f"wipeout: {sealed[0]} is encrypted (privacy.quarantine_key_file); pass its key with "
                          f"--quarantine-key-file, or the run's pipeline YAML with --config")
    return key


def _erase_metadata(out: Path, plan: WipeoutPlan, result: Wipeout, wipe_id: str, db_url: str | None) -> None:
    from sensorpipe.metadata.erase import erase_person, vacuum

    store = plan.open_store(db_url)
    if store is None:
        return
    try:
        removed = {v.fingerprint: dict(v.windows_by_split) for v in plan.versions.values() if v.windows}
        stats = restated_stats(out, plan, store)
        result.stats_restated = sorted(stats)
        done = erase_person(store, plan.person.pseudonym, removed, stats)
        result.metadata_rows = done.rows
        store.audit("wipeout", wipe_id, {
            "windows": plan.windows,
            "windows_by_version": {k: v.windows_by_split for k, v in plan.versions.items() if v.windows},
            "window_keys_sha256": keys_digest(plan.window_keys),
            "cache_files_removed": len(plan.cache_files), "partitions_removed": len(plan.partitions),
            "quarantine_rows_removed": int(sum(plan.quarantine_rows.values())),
            "metadata_rows": done.rows, "stats_restated_runs": len(stats),
            "normalization": plan.normalization, "report_removed": plan.report_names_person,
            "identified_by": plan.person.identified_by,
        }, versions=[k for k, v in plan.versions.items() if v.windows])
        vacuum(store)
    finally:
        store.close()


def verify_wipeout(out_dir: str | Path, participant: str | None = None, study: str | None = None,
                   pseudonym: str | None = None, key_file: str | None = None, config: str | None = None,
                   db_url: str | None = None, quarantine_key_file: str | None = None):
    """``--verify``: search every file and table for the person's pseudonym and raw id (a
    :class:`~sensorpipe.runners.trace_scan.TraceReport`). Named by pseudonym alone, the raw id is searched
    only while the cache still knows it."""
    from sensorpipe.runners.trace_scan import scan_traces

    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"{out} is not a folder; pass the output directory of a run (output.dir)")
    person = Person.resolve(out, participant, study, pseudonym, key_file, config)
    if not person.raw_ids:
        find_cache(WipeoutPlan(out, person))
    return scan_traces(out, person.pseudonym, person.raw_ids, metadata_url(out, db_url),
                       quarantine_key=_quarantine_key(out, quarantine_key_file, config))
