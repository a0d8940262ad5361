"""Who a wipeout erases, and where their traces are: found before anything changes (what ``--dry-run`` lists).

The person is named by their pseudonym, or by their raw participant id and study with the key (the
pseudonym is then computed, :func:`sensorpipe.privacy.pseudonym.pseudonym`). The raw id is only held in
memory: it finds the person's partitions of shared files and is one of the strings ``--verify`` looks
for. Given only the pseudonym, the raw id is read from the person's cached unit summary (its ``key`` is
``<study>/<raw id>``) while the cache still holds it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sensorpipe.config import ConfigError
from sensorpipe.schema.quarantine import read_stored_quarantine
from sensorpipe.storage.manifest import SIDECAR, read_json
from sensorpipe.storage.publish import version_labels
from sensorpipe.storage.rewrite import VersionErasure, find_participant


@dataclass
class Person:
    """The person to erase: their pseudonym, study (when known) and raw ids (when known; never stored)."""

    pseudonym: str
    study: str | None
    raw_ids: set[str] = field(default_factory=set)
    identified_by: str = "pseudonym"        # or "participant id and key"

    @classmethod
    def resolve(cls, out: Path, participant: str | None, study: str | None, pseudonym: str | None,
                key_file: str | None, config: str | None) -> "Person":
        if pseudonym:
            if participant:
                raise ConfigError("wipeout: give --pseudonym P, or --participant RAW_ID --study S, not both")
            return cls(pseudonym, study)
        if not participant or not study:
            raise ConfigError("wipeout: name the person by --pseudonym P, or by --participant RAW_ID --study S "
                              "(with the key: --key-file, --config, or the variable privacy.key_env names)")
        from sensorpipe.privacy.pseudonym import pseudonym as keyed

        return cls(keyed(_key(out, key_file, config), study, participant), study, {participant},
                   "participant id and key")


def _key(out: Path, key_file: str | None, config: str | None) -> bytes | None:
    """The pseudonymization key: ``key_file``, else the config's, else the variable the runs read it from
    (as their ``sensorpipe.json`` records it). None: the runs did not pseudonymize (ids are raw)."""
    if key_file:
        path = Path(key_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--key-file {path} does not exist; pass the run's privacy.key_file")
        key = path.read_bytes().strip()
    elif config:
        from sensorpipe.config import load_config
        from sensorpipe.privacy.pseudonym import load_key

        return load_key(load_config(config))
    else:
        privacy = next((side.get("config", {}).get("privacy", {}) for _, side in _sidecars(out)), {})
        if not privacy.get("pseudonymize", True):
            return None
        var = privacy.get("key_env", "SENSORPIPE_PSEUDONYM_KEY")
        key = os.environ.get(var, "").encode()
        if not key:
            raise ConfigError(f"wipeout --participant: the pseudonymization key is needed; pass --key-file, "
                              f"--config pipeline.yaml, or set ${var}")
    if len(key) < 16:
        raise ConfigError("wipeout: the key is shorter than 16 characters; it is not the run's key")
    return key


def _sidecars(out: Path):
    """(``name/x.y.z``, its sensorpipe.json) of every published version under ``out``."""
    for d in sorted(out.iterdir()):
        if d.is_dir() and not d.name.startswith(".") and d.name != "quarantine":
            for label in version_labels(d):
                if (d / label / SIDECAR).is_file():
                    yield f"{d.name}/{label}", read_json(d / label / SIDECAR)


@dataclass
class WipeoutPlan:
    """Every place the person is, found before anything changes."""

    out: Path
    person: Person
    versions: dict[str, VersionErasure] = field(default_factory=dict)    # name/x.y.z -> their windows
    units: list[dict[str, Any]] = field(default_factory=list)            # their cached unit summaries
    cache_files: list[str] = field(default_factory=list)                 # relative to .work
    partitions: list[str] = field(default_factory=list)                  # relative to .work
    quarantine_rows: dict[str, int] = field(default_factory=dict)        # file name -> rows
    #: the run's privacy.quarantine_key_file contents, when its quarantine files are sealed
    quarantine_key: bytes | None = None
    files: list[str] = field(default_factory=list)                       # source-file tokens only they fed
    db_rows: dict[str, int] = field(default_factory=dict)
    report_names_person: bool = False
    normalization: str = "unaffected (not in a train split)"
    fitted_with: list[str] = field(default_factory=list)

    @property
    def windows(self) -> int:
        return sum(v.windows for v in self.versions.values())

    @property
    def window_keys(self) -> list[str]:
        return [k for v in self.versions.values() for k in v.window_keys]

    def open_store(self, db_url: str | None):
        """The metadata store (:func:`metadata_url`); None when there is none."""
        from sensorpipe.metadata.store import MetadataStore

        url = metadata_url(self.out, db_url)
        return MetadataStore(url) if url else None


def metadata_url(out: Path, db_url: str | None) -> str | None:
    """``db_url``, else ``metadata.db`` in the folder, else the ``metadata.url`` the versions' configs name
    (when absolute: a relative SQLite path was relative to a config not at hand); None when there is none."""
    if db_url is not None:
        return db_url
    db = out / "metadata.db"
    if db.is_file():
        return f"sqlite:///{db.resolve()}"
    recorded = {side.get("config", {}).get("metadata", {}).get("url", "") for _, side in _sidecars(out)}
    named = sorted(u for u in recorded if u and (not u.startswith("sqlite:///") or u.startswith("sqlite:////")))
    return named[0] if named else None


def plan_wipeout(out: Path, person: Person, db_url: str | None, quarantine_key: bytes | None = None) -> WipeoutPlan:
    plan = WipeoutPlan(out, person, quarantine_key=quarantine_key)
    for label, _ in _sidecars(out):
        plan.versions[label] = found = find_participant(out / label, person.pseudonym)
        if found.windows_by_split.get("train"):
            plan.fitted_with.append(label)
    if plan.fitted_with:
        plan.normalization = f"fitted with their values in {', '.join(plan.fitted_with)} (train split)"
    find_cache(plan)
    store = plan.open_store(db_url)
    if store is not None:
        from sensorpipe.metadata.erase import find_person

        try:
            found = find_person(store, person.pseudonym)
        finally:
            store.close()
        plan.files, plan.db_rows = found.files, found.rows
    q_dir = out / "quarantine"
    for f in sorted(q_dir.glob("*.parquet")) if q_dir.is_dir() else ():
        table = read_stored_quarantine(f, quarantine_key, columns=["participant_id", "source_file"])
        plan.quarantine_rows[f.name] = int(table.num_rows - _kept_mask(table, person.pseudonym, plan.files).sum())
    report = out / "report.html"
    if report.is_file():
        text = report.read_bytes()
        plan.report_names_person = any(n.encode() in text for n in {person.pseudonym, *person.raw_ids})
    return plan


def find_cache(plan: WipeoutPlan) -> None:
    """The person's unit and record files, and the partitions of shared files that hold their rows."""
    work, person = plan.out / ".work", plan.person
    units_dir = work / "units"
    for summary in sorted(units_dir.glob("*.json")) if units_dir.is_dir() else ():
        try:
            body = json.loads(summary.read_text())
        except (OSError, ValueError):
            continue
        if body.get("participant") != person.pseudonym or (person.study and body.get("study") != person.study):
            continue
        plan.units.append(body)
        study, _, raw = str(body.get("key", "")).partition("/")
        person.study = person.study or study
        if raw:
            person.raw_ids.add(raw)
        stem = summary.name[: -len(".json")]
        unit_fp = stem.split("__", 1)[1]
        plan.cache_files += [f"units/{f.name}" for f in units_dir.iterdir() if f.name.startswith(stem + ".")]
        records = work / "records"
        plan.cache_files += [f"records/{f.name}" for f in (records.iterdir() if records.is_dir() else ())
                             if f.name.startswith(f"{study}__{unit_fp}__")]
    plan.cache_files = sorted(set(plan.cache_files))
    parts = work / "partitions"
    needles = [json.dumps(r) for r in person.raw_ids]
    for d in sorted(parts.glob("*/*")) if parts.is_dir() and needles else ():
        index = d / "index.json"
        text = index.read_text() if index.is_file() else ""
        if d.is_dir() and (not text or any(n in text for n in needles)):
            plan.partitions.append(d.relative_to(work).as_posix())   # theirs, or incomplete: can't tell


