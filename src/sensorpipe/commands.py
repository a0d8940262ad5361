"""Library functions behind the CLI commands; each returns the text the CLI prints."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sensorpipe import channels as registry
from sensorpipe.config import without_password


def run_and_summarize(config: str, runner: str | None = None, workers: int | None = None,
                      strict: bool | None = None, on_unit_error: str | None = None, overwrite: bool = False,
                      wait_lock_s: float = 0.0, beam_options: list[str] | None = None) -> str:
    """Run a config and summarize it; ``on_unit_error`` overrides ``run.on_unit_error`` (stop | skip);
    ``beam_options``: ``--beam-option KEY=VALUE`` arguments (runners/beam_options.py)."""
    import dataclasses

    from sensorpipe._gc import collector_paused

    with collector_paused():     # the pipeline, numpy, pyarrow, pandas
        from sensorpipe.runners.driver import run_pipeline
    from sensorpipe.config import load_config
    from sensorpipe.runners.preflight import DiskFullError, disk_full, is_disk_full

    cfg = load_config(config)
    if beam_options:
        from sensorpipe.runners.beam_options import parse_cli_options

        beam_options = parse_cli_options(beam_options)
    if on_unit_error:
        cfg = dataclasses.replace(cfg, run=dataclasses.replace(cfg.run, on_unit_error=on_unit_error))
    try:
        return summarize(run_pipeline(cfg, runner=runner, workers=workers, strict=strict, overwrite=overwrite,
                                      wait_lock_s=wait_lock_s, beam_options=beam_options))
    except OSError as e:
        if is_disk_full(e) and not isinstance(e, DiskFullError):   # the driver names the stage when it can
            raise disk_full(e, cfg.output_dir) from e
        raise


def clean_cache(out_dir: str, dry_run: bool = False) -> str:
    """``sensorpipe cache clean``: remove the cache entries no published version uses (see runners/cache.py)."""
    import datetime as dt
    import uuid

    from sensorpipe.runners.cache import clean_cache as clean
    from sensorpipe.runners.lock import OutputLock

    if not Path(out_dir).is_dir():
        return clean(out_dir, dry_run=dry_run).text()   # its error names the folder
    # a run writing this folder right now may be about to use what looks unused: one writer at a time
    with OutputLock(out_dir, f"cache-clean-{uuid.uuid4().hex[:8]}", dt.datetime.now(dt.timezone.utc).isoformat()):
        return clean(out_dir, dry_run=dry_run).text()


def _fixed(x: float, width: int = 10, digits: int = 2) -> str:
    """``x`` right-aligned with ``digits`` decimals, a value that rounds to zero as ``0.00``, never ``-0.00``
    (denormalizing a zero step count can give -0.0 or -1e-7)."""
    text = f"{float(x):{width}.{digits}f}"
    return f"{0.0:{width}.{digits}f}" if float(text) == 0 else text


def summarize(r) -> str:
    if r.unchanged:
        return (f"nothing changed: {r.version_dir} already holds fingerprint {r.fingerprint} "
                f"(windows {', '.join(f'{k} {v}' for k, v in r.split_sizes.items())}); nothing was written "
                f"(run {r.run_id} recorded as unchanged)\n"
                f"metadata  {without_password(r.metadata_url)}\nreport    {r.report}")
    lines = [
        f"dataset   {r.version_dir}" + (f"  (replaced fingerprint {r.replaced})" if r.replaced else ""),
        f"version   fingerprint {r.fingerprint}  run {r.run_id}",
        "windows   " + ", ".join(f"{k} {v}" for k, v in r.split_sizes.items())
        + (f"  (dropped: {', '.join(f'{k} {v}' for k, v in r.windows_dropped.items())})" if r.windows_dropped else ""),
        f"rows      in {r.rows_in:,} = accepted {r.rows_accepted:,} + quarantined {r.rows_quarantined:,}"
        + (f" ({', '.join(f'{k} {v}' for k, v in sorted(r.quarantine_by_reason.items()))})" if r.quarantine_by_reason else ""),
        f"raw       {r.raw_samples_in:,} waveform samples",
        *_cache_and_skip_lines(r),
        f"time      {r.seconds.get('total', 0):.1f} s on {r.runner}" if r.runner else
        f"time      {r.seconds.get('total', 0):.1f} s",
        f"metadata  {without_password(r.metadata_url)}",
        f"quarantine {r.output_dir.rstrip('/')}/quarantine",   # a str: output.dir may be a URL (s3://b/out)
        f"report    {r.report}",
        *(f"warning   {w}" for w in getattr(r, "warnings", ())),
        *([f"beam      {', '.join(f'{k} {v}' for k, v in sorted(r.runner_metrics.items()))}"]
          if getattr(r, "runner_metrics", None) else []),
        *(f"ALERT     {a}" for a in getattr(r, "alerts", ())),
    ]
    return "\n".join(lines)


def _cache_and_skip_lines(r) -> list[str]:
    """How many units each pass took from the cache; every unit skipped under ``run.on_unit_error: skip``."""
    out = []
    cached, n = getattr(r, "units_cached", None), len(r.units)
    if cached:
        out.append(f"cache     units from the cache: pass 1 {cached['pass1']} of {n}, pass 2 {cached['pass2']} of {n}")
    skipped = getattr(r, "units_skipped", [])
    if skipped:
        out.append(f"skipped   {len(skipped)} unit{'s' if len(skipped) != 1 else ''} (run.on_unit_error: skip):")
        out += [f"  {f.line()}" for f in skipped]
    return out


def demo(work_dir: str = "demo_out", seed: int = 0, scale: float = 1.0, runner: str | None = None,
         workers: int | None = None) -> str:
    """Generate the demo sources (once per seed/scale) and run the demo pipeline."""
    from sensorpipe.runners.driver import run_pipeline
    from sensorpipe.demo.synthetic import generate_demo_sources

    root = Path(work_dir).resolve()
    config = root / "pipeline.yaml"
    marker = root / f".generated-seed{seed}-scale{scale:g}"
    if not (config.exists() and marker.exists()):
        for old in root.glob(".generated-*"):
            old.unlink()
        config = generate_demo_sources(root, seed=seed, scale=scale)
        marker.touch()
    # the demo folder is scratch: a new seed/scale (or sensorpipe version) replaces its one version
    result = run_pipeline(str(config), runner=runner, workers=workers, overwrite=True)
    return (f"sensorpipe demo: sample sources in {root}\n{summarize(result)}\n\n"
            f"next:  sensorpipe inspect {result.output_dir} --split train --index 0 --plot window.png")


def list_sources() -> str:
    """Every registered adapter with its channels, time convention and what it drops."""
    from sensorpipe.processing.raw_features import adapter_channels
    from sensorpipe.sources.base import registered_adapters

    out = []
    for name, cls in registered_adapters().items():
        out.append(f"{name}: {cls.description}")
        out.append(f"    time: {cls.time_convention}")
        chans = adapter_channels(cls)
        out.append("    channels: " + (", ".join(chans) if chans else "any canonical channel, mapped in options.fields"))
        if cls.drops:
            out.append(f"    drops: {cls.drops}")
    out.append("\ncanonical channels: " + ", ".join(f"{c.name} [{c.unit}]" for c in registry.CHANNELS.values()))
    return "\n".join(out)


def sources_markdown_table() -> str:
    """The README's "Supported sources" table, generated from the adapters themselves."""
    from sensorpipe.processing.raw_features import adapter_channels
    from sensorpipe.sources.base import registered_adapters

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = ["| adapter | format | channels | time convention | drops |", "|---|---|---|---|---|"]
    for name, cls in registered_adapters().items():
        chans = ", ".join(f"`{c}`" for c in adapter_channels(cls)) or "any (mapped in the config)"
        rows.append(f"| `{name}` | {cell(cls.description)} | {chans} | {cell(cls.time_convention)} | "
                    f"{cell(cls.drops or '-')} |")
    return "\n".join(rows)


