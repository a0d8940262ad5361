"""The report's figures: matplotlib, each returned as inline SVG markup.

SVG rather than base64 PNG: the figures are few bars, cells and lines, so the
vector text is small, stays sharp when zoomed, and its labels remain text the
browser can search (``svg.fonttype: none``: fonts are the page's, not glyph
paths). Example windows, the one figure with thousands of points, are drawn
from per-5-minute means, which keeps them small too. The figures use the object
API (``Figure``, no ``pyplot``): no global state, and the report can be
written in a worker process of a run.
"""

from __future__ import annotations

import html
import io

import numpy as np

from sensorpipe import channels as registry

SPLIT_COLOURS = {"train": "#1f5fa8", "validation": "#e08a1e", "test": "#3a9a4a"}
#: ``image.composite_image`` off: the heatmap panels' pictures, in one axes, are each embedded at its own cell
#: resolution, not merged into one picture resampled at the figure's resolution
_RC = {"svg.fonttype": "none", "font.size": 8, "axes.titlesize": 9, "svg.hashsalt": "sensorpipe",
       "image.composite_image": False}


def _figure(w_in: float, h_in: float, margins: tuple[float, float, float, float]):
    """A figure with fixed margins (left, bottom, right, top in inches): no tight_layout, which measured every
    tick label of every axes again and was most of the drawing time."""
    import matplotlib

    matplotlib.rcParams.update(_RC)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w_in, h_in))
    left, bottom, right, top = margins
    fig.subplots_adjust(left=left / w_in, bottom=bottom / h_in, right=1 - right / w_in, top=1 - top / h_in)
    return fig


def _few_ticks(axis, n: int = 4) -> None:
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(n))


def _fixed_axis_labels(ax, ticklabel_pt: float) -> None:
    """Place the axes' x label where matplotlib would (below the tick marks, their ``ticklabel_pt`` labels and
    the label pad), once: left automatic, both axis labels are placed again at every save from the measured
    bounding boxes of every tick label, the largest part of drawing a small axes. The y label (none is drawn)
    is fixed too, so that its place is not measured either."""
    import matplotlib
    from matplotlib.transforms import offset_copy

    rc = matplotlib.rcParams
    below_pt = rc["xtick.major.size"] + rc["xtick.major.pad"] + ticklabel_pt + ax.xaxis.labelpad
    ax.xaxis.set_label_coords(0.5, 0, offset_copy(ax.transAxes, ax.get_figure(), y=-below_pt, units="points"))
    ax.yaxis.set_label_coords(0, 0.5)


def _title(ax, text: str, fontsize: float = 7) -> None:
    """The axes' title at its top edge, placed once: the figures put no tick or label above an axes, which is
    where matplotlib would otherwise look again at every save (a tight bounding box of both axes per title)
    to find the same place."""
    ax.set_title(text, fontsize=fontsize, y=1.0)


def _row_labels(ax, labels: list[str], fontsize: float) -> None:
    """``labels[i]`` left of the axes at row ``i`` (data y), as plain text rather than tick labels: a tick is
    five artists (two marks, a grid line, two labels), each label measured again for the axes' layout at every
    save, which was most of the drawing of a figure with a labelled row per participant or per bar."""
    from matplotlib.transforms import offset_copy

    ax.set_yticks([])
    beside = offset_copy(ax.get_yaxis_transform(), ax.get_figure(), x=-3.5, units="points")   # x: axes edge
    for i, label in enumerate(labels):
        ax.text(0, i, label, transform=beside, ha="right", va="center", fontsize=fontsize)


