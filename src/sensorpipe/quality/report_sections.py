"""The report's figure sections: distributions per channel, missingness, correlation, example windows,
rows per file, drops, labels, resources and drift. Each takes recorded numbers (and the window sample of
:mod:`sensorpipe.quality.report_sample`) and returns an HTML fragment; :mod:`sensorpipe.quality.report`
lays the page out.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

import numpy as np

from sensorpipe.metadata.records import RunRecord
from sensorpipe.metadata.records import QUANTILE_LEVELS
from sensorpipe.quality import report_plots as plots
from sensorpipe.quality.drift import DriftResult, cdf, label_windows
from sensorpipe.quality.report_sample import MIN_PAIRED_MINUTES, SampleSummary
from sensorpipe.quality.report_table import table


@dataclass
class Resources:
    """Stage timings (seconds, wall) and peak resident memory, where the run or the database has them."""

    seconds: dict[str, float] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)   # summed over units
    peak_rss_mb: dict[str, float] = field(default_factory=dict)     # process -> MiB
    source: str = ""                                                 # where the numbers come from


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


SPLITS = ("train", "validation", "test")
HIST_BINS = 40
DISPLAY = (QUANTILE_LEVELS.index(0.01), QUANTILE_LEVELS.index(0.99))   # the histograms' range: p1 to p99
SHOWN = tuple(QUANTILE_LEVELS.index(p) for p in (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99))


def channel_order(record: RunRecord) -> tuple[str, ...]:
    """The run's channels in its config order (the database lists them alphabetically)."""
    try:
        configured = json.loads(record.config_json or "{}").get("channels") or []
    except ValueError:
        configured = []
    have = dict.fromkeys(s.channel for s in record.channel_stats)
    return tuple(c for c in configured if c in have) + tuple(c for c in have if c not in configured)


def _q(record: RunRecord) -> dict[tuple[str, str], float]:
    return {(m.scope, m.name): m.value for m in record.quality}


def histogram_shares(quantiles: list[float], edges: np.ndarray) -> np.ndarray:
    """Each bin's share of a distribution known by its values at ``QUANTILE_LEVELS`` (its CDF read off them,
    right-continuous, as drift reads it); mass below the first edge or above the last goes to the end bins."""
    f = cdf(np.asarray(quantiles, np.float64), edges)
    shares = np.diff(f)
    shares[0] += f[0]
    shares[-1] += 1.0 - f[-1]
    return shares


def channels(record: RunRecord) -> str:
    """Per channel: histogram by split, quantiles, cleaning changes by reason and the clipped share."""
    q = _q(record)
    quant = {(r.split, r.channel): json.loads(r.values_json) for r in record.quantiles}
    counts = {(s.split, s.channel): s.count for s in record.channel_stats}
    observed: dict[str, int] = {}
    for s in record.channel_stats:
        observed[s.channel] = observed.get(s.channel, 0) + s.count
    canvas = None
    cards = []
    for ch in channel_order(record):
        have = {sp: [np.nan if v is None else v for v in quant[(sp, ch)]] for sp in SPLITS
                if counts.get((sp, ch)) and (sp, ch) in quant}
        if have:
            pooled = quant.get(("all", ch)) or next(iter(have.values()))
            lo, hi = pooled[DISPLAY[0]], pooled[DISPLAY[1]]
            lo, hi = (lo - 0.5, hi + 0.5) if not hi > lo else (lo, hi)
            edges = np.linspace(lo, hi, HIST_BINS + 1)
            canvas = canvas or plots.Histograms()
            fig = canvas.draw(ch, edges, {sp: (histogram_shares(v, edges), counts[(sp, ch)]) for sp, v in have.items()})
            quant_html = table(["split", *(f"p{round(QUANTILE_LEVELS[i] * 100)}" for i in SHOWN)],
                               [[sp, *(float(v[i]) for i in SHOWN)] for sp, v in have.items()])
        else:
            fig, quant_html = "<p><em>no observed minute in any split</em></p>", ""
        n = observed.get(ch, 0)
        changes = [[k.split(":", 1)[1], int(v), v / n if n else 0.0] for (scope, k), v in q.items()
                   if scope == f"channel:{ch}" and k.startswith("cleaned:")]
        clipped = q.get((f"channel:{ch}", "clipped_normalized"))
        rates = table(["cleaning change", "grid minutes", "per observed minute"], changes,
                      "cleaning changed no minute")
        clip = ("normalization does not clip it" if clipped is None else
                f"clipped by normalization: {int(clipped):,} minutes ({clipped / n if n else 0:.3%} of observed)")
        cards.append(f'<div class="card"><h3>{html.escape(ch)}</h3>{fig}{quant_html}{rates}<p>{clip}</p></div>')
    note = ("<p>Observed minutes of the kept windows, real units; each split's share of its minutes per bin "
            "(display range: p1 to p99 of all splits, values beyond it in the end bins), read off the 101 "
            "quantiles the run stores per split (merged histogram sketches: within half a sketch bin of the exact "
            "value).</p>")
    return section("channels", "Channels: distributions, quantiles, cleaning",
                   note + '<div class="cards">' + "".join(cards) + "</div>")


