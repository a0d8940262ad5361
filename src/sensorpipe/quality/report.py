"""The self-contained HTML quality report of one dataset version: the page a data scientist opens first.

Sections (``SECTIONS``): per-channel distributions by split with quantiles and cleaning changes, missingness
(per channel, and participants x days per channel group), channel correlation, example windows, rows in =
accepted + quarantined per source and file, windows dropped, labels, stage timings and memory, drift against
another version, and the detail tables. Figures are matplotlib SVG inlined in the page (report_plots.py), so it
renders offline with no script. The numbers come from the :class:`RunRecord` the metadata store keeps and a
bounded sample of the written windows (:mod:`sensorpipe.reporting` gathers both), so the same report can be
rebuilt later for any recorded version (``sensorpipe report``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from sensorpipe.metadata.records import RunRecord
from sensorpipe.quality import report_sections as sections
from sensorpipe.quality.drift import DriftResult
from sensorpipe.quality.report_sample import SampleSummary
from sensorpipe.quality.report_table import table


_table = table


def _missing_bars(record: RunRecord) -> str:
    """The train split's missing share per channel as an HTML table of CSS bars.

    Exact (the share is printed beside each bar) and searchable, above the per-participant heatmaps; plain
    HTML, so it needs no figure.
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


@dataclass
class ReportExtras:
    """What the page shows beyond the run's record: the window sample, resources and the drift comparison."""

    sample: SampleSummary | None = None
    resources: sections.Resources = field(default_factory=sections.Resources)
    drift: DriftResult | None = None
    why_no_drift: str = "no earlier version is recorded to compare with"
    #: sections already drawn by :func:`record_sections` and :func:`window_sections` (a run draws them while its
    #: shards are written)
    pre: dict[str, str] = field(default_factory=dict)
    banner: str = ""     # one line above everything, e.g. "regenerated from the metadata database"


_CSS = """body{font-family:sans-serif;margin:2em;max-width:76em}table{border-collapse:collapse;margin:.5em 0 1.5em}
table{display:block;overflow-x:auto;max-width:100%}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#eee}td:first-child{text-align:left}
td.bar{width:24em;text-align:left}td.bar div{background:#c44;height:.9em}
nav a{margin-right:1em}.cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;padding:.5em;
flex:0 0 auto}.card table{font-size:75%}svg.plot{max-width:100%;height:auto;display:block}
section{margin-top:2em}
.alerts{border:2px solid #c44;background:#fdecea;padding:.2em 1em}"""

#: (anchor, title) of every section, in page order: the navigation bar and the browser test read it
SECTIONS = (("channels", "Channels"), ("missingness", "Missingness"), ("correlation", "Correlation"),
            ("examples", "Example windows"), ("rows", "Rows"), ("dropped", "Windows dropped"),
            ("labels", "Labels"), ("resources", "Timings and memory"), ("drift", "Drift"), ("details", "Details"))


def _recon_table(record: RunRecord, q: dict[tuple[str, str], float]) -> str:
    sources = sorted({m.scope for m in record.quality
                      if m.scope != "dataset" and not m.scope.startswith(("channel:", "study:"))})
    recon = [[s, int(q[(s, "rows_in")]), int(q[(s, "rows_accepted")]), int(q[(s, "rows_quarantined")]),
              "yes" if q[(s, "rows_in")] == q[(s, "rows_accepted")] + q[(s, "rows_quarantined")] else "NO",
              int(q[(s, "raw_samples_in")]), int(q[(s, "windows_kept")]), q[(s, "out_of_range_rate")]]
             for s in sources]
    return _table(["source", "rows in", "accepted", "quarantined", "reconciles", "raw samples",
                   "windows kept", "out-of-range rate"], recon)


def record_sections(record: RunRecord, drift: DriftResult | None = None, why_no_drift: str = "") -> dict[str, str]:
    """The sections drawn from the record alone, no window needed: channels, rows, dropped, labels, drift.
    Most of the report's drawing; a run draws them while its shards are being written."""
    q = {(m.scope, m.name): m.value for m in record.quality}
    return {"channels": sections.channels(record), "rows": sections.rows(record, _recon_table(record, q)),
            "dropped": sections.dropped(record), "labels": sections.labels(record),
            "drift": sections.drift(drift, why_no_drift or ReportExtras.why_no_drift)}


