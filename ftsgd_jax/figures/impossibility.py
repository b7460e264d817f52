"""impossibility: histograms of the final x of live processes per partition group, one panel
per point (from ``points/<id>/final.npz``), with the objective's minima where it has them."""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.figures.data import Point, SweepData
from ftsgd_jax.figures.labels import point_labels
from ftsgd_jax.figures.style import DOUBLE_COLUMN, THEORY, colour, figure, legend_below, new_figure


@figure("impossibility")
def draw(sweep: SweepData) -> Figure:
    points = sweep.points
    finals = [sweep.final_state(point) for point in points]
    states = [final_positions(state) for state in finals]
    every = np.concatenate([np.concatenate(groups) for groups, _ in states] + [np.zeros(0)])
    finite = every[np.isfinite(every)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (-1.5, 1.5)
    low, high = min(low, -1.2), max(high, 1.2)
    bins = np.linspace(low, high, 41)
    ncols = 2 if len(points) == 4 else min(len(points), 3)
    nrows = math.ceil(len(points) / ncols)
    fig, axes = new_figure(DOUBLE_COLUMN, 1.8 * nrows + 0.2, ncols=ncols, nrows=nrows, sharex=True)
    common, labels = point_labels(sweep, points)
    minima = set()
    for ax, point, label, state, (groups, split) in zip(axes.flat, points, labels, finals, states, strict=False):
        for g, values in enumerate(groups):
            ax.hist(values, bins=bins, color=colour(g), alpha=0.55, label=f"group {g}", histtype="stepfilled")
        minimizer = point.theory["objective"].get("minimizer")
        if minimizer is not None:
            minima.add(minimizer)
            for x in (-minimizer, minimizer):
                ax.axvline(x, color="black", linestyle="--", linewidth=0.7, gid=THEORY, label="_minimum")
        ax.set_title(textwrap.fill(label, 36), fontsize=7)
        ax.text(0.02, 0.98, outcome_text(sweep, point, state, split), transform=ax.transAxes,
                va="top", ha="left", fontsize=5.5, gid="outcome",
                bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1.0})
        if not sum(values.size for values in groups):
            ax.text(0.5, 0.4, "no live process", transform=ax.transAxes, ha="center", va="center", color="dimgrey")
        ax.set_xlabel("final x (first coordinate)" if ax.get_subplotspec().is_last_row() else "")
        ax.set_ylabel("live processes")
        ax.set_ylim(0, 1.9 * max(ax.get_ylim()[1], 1))  # headroom for the outcome text
    for ax in list(axes.flat)[len(points):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=colour(g), linewidth=5, alpha=0.55, label=f"partition group {g}") for g in (0, 1)]
    handles += [Line2D([], [], color="black", linestyle="--", label=f"minima of Q (±{x:.3f})") for x in sorted(minima)]
    legend_below(fig, handles, common)
    return fig


def final_positions(state: Mapping[str, np.ndarray]) -> tuple[list[np.ndarray], float]:
    """(first coordinate of live processes per group 0/1, fraction of runs whose group means differ by > 1)."""
    x = np.asarray(state["x"], np.float64)
    first = x[..., 0] if x.ndim == 3 else x
    live = np.asarray(state["live"], bool)
    group = np.asarray(state["group_of_cluster"])[np.asarray(state["cluster_of"])]  # (n,)
    masks = [live & (group == g)[None, :] for g in (0, 1)]
    groups = [first[mask & np.isfinite(first)] for mask in masks]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = [np.nanmean(np.where(mask, first, np.nan), axis=1) for mask in masks]
    both = np.isfinite(means[0]) & np.isfinite(means[1])
    split = float(np.mean(both & (np.abs(np.where(both, means[0] - means[1], 0.0)) > 1.0)))
    return groups, split


def outcome_text(sweep: SweepData, point: Point, state: Mapping[str, np.ndarray], split: float) -> str:
    """Blocked runs, which side of the cut (if any) has a quorum, and how often the sides split."""
    blocked = sweep.final(point, "blocked")
    lines = [f"blocked: {np.mean(blocked > 0):.0%} of runs (median {np.median(blocked):g}/{point.n})"]
    lines.append(f"majority side: {majority_side(point, state)}")
    if "majority" in sweep.metrics():
        holds = float(np.nanmean(sweep.final(point, "majority")))
        if holds < 1.0:
            lines.append(f"majority condition (crashes): {holds:.0%}")
    lines.append(f"groups apart >1: {split:.0%} of runs")
    return "\n".join(lines)


def majority_side(point: Point, state: Mapping[str, np.ndarray]) -> str:
    """'group g' when group g's clusters satisfy the quorum rule on their own, else 'none'."""
    sizes = np.asarray(point.clusters, float)
    group = np.asarray(state["group_of_cluster"])
    rule = str(point.config["system"]["quorum"])
    weights = sizes if rule == "weighted" else np.ones_like(sizes)
    for g in (0, 1):
        share = float(weights[group == g].sum())
        if share > weights.sum() / 2:
            return f"group {g} ({share:g}/{weights.sum():g} {rule})"
    return "none"