def missingness(bars_html: str, heatmaps_html: str) -> str:
    """The record's missing share per channel (``bars_html``) above the sample's heatmaps (``heatmaps_html``:
    :func:`missingness_heatmaps`, drawn apart because a run draws it before the record exists)."""
    return section("missingness", "Missingness", bars_html + heatmaps_html)


def missingness_heatmaps(sample: SampleSummary | None) -> str:
    """The window sample's part of the missingness section: observed share per participant and local day."""
    if sample is None or not sample.heatmaps:
        return ""
    return (f"<p>Observed share of each channel group's minutes per participant and local day, over the "
            f"{sample.participants_shown} participants (of {sample.participants_seen} in the sampled windows) "
            f"shown; participants as study / pseudonym.</p>"
            + plots.heatmaps(sample.heatmaps) + table(
                ["channel group", "channels"], [[h.group, ", ".join(h.channels)] for h in sample.heatmaps]))


def correlation(sample: SampleSummary | None) -> str:
    if sample is None or sample.corr is None:
        return section("correlation", "Channel correlation", "<p><em>no window to sample</em></p>")
    body = (f"<p>Method: Pearson r between two channels over the minutes where both are observed (pairwise "
            f"complete, real units, imputed minutes left out) in the {sample.windows:,} sampled windows; blank where "
            f"fewer than {MIN_PAIRED_MINUTES} minutes are shared or a channel is constant there.</p>")
    C = len(sample.channels)
    cells = [[a, *(("" if not sample.corr[i, j] == sample.corr[i, j] else f"{sample.corr[i, j]:.2f}")
                   for j in range(C))] for i, a in enumerate(sample.channels)]
    return section("correlation", "Channel correlation", body + plots.correlation(sample.channels, sample.corr)
                   + "<details><summary>the matrix as numbers</summary>"
                   + table(["", *sample.channels], cells) + "</details>")


def examples(sample: SampleSummary | None) -> str:
    if sample is None or not sample.examples:
        return section("examples", "Example windows", "<p><em>no window to sample</em></p>")
    figs = "".join(plots.window(w.values, w.mask, sample.channels, f"{w.study} / {w.split} / {w.key}")
                   for w in sample.examples)
    note = ("<p>Per study, its best-observed sampled window: observed channels, 5-minute means, each scaled to "
            "its range in the window (given in real units beside it).</p>")
    return section("examples", "Example windows", note + figs)


def rows(record: RunRecord, recon: str) -> str:
    files = [[f.source, f.source_file, f.rows_in, f.rows_accepted, f.rows_quarantined,
              "yes" if f.rows_in == f.rows_accepted + f.rows_quarantined else "NO"] for f in record.file_rows]
    reasons: dict[tuple[str, str], int] = {}
    for r in record.quarantine:
        reasons[(r.source, r.reason)] = reasons.get((r.source, r.reason), 0) + r.count
    fig = ""
    if reasons:
        fig = plots.bars("quarantined rows by reason", [f"{s}: {r}" for s, r in reasons],
                         list(reasons.values()), "rows", colour="#c44")
    return section("rows", "Rows: in = accepted + quarantined", recon
                   + "<h3>Per file</h3><p>files by their keyed token (privacy: a path can name a person)</p>"
                   + table(["source", "file", "rows in", "accepted", "quarantined", "reconciles"], files,
                           "no per-file accounting recorded for this run")
                   + "<h3>Quarantined rows by reason</h3>" + fig
                   + table(["source", "reason", "rows"], [[s, r, n] for (s, r), n in sorted(reasons.items())],
                           "no row was quarantined"))


def dropped(record: RunRecord) -> str:
    d = [(m.name.split(":", 1)[1], int(m.value)) for m in record.quality
         if m.scope == "dataset" and m.name.startswith("windows_dropped:")]
    fig = plots.bars("windows dropped by reason", [k for k, _ in d], [v for _, v in d], "windows",
                     colour="#e08a1e") if d else ""
    return section("dropped", "Windows dropped by reason", fig + table(["reason", "windows"], d,
                                                                       "no window was dropped"))