def features_markdown_table() -> str:
    """The README's canonical feature set: every channel, its unit, derivation and the adapters that fill it."""
    from sensorpipe.processing.raw_features import adapter_channels
    from sensorpipe.sources.base import registered_adapters

    adapters = registered_adapters()
    rows = ["| channel | unit | how it is derived | filled by |", "|---|---|---|---|"]
    for c in registry.CHANNELS.values():
        by = [f"`{n}`" for n, cls in adapters.items() if c.name in adapter_channels(cls)]
        by += [f"`{n}` (mapped)" for n, cls in adapters.items() if not adapter_channels(cls)]
        rows.append(f"| `{c.name}` | {c.unit} | {c.description} | {', '.join(by)} |")
    return "\n".join(rows)


def coverage_matrix_markdown() -> str:
    """Sources x channels: which adapter can fill which canonical channel (x), before anything runs."""
    from sensorpipe.processing.raw_features import adapter_channels
    from sensorpipe.sources.base import registered_adapters

    names = list(registry.CHANNELS)
    rows = ["| adapter | " + " | ".join(f"`{n}`" for n in names) + " |", "|---|" + "---|" * len(names)]
    for name, cls in registered_adapters().items():
        chans = adapter_channels(cls)
        cells = ["any" if not chans else ("x" if n in chans else "") for n in names]
        rows.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def list_versions(out_dir: str = ".", db_url: str | None = None, all_runs: bool = False) -> str:
    """Published versions (status, fingerprint, run start and duration, windows per split), or every run."""
    from sqlalchemy.exc import OperationalError

    from sensorpipe.metadata.queries import open_store
    from sensorpipe.runners.lifecycle import reconcile_runs
    from sensorpipe.storage.publish import on_disk_fingerprint

    store = open_store(out_dir, db_url)
    try:
        if not store.read_only:   # the reader role lists what the database says
            reconcile_runs(store)     # runs whose process is gone are recorded as interrupted (or succeeded)
    except OperationalError as e:  # a read-only or busy database: list what it says
        import logging

        logging.getLogger(__name__).warning("could not record runs that ended without finishing: %s", e)
    if all_runs:
        return _runs_table(store.list_runs())
    rows = [r for r in store.list_versions() if r["status"] == "published"]
    if not rows:
        return "no dataset versions published yet (see `sensorpipe versions --all` for every run)"
    lines = [f"{'dataset':24} {'version':8} {'status':10} {'fingerprint':17} {'started (UTC)':20} {'took':>7}  "
             f"windows"]
    for r in rows:
        status = r["status"]
        if r["output_dir"] and on_disk_fingerprint(
                Path(r["output_dir"]) / r["dataset_name"] / r["semantic_version"]) != r["fingerprint"]:
            status = "missing"      # recorded, but its folder is gone or holds something else
        lines.append(f"{r['dataset_name']:24} {r['semantic_version']:8} {status:10} {r['fingerprint']:17} "
                     f"{_when(r['started_at']):20} {_took(r['started_at'], r['finished_at']):>7}  "
                     f"{_splits(r['split_sizes'])}" + _alert_mark(r.get("alerts")))
    return "\n".join(lines)


