"""Paper-quality figures from the results of a sweep (``ftsgd sweep``), and space-time diagrams.

A sweep folder holds ``manifest.json`` (the sweep's name, the figures it asks for, the
swept keys and one resolved configuration per point), ``metrics.parquet`` (one row per
point, scenario and recorded iteration) and, for some sweeps, ``points/<i>/final.npz``
(final parameters, live mask and partition groups). :func:`draw_all` draws every figure
that the manifest names and saves each as PNG (200 dpi) and PDF; :func:`draw_suite` does
the same for a folder of sweeps.

Conventions shared by every figure: the measured curve is the median over scenarios with
a 10-90 % quantile band; the theory is drawn beside it as a dashed (or dotted) line whose
artist has ``gid == "theory"``; series are labelled from the point's configuration
("sc · random · 3 crashes (random)"); sizes fit a two-column paper (3.4 in single column,
7 in across both) with 8 pt text and constrained layout. Figures are built on
:class:`matplotlib.figure.Figure` directly, never through pyplot's global state, so drawing
many of them leaks nothing and works without a display.

Every figure function takes a :class:`SweepData` and returns the Figure; data that a
figure needs but the folder lacks raises :class:`~ftsgd_jax.errors.ConfigError` with field
``figures`` and the figure's name in the message. The figures (:data:`FIGURES`):

- ``error_vs_iteration``: ‖x − x*‖² vs t, log-log, theory σ²/(μ² k t) (panels per swept
  key when there are more than eight points);
- ``loss_vs_iteration``: Q(x) vs t, a panel per objective kind, Q* where known;
- ``speedup``: σ²/(μ² T) over the final error vs n, theory n (ideal) and k (min view size);
- ``faults``: final error (or loss) and blocked fraction vs crashes, where the majority
  condition first fails per quorum rule;
- ``agreement``: disagreement vs t with the target ε_t of GEN, and rounds per iteration;
- ``impossibility``: final x per partition group (``points/<i>/final.npz``);
- ``contraction``: per-round diameter ratios per agreement rule vs the proven factors.

:func:`spacetime` draws a replayed trace as a space-time diagram.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # never switch the backend under a running pyplot session
    matplotlib.use("Agg")

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from ftsgd_jax.errors import ConfigError, closest

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


# ---------------------------------------------------------------------------------------
# Sweep data
# ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of the sweep: its index, swept values and resolved configuration."""

    index: int
    values: Mapping[str, Any]
    config: Mapping[str, Any]
    id: str | None = None  # the store's name of the point (a hash of its values)

    def get(self, figure: str, section: str, key: str) -> Any:
        """``config[section][key]``, or a ConfigError naming the figure when it is missing."""
        try:
            return self.config[section][key]
        except (KeyError, TypeError):
            raise ConfigError("figures", f"{figure}: point {self.index} has no {section}.{key} in its config") from None

    @property
    def clusters(self) -> list[int]:
        return [int(size) for size in self.get("figures", "system", "clusters")]

    @property
    def n(self) -> int:
        return sum(self.clusters)


class SweepData:
    """A sweep folder: the manifest at once, the metrics table read on first use."""

    def __init__(self, directory: Path, manifest: Mapping[str, Any]):
        self.directory = Path(directory)
        self.manifest = manifest
        self.name = str(manifest.get("name") or self.directory.name)
        self.figures = [str(name) for name in manifest.get("figures", [])]
        self.swept = [str(key) for key in manifest.get("swept", [])]
        self.points = [_point(entry, position) for position, entry in enumerate(manifest.get("points", []))]
        self._metrics: dict[str, np.ndarray] | None = None
        self._rows: dict[int, np.ndarray] | None = None

    @classmethod
    def load(cls, directory: str | Path) -> SweepData:
        directory = Path(directory)
        path = directory / "manifest.json"
        if not path.is_file():
            raise ConfigError("figures", f"no sweep results in {directory} (no manifest.json)")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ConfigError("figures", f"cannot read {path}: {error}") from None
        if not isinstance(manifest, dict):
            raise ConfigError("figures", f"{path} is not a JSON object")
        from ftsgd_jax.results import restore_floats

        for entry in manifest.get("points", []) if isinstance(manifest.get("points"), list) else []:
            if isinstance(entry, dict) and isinstance(entry.get("config"), dict):
                entry["config"] = restore_floats(entry["config"])  # "inf" in the strict JSON -> inf
        return cls(directory, manifest)

    # -- the metrics table ------------------------------------------------------------

    def metrics(self, figure: str) -> dict[str, np.ndarray]:
        if self._metrics is None:
            path = self.directory / "metrics.parquet"
            if not path.is_file():
                raise ConfigError("figures", f"{figure}: {path} is missing")
            schema = pq.read_schema(path)  # numbers only: the swept-key text columns are not needed
            numeric = [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
                       or pa.types.is_boolean(f.type)]
            table = pq.read_table(path, columns=numeric)
            self._metrics = {name: _numpy(table.column(name)) for name in table.column_names}
            for needed in ("point", "scenario", "t"):
                if needed not in self._metrics:
                    raise ConfigError("figures", f"{figure}: {path} has no {needed!r} column")
            order = np.argsort(self._metrics["point"], kind="stable")
            points, starts = np.unique(self._metrics["point"][order], return_index=True)
            self._rows = dict(zip(points.tolist(), np.split(order, starts[1:]), strict=True))
        return self._metrics

    def column(self, name: str, figure: str) -> np.ndarray:
        metrics = self.metrics(figure)
        if name not in metrics:
            raise ConfigError("figures", f"{figure}: metrics.parquet in {self.directory} has no {name!r} column")
        return metrics[name]

    def grid(self, point: Point, name: str, figure: str) -> tuple[np.ndarray, np.ndarray]:
        """(t of each record (R,), values (scenarios, R)) of one metric at one point, NaN where absent."""
        column = self.column(name, figure)
        rows = self._rows.get(point.index) if self._rows is not None else None
        if rows is None or rows.size == 0:
            raise ConfigError("figures", f"{figure}: metrics.parquet has no rows for point {point.index}")
        times, t_index = np.unique(self._metrics["t"][rows], return_inverse=True)
        scenarios, s_index = np.unique(self._metrics["scenario"][rows], return_inverse=True)
        values = np.full((scenarios.size, times.size), np.nan)
        values[s_index, t_index] = column[rows].astype(np.float64)
        return times, values

    def final(self, point: Point, name: str, figure: str) -> np.ndarray:
        """(scenarios,) values of a metric at the point's last record."""
        return self.grid(point, name, figure)[1][:, -1]

    def final_state(self, point: Point, figure: str) -> dict[str, np.ndarray]:
        path = self.directory / "points" / (point.id or str(point.index)) / "final.npz"
        if not path.is_file():
            raise ConfigError("figures", f"{figure}: {path} is missing (the sweep did not save final states)")
        with np.load(path) as data:
            state = {key: np.asarray(data[key]) for key in data.files}
        for key in ("x", "live", "cluster_of", "group_of_cluster"):
            if key not in state:
                raise ConfigError("figures", f"{figure}: {path} has no array {key!r}")
        return state

    # -- labels -----------------------------------------------------------------------

    def label(self, point: Point, drop: Iterable[str] = ()) -> str:
        """'sc · random · 3 crashes (random)', plus the swept keys the three parts do not name."""
        return point_label(point.config, self.swept, drop)


