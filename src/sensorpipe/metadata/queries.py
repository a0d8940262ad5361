"""Questions over the metadata database: which version is meant, what changed between two, where a window
came from, a version's statistics and quality metrics.

The library behind ``sensorpipe diff``, ``lineage``, ``stats`` and
``quality`` (text in :mod:`sensorpipe.commands_versions`). Versions are named
by their label (``output.version``, e.g. ``1.0.0``; the newest version of that
label when a label was reused) or by their fingerprint or a unique prefix of
it. A version's details come from its representative run (latest succeeded,
else latest), as everywhere in :class:`MetadataStore`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sensorpipe.metadata import tables as t
from sensorpipe.metadata.store import MetadataNotFound, MetadataStore

STAT_FIELDS = ("count", "mean", "std", "missing_ratio")


def open_store(out_dir: str | Path = ".", db_url: str | None = None) -> MetadataStore:
    """The store of a run's output folder (its ``metadata.db``), or of ``db_url``."""
    if db_url is None:
        db = Path(out_dir) / "metadata.db"
        if not db.is_file():
            raise FileNotFoundError(f"{db} does not exist; pass the output directory of a run or --db URL")
        db_url = f"sqlite:///{db.resolve()}"
    return MetadataStore(db_url)


def resolve_version(store: MetadataStore, ref: str | None, name: str | None = None) -> dict[str, Any]:
    """The recorded version ``ref`` names (label or fingerprint prefix; None = the newest), as a
    :meth:`MetadataStore.list_versions` row."""
    rows = [r for r in store.list_versions() if name is None or r["dataset_name"] == name]
    if not rows:
        raise MetadataNotFound(f"no dataset version{f' of {name!r}' if name else ''} is recorded in {store.url}")
    if ref is None:
        ok = [r for r in rows if r["last_status"] == "succeeded"]
        return (ok or rows)[0]
    by_label = [r for r in rows if r["semantic_version"] == ref]
    if by_label:
        return by_label[0]      # newest first
    by_fp = [r for r in rows if r["fingerprint"].startswith(ref)]
    if len(by_fp) == 1:
        return by_fp[0]
    known = ", ".join(f"{r['semantic_version']} ({r['fingerprint'][:12]})" for r in rows[:8])
    what = f"is ambiguous ({len(by_fp)} fingerprints start with it)" if by_fp else "is not recorded"
    raise MetadataNotFound(f"version {ref!r} {what}; recorded versions (label, fingerprint): {known}"
                           + (" ..." if len(rows) > 8 else ""))


def version_run(store: MetadataStore, version: dict[str, Any]) -> dict[str, Any]:
    """The run whose details stand for ``version`` (latest succeeded, else latest), with config and schemas."""
    with store.engine.connect() as conn:
        run_id = store._run_for(conn, version["fingerprint"])
    run = store.get_run(run_id)
    assert run is not None
    run["config"] = json.loads(run["config_json"])
    return run


def window_keys(store: MetadataStore, run_id: str) -> dict[str, set[str]]:
    """Window keys of a run by split (from its lineage rows)."""
    lc = t.lineage.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(lc.split, lc.window_key).where(lc.run_id == run_id).distinct()).all()
    out: dict[str, set[str]] = {}
    for split, key in rows:
        out.setdefault(split, set()).add(key)
    return out


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``dotted.key -> value``; lists of named mappings (sources) are keyed by name."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out or {prefix: {}}
    if isinstance(obj, list) and obj and all(isinstance(x, dict) and "name" in x for x in obj):
        out = {}
        for x in obj:
            out.update(flatten(x, f"{prefix}[{x['name']}]"))
        return out
    return {prefix: obj}


def config_diff(a: dict, b: dict) -> list[dict[str, Any]]:
    """Changed, added and removed config keys: ``{"key", "change": changed|added|removed, "old", "new"}``."""
    fa, fb = flatten(a), flatten(b)
    out = []
    for k in sorted(set(fa) | set(fb)):
        if k not in fa:
            out.append({"key": k, "change": "added", "old": None, "new": fb[k]})
        elif k not in fb:
            out.append({"key": k, "change": "removed", "old": fa[k], "new": None})
        elif fa[k] != fb[k]:
            out.append({"key": k, "change": "changed", "old": fa[k], "new": fb[k]})
    return out