def _svg(fig, label: str) -> str:
    """The figure as one ``<svg>`` element (XML header and DOCTYPE dropped; its size in pt kept, the page's CSS
    shrinks it to a narrow window), labelled for screen readers."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return text.replace("<svg", f'<svg role="img" aria-label="{html.escape(label)}" class="plot"', 1)


class Histograms:
    """Draws every channel's histogram on one reused figure: creating an Axes (its axis, tick and spine
    objects) costs several times what drawing and saving it does, so each histogram updates the artists the
    last one drew (a step line and a caption per split, made once) and saves, instead of building a figure of
    its own or new lines and captions."""

    def __init__(self) -> None:
        self.fig = _figure(3.3, 1.9, (0.45, 0.4, 0.1, 0.25))
        self.ax = self.fig.subplots()
        _few_ticks(self.ax.xaxis)
        _few_ticks(self.ax.yaxis, 3)
        self.ax.tick_params(labelsize=6)
        _fixed_axis_labels(self.ax, 6)
        self.lines: dict[str, object] = {}      # split -> its step line, made in SPLIT_COLOURS order first
        self.captions: list = []                 # k -> the caption of the k-th split drawn
        for split in SPLIT_COLOURS:
            self._line(split)

    def _line(self, split: str):
        if split not in self.lines:
            # a step line, not stairs(): a patch makes the axes walk its Bezier path to update the data limits
            (self.lines[split],) = self.ax.plot([], [], drawstyle="steps-post", color=SPLIT_COLOURS.get(split, "#555"),
                                                lw=1.1)
        return self.lines[split]

    def _caption(self, k: int):
        while len(self.captions) <= k:
            self.captions.append(self.fig.text(0.15 + 0.3 * len(self.captions), 0.99, "", va="top", fontsize=6))
        return self.captions[k]

    def draw(self, channel: str, edges: np.ndarray, splits: dict[str, tuple[np.ndarray, int]]) -> str:
        """Per split (its bin shares, its observed minutes), one step line: splits of different sizes compare."""
        ax, fig = self.ax, self.fig
        for artist in [*self.lines.values(), *self.captions]:
            artist.set_visible(False)
        top = 0.0
        for k, (split, (share, n)) in enumerate(splits.items()):
            top = max(top, float(np.max(share)))
            line = self._line(split)
            line.set_data(edges, np.r_[share, share[-1]])
            line.set_visible(True)
            caption = self._caption(k)
            caption.set_text(f"{split} {n:,}")
            caption.set_color(line.get_color())
            caption.set_visible(True)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, top * 1.05 or 1)
        ax.set_xlabel(f"{channel} [{registry.get(channel).unit}]")
        return _svg(fig, f"histogram of {channel} by split")


def heatmaps(maps: list) -> str:
    """One panel per channel group: rows participants, columns days, colour the observed share.

    The panels sit side by side in ONE axes, each framed, titled and with its own day ticks, a blank gap
    between them: an axes per panel (its axis, tick and spine objects, built and laid out) was most of this
    figure's drawing."""
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import offset_copy

    rows = maps[0].rows
    days = max(m.share.shape[1] for m in maps)
    step = days * 1.2                          # a panel and the gap after it, in days (subplots' spacing)
    w = 1.6 + 1.5 * len(maps)
    fig = _figure(w, 0.9 + 0.1 * len(rows), (1.5, 0.45, 0.1, 0.25))
    ax = fig.subplots()
    for spine in ax.spines.values():
        spine.set_visible(False)
    above = offset_copy(ax.get_xaxis_transform(), fig, y=6, units="points")   # x in days, y: the axes' top
    day_ticks = [t for t in MaxNLocator(3).tick_values(0.5, days + 0.5) if 0.5 <= t <= days + 0.5]
    ticks, labels = [], []
    for k, m in enumerate(maps):
        left = k * step
        ax.imshow(np.ma.masked_invalid(m.share), aspect="auto", cmap="viridis", vmin=0, vmax=1,
                  interpolation="nearest", extent=(left + 0.5, left + m.share.shape[1] + 0.5, len(rows) - 0.5, -0.5))
        ax.add_patch(Rectangle((left + 0.5, -0.5), days, len(rows), fill=False, lw=0.8, edgecolor="black"))
        ax.text(left + 0.5 + days / 2, 1.0, m.group, transform=above, ha="center", va="baseline", fontsize=7)
        ticks += [left + t for t in day_ticks]
        labels += [f"{t:g}" for t in day_ticks]
    ax.set_xlim(0.5, (len(maps) - 1) * step + days + 0.5)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xticks(ticks, labels)
    ax.tick_params(labelsize=5)
    _fixed_axis_labels(ax, 5)
    _row_labels(ax, rows, 4.5)
    fig.text(0.5, 0.01, "local day of participation (blank: no kept window); colour: observed share (0 dark, 1 "
             "yellow)", ha="center", fontsize=6)
    return _svg(fig, "missingness heatmap per channel group")


