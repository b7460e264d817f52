"""The look every figure shares, and the registry of figure kinds.

Sizes fit a two-column paper (3.4 in single column, 7 in across both) with 8 pt text and
constrained layout. A measured curve is the median over scenarios with a 10-90 % quantile
band; the theory beside it is a dashed (or dotted) line whose artist has ``gid ==
"theory"``. Figures are built on :class:`matplotlib.figure.Figure` directly, never through
pyplot's global state, so drawing many of them leaks nothing and works without a display.
"""

from __future__ import annotations

import functools
import math
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # never switch the backend under a running pyplot session
    matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ftsgd_jax.errors import ConfigError

if TYPE_CHECKING:
    from ftsgd_jax.figures.data import SweepData

SINGLE_COLUMN = 3.4  # inches
DOUBLE_COLUMN = 7.0
DPI = 200
QUANTILES = (0.1, 0.9)
QUANTILES_PERCENT = (100 * QUANTILES[0], 100 * QUANTILES[1])
THEORY = "theory"  # gid of every theory artist

STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.1,
    "lines.markersize": 3.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "grid.linewidth": 0.5,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}

FIGURES: dict[str, Callable[[SweepData], Figure]] = {}


def figure(name: str):
    """Register a figure kind under ``name``.

    The registered function checks that the sweep has points, runs under the paper style and
    hands the drawing a view of the sweep whose errors name this figure.
    """

    def register(draw: Callable[[SweepData], Figure]) -> Callable[[SweepData], Figure]:
        @functools.wraps(draw)
        def styled(sweep: SweepData) -> Figure:
            if not sweep.points:
                raise ConfigError("figures", f"{name}: manifest.json lists no points")
            with matplotlib.rc_context(STYLE):
                return draw(sweep.named(name))

        FIGURES[name] = styled
        return styled

    return register


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kwargs) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` (200 dpi) and ``stem.pdf``; return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    with matplotlib.rc_context(STYLE):
        for path in paths:
            fig.savefig(path, dpi=DPI)
    return paths


def colour(i: int):
    return matplotlib.colormaps["tab10"](i % 10)


class Palette:
    """One colour per series label, the same in every panel of a figure (viridis past ten)."""

    def __init__(self, labels: Iterable[str]):
        self.order = {label: i for i, label in enumerate(dict.fromkeys(labels))}

    def __call__(self, label: str):
        i, count = self.order[label], len(self.order)
        return colour(i) if count <= 10 else matplotlib.colormaps["viridis"](0.92 * i / (count - 1))


def bands(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and 10/90 % quantiles over ``axis``; ±Inf (divergence) counts as a value, only NaN
    (no value at all) is left out, and all NaN gives NaN."""
    low, median, high = (quantile(values, q, axis) for q in (QUANTILES[0], 0.5, QUANTILES[1]))
    return median, low, high


def quantile(values: np.ndarray, q: float, axis: int = 0) -> np.ndarray:
    """NumPy's linearly interpolated quantile, ignoring NaN, with infinities kept.

    NumPy interpolates ``a + (b − a) t``, which is NaN as soon as a neighbour is infinite; the
    limit is that infinity (NaN only between −Inf and +Inf, where there is none).
    """
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: NaN is the answer
        lower = np.nanquantile(values, q, axis=axis, method="lower")
        higher = np.nanquantile(values, q, axis=axis, method="higher")
        linear = np.nanquantile(values, q, axis=axis)
    opposite = np.isinf(lower) & np.isinf(higher) & (lower != higher)
    limit = np.where(opposite, np.nan, np.where(np.isinf(higher), higher, lower))
    return np.where(np.isfinite(lower) & np.isfinite(higher), linear, limit)


def divergence_note(x, values: np.ndarray, x_name: str = "t", scenarios: Sequence[int] | None = None) -> str:
    """'k of S scenarios diverged at t = X' for ``values`` (scenarios, len(x)), counting ±Inf per
    x where the count changes (first and last change only, past two), S the rows of
    ``values`` or, where the columns hold different numbers of scenarios (NaN-padded, see
    :func:`~ftsgd_jax.figures.data.by_point`), ``scenarios[x]``; "" when none diverged.

    Said on the figure because a diverged median or band is Inf, which no axis can draw.
    """
    counts = np.isinf(values).sum(axis=0)
    if not counts.any():
        return ""
    changes = np.flatnonzero(np.diff(counts, prepend=0))
    total = values.shape[0] if scenarios is None else scenarios[changes[0]]
    parts = [f"{counts[j]} at {x_name} = {x[j]:g}" for j in changes]
    parts[0] = f"{counts[changes[0]]} of {total} scenarios diverged at {x_name} = {x[changes[0]]:g}"
    return ", ".join(parts) if len(parts) <= 2 else f"{parts[0]}, …, {parts[-1]}"


def noted(label: str, note: str) -> str:
    return f"{label} — {note}" if note else label


def plot_band(
    ax, x, values: np.ndarray, label: str, color, marker: str | None = None, x_name: str = "t",
    scenarios: Sequence[int] | None = None,
) -> Line2D:
    """Median line of ``values`` (scenarios, len(x)) with its 10-90 % band; returns the line, whose
    label says how many scenarios diverged where (``x_name`` names x; ``scenarios``, the count
    of each column where they differ, see :func:`divergence_note`)."""
    middle, low, high = bands(values)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    note = divergence_note(x, values, x_name, scenarios)
    (line,) = ax.plot(x, middle, color=color, label=noted(label, note), marker=marker)
    return line


def series_legend(entries: Iterable[tuple[str, Line2D, str, str]]) -> list[Line2D]:
    """One legend entry per series of a figure with panels, from ``(label, line, note, panel)``
    per drawn line (``note`` its :func:`divergence_note`, ``panel`` its panel's title).

    A series that diverges in some panels only would otherwise get an entry per distinct line
    label, none saying where; here its one entry carries every note, each naming its panel
    where the figure has several. The entries are proxies in the lines' colours, so each
    line keeps its own label.
    """
    series: dict[str, tuple[Line2D, list[tuple[str, str]]]] = {}
    panels: set[str] = set()
    for label, line, note, panel in entries:
        panels.add(panel)
        _, notes = series.setdefault(label, (line, []))
        if note:
            notes.append((panel, note))
    handles = []
    for label, (line, notes) in series.items():
        said = "; ".join(f"{note} ({panel})" if len(panels) > 1 and panel else note for panel, note in notes)
        handles.append(Line2D([], [], color=line.get_color(), marker=line.get_marker(), label=noted(label, said)))
    return handles


def theory_line(ax, x, y, color="black", style="--", label: str = "_theory", **kwargs) -> Line2D:
    (line,) = ax.plot(x, y, linestyle=style, color=color, linewidth=0.9, label=label, gid=THEORY, **kwargs)
    return line


def theory_lines(ax) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_gid() == THEORY]


def legend_below(fig: Figure, handles: list, title: str = "") -> None:
    """One legend under the axes, in as many columns as fit the width; the figure grows to hold it.

    ``title`` names what every series shares (e.g. "sc · random · no crashes").
    """
    if not handles:
        return
    width = fig.get_size_inches()[0]
    longest = max(len(handle.get_label()) for handle in handles)
    entry = 0.05 * longest + 0.45  # inches: about 0.05 in a character at 6.5 pt, plus handle and gap
    ncols = int(max(1, min(len(handles), (width - 0.1) // entry)))
    rows = math.ceil(len(handles) / ncols) + (1 if title else 0)
    fig.set_size_inches(width, fig.get_size_inches()[1] + 0.14 * rows + 0.08)
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols, title=title or None,
               title_fontsize=STYLE["legend.fontsize"])
