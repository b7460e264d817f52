"""error_vs_iteration: ‖x − x*‖² vs t (log-log) per point, beside the sc bound σ²/(μ² k t).

The bound is the asymptotic (t → ∞) rate of the step 1/(μ (t + γ)) and is drawn only for the
points whose theory record says it applies to their step (``sc_bound.applies``). k is the
point's measured smallest view (the median of ``view_min``), under every scheduler:
n when views are complete, fewer under ``sync`` once processes crash (the views hold only the
live ones) and 1 for seq; a point without a measured view gets no bound. A series with
diverged scenarios says how many in its legend entry. More than eight points are split into
panels by a swept key.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.figures.data import Point, SweepData
from ftsgd_jax.figures.labels import MAX_SERIES, facet_key, facets, point_labels
from ftsgd_jax.figures.style import (
    DOUBLE_COLUMN,
    SINGLE_COLUMN,
    Palette,
    bands,
    divergence_note,
    figure,
    legend_below,
    new_figure,
    series_legend,
)
from ftsgd_jax.figures.style import plot_band, theory_line


SC_RATE_LEGEND = r"theory $\sigma^2/(\mu^2 k t)$ as $t \to \infty$, k = min view size"


@figure("error_vs_iteration")
def draw(sweep: SweepData) -> Figure:
    points = sweep.points
    curves = [(point, *sweep.grid_diverged_as_inf(point, "err_mean")) for point in points]
    if all(np.isnan(sweep.grid(point, "err_mean")[1]).all() for point in points):  # before divergence reads Inf
        raise sweep.fail("err_mean is NaN at every point (objective without a known optimum)")
    key = facet_key(sweep) if len(points) > MAX_SERIES else None
    common, labels = point_labels(sweep, points, drop={key} if key else ())
    palette = Palette(labels)
    panels = facets(points, key)
    fig, axes = new_figure(SINGLE_COLUMN if len(panels) == 1 else DOUBLE_COLUMN, 2.4, ncols=len(panels), sharey=True)
    entries = []
    theory_drawn = False
    by_index = {point.index: (label, t, values) for (point, t, values), label in zip(curves, labels, strict=True)}
    for ax, (title, members) in zip(axes[0], panels.items(), strict=True):
        for point in members:
            label, t, values = by_index[point.index]
            line = plot_band(ax, t, values, label, palette(label))
            entries.append((label, line, divergence_note(t, values), title))
            bound = point.applicable_sc_bound
            k = bound_views(sweep, point)
            if bound is not None and np.isfinite(k):
                dense = np.geomspace(max(t[0], 1), t[-1], 64)
                theory_line(ax, dense, bound["coefficient"] / (k * dense), color=palette(label))
                theory_drawn = True
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("iteration t")
        ax.set_title(title)
    axes[0, 0].set_ylabel("‖x − x*‖² (squared distance)")
    legend = series_legend(entries)
    if theory_drawn:
        legend.append(Line2D([], [], color="grey", linestyle="--", label=SC_RATE_LEGEND))
    legend_below(fig, legend, common)
    return fig


def bound_views(sweep: SweepData, point: Point) -> float:
    """The k of the bound: the median over scenarios and records of the measured smallest view
    size, NaN where none was measured (no live process).

    Measured rather than n under ``sync``: a sync view holds the live processes only, and seq's
    view is its own (k = 1) whatever n is.
    """
    k = bands(sweep.grid(point, "view_min")[1].ravel())[0]
    return float(k) if k > 0 else np.nan