def window_sections(sample: SampleSummary | None) -> dict[str, str]:
    """What the window sample gives: the missingness heatmaps, the correlation and example window sections. A
    run draws them while its shards are written, from the same windows read before the shards
    (reporting.SpilledWindows)."""
    return {"heatmaps": sections.missingness_heatmaps(sample), "correlation": sections.correlation(sample),
            "examples": sections.examples(sample)}


def _split_rank(split: str) -> tuple[int, str]:
    return (sections.SPLITS.index(split) if split in sections.SPLITS else len(sections.SPLITS), split)


def render(record: RunRecord, result=None, extras: ReportExtras | None = None) -> str:
    extras = extras or ReportExtras()
    q = {(m.scope, m.name): m.value for m in record.quality}
    overridden = [[m.scope, m.name.split(":", 1)[1], int(m.value)] for m in record.quality
                  if m.name.startswith("fusion_overridden:")]
    cleaned = [[m.scope.split(":", 1)[1], *m.name.split(":", 2)[1:], int(m.value)] for m in record.quality
               if m.scope.startswith("study:") and m.name.startswith("cleaned:")]
    stats = [[s.split, s.channel, s.count, s.mean, s.std, s.min, s.max, s.missing_ratio] for s in record.channel_stats]
    norm = [[n.channel, n.method, n.fitted_on_split, n.center, n.scale, n.mean, n.std, n.count,
             _clipped_cell(q, n.channel)] for n in record.normalization]
    skipped = [[e.study, e.participant, e.source, e.source_file, e.stage, e.error] for e in record.unit_errors]
    sizes = {s: record.split_sizes[s] for s in sorted(record.split_sizes, key=_split_rank)}
    nav = "".join(f'<a href="#{a}">{html.escape(t)}</a>' for a, t in SECTIONS)
    pre = extras.pre or record_sections(record, extras.drift, extras.why_no_drift)
    if "heatmaps" not in pre:
        pre = {**pre, **window_sections(extras.sample)}
    details = sections.section("details", "Details", f"""<h3>Studies: fused coverage</h3>{_study_table(record, q)}
<h3>Fusion: readings outranked by another source of the same person</h3>{_table(
    ["source", "channel", "readings"], overridden, "no two sources of a person observed a channel in the same minute")}
<h3>Cleaning: grid minutes changed by study, channel and reason</h3>{_table(
    ["study", "channel", "reason", "minutes"], cleaned, "cleaning changed no minute")}
<h3>Channel statistics (observed minutes of kept windows, real units)</h3>
{_table(["split", "channel", "count", "mean", "std", "min", "max", "missing ratio"], stats)}
<h3>Normalization (fitted on train only)</h3><p>center and scale in transformed units; fitted from
<em>train</em>, or from the channel registry's population <em>prior</em> where the train split never observed the
channel, or <em>fixed</em> (a method without parameters)</p>
{_table(["channel", "method", "fitted from", "center", "scale", "train mean", "train std", "train count",
         "observed cells clipped"], norm)}""")
    banner = f"<p><strong>{html.escape(extras.banner)}</strong></p>" if extras.banner else ""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>sensorpipe report {html.escape(record.dataset_name)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(record.dataset_name)} {html.escape(record.dataset_version)}</h1>{banner}
{sections.alerts(record)}
<p>run <code>{record.run_id}</code> &middot; fingerprint <code>{record.fingerprint}</code> &middot; runner {record.runner}
{f"({record.workers} workers)" if record.runner == "multiprocess" else ""} &middot; code {record.code_version} &middot; {record.finished_at}</p>
<nav>{nav}</nav>
{_warnings(record, q, result)}
<p>{_cache_line(record, result)}</p>
<h2>Skipped units</h2>{_table(["study", "participant", "source", "file", "pass", "error"], skipped,
                              "no unit was skipped")}
<h2>Splits (windows)</h2>{_table(list(sizes), [list(sizes.values())])}
{pre["channels"]}
{sections.missingness(_missing_bars(record), pre["heatmaps"])}
{pre["correlation"]}
{pre["examples"]}
{pre["rows"]}
{pre["dropped"]}
{pre["labels"]}
{sections.resources(extras.resources)}
{pre["drift"]}
{details}
</body></html>"""


def write_report(path: Path, record: RunRecord, result=None, extras: ReportExtras | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(record, result, extras))
    return path