def correlation(channels: tuple[str, ...], r: np.ndarray) -> str:
    fig = _figure(4.6, 4.0, (1.1, 1.1, 0.1, 0.1))
    ax = fig.subplots()
    ax.imshow(np.ma.masked_invalid(r), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks(range(len(channels)), channels, rotation=60, ha="right", fontsize=6)
    _row_labels(ax, list(channels), 6)
    _fixed_axis_labels(ax, 6)       # no axis label: only so that none is placed at the save
    return _svg(fig, "channel correlation matrix (red positive, blue negative)")


def window(values: np.ndarray, mask: np.ndarray, channels: tuple[str, ...], title: str, bin_min: int = 5) -> str:
    """Observed channels of one window stacked in one panel, each scaled to its own range in the window (the
    label gives it in real units) and drawn as per-``bin_min`` means; bins with no observed minute are shaded
    (the shard holds imputed values there)."""
    W, C = values.shape
    bin_min = max(1, min(bin_min, W))          # a window shorter than a bin (lab recordings: 1 minute) is one bin
    keep = [j for j in range(C) if (~mask[:, j]).any()]
    fig = _figure(6.5, 0.35 * max(len(keep), 1) + 0.7, (1.9, 0.4, 0.1, 0.25))
    ax = fig.subplots()
    nb = W // bin_min
    x = (np.arange(nb) + 0.5) * bin_min / 60
    missing = np.ones((max(len(keep), 1), nb))
    for row, j in enumerate(keep):
        v = np.where(mask[:nb * bin_min, j], np.nan, values[:nb * bin_min, j]).reshape(nb, bin_min)
        seen = np.isfinite(v).sum(axis=1)
        with np.errstate(invalid="ignore"):
            mean = np.nansum(v, axis=1) / np.where(seen, seen, np.nan)
        seen_any = np.isfinite(mean).any()    # observed only in the last, partial bin: drawn as missing
        lo, hi = (np.nanmin(mean), np.nanmax(mean)) if seen_any else (0.0, 0.0)
        lo, hi = (float(np.round(v, 3)) for v in (lo, hi))   # denormalized float32: 2.8e-07 is a 0
        y0 = len(keep) - 1 - row
        ax.plot(x, y0 + 0.1 + 0.8 * (mean - lo) / (hi - lo if hi > lo else 1), lw=0.7, color="#1f5fa8")
        missing[row] = seen == 0
        ax.text(-0.2, y0 + 0.5, f"{channels[j]} {lo:.3g} to {hi:.3g} {registry.get(channels[j]).unit}", ha="right",
                va="center", fontsize=5.5)
    # every channel's missing bins as one image behind the lines (one artist, not a patch per gap)
    ax.imshow(np.where(missing, 1.0, np.nan), cmap="Reds", vmin=0, vmax=2.5, aspect="auto", interpolation="nearest",
              extent=(0, nb * bin_min / 60, 0, max(len(keep), 1)), zorder=0, alpha=0.6)
    ax.set_ylim(0, max(len(keep), 1))
    ax.set_xlim(0, W / 60)
    ax.set_yticks([])
    _few_ticks(ax.xaxis, 8)
    ax.tick_params(labelsize=6)
    _fixed_axis_labels(ax, 6)
    ax.set_xlabel("hours into the window (shaded: missing, imputed in the shard)", fontsize=6)
    _title(ax, title)
    return _svg(fig, f"example window {title}")


def bars(title: str, labels: list[str], values: list[float], xlabel: str, colour: str = "#1f5fa8") -> str:
    """Horizontal bars, one per label, its value printed beside it."""
    fig = _figure(5.0, 0.75 + 0.16 * max(len(labels), 1), (1.9, 0.4, 0.4, 0.25))
    ax = fig.subplots()
    y = np.arange(len(labels))
    vals = np.nan_to_num(np.asarray(values, np.float64))
    ax.barh(y, vals, color=colour)
    _row_labels(ax, labels, 6)
    ax.set_ylim(len(labels) - 0.5, -0.5)
    top = float(vals.max()) if len(vals) and vals.max() > 0 else 1.0
    ax.set_xlim(0, top * 1.15)
    for yi, v in zip(y, vals):
        ax.text(v + 0.01 * top, yi, f"{v:,.3g}", va="center", fontsize=5)
    _few_ticks(ax.xaxis)
    ax.tick_params(labelsize=6)
    _fixed_axis_labels(ax, 6)
    ax.set_xlabel(xlabel, fontsize=6)
    _title(ax, title)
    return _svg(fig, title)
