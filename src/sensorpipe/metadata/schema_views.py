"""Text views of the source schemas recorded in the metadata DB: ``sensorpipe schema show`` and ``schema diff``.

They read the store, so they live with it (the schema package below knows nothing of the database)."""

from __future__ import annotations

import json


def _store(out_dir: str, db_url: str | None):
    from sensorpipe.metadata.queries import open_store

    return open_store(out_dir, db_url)


def _fields(schema: dict) -> dict[str, dict]:
    return {f["name"]: f for f in schema.get("fields", [])}


def show_schema(name: str, out_dir: str = ".", db_url: str | None = None, version: int | None = None) -> str:
    store = _store(out_dir, db_url)
    versions = store.schema_versions(name)
    if not versions:
        from sensorpipe.metadata.store import MetadataNotFound

        raise MetadataNotFound(f"no schema recorded for {name!r}; run a pipeline with that source first")
    v = version or max(x["version"] for x in versions if x["source"] == versions[-1]["source"])
    rec = store.get_schema(name, v)
    s = rec["schema"]
    lines = [f"schema {rec['source']} (adapter {rec['adapter']}) version {rec['version']} of "
             f"{[x['version'] for x in versions]}  fingerprint {rec['fingerprint']}  recorded {rec['created_at']}",
             f"time: {s.get('time_convention', '')}"]
    if s.get("raw_signals"):
        lines.append("raw signals: " + ", ".join(s["raw_signals"]))
    lines.append(f"{'field':28} {'channel':20} {'unit':12} categories")
    for f in s.get("fields", []):
        cats = ", ".join(f"{k}={v}" for k, v in f.get("categories", {}).items())
        lines.append(f"{f['name']:28} {f['channel']:20} {f['unit']:12} {cats}")
    return "\n".join(lines)


def diff_schema(name: str, v1: int, v2: int, out_dir: str = ".", db_url: str | None = None) -> str:
    store = _store(out_dir, db_url)
    a, b = store.get_schema(name, v1)["schema"], store.get_schema(name, v2)["schema"]
    fa, fb = _fields(a), _fields(b)
    lines = [f"schema {name}: version {v1} -> {v2}"]
    for key in ("time_convention", "raw_signals", "adapter"):
        if a.get(key) != b.get(key):
            lines.append(f"~ {key}: {json.dumps(a.get(key))} -> {json.dumps(b.get(key))}")
    for n in sorted(set(fa) | set(fb)):
        if n not in fa:
            lines.append(f"+ {n}: {fb[n]['channel']} [{fb[n]['unit']}]")
        elif n not in fb:
            lines.append(f"- {n}: {fa[n]['channel']} [{fa[n]['unit']}]")
        else:
            for k in ("channel", "unit", "categories"):
                if fa[n].get(k) != fb[n].get(k):
                    lines.append(f"~ {n}.{k}: {json.dumps(fa[n].get(k))} -> {json.dumps(fb[n].get(k))}")
    if len(lines) == 1:
        lines.append("(no differences)")
    return "\n".join(lines)
