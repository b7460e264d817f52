"""speedup: σ²/(μ² T) over the final error vs n, per (schedule, algorithm) series.

σ²/(μ² T) is the sc bound with views of one process (sequential SGD) at the last record
T, so the ratio is the measured speed-up; the theory beside it is n (every view complete)
and k (the measured smallest view size, as in error_vs_iteration). A diverged scenario has
an infinite error, so no speed-up (0); a series with such scenarios says how many in its
legend entry.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.figures.data import Point, SweepData
from ftsgd_jax.figures.error_vs_iteration import bound_views
from ftsgd_jax.figures.labels import grouped
from ftsgd_jax.figures.style import SINGLE_COLUMN, bands, colour, divergence_note, figure, legend_below, new_figure, noted
from ftsgd_jax.figures.style import theory_line


@figure("speedup")
def draw(sweep: SweepData) -> Figure:
    common, groups = grouped(sweep, drop={"system.clusters"})
    fig, axes = new_figure(SINGLE_COLUMN, 2.6)
    ax = axes[0, 0]
    handles, all_n = [], []
    for i, (label, points) in enumerate(groups.items()):
        points = sorted(points, key=lambda p: p.n)
        n = np.array([p.n for p in points], float)
        finals = np.stack([final_errors(sweep, p) for p in points], axis=1)  # (scenarios, points)
        rows = np.array([speedup_of(sweep, p) for p in points])  # (points, 3): median, low, high
        ax.fill_between(n, rows[:, 1], rows[:, 2], color=colour(i), alpha=0.2, linewidth=0)
        (line,) = ax.plot(n, rows[:, 0], marker="o", color=colour(i), label=noted(label, divergence_note(n, finals, "n")))
        handles.append(line)
        k = [bound_views(sweep, p) for p in points]
        theory_line(ax, n, k, color=colour(i), style=":")
        all_n.extend(n)
    span = np.array([min(all_n), max(all_n)])
    theory_line(ax, span, span, label="_ideal")
    handles.append(Line2D([], [], color="black", linestyle="--", label="theory: ideal speed-up n"))
    handles.append(Line2D([], [], color="grey", linestyle=":", label="theory: k (min view size)"))
    if span[1] / span[0] >= 8:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
    ax.set_xlabel("number of processes n")
    ax.set_ylabel("speed-up over sequential SGD (×)")
    legend_below(fig, handles, common)
    return fig


def speedup_of(sweep: SweepData, point: Point) -> tuple[float, float, float]:
    """(median, 10 %, 90 %) of σ²/(μ² T) divided by the final err_mean."""
    bound = point.theory["sc_bound"]
    if bound is None:
        kind = point.theory["objective"]["kind"]
        raise sweep.fail(f"needs the sc bound, which point {point.index}'s objective ({kind}) does not give "
                         "(x*, mu and sigma must be known: a quadratic objective)")
    middle, low, high = bands(final_errors(sweep, point))
    base = bound["coefficient"] / sweep.grid(point, "err_mean")[0][-1]
    return base / middle, base / high, base / low


def final_errors(sweep: SweepData, point: Point) -> np.ndarray:
    """(scenarios,) err_mean at the last record, +Inf where the scenario diverged."""
    return sweep.grid_diverged_as_inf(point, "err_mean")[1][:, -1]