def _kept_mask(table: pa.Table, pseudonym: str, files: list[str]):
    """Rows of a quarantine table that are not the person's (their pseudonym, or a file only they fed)."""
    theirs = pc.fill_null(pc.equal(table.column("participant_id"), pseudonym), False)
    if files:
        theirs = pc.or_(theirs, pc.fill_null(pc.is_in(table.column("source_file"), pa.array(files)), False))
    return pc.invert(theirs).to_numpy(zero_copy_only=False)


def quarantine_without(path: Path, pseudonym: str, files: list[str], key: bytes | None = None) -> pa.Table:
    """A stored quarantine file's rows, less the person's (decrypted with ``key`` when the file is sealed)."""
    table = read_stored_quarantine(path, key)
    return table.filter(pa.array(_kept_mask(table, pseudonym, files)))


def restated_stats(out: Path, plan: WipeoutPlan, store) -> dict[str, list[dict[str, Any]]]:
    """run id -> the per-split statistics (``channel_stats`` rows) of the person's split, recomputed from
    the remaining people's cached unit statistics, for each rewritten version whose last run's cache
    entries are all still there (``.work/manifests``). Elsewhere the rows are only deleted."""
    from sensorpipe.quality.record import split_stats

    theirs = {u.get("fingerprint") for u in plan.units}
    restated: dict[str, list[dict[str, Any]]] = {}
    for label, found in plan.versions.items():
        if not found.windows:
            continue
        name, version = label.split("/", 1)
        manifest = out / ".work" / "manifests" / f"{name}__{version}.json"
        if not manifest.is_file():
            continue
        body = json.loads(manifest.read_text())
        stems = [u for u in body.get("units", []) if u.split("__", 1)[-1] not in theirs]
        paths = [out / ".work" / "units" / f"{u}.json" for u in stems]
        if not all(p.is_file() for p in paths):
            continue
        units = [SimpleNamespace(**json.loads(p.read_text())) for p in paths]
        side = read_json(out / label / SIDECAR)
        cfg = SimpleNamespace(channels=tuple(side["channels"]),
                              window=SimpleNamespace(size_min=int(side["window"]["size_min"])))
        for split in found.windows_by_split:
            rows = [r.__dict__ for r in split_stats(cfg, SimpleNamespace(units=units)) if r.split == split]
            restated.setdefault(body["run_id"], []).extend(rows)
    return restated
