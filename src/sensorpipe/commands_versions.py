"""Text (and JSON) for the version commands: ``verify``, ``diff``, ``lineage``, ``stats``, ``quality``.

Each function calls one library function (:mod:`sensorpipe.access.verify`,
:mod:`sensorpipe.metadata.queries`) and returns what the CLI prints; with
``as_json`` the same content as JSON for machines (NaN as ``null``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Sequence

_NUMBER = re.compile(r"^[+-]?(\d|nan|inf)")
EXAMPLES_SHOWN = 5   # window keys listed per split and change in the text diff (--json lists all)


def verify(path: str, version: str | None = None, name: str | None = None) -> tuple[str, int]:
    """(report text, exit status): 0 when every file matches the manifest, 1 when problems were found."""
    from sensorpipe.access.verify import verify_output

    report = verify_output(path, version, name)
    return report.text(), 0 if report.ok else 1


def _clean(obj: Any) -> Any:
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def to_json(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=1, default=str, allow_nan=False)


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v + 0.0:.6g}"   # -0.0 + 0.0 is 0.0: a statistic never prints as -0
    return str(v)


def table(headers: Sequence[str], rows: list[Sequence[Any]]) -> str:
    """An aligned text table: numbers right-aligned, text left-aligned, NaN as ``-``."""
    cells = [[_num(v) for v in r] for r in rows]
    numeric = [all(isinstance(r[j], (int, float)) or r[j] is None or _NUMBER.match(str(r[j])) for r in rows)
               for j in range(len(headers))]
    widths = [max([len(h)] + [len(c[j]) for c in cells]) for j, h in enumerate(headers)]

    def line(vals: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(vals, widths, numeric)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(c) for c in cells])


def stats(out_dir: str, version: str | None = None, split: str | None = None, db_url: str | None = None,
          as_json: bool = False, name: str | None = None) -> str:
    from sensorpipe.metadata.queries import open_store, version_stats

    v, rows = version_stats(open_store(out_dir, db_url), version, split, name)
    if as_json:
        return to_json({"dataset": v["dataset_name"], "version": v["semantic_version"],
                        "fingerprint": v["fingerprint"], "channel_stats": rows})
    head = f"channel statistics of {v['dataset_name']} {v['semantic_version']} (fingerprint {v['fingerprint']}), " \
           f"observed minutes of kept windows, real units"
    cols = ("split", "channel", "count", "mean", "std", "min", "max", "missing_ratio")
    return head + "\n" + table(cols, [[r[c] for c in cols] for r in rows])


def quality(out_dir: str, version: str | None = None, db_url: str | None = None, as_json: bool = False,
            name: str | None = None) -> str:
    from sensorpipe.metadata.queries import open_store, version_quality

    store = open_store(out_dir, db_url)
    v, rows = version_quality(store, version, name)
    alerts = store.alerts(v["fingerprint"])     # breached quality.alerts rules (quality/alerts.py)
    if as_json:
        return to_json({"dataset": v["dataset_name"], "version": v["semantic_version"],
                        "fingerprint": v["fingerprint"], "quality": rows, "alerts": alerts})
    head = f"quality metrics of {v['dataset_name']} {v['semantic_version']} (fingerprint {v['fingerprint']})"
    text = head + "\n" + table(("scope", "metric", "value"), [[r["scope"], r["name"], r["value"]] for r in rows])
    return text + "".join(f"\n{a['message']}" for a in alerts)


def lineage(out_dir: str, key: str, version: str | None = None, db_url: str | None = None,
            as_json: bool = False, name: str | None = None, config: str | None = None,
            key_file: str | None = None) -> str:
    """A window's lineage. The DB names source files by keyed tokens (privacy/paths.py); with ``config`` (the
    run's pipeline YAML: its sources' roots and pseudonymization key, or ``key_file`` for the key) each token
    is resolved to the file under those roots that has it (``paths``: token -> path; null when none has)."""
    from sensorpipe.metadata.queries import open_store, window_lineage

    row = window_lineage(open_store(out_dir, db_url), key, version, name)
    if config is not None:
        row["paths"] = _resolved_paths(config, key_file, row["source_files"])
    elif key_file is not None:
        from sensorpipe.config import ConfigError

        raise ConfigError("lineage --key-file needs --config (the run's pipeline YAML: where its sources lie)")
    if as_json:
        return to_json(row)
    lines = [f"window       {row['window_key']}",
             f"version      {row['dataset']} {row['version']} (fingerprint {row['fingerprint']}, run {row['run_id']})",
             f"split        {row['split']}",
             f"study        {row['source']}",
             f"participant  {row['participant']} (pseudonym)",
             "source files and row ranges (first..last row, 0-based, of the rows that fed the window):"]
    for f in row["source_files"]:
        rr = row["row_ranges"].get(f)
        path = row.get("paths", {}).get(f, f) or f"{f} (no file under the sources' roots has this token)"
        lines.append(f"  {path}  rows {rr[0]}..{rr[1]}" if rr else f"  {path}")
    if row.get("devices"):   # counts are per device and epoch (actigraphy): the recorder of each file naming one
        lines.append("recording devices (model, epoch, serial digest) of those files:")
        for d in row["devices"]:
            path = row.get("paths", {}).get(d["source_file"]) or d["source_file"]
            serial = f", serial {d['device_serial']}" if d["device_serial"] else ""
            lines.append(f"  {path}  {d['device_model']}, epoch {d['epoch_s']:g} s{serial}")
    lines.append("stage config hashes:")
    lines += [f"  {k:10} {v}" for k, v in sorted(row["stage_hashes"].items())]
    return "\n".join(lines)


def _resolved_paths(config: str, key_file: str | None, tokens: list[str]) -> dict[str, str | None]:
    """token -> source file path (None where no file under the config's sources' roots has the token)."""
    import dataclasses

    from sensorpipe.config import load_config
    from sensorpipe.privacy.paths import SourcePaths
    from sensorpipe.privacy.pseudonym import load_key

    cfg = load_config(config)
    if key_file is not None:
        privacy = dataclasses.replace(cfg.privacy, key_file=str(Path(key_file).resolve()))
        cfg = dataclasses.replace(cfg, privacy=privacy)
    found = SourcePaths.of(cfg, load_key(cfg)).resolve(tokens)
    return {t: found.get(t) for t in tokens}


def _signed(v: float | None) -> str | None:
    return None if v is None else (f"{v:+d}" if isinstance(v, int) else f"{v:+.4g}")


def _value(v: Any) -> str:
    return json.dumps(v, default=str) if not isinstance(v, str) else repr(v)


def diff(out_dir: str, v1: str, v2: str, db_url: str | None = None, as_json: bool = False,
         name: str | None = None) -> str:
    from sensorpipe.metadata.queries import diff_versions, open_store

    d = diff_versions(open_store(out_dir, db_url), v1, v2, name)
    if as_json:
        return to_json(d)
    a, b = d["old"], d["new"]
    lines = [f"--- {a['dataset']} {a['version']}  fingerprint {a['fingerprint']}  run {a['run_id']} ({a['status']})",
             f"+++ {b['dataset']} {b['version']}  fingerprint {b['fingerprint']}  run {b['run_id']} ({b['status']})",
             "", "config:"]
    marks = {"changed": "~", "added": "+", "removed": "-"}
    lines += [f"  {marks[c['change']]} {c['key']}: " + (
        f"{_value(c['old'])} -> {_value(c['new'])}" if c["change"] == "changed"
        else _value(c["new"] if c["change"] == "added" else c["old"])) for c in d["config"]] or ["  (unchanged)"]
    lines.append("source schemas:")
    for s in d["schemas"]:
        lines.append(f"  {s['source']}: version {s['old_version'] or '-'} -> {s['new_version'] or '-'}")
        lines += [f"    {c}" for c in s["changes"]]
    if not d["schemas"]:
        lines.append("  (unchanged)")
    cv = d["code_version"]
    lines.append("code version: " + ("(unchanged) " + cv["old"] if cv["old"] == cv["new"]
                                     else f"{cv['old']} -> {cv['new']}"))
    inputs = d["inputs"]
    lines.append("input files: " + (", ".join(f"{len(inputs[k])} {k}" for k in ("added", "removed", "changed")
                                              if inputs[k]) or "(unchanged)"))
    lines.append("windows (by window key):")
    rows = [[s, w["old"], w["new"], len(w["added"]), len(w["removed"])] for s, w in d["windows"].items()]
    lines += ["  " + x for x in table(("split", "old", "new", "added", "removed"), rows).splitlines()]
    for s, w in d["windows"].items():
        for kind, sign in (("added", "+"), ("removed", "-")):
            keys = w[kind]
            lines += [f"  {sign} {s} {k}" for k in keys[:EXAMPLES_SHOWN]]
            if len(keys) > EXAMPLES_SHOWN:
                lines.append(f"  {sign} {s} ... {len(keys) - EXAMPLES_SHOWN} more (--json lists all)")
    lines.append("channel statistics (new - old):")
    srows = []
    for r in d["channel_stats"]:
        changed = any(r[f]["delta"] not in (0, 0.0, None) or (r[f]["old"] is None) != (r[f]["new"] is None)
                      for f in ("count", "mean", "std", "missing_ratio"))
        if changed:
            srows.append([r["split"], r["channel"]] + [x for f in ("count", "mean", "std", "missing_ratio")
                                                       for x in (r[f]["new"], _signed(r[f]["delta"]))])
    if srows:
        t = table(("split", "channel", "count", "Δcount", "mean", "Δmean", "std", "Δstd", "missing", "Δmissing"), srows)
        lines += ["  " + x for x in t.splitlines()]
    else:
        lines.append("  (unchanged)")
    return "\n".join(lines)
