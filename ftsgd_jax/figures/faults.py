"""faults: final error (or loss) and blocked fraction vs the number of crashes, per
(algorithm, quorum) series, with the crash count where the majority condition first fails."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.figures.data import Point, SweepData, by_point
from ftsgd_jax.figures.labels import grouped
from ftsgd_jax.figures.style import DOUBLE_COLUMN, colour, figure, legend_below, new_figure, plot_band


@figure("faults")
def draw(sweep: SweepData) -> Figure:
    metric = "err_mean"
    if not any(np.isfinite(sweep.final(p, "err_mean")).any() for p in sweep.points):
        metric = "loss_mean"
    common, groups = grouped(sweep, drop={"faults.crashes"}, x=lambda p: int(sweep.setting(p, "faults", "crashes")))
    fig, axes = new_figure(DOUBLE_COLUMN, 2.4, ncols=2)
    error_ax, blocked_ax = axes[0]
    handles, failures = [], set()
    for i, (label, group) in enumerate(groups.items()):
        group = sorted(group, key=lambda p: int(sweep.setting(p, "faults", "crashes")))
        crashes = np.array([int(sweep.setting(p, "faults", "crashes")) for p in group])
        columns = [sweep.grid_diverged_as_inf(p, metric)[1][:, -1] for p in group]
        finals = by_point(columns)  # (scenarios, points)
        scenarios = [column.size for column in columns]
        handles.append(plot_band(error_ax, crashes, finals, label, colour(i), marker="o", x_name="f", scenarios=scenarios))
        blocked = [float(np.mean(sweep.final(p, "blocked") > 0)) for p in group]
        blocked_ax.plot(crashes, blocked, marker="s", color=colour(i), label=label)
        majority = majority_fractions(sweep, group)
        if majority is not None:
            blocked_ax.plot(crashes, majority, linestyle=":", color=colour(i), label="_majority", gid="majority_fraction")
            failing = np.flatnonzero(majority < 1.0)
            if failing.size:
                quorum = str(group[0].config.get("system", {}).get("quorum", "?"))
                failures.add((quorum, int(crashes[failing[0]])))
    for j, (quorum, x) in enumerate(sorted(failures)):
        style = ("-.", "--", ":")[j % 3]
        for ax in (error_ax, blocked_ax):
            ax.axvline(x, color="dimgrey", linestyle=style, linewidth=0.8, gid="majority", label="_majority")
        handles.append(Line2D([], [], color="dimgrey", linestyle=style, label=f"majority condition first fails ({quorum} quorum)"))
    if any(line.get_gid() == "majority_fraction" for line in blocked_ax.get_lines()):
        handles.append(Line2D([], [], color="grey", linestyle=":", label="fraction with majority condition"))
    if metric == "err_mean":
        error_ax.set_yscale("log")
        error_ax.set_ylabel("final ‖x − x*‖² (squared distance)")
    else:
        error_ax.set_ylabel("final loss Q(x)")
    blocked_ax.set_ylim(-0.03, 1.03)
    blocked_ax.set_ylabel("fraction of scenarios")
    blocked_ax.set_title("blocked runs (solid), majority condition holds (dotted)")
    for ax in (error_ax, blocked_ax):
        ax.set_xlabel("crashed processes f")
        ax.xaxis.get_major_locator().set_params(integer=True)
    legend_below(fig, handles, common)
    return fig


def majority_fractions(sweep: SweepData, group: list[Point]) -> np.ndarray | None:
    """Per point, the fraction of scenarios where the majority condition holds (None if unknown)."""
    if "majority" not in sweep.metrics():
        return None
    fractions = np.array([np.nanmean(sweep.final(p, "majority")) for p in group])
    return fractions if np.isfinite(fractions).all() else None
