"""A self-contained HTML quality report of one run (tables, missingness as CSS bars).

It reads only the :class:`RunRecord` the metadata store keeps, so the same
report can be rebuilt later from the database.
"""

from __future__ import annotations

import html
from pathlib import Path

from sensorpipe.metadata.records import RunRecord


def _table(headers: list[str], rows: list[list[object]], empty: str = "none") -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.4g}"
        if isinstance(v, int):
            return f"{v:,}"
        return html.escape(str(v))

    if not rows:
        return f"<p><em>{html.escape(empty)}</em></p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _missing_bars(record: RunRecord) -> str:
    """The train split's missing share per channel as an HTML table of CSS bars.

    Plain HTML rather than an embedded matplotlib PNG: the report is written
    at the end of every run, and importing matplotlib's figure machinery for
    one bar chart was a visible share of a benchmark run (BENCHMARKS.md). The table is exact (the
    share is printed beside each bar), searchable, and needs no image.
    """
    train = [s for s in record.channel_stats if s.split == "train"]
    if not train:
        return ""
    rows = "".join(
        f'<tr><td>{html.escape(s.channel)}</td><td class="bar"><div style="width:{100 * s.missing_ratio:.1f}%">'
        f"</div></td><td>{s.missing_ratio:.1%}</td></tr>" for s in train)
    return ('<table class="bars" aria-label="missing share per channel"><thead><tr><th>channel</th>'
            '<th>missing share of minutes in kept train windows</th><th>share</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _study_table(record: RunRecord, q: dict) -> str:
    """Per study: persons, windows, windows fed by 2+ sources, and each channel's observed share of the windows."""
    studies = sorted({m.scope for m in record.quality if m.scope.startswith("study:")})
    channels = list(dict.fromkeys(s.channel for s in record.channel_stats))   # the output channels, in order
    rows = [[s.split(":", 1)[1], int(q[(s, "persons")]), int(q[(s, "windows_kept")]),
             int(q[(s, "windows_multi_source")]),
             *(f"{q[(s, f'window_observed:{c}')]:.1%}" if (s, f"window_observed:{c}") in q else "-" for c in channels)]
            for s in studies]
    return _table(["study", "persons", "windows", "windows from 2+ sources",
                   *(f"{c} observed" for c in channels)], rows)


def _warnings(record: RunRecord, q: dict[tuple[str, str], float], result=None) -> str:
    """Run warnings a reader must see before trusting the numbers: the run's own (a channel no source provides,
    an empty or small split: runners/run_warnings.py), channels normalized with the registry's population prior
    (no train observation) and observed values normalization clipped."""
    from sensorpipe.channels import CHANNELS

    items = list(getattr(result, "warnings", ()))
    for n in record.normalization:
        if n.fitted_on_split != "prior":
            continue
        elsewhere = {s.split: s.count for s in record.channel_stats if s.channel == n.channel and s.count}
        seen = (", ".join(f"{k:,} observed minute{'' if k == 1 else 's'} in {split}" for split, k in elsewhere.items())
                if elsewhere else "observed in no split")
        c = CHANNELS.get(n.channel)
        prior = f" ({c.prior_center:g} +/- {c.prior_scale:g} {c.unit})" if c else ""
        items.append(f"channel {n.channel} had no train observations ({seen}); normalized with the registry "
                     f"prior{prior}: {n.method} center {n.center:.6g}, scale {n.scale:.6g}. "
                     f"normalization.missing_train: error stops such a run instead.")
    clipped = [(n.channel, int(q.get((f"channel:{n.channel}", "clipped_normalized"), 0))) for n in record.normalization]
    clipped = [(ch, k) for ch, k in clipped if k]
    if clipped:
        items.append("normalization clipped " + ", ".join(f"{k:,} observed {ch} minute{'' if k == 1 else 's'}"
                                                          for ch, k in clipped)
                     + " to the clip range: denormalize returns the bound for them (normalization.clip_sigma: null "
                       "keeps every value)")
    if not items:
        return ""
    return "<h2>Warnings</h2><ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in items) + "</ul>"


def _clipped_cell(q: dict[tuple[str, str], float], channel: str) -> object:
    v = q.get((f"channel:{channel}", "clipped_normalized"))
    return "not clipped" if v is None else int(v)


def _cache_line(record: RunRecord, result=None) -> str:
    """How many units came from the cache: both passes from the run's result, else pass 1 from the record."""
    cached = getattr(result, "units_cached", None)
    if cached:
        n = len(result.units)
        return html.escape(f"units from the cache: pass 1 {cached['pass1']} of {n}, pass 2 {cached['pass2']} of {n}")
    if record.units_cached is not None:
        return html.escape(f"units from the cache: pass 1 {record.units_cached} of {len(record.units)}")
    return ""


def render(record: RunRecord, result=None) -> str:
    q = {(m.scope, m.name): m.value for m in record.quality}
    sources = sorted({m.scope for m in record.quality
                      if m.scope != "dataset" and not m.scope.startswith(("channel:", "study:"))})
    recon = [[s, int(q[(s, "rows_in")]), int(q[(s, "rows_accepted")]), int(q[(s, "rows_quarantined")]),
              "yes" if q[(s, "rows_in")] == q[(s, "rows_accepted")] + q[(s, "rows_quarantined")] else "NO",
              int(q[(s, "raw_samples_in")]), int(q[(s, "windows_kept")]), q[(s, "out_of_range_rate")]]
             for s in sources]
    reasons: dict[tuple[str, str], int] = {}
    for r in record.quarantine:
        reasons[(r.source, r.reason)] = reasons.get((r.source, r.reason), 0) + r.count
    dropped = [[m.name.split(":", 1)[1], int(m.value)] for m in record.quality
               if m.scope == "dataset" and m.name.startswith("windows_dropped:")]
    cleaned = [[m.scope.split(":", 1)[1], *m.name.split(":", 2)[1:], int(m.value)] for m in record.quality
               if m.scope.startswith("study:") and m.name.startswith("cleaned:")]
    overridden = [[m.scope, m.name.split(":", 1)[1], int(m.value)] for m in record.quality
                  if m.name.startswith("fusion_overridden:")]
    stats = [[s.split, s.channel, s.count, s.mean, s.std, s.min, s.max, s.missing_ratio] for s in record.channel_stats]
    norm = [[n.channel, n.method, n.fitted_on_split, n.center, n.scale, n.mean, n.std, n.count,
             _clipped_cell(q, n.channel)] for n in record.normalization]
    skipped = [[e.study, e.participant, e.source, e.source_file, e.stage, e.error] for e in record.unit_errors]
    timing = ""
    if result is not None and result.seconds:
        timing = "<h2>Time per stage (s)</h2>" + _table(list(result.seconds), [[round(v, 3) for v in result.seconds.values()]])
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>sensorpipe report {html.escape(record.dataset_name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:.5em 0 1.5em}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}th{{background:#eee}}td:first-child{{text-align:left}}
td.bar{{width:24em;text-align:left}}td.bar div{{background:#c44;height:.9em}}</style></head><body>
<h1>{html.escape(record.dataset_name)} {html.escape(record.dataset_version)}</h1>
<p>run <code>{record.run_id}</code> &middot; fingerprint <code>{record.fingerprint}</code> &middot; runner {record.runner}
{f"({record.workers} workers)" if record.runner == "multiprocess" else ""} &middot; code {record.code_version} &middot; {record.finished_at}</p>
{_warnings(record, q, result)}
<p>{_cache_line(record, result)}</p>
<h2>Skipped units</h2>{_table(["study", "participant", "source", "file", "pass", "error"], skipped,
                              "no unit was skipped")}
<h2>Splits (windows)</h2>{_table(list(record.split_sizes), [list(record.split_sizes.values())])}
<h2>Rows: in = accepted + quarantined</h2>{_table(["source", "rows in", "accepted", "quarantined", "reconciles",
                                                   "raw samples", "windows kept", "out-of-range rate"], recon)}
<h2>Quarantined rows by reason</h2>{_table(["source", "reason", "rows"], [[s, r, n] for (s, r), n in sorted(reasons.items())],
                                           "no row was quarantined")}
<h2>Windows dropped by reason</h2>{_table(["reason", "windows"], dropped, "no window was dropped")}
<h2>Studies: fused coverage</h2>{_study_table(record, q)}
<h2>Fusion: readings outranked by another source of the same person</h2>{_table(
    ["source", "channel", "readings"], overridden, "no two sources of a person observed a channel in the same minute")}
<h2>Cleaning: grid minutes changed by channel and reason</h2>{_table(["study", "channel", "reason", "minutes"], cleaned,
                                                                     "cleaning changed no minute")}
<h2>Missingness</h2>{_missing_bars(record)}
<h2>Channel statistics (observed minutes of kept windows, real units)</h2>
{_table(["split", "channel", "count", "mean", "std", "min", "max", "missing ratio"], stats)}
<h2>Normalization (fitted on train only)</h2><p>center and scale in transformed units; fitted from
<em>train</em>, or from the channel registry's population <em>prior</em> where the train split never observed the
channel, or <em>fixed</em> (a method without parameters)</p>
{_table(["channel", "method", "fitted from", "center", "scale", "train mean", "train std", "train count",
         "observed cells clipped"], norm)}
{timing}</body></html>"""


def write_report(path: Path, record: RunRecord, result=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(record, result))
    return path
