"""agreement: disagreement δ_t (log) with the target ε_t of the points that run agreement,
and agreement rounds per iteration, vs t."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.figures.data import SweepData
from ftsgd_jax.figures.labels import point_labels
from ftsgd_jax.figures.style import DOUBLE_COLUMN, Palette, figure, legend_below, new_figure, plot_band, theory_line

FLOOR = 1e-7  # float32 resolution near 1: smaller disagreements are drawn at this floor


@figure("agreement")
def draw(sweep: SweepData) -> Figure:
    points = sweep.points
    curves = [(point, *sweep.grid_diverged_as_inf(point, "disagreement")) for point in points]
    if all(np.isnan(values).all() for _, _, values in curves):
        raise sweep.fail("disagreement is NaN at every point")
    fig, axes = new_figure(DOUBLE_COLUMN, 2.4, ncols=2)
    spread_ax, rounds_ax = axes[0]
    common, labels = point_labels(sweep, points)
    palette = Palette(labels)
    handles, targets = [], {}
    for label, (point, t, values) in zip(labels, curves, strict=True):
        handles.append(plot_band(spread_ax, t, np.maximum(values, FLOOR), label, palette(label)))
        if point.theory["eps"] is not None:
            eps = sweep.per_record(point, "eps", t)
            targets.setdefault((tuple(t), tuple(np.round(eps, 12))), []).append(palette(label))
        rt, rounds = sweep.grid(point, "rounds")
        plot_band(rounds_ax, rt, rounds, label, palette(label), marker=".")
    for (t, eps), colours in targets.items():  # one line per distinct target, black where shared
        theory_line(spread_ax, t, eps, color=colours[0] if len(colours) == 1 else "black")
    if targets:
        handles.append(Line2D([], [], color="grey", linestyle="--", label=r"target $\varepsilon_t = \varepsilon_0 \alpha_t^{p}$ (GEN)"))
    spread_ax.set_yscale("log")
    if any((values[np.isfinite(values)] < FLOOR).any() for _, _, values in curves):
        spread_ax.axhline(FLOOR, color="dimgrey", linestyle=":", linewidth=0.8, gid="floor")
        spread_ax.set_ylim(bottom=FLOOR / 2)
        handles.append(Line2D([], [], color="dimgrey", linestyle=":", label=f"float32 resolution: smaller values drawn at {FLOOR:g}"))
    spread_ax.set_ylabel("disagreement δ_t (max distance)")
    rounds_ax.set_ylabel("agreement rounds per iteration")
    rounds_ax.set_ylim(bottom=0)
    for ax in (spread_ax, rounds_ax):
        ax.set_xlabel("iteration t")
    legend_below(fig, handles, common)
    return fig