def _point(entry: Any, position: int) -> Point:
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ConfigError("figures", f"manifest.json: point {position} has no 'config' object")
    ident = entry.get("id")
    return Point(int(entry.get("index", position)), dict(entry.get("values", {})), entry["config"], ident if isinstance(ident, str) else None)


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as NumPy; nulls (if any) become NaN."""
    if column.null_count:
        return column.cast(pa.float64()).to_numpy()
    return column.to_numpy()


def load_sweep(directory: str | Path) -> SweepData:
    return SweepData.load(directory)


_COVERED = {"algorithm.kind", "algorithm.rule", "schedule.kind", "faults.crashes", "faults.pattern"}


def point_label(config: Mapping[str, Any], swept: Sequence[str] = (), drop: Iterable[str] = ()) -> str:
    """The legend text of a point: algorithm · schedule · faults, then other swept keys."""
    drop = set(drop)
    algorithm = config.get("algorithm", {})
    parts = []
    if "algorithm.kind" not in drop:
        kind = str(algorithm.get("kind", "?"))
        if kind == "gen" and "algorithm.rule" not in drop and "rule" in algorithm:
            kind += f" ({algorithm['rule']})"
        parts.append(kind)
    if "schedule.kind" not in drop:
        parts.append(str(config.get("schedule", {}).get("kind", "?")))
    faults = config.get("faults", {})
    pattern, crashes = faults.get("pattern", "none"), int(faults.get("crashes", 0) or 0)
    if "faults.crashes" in drop:
        if "faults.pattern" not in drop:
            parts.append("no crashes" if pattern == "none" else f"{pattern} crashes")
    elif pattern == "none" or crashes == 0:
        parts.append("no crashes")
    else:
        noun = "crash" if crashes == 1 else "crashes"
        parts.append(f"{crashes} {noun}" + ("" if "faults.pattern" in drop else f" ({pattern})"))
    for key in swept:
        if key in _COVERED or key in drop:
            continue
        section, _, name = key.partition(".")
        value = config.get(section, {}).get(name) if isinstance(config.get(section), dict) else None
        if key == "system.clusters" and isinstance(value, list):
            parts.append(_clusters_text(value))
        elif key == "schedule.groups" and isinstance(value, list):
            parts.append("cut " + " | ".join("{" + ",".join(map(str, g)) + "}" for g in value))
        elif key == "system.quorum":
            parts.append(f"{value} quorum")
        elif name == "kind":  # objective.kind and the like: the value says what it is
            parts.append(_short(value))
        else:
            parts.append(f"{name or key}={_short(value)}")
    return " · ".join(parts)


def _clusters_text(sizes: Sequence[int]) -> str:
    sizes = [int(size) for size in sizes]
    if len(set(sizes)) == 1:
        return f"n={sum(sizes)} ({len(sizes)}×{sizes[0]})"
    return f"n={sum(sizes)} ({'+'.join(map(str, sizes))})"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


# ---------------------------------------------------------------------------------------
# Statistics and schedules
# ---------------------------------------------------------------------------------------


def bands(values: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median and 10/90 % quantiles over ``axis``, ignoring NaN (NaN where nothing is finite)."""
    values = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, median, high = np.nanquantile(values, (QUANTILES[0], 0.5, QUANTILES[1]), axis=axis)
    return median, low, high


def median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else math.nan


def step_sizes(point: Point, iterations: np.ndarray, figure: str) -> np.ndarray:
    """alpha_t for iteration indices t = 0, 1, ... (the engine's schedule, in NumPy)."""
    kind = point.get(figure, "algorithm", "step")
    t = np.asarray(iterations, np.float64)
    if kind == "constant":
        return np.full_like(t, float(point.get(figure, "algorithm", "lr")))
    if kind == "cosine":
        total = float(point.get(figure, "run", "iterations"))
        lr = float(point.get(figure, "algorithm", "lr"))
        return lr * 0.5 * (1.0 + np.cos(np.pi * np.minimum(t, total) / total))
    mu = point.get(figure, "objective", "mu")
    scale, offset = point.get(figure, "algorithm", "step_scale"), point.get(figure, "algorithm", "step_offset")
    return float(scale) / (float(mu) * (t + float(offset)))


def eps_targets(point: Point, completed: np.ndarray, figure: str) -> np.ndarray:
    """eps of the last iteration finished after ``completed`` iterations: eps0 alpha_{t-1}^power."""
    alphas = step_sizes(point, np.asarray(completed) - 1, figure)
    eps0, power = point.get(figure, "algorithm", "eps0"), point.get(figure, "algorithm", "eps_power")
    return float(eps0) * alphas ** float(power)