def _alert_mark(n: int | None) -> str:
    """``  ALERT (2 rules)`` for a run that breached quality.alerts rules (`sensorpipe quality` lists them)."""
    return f"  ALERT ({n} rule{'s' if n > 1 else ''})" if n else ""


def _runs_table(runs: list[dict]) -> str:
    if not runs:
        return "no runs recorded yet"
    lines = [f"{'run':12} {'status':11} {'stage':7} {'dataset':20} {'version':8} {'fingerprint':17} "
             f"{'started (UTC)':20} {'took':>7}  windows / error"]
    for r in runs:
        tail = r["error"] if r["error"] else _splits(r["split_sizes"])
        lines.append(f"{r['run_id']:12} {r['status']:11} {r['stage'] or '':7} {r['dataset_name'] or '':20} "
                     f"{r['dataset_version'] or '':8} {r['fingerprint'] or '-':17} {_when(r['started_at']):20} "
                     f"{_took(r['started_at'], r['finished_at']):>7}  {tail}{_alert_mark(r.get('alerts'))}")
    return "\n".join(lines)


def _splits(sizes: dict | None) -> str:
    order = ("train", "validation", "test")
    items = sorted((sizes or {}).items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else 3, kv[0]))
    return ", ".join(f"{k} {v}" for k, v in items)


def _when(iso: str | None) -> str:
    return (iso or "")[:19].replace("T", " ")


def _took(start: str | None, end: str | None) -> str:
    from datetime import datetime

    if not start or not end:
        return "-"
    return f"{(datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds():.1f} s"


def inspect_window(out_dir: str, split: str, index: int, plot: str | None = None) -> str:
    from sensorpipe.access.dataset import open_dataset

    ds = open_dataset(out_dir)
    ex = ds[split][index]
    values = ds.denormalize(ex["input"])
    mask = ex["mask"]
    W = values.shape[0]
    lines = [f"{ex['key']}  ({split}[{index}] of {len(ds[split])})",
             f"dataset {ex['dataset']}  participant {ex['participant_id']}  "
             f"start {np.datetime64(int(ex['start_utc']), 's')}Z  local offset {int(ex['tz_offset_min'])} min",
             f"missing ratio {float(ex['missingness_ratio']):.3f}", "",
             f"{'channel':20} {'unit':12} {'coverage':>8} {'mean':>10} {'min':>10} {'max':>10}"]
    for j, ch in enumerate(ds.channels):
        obs = ~mask[:, j]
        unit = registry.get(ch).unit
        if obs.any():
            v = values[obs, j]
            lines.append(f"{ch:20} {unit:12} {obs.mean():8.1%} {_fixed(v.mean())} {_fixed(v.min())} {_fixed(v.max())}")
        else:
            lines.append(f"{ch:20} {unit:12} {0:8.1%} {'-':>10} {'-':>10} {'-':>10}")
    lines += [""] + _caption_lines(ex) + ["", "labels: " + ", ".join(
        f"{k}={_label_text(ds, k, v)}" for k, v in sorted(ex["labels"].items()))]
    if plot:
        from sensorpipe.quality.plots import plot_window

        plot_window(values, mask, ds.channels, ex["key"], plot)
        lines.append(f"plot: {plot} ({W} minutes, masked minutes shaded)")
    return "\n".join(lines)


