"""Legend text: a point's label from its configuration, the part all labels share, panels.

A label reads "algorithm · schedule · faults", then the swept keys these three parts do
not name ("sc · random · 3 crashes (random) · n=16 (4×4)"); what every series of a figure
shares moves to the legend's title.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftsgd_jax.figures.data import Point, SweepData

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
        name = key.partition(".")[2]
        value = _value(config, key)
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
        return _float_text(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)


def _float_text(value: float) -> str:
    """``value:g`` with 6 significant digits, or as many more as it takes to read back ``value``:
    0.5 stays "0.5", while 100000.0 and 100000.4 stay apart ("100000", "100000.4") rather than
    merging into one series or panel."""
    if not math.isfinite(value):
        return f"{value:g}"
    digits = 6
    while float(f"{value:.{digits}g}") != value:  # 17 significant digits read back every double
        digits += 1
    return f"{value:.{digits}g}"


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


def grouped(sweep: SweepData, drop: Iterable[str], x: Callable[[Point], Any]) -> tuple[str, dict[str, list[Point]]]:
    """Points grouped into series by their label without the ``drop`` keys (the x axis of the
    figure, ``x`` its value at a point); returns the part shared by all series labels and the
    series by short label."""
    groups = series_of(sweep, drop, x)
    common, short = shorten(list(groups))
    return common, dict(zip(short, groups.values(), strict=True))


def series_of(sweep: SweepData, drop: Iterable[str], x: Callable[[Point], Any]) -> dict[str, list[Point]]:
    """Points grouped by their label without the ``drop`` keys (the x axis of the figure, ``x``
    its value at a point), no two points of a series at one x.

    Points that would share a series and an x differ in a swept key the label leaves out (a
    dropped one, such as the cluster layout of a given n, or one the label's parts omit, such
    as sc's rule): every label then names that key ("clusters=[4,4]"), so each layout is its
    own series rather than a line through several values at one x. Points that no swept key
    tells apart fail the figure.
    """
    drop = set(drop)
    groups = _by_label(sweep, drop, lambda point: ())
    keys = [key for key in sweep.swept if any(_distinct(key, points) > 1 for points in _same_x(groups, x))]
    if keys:
        groups = _by_label(sweep, drop, lambda point: [f"{key.partition('.')[2] or key}={_short(_value(point.config, key))}"
                                                       for key in keys])
    collisions = _same_x(groups, x)
    if collisions:
        together = collisions[0]
        raise sweep.fail(f"points {', '.join(str(p.index) for p in together)} ({sweep.label(together[0], drop)}) "
                         f"share one x = {x(together[0])} and no swept key tells them apart")
    return groups


def _by_label(sweep: SweepData, drop: set[str], extra: Callable[[Point], Sequence[str]]) -> dict[str, list[Point]]:
    groups: dict[str, list[Point]] = {}
    for point in sweep.points:
        groups.setdefault(" · ".join([sweep.label(point, drop), *extra(point)]), []).append(point)
    return groups


def _same_x(groups: Mapping[str, list[Point]], x: Callable[[Point], Any]) -> list[list[Point]]:
    """Each set of two or more points of one series at one x."""
    together = []
    for points in groups.values():
        at: dict[Any, list[Point]] = {}
        for point in points:
            at.setdefault(x(point), []).append(point)
        together.extend(same for same in at.values() if len(same) > 1)
    return together


def _value(config: Mapping[str, Any], key: str) -> Any:
    """The setting ``section.name`` of a config, None where it has none."""
    section, _, name = key.partition(".")
    settings = config.get(section)
    return settings.get(name) if isinstance(settings, Mapping) else None


def _distinct(key: str, points: Sequence[Point]) -> int:
    """How many different values the points give ``key``."""
    return len({json.dumps(_value(point.config, key), sort_keys=True) for point in points})


MAX_SERIES = 8  # more points than this in one panel: split into panels by a swept key


def facet_key(sweep: SweepData) -> str | None:
    """The swept key to split panels by: the first with 2 to 4 values (the cluster layout last)."""
    keys = sorted(sweep.swept, key=lambda key: key == "system.clusters")
    for key in keys:
        if 2 <= _distinct(key, sweep.points) <= 4:
            return key
    return None


def facets(points: Sequence[Point], key: str | None) -> dict[str, list[Point]]:
    """Points per panel, titled ``key = value`` (one untitled panel without a key)."""
    if key is None:
        return {"": list(points)}
    panels: dict[str, list[Point]] = {}
    for point in points:
        panels.setdefault(f"{key} = {_short(_value(point.config, key))}", []).append(point)
    return panels