def double_well_minimum() -> float:
    """The positive minimiser of -exp(-(x-1)^2) - exp(-(x+1)^2) (about 0.957), by bisection."""

    def slope(x: float) -> float:
        return 2 * (x - 1) * math.exp(-((x - 1) ** 2)) + 2 * (x + 1) * math.exp(-((x + 1) ** 2))

    low, high = 0.5, 1.0
    for _ in range(60):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if slope(mid) < 0 else (low, mid)
    return 0.5 * (low + high)


# ---------------------------------------------------------------------------------------
# Drawing helpers
# ---------------------------------------------------------------------------------------

FIGURES: dict[str, Callable[[SweepData], Figure]] = {}


def figure(name: str):
    """Register a figure function under ``name``; it runs under the paper style."""

    def register(function: Callable[[SweepData], Figure]) -> Callable[[SweepData], Figure]:
        @functools.wraps(function)
        def styled(sweep: SweepData) -> Figure:
            with matplotlib.rc_context(STYLE):
                return function(sweep)

        FIGURES[name] = styled
        return styled

    return register


def new_figure(width: float, height: float, ncols: int = 1, nrows: int = 1, **kwargs) -> tuple[Figure, Any]:
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def colour(i: int):
    return matplotlib.colormaps["tab10"](i % 10)


class Palette:
    """One colour per series label, the same in every panel of a figure (viridis past ten)."""

    def __init__(self, labels: Iterable[str]):
        self.order = {label: i for i, label in enumerate(dict.fromkeys(labels))}

    def __call__(self, label: str):
        i, count = self.order[label], len(self.order)
        return colour(i) if count <= 10 else matplotlib.colormaps["viridis"](0.92 * i / (count - 1))


def shorten(labels: Sequence[str]) -> tuple[str, list[str]]:
    """Split labels into the parts all of them share (the legend's title) and the rest.

    ``["sc · sync · no crashes", "sc · random · no crashes"]`` gives
    ``("sc · no crashes", ["sync", "random"])``; labels that share nothing stay whole.
    """
    parts = [label.split(" · ") for label in labels]
    if len(set(labels)) < 2 or len({len(p) for p in parts}) != 1:
        return "", list(labels)
    shared = [j for j in range(len(parts[0])) if len({p[j] for p in parts}) == 1]
    common = " · ".join(parts[0][j] for j in shared)
    return common, [" · ".join(part for j, part in enumerate(p) if j not in shared) for p in parts]


def point_labels(sweep: SweepData, points: Sequence[Point], drop: Iterable[str] = ()) -> tuple[str, list[str]]:
    """(shared part, short label per point) of the points' legend labels."""
    return shorten([sweep.label(point, drop) for point in points])


def grouped(sweep: SweepData, drop: Iterable[str]) -> tuple[str, dict[str, list[Point]]]:
    """Points grouped into series by their label without the ``drop`` keys (the x axis of the
    figure); returns the part shared by all series labels and the series by short label."""
    groups = series_of(sweep, drop)
    common, short = shorten(list(groups))
    return common, dict(zip(short, groups.values(), strict=True))


def plot_band(ax, x, values: np.ndarray, label: str, color, marker: str | None = None) -> Line2D:
    """Median line of ``values`` (scenarios, len(x)) with its 10-90 % band; returns the line."""
    middle, low, high = bands(values)
    ax.fill_between(x, low, high, color=color, alpha=0.2, linewidth=0)
    (line,) = ax.plot(x, middle, color=color, label=label, marker=marker)
    return line


def theory_line(ax, x, y, color="black", style="--", label: str = "_theory", **kwargs) -> Line2D:
    (line,) = ax.plot(x, y, linestyle=style, color=color, linewidth=0.9, label=label, gid=THEORY, **kwargs)
    return line


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


def series_of(sweep: SweepData, drop: Iterable[str]) -> dict[str, list[Point]]:
    """Points grouped by their label without the ``drop`` keys (the x axis of the figure)."""
    groups: dict[str, list[Point]] = {}
    for point in sweep.points:
        groups.setdefault(sweep.label(point, drop), []).append(point)
    return groups


def require_points(sweep: SweepData, figure_name: str) -> list[Point]:
    if not sweep.points:
        raise ConfigError("figures", f"{figure_name}: manifest.json lists no points")
    return sweep.points


# ---------------------------------------------------------------------------------------
# 1. error vs iteration
# ---------------------------------------------------------------------------------------


@figure("error_vs_iteration")
def error_vs_iteration(sweep: SweepData) -> Figure:
    """Median ‖x − x*‖² vs t (log-log) per point; theory σ²/(μ² k t), k = median min view size."""
    name = "error_vs_iteration"
    points = require_points(sweep, name)
    curves = [(point, *sweep.grid(point, "err_mean", name)) for point in points]
    if not any(np.isfinite(values).any() for _, _, values in curves):
        raise ConfigError("figures", f"{name}: err_mean is NaN at every point (objective without a known optimum)")
    key = facet_key(sweep) if len(points) > MAX_SERIES else None
    common, labels = point_labels(sweep, points, drop={key} if key else ())
    palette = Palette(labels)
    panels = facets(points, key)
    fig, axes = new_figure(SINGLE_COLUMN if len(panels) == 1 else DOUBLE_COLUMN, 2.4, ncols=len(panels), sharey=True)
    handles: dict[str, Line2D] = {}
    theory_drawn = False
    by_index = {point.index: (label, t, values) for (point, t, values), label in zip(curves, labels, strict=True)}
    for ax, (title, members) in zip(axes[0], panels.items(), strict=True):
        for point in members:
            label, t, values = by_index[point.index]
            handles.setdefault(label, plot_band(ax, t, values, label, palette(label)))
            k = bound_views(sweep, point, name)
            if point.config.get("objective", {}).get("kind") == "quadratic" and k:
                sigma, mu = point.get(name, "objective", "sigma"), point.get(name, "objective", "mu")
                dense = np.geomspace(max(t[0], 1), t[-1], 64)
                theory_line(ax, dense, sigma**2 / (mu**2 * k * dense), color=palette(label))
                theory_drawn = True
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("iteration t")
        ax.set_title(title)
    axes[0, 0].set_ylabel("‖x − x*‖² (squared distance)")
    legend = list(handles.values())
    if theory_drawn:
        legend.append(Line2D([], [], color="grey", linestyle="--", label=r"theory $\sigma^2/(\mu^2 k t)$, k = min view size"))
    legend_below(fig, legend, common)
    return fig


