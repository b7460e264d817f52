"""loss_vs_iteration: Q(x) vs t per point, a panel per objective kind, with Q* where known.

Q* is each point's own (it changes with the objective's settings, e.g. dim): one line per
distinct value, in its series' colour, black where several series share it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.figures.data import SweepData
from ftsgd_jax.figures.labels import point_labels
from ftsgd_jax.figures.style import (
    DOUBLE_COLUMN,
    SINGLE_COLUMN,
    Palette,
    divergence_note,
    figure,
    legend_below,
    new_figure,
    series_legend,
)
from ftsgd_jax.figures.style import plot_band, theory_line, theory_lines


@figure("loss_vs_iteration")
def draw(sweep: SweepData) -> Figure:
    points = sweep.points
    kinds = list(dict.fromkeys(str(sweep.setting(p, "objective", "kind")) for p in points))
    width = SINGLE_COLUMN if len(kinds) == 1 else DOUBLE_COLUMN
    fig, axes = new_figure(width, 2.4, ncols=len(kinds))
    entries = []
    common, labels = point_labels(sweep, points, drop={"objective.kind"})
    palette = Palette(labels)
    for ax, kind in zip(axes[0], kinds, strict=True):
        chosen = [(label, p) for label, p in zip(labels, points, strict=True) if p.config["objective"]["kind"] == kind]
        title = f"objective: {kind}"
        lowest, times, optima = [np.inf], [], {}
        for label, point in chosen:
            t, values = sweep.grid_diverged_as_inf(point, "loss_mean")
            line = plot_band(ax, t, values, label, palette(label))
            entries.append((label, line, divergence_note(t, values), title))
            lowest.append(np.nanmin(values) if np.isfinite(values).any() else np.inf)
            times.extend([t[0], t[-1]])
            optimum = point.theory["objective"]["q_star"]
            if optimum is not None:
                optima.setdefault(optimum, []).append(palette(label))
        logarithmic = min(lowest) > 0
        for optimum, colours in optima.items():
            if not (logarithmic and optimum <= 0):  # a log axis has no place for Q* = 0
                colour = colours[0] if len(colours) == 1 else "black"
                theory_line(ax, [min(times), max(times)], [optimum, optimum], color=colour, label="_optimum")
        if logarithmic:
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("iteration t")
        ax.set_ylabel("loss Q(x) (mean over live processes)")
    legend = series_legend(entries)
    if any(theory_lines(ax) for ax in axes[0]):
        legend.append(Line2D([], [], color="grey", linestyle="--", label="optimum Q* (black where shared)"))
    legend_below(fig, legend, common)
    return fig
