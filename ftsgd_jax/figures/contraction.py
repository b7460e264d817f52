"""contraction: box plots (10-90 % whiskers) of the measured per-round diameter ratio per
agreement rule, beside the rule's proven factor where it has one."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.figures.data import SweepData
from ftsgd_jax.figures.style import QUANTILES_PERCENT, SINGLE_COLUMN, colour, figure, legend_below, new_figure
from ftsgd_jax.figures.style import theory_line


@figure("contraction")
def draw(sweep: SweepData) -> Figure:
    categories = contraction_samples(sweep)
    if not categories:
        raise sweep.fail("contraction_max is NaN at every point (no agreement algorithm)")
    fig, axes = new_figure(SINGLE_COLUMN, 2.6)
    ax = axes[0, 0]
    positions = np.arange(1, len(categories) + 1)
    data = [values for values, _ in categories.values()]
    boxes = ax.boxplot(data, positions=positions, widths=0.5, whis=QUANTILES_PERCENT, showfliers=False,
                       patch_artist=True, medianprops={"color": "black"})
    for i, patch in enumerate(boxes["boxes"]):
        patch.set_facecolor(colour(i))
        patch.set_alpha(0.5)
    handles = []
    for position, (label, (_, factor)) in zip(positions, categories.items(), strict=True):
        if factor is None:
            ax.text(position, 0.99, "no proven\nfactor", ha="center", va="top", fontsize=6,
                    transform=ax.get_xaxis_transform())
            continue
        theory_line(ax, [position - 0.4, position + 0.4], [factor, factor], color="C3", label=f"_{label}")
    handles.append(Line2D([], [], color="C3", linestyle="--", label="proven factor (mean 1 − 1/n, midpoint 1/2)"))
    ax.set_xticks(positions, list(categories), fontsize=7)
    ax.set_xlabel("agreement rule")
    ax.set_ylabel("per-round diameter ratio (max)")
    legend_below(fig, handles)
    return fig


def contraction_samples(sweep: SweepData) -> dict[str, tuple[np.ndarray, float | None]]:
    """Finite contraction_max values per rule (and n, where n varies), with the proven factor."""
    pooled: dict[tuple[str, int], list[np.ndarray]] = {}
    factors: dict[tuple[str, int], float | None] = {}
    for point in sweep.points:
        values = sweep.grid(point, "contraction_max")[1].ravel()
        values = values[np.isfinite(values)]
        rule = point.theory["contraction"]
        if values.size and rule is not None:
            pooled.setdefault((rule["rule"], point.n), []).append(values)
            factors[(rule["rule"], point.n)] = rule["factor"] if rule["proven"] else None
    several_n = len({n for _, n in pooled}) > 1
    return {
        (f"{rule} (n={n})" if several_n else rule): (np.concatenate(chunks), factors[(rule, n)])
        for (rule, n), chunks in sorted(pooled.items())
    }