MAX_SERIES = 8  # more points than this in one panel: split into panels by a swept key


def facet_key(sweep: SweepData) -> str | None:
    """The swept key to split panels by: the first with 2 to 4 values (the cluster layout last)."""
    keys = sorted(sweep.swept, key=lambda key: key == "system.clusters")
    for key in keys:
        section, _, name = key.partition(".")
        values = {json.dumps(p.config.get(section, {}).get(name), sort_keys=True) for p in sweep.points}
        if 2 <= len(values) <= 4:
            return key
    return None


def facets(points: Sequence[Point], key: str | None) -> dict[str, list[Point]]:
    """Points per panel, titled ``key = value`` (one untitled panel without a key)."""
    if key is None:
        return {"": list(points)}
    section, _, name = key.partition(".")
    panels: dict[str, list[Point]] = {}
    for point in points:
        panels.setdefault(f"{key} = {_short(point.config.get(section, {}).get(name))}", []).append(point)
    return panels


def bound_views(sweep: SweepData, point: Point, figure_name: str) -> float:
    """The k of the bound: n for sync schedules, else the point's median min view size."""
    if point.config.get("schedule", {}).get("kind") == "sync":
        return float(point.n)
    k = median(sweep.grid(point, "view_min", figure_name)[1])
    return k if math.isfinite(k) and k > 0 else float(point.n)


@figure("loss_vs_iteration")
def loss_vs_iteration(sweep: SweepData) -> Figure:
    """Median loss Q(x) vs t per point, one panel per objective kind; the optimum Q* where known."""
    name = "loss_vs_iteration"
    points = require_points(sweep, name)
    kinds = list(dict.fromkeys(str(p.get(name, "objective", "kind")) for p in points))
    width = SINGLE_COLUMN if len(kinds) == 1 else DOUBLE_COLUMN
    fig, axes = new_figure(width, 2.4, ncols=len(kinds))
    handles: dict[str, Line2D] = {}
    common, labels = point_labels(sweep, points, drop={"objective.kind"})
    palette = Palette(labels)
    for ax, kind in zip(axes[0], kinds, strict=True):
        chosen = [(label, p) for label, p in zip(labels, points, strict=True) if p.config["objective"]["kind"] == kind]
        lowest, times = [np.inf], []
        for label, point in chosen:
            t, values = sweep.grid(point, "loss_mean", name)
            handles.setdefault(label, plot_band(ax, t, values, label, palette(label)))
            lowest.append(np.nanmin(values) if np.isfinite(values).any() else np.inf)
            times.extend([t[0], t[-1]])
        optimum = optimal_loss(chosen[0][1])
        if optimum is not None:
            theory_line(ax, [min(times), max(times)], [optimum, optimum], label="_optimum")
        if min(lowest) > 0:
            ax.set_yscale("log")
        ax.set_xscale("log")
        ax.set_title(f"objective: {kind}")
        ax.set_xlabel("iteration t")
        ax.set_ylabel("loss Q(x) (mean over live processes)")
    legend = list(handles.values())
    if any(theory(ax) for ax in axes[0]):
        legend.append(Line2D([], [], color="black", linestyle="--", label="optimum Q*"))
    legend_below(fig, legend, common)
    return fig


def theory(ax) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_gid() == THEORY]


def optimal_loss(point: Point) -> float | None:
    """Q* where the configuration gives it: 0 is not drawable on log axes, so quadratics give none."""
    objective = point.config.get("objective", {})
    if objective.get("kind") == "double_well":
        x = double_well_minimum()
        one = -math.exp(-((x - 1) ** 2)) - math.exp(-((x + 1) ** 2))
        return int(objective.get("dim", 1)) * one
    return None


# ---------------------------------------------------------------------------------------
# 2. speed-up
# ---------------------------------------------------------------------------------------


@figure("speedup")
def speedup(sweep: SweepData) -> Figure:
    """Measured speed-up (σ²/(μ² T)) / final error vs n, per (schedule, algorithm); theory n and k."""
    name = "speedup"
    require_points(sweep, name)
    common, groups = grouped(sweep, drop={"system.clusters"})
    fig, axes = new_figure(SINGLE_COLUMN, 2.6)
    ax = axes[0, 0]
    handles, all_n = [], []
    for i, (label, points) in enumerate(groups.items()):
        points = sorted(points, key=lambda p: p.n)
        n = np.array([p.n for p in points], float)
        rows = np.array([speedup_of(sweep, p, name) for p in points])  # (points, 3): median, low, high
        ax.fill_between(n, rows[:, 1], rows[:, 2], color=colour(i), alpha=0.2, linewidth=0)
        (line,) = ax.plot(n, rows[:, 0], marker="o", color=colour(i), label=label)
        handles.append(line)
        k = [bound_views(sweep, p, name) for p in points]
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


def speedup_of(sweep: SweepData, point: Point, figure_name: str) -> tuple[float, float, float]:
    """(median, 10 %, 90 %) of σ²/(μ² T) divided by the final err_mean."""
    if point.config.get("objective", {}).get("kind") != "quadratic":
        raise ConfigError("figures", f"{figure_name}: needs a quadratic objective (point {point.index} is not)")
    sigma, mu = point.get(figure_name, "objective", "sigma"), point.get(figure_name, "objective", "mu")
    t, values = sweep.grid(point, "err_mean", figure_name)
    middle, low, high = bands(values[:, -1])
    base = sigma**2 / (mu**2 * t[-1])
    return base / middle, base / high, base / low


