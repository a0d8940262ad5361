"""Plots for inspection: one window per channel, masked (imputed) minutes shaded."""

from __future__ import annotations

import numpy as np

from sensorpipe import channels as registry


def plot_window(values: np.ndarray, mask: np.ndarray, channels: tuple[str, ...], title: str, path: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    C = len(channels)
    fig, axes = plt.subplots(C, 1, figsize=(10, 1.1 * C + 0.8), sharex=True, squeeze=False)
    minutes = np.arange(values.shape[0])
    for j, (ax, ch) in enumerate(zip(axes[:, 0], channels)):
        m = mask[:, j]
        ax.plot(minutes, np.where(m, np.nan, values[:, j]), lw=0.8, color="#1f5fa8")
        ax.plot(minutes, np.where(m, values[:, j], np.nan), lw=0.6, color="#999", ls=":")
        edges = np.flatnonzero(np.diff(np.r_[0, m.astype(np.int8), 0]))
        for a, b in zip(edges[::2], edges[1::2]):
            ax.axvspan(a, b, color="#f2b8b5", alpha=0.5, lw=0)
        ax.set_ylabel(f"{ch}\n[{registry.get(ch).unit}]", rotation=0, ha="right", va="center", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[-1, 0].set_xlabel("minute of window (shaded: missing, dotted: imputed)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