def schema_diff(store: MetadataStore, a: list[dict], b: list[dict]) -> list[dict[str, Any]]:
    """Per source: the schema version each run used, and the field changes between them."""
    from sensorpipe.metadata.schema_views import diff_schema

    sa, sb = {s["source"]: s for s in a}, {s["source"]: s for s in b}
    out = []
    for src in sorted(set(sa) | set(sb)):
        x, y = sa.get(src), sb.get(src)
        if x and y and x["fingerprint"] == y["fingerprint"]:
            continue
        entry = {"source": src, "old_version": x and x["version"], "new_version": y and y["version"], "changes": []}
        if x and y:
            entry["changes"] = diff_schema(src, x["version"], y["version"], db_url=store.url).splitlines()[1:]
        out.append(entry)
    return out


def _delta(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)) or (isinstance(b, float) and math.isnan(b)):
        return None
    return b - a


def stats_diff(old: list[dict], new: list[dict]) -> list[dict[str, Any]]:
    """Per split and channel: each statistic of both versions and its change (None where either is NaN/absent)."""
    ka, kb = {(r["split"], r["channel"]): r for r in old}, {(r["split"], r["channel"]): r for r in new}
    out = []
    for key in sorted(set(ka) | set(kb)):
        x, y = ka.get(key, {}), kb.get(key, {})
        row: dict[str, Any] = {"split": key[0], "channel": key[1]}
        for f in STAT_FIELDS:
            row[f] = {"old": x.get(f), "new": y.get(f), "delta": _delta(x.get(f), y.get(f))}
        out.append(row)
    return out


def diff_versions(store: MetadataStore, v1: str, v2: str, name: str | None = None) -> dict[str, Any]:
    """What changed from version ``v1`` to ``v2``: config, schemas, code, inputs, windows, statistics."""
    a, b = resolve_version(store, v1, name), resolve_version(store, v2, name)
    ra, rb = version_run(store, a), version_run(store, b)
    wa, wb = window_keys(store, ra["run_id"]), window_keys(store, rb["run_id"])
    windows = {}
    for split in sorted(set(wa) | set(wb), key=lambda s: (("train", "validation", "test") + (s,)).index(s)):
        ka, kb = wa.get(split, set()), wb.get(split, set())
        windows[split] = {"old": len(ka), "new": len(kb), "added": sorted(kb - ka), "removed": sorted(ka - kb)}
    ia, ib = ra["input_fingerprints"], rb["input_fingerprints"]
    return {
        "old": _describe(a, ra), "new": _describe(b, rb),
        "config": config_diff(ra["config"], rb["config"]),
        "schemas": schema_diff(store, ra["schemas"], rb["schemas"]),
        "code_version": {"old": a["code_version"], "new": b["code_version"]},
        "inputs": {"added": sorted(set(ib) - set(ia)), "removed": sorted(set(ia) - set(ib)),
                   "changed": sorted(f for f in set(ia) & set(ib) if ia[f] != ib[f])},
        "windows": windows,
        "channel_stats": stats_diff(store.channel_stats(a["fingerprint"]), store.channel_stats(b["fingerprint"])),
    }


def _describe(v: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    return {"dataset": v["dataset_name"], "version": v["semantic_version"], "fingerprint": v["fingerprint"],
            "run_id": run["run_id"], "status": run["status"], "finished_at": run["finished_at"]}


def window_lineage(store: MetadataStore, key: str, version: str | None = None,
                   name: str | None = None) -> dict[str, Any]:
    """Where window ``key`` came from (source files, row ranges, stage config hashes) in ``version`` (default:
    the latest run that wrote it)."""
    fp = resolve_version(store, version, name)["fingerprint"] if version is not None else None
    row = store.lineage(key, fp)
    if row is None:
        where = f" in version {version!r}" if version is not None else ""
        raise MetadataNotFound(f"no window with key {key!r}{where}; keys look like 'study/pseudonym/start-UTC' "
                               f"as `sensorpipe inspect` prints them (`inspect DIR --participant ID` lists them)")
    v = next((r for r in store.list_versions() if r["fingerprint"] == row["fingerprint"]), {})
    row["dataset"], row["version"] = v.get("dataset_name"), v.get("semantic_version")
    return row


def version_stats(store: MetadataStore, version: str | None = None, split: str | None = None,
                  name: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the version, its per-split, per-channel statistics), optionally of one split."""
    v = resolve_version(store, version, name)
    rows = store.channel_stats(v["fingerprint"], split)
    if split is not None and not rows:
        have = sorted({r["split"] for r in store.channel_stats(v["fingerprint"])})
        raise MetadataNotFound(f"no statistics for split {split!r} in version {v['semantic_version']}; "
                               f"splits recorded: {', '.join(have) or 'none'}")
    return v, rows


def version_quality(store: MetadataStore, version: str | None = None,
                    name: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the version, its quality metrics: scope, name, value)."""
    v = resolve_version(store, version, name)
    return v, store.quality(v["fingerprint"])