# ---------------------------------------------------------------------------------------
# 3. faults
# ---------------------------------------------------------------------------------------


@figure("faults")
def faults(sweep: SweepData) -> Figure:
    """Final error (or loss) and blocked fraction vs the number of crashes, per (algorithm, quorum)."""
    name = "faults"
    points = require_points(sweep, name)
    metric = "err_mean"
    if not any(np.isfinite(sweep.final(p, "err_mean", name)).any() for p in points):
        metric = "loss_mean"
    common, groups = grouped(sweep, drop={"faults.crashes"})
    fig, axes = new_figure(DOUBLE_COLUMN, 2.4, ncols=2)
    error_ax, blocked_ax = axes[0]
    handles, failures = [], set()
    for i, (label, group) in enumerate(groups.items()):
        group = sorted(group, key=lambda p: int(p.get(name, "faults", "crashes")))
        crashes = np.array([int(p.get(name, "faults", "crashes")) for p in group])
        finals = np.stack([sweep.final(p, metric, name) for p in group], axis=1)  # (scenarios, points)
        handles.append(plot_band(error_ax, crashes, finals, label, colour(i), marker="o"))
        blocked = [float(np.mean(sweep.final(p, "blocked", name) > 0)) for p in group]
        blocked_ax.plot(crashes, blocked, marker="s", color=colour(i), label=label)
        majority = majority_fractions(sweep, group, name)
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


def majority_fractions(sweep: SweepData, group: list[Point], figure_name: str) -> np.ndarray | None:
    """Per point, the fraction of scenarios where the majority condition holds (None if unknown)."""
    if "majority" not in sweep.metrics(figure_name):
        return None
    fractions = np.array([np.nanmean(sweep.final(p, "majority", figure_name)) for p in group])
    return fractions if np.isfinite(fractions).all() else None


# ---------------------------------------------------------------------------------------
# 4. agreement
# ---------------------------------------------------------------------------------------


@figure("agreement")
def agreement(sweep: SweepData) -> Figure:
    """Disagreement δ_t (log) with the target ε_t of GEN points, and rounds per iteration, vs t."""
    name = "agreement"
    points = require_points(sweep, name)
    curves = [(point, *sweep.grid(point, "disagreement", name)) for point in points]
    if not any(np.isfinite(values).any() for _, _, values in curves):
        raise ConfigError("figures", f"{name}: disagreement is NaN at every point")
    fig, axes = new_figure(DOUBLE_COLUMN, 2.4, ncols=2)
    spread_ax, rounds_ax = axes[0]
    common, labels = point_labels(sweep, points)
    palette = Palette(labels)
    handles, targets = [], {}
    for label, (point, t, values) in zip(labels, curves, strict=True):
        handles.append(plot_band(spread_ax, t, np.maximum(values, FLOOR), label, palette(label)))
        if point.config.get("algorithm", {}).get("kind") == "gen":
            dense = np.linspace(max(t[0], 1), t[-1], 128)
            eps = eps_targets(point, dense, name)
            targets.setdefault((tuple(dense), tuple(np.round(eps, 12))), []).append(palette(label))
        rt, rounds = sweep.grid(point, "rounds", name)
        plot_band(rounds_ax, rt, rounds, label, palette(label), marker=".")
    for (dense, eps), colours in targets.items():  # one line per distinct target, black where shared
        theory_line(spread_ax, dense, eps, color=colours[0] if len(colours) == 1 else "black")
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


FLOOR = 1e-7  # float32 resolution near 1: smaller disagreements are drawn at this floor


# ---------------------------------------------------------------------------------------
# 5. impossibility
# ---------------------------------------------------------------------------------------