def participant_windows(out_dir: str, participant: str, key_file: str | None = None) -> str:
    """Every window of one participant: split, index to pass to ``inspect``, start, missingness.

    ``participant`` is a pseudonym as stored, or a raw study participant id:
    with the pseudonymization key (``key_file``, else the environment variable
    the run read it from) the raw id is turned into its pseudonym in each of
    the dataset's studies, so one person's windows are found across sources.
    """
    from sensorpipe.access.dataset import open_dataset

    ds = open_dataset(out_dir)
    wanted = {participant, *_pseudonyms(ds, participant, key_file)}
    lines = [f"{'split':10} {'index':>6}  {'start (UTC)':20} {'missing':>8}  {'sources':24} key"]
    for name, split in ds.splits.items():
        view = split.filter(participant=sorted(wanted))
        for i, ex in zip(view.indices, view):
            srcs = ex["sources"] if "sources" in ex else ""
            lines.append(f"{name:10} {int(i):>6}  {str(np.datetime64(int(ex['start_utc']), 's')):20} "
                         f"{float(ex['missingness_ratio']):8.3f}  {srcs:24} {ex['key']}")
    if len(lines) == 1:
        hint = ("" if len(wanted) > 1 else "; to look a raw participant id up, give the pseudonymization key "
                "(--key-file, or the environment variable named by privacy.key_env)")
        raise KeyError(f"no window of participant {participant!r}; participant ids in the output are pseudonyms "
                       f"(see `sensorpipe inspect DIR --index I`){hint}")
    return "\n".join(lines)


def _pseudonyms(ds, raw_id: str, key_file: str | None) -> list[str]:
    """``raw_id``'s pseudonym in each study of the dataset, when the key is at hand (else none)."""
    import os

    from sensorpipe.privacy.pseudonym import pseudonym

    privacy = ds.config.get("privacy", {})
    if not privacy.get("pseudonymize", True):
        return []
    if key_file:
        path = Path(key_file).expanduser()
        if not path.exists():
            raise KeyError(f"--key-file {path} does not exist")
        key = path.read_bytes().strip()
    else:
        key = os.environ.get(privacy.get("key_env") or "SENSORPIPE_PSEUDONYM_KEY", "").encode()
    return [pseudonym(key, study, raw_id) for study in ds.studies] if key else []


def _caption_lines(ex: dict) -> list[str]:
    """Each caption level's text, then every claim as one JSON line (what the faithfulness checker verifies)."""
    import json

    order = ("statistical", "structural", "semantic")
    levels = sorted((k[len("caption_"):] for k in ex if k.startswith("caption_") and k != "caption_claims"),
                    key=lambda lvl: (order.index(lvl) if lvl in order else len(order), lvl))
    out = [f"caption ({lvl}): {ex['caption_' + lvl]}" for lvl in levels] or \
        ["caption: " + ex["caption"]]
    if "caption_claims" in ex:
        claims = json.loads(ex["caption_claims"])
        out += ["", f"claims ({len(claims)}, JSON):"] + [f"  {json.dumps(c, ensure_ascii=False)}" for c in claims]
    return out


def _label_text(ds, name: str, value) -> str:
    from sensorpipe.core.labels import BY_NAME

    feat = ds.features["labels"][name]
    names = getattr(feat, "names", None)
    if np.ndim(value) == 1:   # a per-minute sequence: minutes per class
        spec = BY_NAME.get(name)
        codes = np.asarray(value, np.int64)
        if spec is None or not (codes >= 0).any():
            return "missing"
        counts = np.bincount(codes[codes >= 0], minlength=len(spec.names))
        return ", ".join(f"{spec.names[k]} {c} min" for k, c in enumerate(counts) if c) + \
            (f", {int((codes < 0).sum())} min unknown" if (codes < 0).any() else "")
    if names is not None:
        return "missing" if int(value) < 0 else names[int(value)]
    v = float(value) if not isinstance(value, (bool, np.bool_)) else bool(value)
    return "missing" if isinstance(v, float) and np.isnan(v) else str(v)
