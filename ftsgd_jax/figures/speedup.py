"""speedup: sequential SGD's error over the final error vs n, per (schedule, algorithm) series.

Sequential SGD's error at the last record T is the sc bound with views of one process,
σ²/(μ² T), where the point's theory record says the bound applies to its step (the
asymptotic rate of step inverse with step_scale 1); the theory beside the measured speed-up
is then n (every view complete) and k (the measured smallest view size, as in
error_vs_iteration). A series whose step the bound does not fit (a constant step settles
at a noise floor; another step_scale changes the rate's constant) has no theory of its
sequential error: its speed-up is measured against its own n = 1 point, says so in its
legend entry and gets no k line; without an n = 1 point the figure fails. A diverged
scenario has an infinite error, so no speed-up (0); a series with such scenarios says how
many in its legend entry.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.figures.data import Point, SweepData, by_point
from ftsgd_jax.figures.error_vs_iteration import bound_views
from ftsgd_jax.figures.labels import grouped
from ftsgd_jax.figures.style import SINGLE_COLUMN, bands, colour, divergence_note, figure, legend_below, new_figure, noted
from ftsgd_jax.figures.style import theory_line

MEASURED_BASELINE = "over its measured n = 1"  # legend note of a series without the sc bound


@figure("speedup")
def draw(sweep: SweepData) -> Figure:
    common, groups = grouped(sweep, drop={"system.clusters"}, x=lambda p: p.n)
    fig, axes = new_figure(SINGLE_COLUMN, 2.6)
    ax = axes[0, 0]
    handles, all_n = [], []
    k_drawn = False
    for i, (label, points) in enumerate(groups.items()):
        points = sorted(points, key=lambda p: p.n)
        n = np.array([p.n for p in points], float)
        columns = [final_errors(sweep, p) for p in points]
        finals = by_point(columns)  # (scenarios, points)
        bounded = all(p.applicable_sc_bound is not None for p in points)
        sequential = [sequential_error(sweep, p) for p in points] if bounded else measured_sequential(sweep, label, points)
        rows = np.array([speedup_of(base, finals[:, j]) for j, base in enumerate(sequential)])  # (points, 3): median, low, high
        ax.fill_between(n, rows[:, 1], rows[:, 2], color=colour(i), alpha=0.2, linewidth=0)
        notes = [divergence_note(n, finals, "n", [column.size for column in columns])] + ([] if bounded else [MEASURED_BASELINE])
        (line,) = ax.plot(n, rows[:, 0], marker="o", color=colour(i), label=noted(label, "; ".join(filter(None, notes))))
        handles.append(line)
        if bounded:
            k = [bound_views(sweep, p) for p in points]
            theory_line(ax, n, k, color=colour(i), style=":")
            k_drawn = True
        all_n.extend(n)
    span = np.array([min(all_n), max(all_n)])
    theory_line(ax, span, span, label="_ideal")
    handles.append(Line2D([], [], color="black", linestyle="--", label="theory: ideal speed-up n"))
    if k_drawn:
        handles.append(Line2D([], [], color="grey", linestyle=":", label="theory: k (min view size), as t → ∞"))
    if span[1] / span[0] >= 8:
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
    ax.set_xlabel("number of processes n")
    ax.set_ylabel("speed-up over sequential SGD (×)")
    legend_below(fig, handles, common)
    return fig


def sequential_error(sweep: SweepData, point: Point) -> float:
    """σ²/(μ² T): the sc bound with views of one process at the point's last record T."""
    bound = point.applicable_sc_bound
    return bound["coefficient"] / sweep.grid(point, "err_mean")[0][-1]


def measured_sequential(sweep: SweepData, label: str, points: list[Point]) -> list[float]:
    """Per point, the median final error of the series' n = 1 point, for a series whose step the
    sc bound does not fit."""
    unknown = [p for p in points if p.theory.get("sc_bound") is None]
    if unknown:
        kind = unknown[0].theory["objective"]["kind"]
        raise sweep.fail(f"needs the sc bound, which point {unknown[0].index}'s objective ({kind}) does not give "
                         "(x*, mu and sigma must be known: a quadratic objective)")
    single = [p for p in points if p.n == 1]
    if not single:
        raise sweep.fail(f"series {label!r} has no n = 1 point to measure its speed-up against, and the sc bound does "
                         "not apply to its points (it is the asymptotic rate of sc, nowait, seq or minibatch with step "
                         "inverse, step_scale 1): add an n = 1 point")
    return [float(bands(final_errors(sweep, single[0]))[0])] * len(points)


def speedup_of(sequential: float, finals: np.ndarray) -> tuple[float, float, float]:
    """(median, 10 %, 90 %) of sequential SGD's error divided by the final err_mean (scenarios,)."""
    middle, low, high = bands(finals)
    return sequential / middle, sequential / high, sequential / low


def final_errors(sweep: SweepData, point: Point) -> np.ndarray:
    """(scenarios,) err_mean at the last record, +Inf where the scenario diverged."""
    return sweep.grid_diverged_as_inf(point, "err_mean")[1][:, -1]