@figure("impossibility")
def impossibility(sweep: SweepData) -> Figure:
    """Histograms of the final x of live processes per partition group, one panel per point."""
    name = "impossibility"
    points = require_points(sweep, name)
    finals = [sweep.final_state(point, name) for point in points]
    states = [final_positions(state) for state in finals]
    every = np.concatenate([np.concatenate(groups) for groups, _ in states] + [np.zeros(0)])
    finite = every[np.isfinite(every)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (-1.5, 1.5)
    low, high = min(low, -1.2), max(high, 1.2)
    bins = np.linspace(low, high, 41)
    ncols = 2 if len(points) == 4 else min(len(points), 3)
    nrows = math.ceil(len(points) / ncols)
    fig, axes = new_figure(DOUBLE_COLUMN, 1.8 * nrows + 0.2, ncols=ncols, nrows=nrows, sharex=True)
    minimum = double_well_minimum()
    common, labels = point_labels(sweep, points)
    for ax, point, label, state, (groups, split) in zip(axes.flat, points, labels, finals, states, strict=False):
        for g, values in enumerate(groups):
            ax.hist(values, bins=bins, color=colour(g), alpha=0.55, label=f"group {g}", histtype="stepfilled")
        if point.config.get("objective", {}).get("kind") == "double_well":
            for x in (-minimum, minimum):
                ax.axvline(x, color="black", linestyle="--", linewidth=0.7, gid=THEORY, label="_minimum")
        ax.set_title(textwrap.fill(label, 36), fontsize=7)
        ax.text(0.02, 0.98, outcome_text(sweep, point, state, split, name), transform=ax.transAxes,
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
    handles.append(Line2D([], [], color="black", linestyle="--", label=f"minima of Q (±{minimum:.3f})"))
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


def outcome_text(sweep: SweepData, point: Point, state: Mapping[str, np.ndarray], split: float, figure_name: str) -> str:
    """Blocked runs, which side of the cut (if any) has a quorum, and how often the sides split."""
    blocked = sweep.final(point, "blocked", figure_name)
    lines = [f"blocked: {np.mean(blocked > 0):.0%} of runs (median {np.median(blocked):g}/{point.n})"]
    lines.append(f"majority side: {majority_side(point, state, figure_name)}")
    if "majority" in sweep.metrics(figure_name):
        holds = float(np.nanmean(sweep.final(point, "majority", figure_name)))
        if holds < 1.0:
            lines.append(f"majority condition (crashes): {holds:.0%}")
    lines.append(f"groups apart >1: {split:.0%} of runs")
    return "\n".join(lines)


def majority_side(point: Point, state: Mapping[str, np.ndarray], figure_name: str) -> str:
    """'group g' when group g's clusters satisfy the quorum rule on their own, else 'none'."""
    sizes = np.asarray(point.clusters, float)
    group = np.asarray(state["group_of_cluster"])
    rule = str(point.get(figure_name, "system", "quorum"))
    weights = sizes if rule == "weighted" else np.ones_like(sizes)
    for g in (0, 1):
        share = float(weights[group == g].sum())
        if share > weights.sum() / 2:
            return f"group {g} ({share:g}/{weights.sum():g} {rule})"
    return "none"


# ---------------------------------------------------------------------------------------
# 6. contraction
# ---------------------------------------------------------------------------------------

PROVEN = {"mean": lambda n: 1.0 - 1.0 / n, "midpoint": lambda n: 0.5}


@figure("contraction")
def contraction(sweep: SweepData) -> Figure:
    """Box plots (10-90 % whiskers) of the per-round contraction per rule, with the proven factors."""
    name = "contraction"
    require_points(sweep, name)
    categories = contraction_samples(sweep, name)
    if not categories:
        raise ConfigError("figures", f"{name}: contraction_max is NaN at every point (no agreement algorithm)")
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


def contraction_samples(sweep: SweepData, figure_name: str) -> dict[str, tuple[np.ndarray, float | None]]:
    """Finite contraction_max values per rule (and n, where n varies), with the proven factor."""
    pooled: dict[tuple[str, int], list[np.ndarray]] = {}
    for point in sweep.points:
        values = sweep.grid(point, "contraction_max", figure_name)[1].ravel()
        values = values[np.isfinite(values)]
        if values.size:
            rule = str(point.config.get("algorithm", {}).get("rule", "?"))
            pooled.setdefault((rule, point.n), []).append(values)
    several_n = len({n for _, n in pooled}) > 1
    categories = {}
    for (rule, n), chunks in sorted(pooled.items()):
        label = f"{rule} (n={n})" if several_n else rule
        factor = PROVEN[rule](n) if rule in PROVEN else None
        categories[label] = (np.concatenate(chunks), factor)
    return categories


# ---------------------------------------------------------------------------------------
# Drawing whole sweeps
# ---------------------------------------------------------------------------------------


def save(fig: Figure, stem: Path) -> list[Path]:
    """Write ``stem.png`` (200 dpi) and ``stem.pdf``; return both paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".pdf")]
    with matplotlib.rc_context(STYLE):
        for path in paths:
            fig.savefig(path, dpi=DPI)
    return paths


def draw_sweep(sweep: SweepData, out_dir: str | Path) -> list[Path]:
    unknown = [name for name in sweep.figures if name not in FIGURES]
    if unknown:
        raise ConfigError(
            "figures",
            f"unknown figure {unknown[0]!r} in {sweep.directory / 'manifest.json'}, allowed: "
            f"{', '.join(map(repr, FIGURES))}{closest(unknown[0], FIGURES)}",
        )
    paths = []
    for name in sweep.figures:
        fig = FIGURES[name](sweep)
        paths += save(fig, Path(out_dir) / f"{sweep.name}_{name}")
    return paths


def draw_all(sweep_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Draw every figure the sweep's manifest names into ``out_dir``; return the PNG and PDF paths."""
    return draw_sweep(SweepData.load(sweep_dir), out_dir)


def draw_suite(directory: str | Path, out_dir: str | Path) -> list[Path]:
    """Draw one sweep folder, or every sweep folder (with a manifest) directly inside ``directory``.

    Drawing nothing is an error that says why: a run's folder, or sweeps whose specs name no figures.
    """
    directory = Path(directory)
    if (directory / "manifest.json").is_file():
        sweeps = [directory]
    else:
        sweeps = sorted(p for p in directory.iterdir() if (p / "manifest.json").is_file()) if directory.is_dir() else []
    if not sweeps:
        raise ConfigError("figures", f"no sweep results in {directory}")
    loaded = [SweepData.load(sweep_dir) for sweep_dir in sweeps]
    runs = [data for data in loaded if data.manifest.get("command") == "run"]
    if len(runs) == len(loaded):
        raise ConfigError("figures", f"{directory} holds the results of `ftsgd run`; figures are drawn from sweeps (`ftsgd sweep`)")
    if not any(data.figures for data in loaded):
        raise ConfigError(
            "figures",
            f"nothing to draw: the sweep spec of {directory} names no figures; add figures = [...] under [sweep] "
            f"(allowed: {', '.join(FIGURES)}) and rerun the sweep with --resume",
        )
    paths = []
    for data in loaded:
        paths += draw_sweep(data, out_dir)
    return paths


# ---------------------------------------------------------------------------------------
# 7. space-time diagram (replay)
# ---------------------------------------------------------------------------------------

STEPS = ("compute", "write", "read", "send", "receive", "end", "crash", "blocked")


MAX_ARROWS = 240  # above this many messages in the window, messages are bundled per cluster pair and round


def spacetime_figure(
    trace: Sequence[Mapping[str, Any]],
    topology_cluster_sizes: Sequence[int],
    blocked: Iterable[int] | Mapping[int, float] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> Figure:
    """A space-time diagram: one horizontal line per process, grouped and coloured by cluster.

    The time axis spans the traced steps (compute to round end), not the crashes: a crash
    outside that window is an annotation at the edge it lies beyond (time, iteration and
    round), one inside is a red ×. Writes are dots, reads small open circles, computations
    grey squares, round ends ticks, a blocked process a dashed line to the right edge
    labelled "blocked" (``blocked`` adds processes, ids or id -> time blocked, to those with
    a ``blocked`` event). Messages are arrows from (sender, send time) to (receiver, receive
    time) (``gid == "message"``, one per receive event) while there are at most
    :data:`MAX_ARROWS`; beyond, one band per sender cluster, receiver cluster and round
    (``gid == "bundle"``) from the mean send to the mean receive time, as wide as the
    logarithm of its message count, so that n = 64 stays readable. ``notes``: extra lines
    under the axis (e.g. crashes after the traced window).
    """
    sizes = [int(size) for size in topology_cluster_sizes]
    n = sum(sizes)
    cluster_of = np.repeat(np.arange(len(sizes)), sizes)
    for event in trace:
        if event.get("step") not in STEPS:
            raise ConfigError("trace", f"unknown step {event.get('step')!r}, allowed: {', '.join(STEPS)}")
        if not 0 <= int(event["process"]) < n:
            raise ConfigError("trace", f"process {event['process']} outside 0..{n - 1}")
    # y position: processes top to bottom by cluster, a gap between clusters
    y = {p: -(p + 0.6 * cluster_of[p]) for p in range(n)}
    steps = [e for e in trace if e["step"] not in ("crash", "blocked") and math.isfinite(float(e["time"]))]
    times = [float(e["time"]) for e in steps] or [float(e["time"]) for e in trace if math.isfinite(float(e["time"]))]
    t_start, t_end = (min(times), max(times)) if times else (0.0, 1.0)
    width = max(t_end - t_start, 1e-6)
    left, right = t_start - 0.02 * width, t_end + 0.06 * width
    last_time = {p: t_start for p in range(n)}
    first_time = {p: t_end for p in range(n)}
    for event in steps:
        p = int(event["process"])
        last_time[p] = max(last_time[p], float(event["time"]))
        first_time[p] = min(first_time[p], float(event["time"]))
    crashes = {int(e["process"]): e for e in trace if e["step"] == "crash"}
    crash_time = {p: float(e["time"]) for p, e in crashes.items()}
    inside = {p for p, t in crash_time.items() if left <= t <= right}
    # a blocked process waits from its last step on (a "blocked" record may carry the trace's end time)
    stuck = {int(e["process"]): last_time[int(e["process"])] for e in trace if e["step"] == "blocked"}
    if isinstance(blocked, Mapping):
        stuck.update({int(p): float(t) for p, t in blocked.items()})
    elif blocked is not None:
        stuck.update({int(p): last_time[int(p)] for p in blocked})
    per_process = min(0.24, 9.0 / max(n, 1))
    marker = min(1.0, 24.0 / max(n, 1)) ** 0.5

    with matplotlib.rc_context(STYLE | {"axes.grid": False}):
        fig, axes = new_figure(DOUBLE_COLUMN, 1.1 + per_process * n + 0.15 * len(sizes) + 0.12 * len(notes))
        ax = axes[0, 0]
        for p in range(n):
            colour_p = colour(int(cluster_of[p]))
            if p in crash_time and crash_time[p] < left:
                continue  # crashed before the window: only its annotation
            stop = min(crash_time.get(p, math.inf), stuck.get(p, math.inf), right)
            ax.plot([left, stop], [y[p], y[p]], color=colour_p, linewidth=0.8 if n > 24 else 1.0, zorder=1, gid="process")
            if p in stuck:
                ax.plot([stuck[p], right], [y[p], y[p]], color=colour_p, linestyle="--", linewidth=1.0, gid="blocked")
                ax.text(right, y[p], " blocked", va="center", ha="left", fontsize=6, color=colour_p)
        draw_events(ax, [e for e in trace if e["step"] != "crash" or int(e["process"]) in inside], y, cluster_of, marker)
        for p, event in crashes.items():
            if p in inside:
                continue
            where = _crash_label(event)
            before = crash_time[p] < left
            ax.annotate(f"{'✕ ' if before else ''}{where}{'' if before else ' ✕'}", xy=(0.0 if before else 1.0, y[p]),
                        xycoords=("axes fraction", "data"), xytext=(3 if before else -3, 0), textcoords="offset points",
                        ha="left" if before else "right", va="center", fontsize=5.5, color="red", gid="crash_note")
        receives = sum(e["step"] == "receive" for e in trace)
        if receives > MAX_ARROWS:
            draw_bundles(ax, trace, y, cluster_of)
        else:
            draw_messages(ax, trace, y)
        labelled = range(0, n, max(1, n // 32))
        ax.set_yticks([y[p] for p in labelled], [f"p{p}" for p in labelled], fontsize=6 if n <= 32 else 5)
        for c in range(len(sizes)):
            members = [y[p] for p in range(n) if cluster_of[p] == c]
            if members:  # a bracket and the cluster's name left of the process names
                ax.annotate("", xy=(0, max(members) + 0.3), xytext=(0, min(members) - 0.3),
                            xycoords=("axes fraction", "data"), textcoords=("axes fraction", "data"),
                            arrowprops={"arrowstyle": "-", "color": colour(c), "linewidth": 1.5,
                                        "shrinkA": 0, "shrinkB": 0}, annotation_clip=False)
                ax.annotate(f"C{c}", xy=(0, float(np.mean(members))), xycoords=("axes fraction", "data"),
                            xytext=(-24, 0), textcoords="offset points", ha="right", va="center",
                            fontsize=8, fontweight="bold", color=colour(c), gid="cluster")
        ax.set_xlim(left, right)
        ax.set_ylim(min(y.values()) - 0.7, 0.7)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0, pad=3)
        ax.set_xlabel("time (units)")
        if title:
            ax.set_title(title, fontsize=8)
        if notes:
            ax.text(0.0, -0.12, "\n".join(notes), transform=ax.transAxes, ha="left", va="top", fontsize=6, color="red")
        present = {e["step"] for e in trace} | ({"blocked"} if stuck else set())
        message_key = (Line2D([], [], color="grey", linewidth=2.0, alpha=0.5, label="messages (bundled per cluster pair and round)")
                       if receives > MAX_ARROWS else Line2D([], [], color="grey", linewidth=0.7, label="message (send → receive)"))
        keys = {
            "compute": Line2D([], [], marker="s", color="grey", linestyle="", markersize=2.5, label="compute"),
            "write": Line2D([], [], marker="o", color="black", linestyle="", markersize=3, label="write"),
            "read": Line2D([], [], marker="o", markerfacecolor="none", color="black", linestyle="", markersize=3,
                           label="read"),
            "end": Line2D([], [], marker="|", color="black", linestyle="", markersize=6, label="round end"),
            "receive": message_key,
            "crash": Line2D([], [], marker="x", color="red", linestyle="", label="crash"),
            "blocked": Line2D([], [], color="black", linestyle="--", linewidth=1.0, label="blocked (waits forever)"),
        }
        handles = [handle for step, handle in keys.items() if step in present]
        if handles:
            fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    return fig


def _crash_label(event: Mapping[str, Any]) -> str:
    where = f"crash t={float(event['time']):.6g}"
    if event.get("iteration") is not None:
        where += f" (it. {event['iteration']}, round {event.get('round')})"
    return where


def draw_events(ax, trace: Sequence[Mapping[str, Any]], y: Mapping[int, float], cluster_of: np.ndarray, scale: float = 1.0) -> None:
    def points(step: str) -> tuple[list[float], list[float]]:
        chosen = [e for e in trace if e["step"] == step]
        return [float(e["time"]) for e in chosen], [y[int(e["process"])] for e in chosen]

    t, p = points("compute")
    ax.plot(t, p, linestyle="", marker="s", markersize=2.5 * scale, color="grey", zorder=2, gid="compute")
    t, p = points("write")
    ax.plot(t, p, linestyle="", marker="o", markersize=3.5 * scale, color="black", zorder=3, gid="write")
    t, p = points("read")
    ax.plot(t, p, linestyle="", marker="o", markersize=3 * scale, markerfacecolor="none", color="black",
            markeredgewidth=0.6 * scale, zorder=3, gid="read")
    t, p = points("end")
    ax.plot(t, p, linestyle="", marker="|", markersize=7 * scale, color="black", zorder=3, gid="round_end")
    t, p = points("crash")
    ax.plot(t, p, linestyle="", marker="x", markersize=6, color="red", markeredgewidth=1.3, zorder=4, gid="crash")


def draw_messages(ax, trace: Sequence[Mapping[str, Any]], y: Mapping[int, float]) -> int:
    """One arrow per receive event, from its matching send; returns the number drawn."""
    drawn = 0
    for sender, receiver, start, arrival in _message_pairs(trace):
        arrow = FancyArrowPatch((start, y[sender]), (arrival, y[receiver]), arrowstyle="-|>", mutation_scale=6,
                                color="grey", linewidth=0.6, alpha=0.8, zorder=2, gid="message", shrinkA=1, shrinkB=1)
        ax.add_patch(arrow)
        drawn += 1
    return drawn


def _message_pairs(trace: Sequence[Mapping[str, Any]]) -> Iterable[tuple[int, int, float, float]]:
    """(sender, receiver, send time, receive time) of every receive event, matched to its send."""
    sends: dict[tuple, list[float]] = {}
    pairs: dict[tuple[int, int], list[float]] = {}
    for e in trace:
        if e["step"] == "send" and e.get("peer") is not None:
            key = (int(e["process"]), int(e["peer"]), e.get("iteration"), e.get("round"))
            sends.setdefault(key, []).append(float(e["time"]))
            pairs.setdefault(key[:2], []).append(float(e["time"]))
    for e in trace:
        if e["step"] != "receive" or e.get("peer") is None:
            continue
        sender, receiver, arrival = int(e["peer"]), int(e["process"]), float(e["time"])
        candidates = sends.get((sender, receiver, e.get("iteration"), e.get("round")))
        if not candidates:  # no exact match: the sender's latest send to this receiver before arrival
            candidates = pairs.get((sender, receiver), [])
        earlier = [t for t in candidates if t <= arrival]
        yield sender, receiver, (max(earlier) if earlier else arrival), arrival


def draw_bundles(ax, trace: Sequence[Mapping[str, Any]], y: Mapping[int, float], cluster_of: np.ndarray) -> int:
    """One band per (sender cluster, receiver cluster, iteration, round): mean send -> mean receive."""
    groups: dict[tuple, list[tuple[float, float]]] = {}
    rounds = {}
    for e in trace:
        if e["step"] == "receive" and e.get("peer") is not None:
            rounds[(int(e["peer"]), int(e["process"]), float(e["time"]))] = (e.get("iteration"), e.get("round"))
    for sender, receiver, start, arrival in _message_pairs(trace):
        key = (int(cluster_of[sender]), int(cluster_of[receiver])) + rounds[(sender, receiver, arrival)]
        groups.setdefault(key, []).append((start, arrival))
    centre = {c: float(np.mean([y[p] for p in y if cluster_of[p] == c])) for c in set(cluster_of.tolist())}
    for (source, target, _, _), spans in groups.items():
        start, arrival = float(np.mean([s for s, _ in spans])), float(np.mean([a for _, a in spans]))
        ax.plot([start, arrival], [centre[source], centre[target]], color=colour(source), alpha=0.45,
                linewidth=0.5 + 0.45 * math.log2(len(spans)), solid_capstyle="round", zorder=2, gid="bundle")
    return len(groups)


def spacetime(
    trace: Sequence[Mapping[str, Any]],
    topology_cluster_sizes: Sequence[int],
    path: str | Path,
    blocked: Iterable[int] | Mapping[int, float] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> list[Path]:
    """Draw :func:`spacetime_figure` and save it as PNG and PDF next to ``path``; return both paths."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() in (".png", ".pdf") else path
    return save(spacetime_figure(trace, topology_cluster_sizes, blocked, title, notes), stem)


__all__ = [
    "FIGURES",
    "loss_vs_iteration",
    "shorten",
    "Point",
    "SweepData",
    "agreement",
    "contraction",
    "draw_all",
    "draw_suite",
    "error_vs_iteration",
    "faults",
    "impossibility",
    "load_sweep",
    "point_label",
    "spacetime",
    "spacetime_figure",
    "speedup",
]