def labels(record: RunRecord) -> str:
    """Coverage and class balance over every kept window, from the label counts pass 1 recorded
    (quality/label_balance.py)."""
    windows = label_windows([{"scope": m.scope, "name": m.name, "value": m.value} for m in record.quality])
    rows = []
    for label, by_class in windows.items():
        total = sum(by_class.values())
        have = total - by_class.get("missing", 0)
        if not have:
            continue
        balance = ", ".join(f"{c} {k:,} ({k / have:.0%})" for c, k in by_class.items() if c != "missing")
        rows.append([label, have, have / total if total else 0.0, balance])
    if not rows:
        return section("labels", "Labels: coverage and class balance",
                       "<p><em>no kept window carries a label</em></p>")
    fig = plots.bars("label coverage (share of kept windows)", [r[0] for r in rows], [r[2] for r in rows],
                     "share of windows", colour="#3a9a4a")
    return section("labels", "Labels: coverage and class balance",
                   "<p>over every kept window; a float label's balance is present / missing</p>" + fig
                   + table(["label", "windows with it", "coverage", "class balance (of windows with it)"],
                           [[a, b, f"{c:.1%}", d] for a, b, c, d in rows]))


def resources(res: Resources) -> str:
    if not res.seconds and not res.peak_rss_mb:
        return section("resources", "Stage timings and peak memory",
                       f"<p><em>not recorded for this run{': ' + html.escape(res.source) if res.source else ''}"
                       f"</em></p>")
    stages = {k: v for k, v in res.seconds.items() if k != "total"}
    fig = plots.bars("wall time per stage", list(stages), list(stages.values()), "seconds") if stages else ""
    body = f"<p>{html.escape(res.source)}</p>" + fig
    body += table(["stage", "seconds (wall)"], [[k, round(v, 3)] for k, v in res.seconds.items()])
    if res.stage_seconds:
        body += "<h3>Summed over units (worker time)</h3>" + table(
            ["step", "seconds"],
            [[k, round(v, 3)] for k, v in sorted(res.stage_seconds.items(), key=lambda kv: -kv[1])])
    if res.peak_rss_mb:
        body += table(["process", "peak RSS (MiB)"], [[k, round(v, 1)] for k, v in res.peak_rss_mb.items()])
    return section("resources", "Stage timings and peak memory", body)


def drift(d: DriftResult | None, why_none: str) -> str:
    title = "Drift against the previous version"
    if d is None:
        return section("drift", title, f"<p><em>{html.escape(why_none)}</em></p>")
    chans = [c for c in d.channels if c.psi == c.psi]
    fig = plots.bars(f"PSI by channel ({d.split} splits), {d.old_version} -> {d.new_version}",
                     [c.channel for c in chans], [c.psi for c in chans], "PSI (0.1 moderate, 0.25 major shift)",
                     colour="#7a4ea8") if chans else ""
    rows = [[c.channel, c.psi, c.wasserstein, c.wasserstein_std, c.mean_old, c.mean_new,
             "" if c.count_old is None else c.count_old, "" if c.count_new is None else c.count_new]
            for c in d.channels]
    windows = [[w.split, w.old, w.new, w.delta] for w in d.windows]
    labels = [[lab.label, lab.total_variation, _shares(lab.old_share), _shares(lab.new_share)] for lab in d.labels]
    body = (f"<p>version <strong>{html.escape(d.new_version)}</strong> ({d.new_fingerprint[:12]}) against "
            f"<strong>{html.escape(d.old_version)}</strong> ({d.old_fingerprint[:12]}). Method: "
            f"{html.escape(d.method)}; PSI is the drift score alerts use.</p>" + fig
            + table(["channel", "PSI", "Wasserstein-1 (real units)", "W1 / old std", "mean before", "mean now",
                     "minutes before", "minutes now"], rows)
            + "<h3>Windows</h3>" + table(["split", d.old_version, d.new_version, "change"], windows)
            + "<h3>Label balance</h3><p>total variation distance between the class shares (0 unchanged, "
              "1 disjoint)</p>"
            + table(["label", "total variation", d.old_version, d.new_version], labels, "no label recorded"))
    return section("drift", title, body)


def _shares(shares: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in shares.items())


def alerts(record: RunRecord) -> str:
    """The breached ``quality.alerts`` rules, first thing on the page."""
    items = getattr(record, "alerts", None) or []
    if not items:
        return ""
    lis = "".join(f"<li><strong>{html.escape(a.rule)}</strong> ({html.escape(a.scope)}): {html.escape(a.message)} "
                  f"(value {a.value:.4g}, threshold {a.threshold:.4g})</li>" for a in items)
    return f'<section id="alerts" class="alerts"><h2>Alerts</h2><ul>{lis}</ul></section>'
