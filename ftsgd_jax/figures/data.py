"""A sweep's results folder as the figures read it: points, metrics, final states, theory.

A sweep folder holds ``manifest.json`` (the sweep's name, the figures it asks for, the
swept keys and, per point, its resolved configuration and its theory record, see
:mod:`ftsgd_jax.theory`), ``metrics.parquet`` (one row per point, scenario and recorded
iteration) and, for some sweeps, ``points/<id>/final.npz`` (final parameters, live mask
and partition groups). Whatever a figure needs and the folder lacks raises
:class:`~ftsgd_jax.errors.ConfigError` with field ``figures`` and the figure's name.

Seed replicates (``sweep.seeds``, or ``run.seed`` in a grid) are one sample: the figures see
one point per configuration, whose scenarios are those of all its seeds, rather than one
series per seed. The summary table keeps a row per stored point.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftsgd_jax.errors import ConfigError
from ftsgd_jax.figures.labels import point_label
from ftsgd_jax.results import FINAL_PER_POINT, diverged, expand_run_lengths, restore_floats
from ftsgd_jax.theory import sc_bound_applies


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of the sweep: its index, swept values, resolved configuration and theory record."""

    index: int
    values: Mapping[str, Any]
    config: Mapping[str, Any]
    theory: Mapping[str, Any]
    id: str | None = None  # the store's name of the point (a hash of its values)
    replicates: tuple[Point, ...] = ()  # the stored points it pools (its seeds); () for a stored point

    @property
    def stored(self) -> tuple[Point, ...]:
        """The stored points whose scenarios this point's are."""
        return self.replicates or (self,)

    @property
    def clusters(self) -> list[int]:
        return [int(size) for size in self.config["system"]["clusters"]]

    @property
    def n(self) -> int:
        return sum(self.clusters)

    @property
    def applicable_sc_bound(self) -> Mapping[str, Any] | None:
        """The theory's sc bound record where it applies to this point's step, else None.

        A record without ``applies`` (results of an older ftsgd, which recorded the bound for
        every step) is judged from the point's algorithm settings by the same rule
        (``theory.sc_bound_applies``); a point whose settings do not say is not known to apply.
        """
        bound = self.theory.get("sc_bound")
        if not isinstance(bound, Mapping):
            return None
        applies = bound.get("applies")
        if applies is None:
            algorithm = self.config.get("algorithm", {})
            try:
                applies = sc_bound_applies(algorithm["kind"], algorithm["step"], algorithm["step_scale"])
            except (KeyError, TypeError, ValueError):
                applies = False
        return bound if applies is True else None


REPLICATE_KEY = "run.seed"
"""The swept key whose values are replicates of one configuration, pooled by the figures."""


class SweepData:
    """A sweep folder: the manifest at once, the metrics table read on first use.

    :meth:`named` gives the view a figure draws from: the same data, with errors naming it.
    """

    def __init__(self, directory: Path, manifest: Mapping[str, Any]):
        self.directory = Path(directory)
        self.manifest = manifest
        self.figure = "figures"
        self.name = str(manifest.get("name") or self.directory.name)
        self.figures = [str(name) for name in manifest.get("figures", [])]
        swept = [str(key) for key in manifest.get("swept", [])]
        stored = [_point(entry, position, self.directory) for position, entry in enumerate(manifest.get("points", []))]
        pooled = pool_replicates(stored) if REPLICATE_KEY in swept else None
        self.points = pooled or stored
        self.swept = [key for key in swept if key != REPLICATE_KEY] if pooled else swept
        self._read: dict[str, Any] = {}  # the metrics table and its rows per point, shared by every named view

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
        for entry in manifest.get("points", []) if isinstance(manifest.get("points"), list) else []:
            for part in ("config", "theory"):
                if isinstance(entry, dict) and isinstance(entry.get(part), dict):
                    entry[part] = restore_floats(entry[part])  # "inf" in the strict JSON -> inf
        return cls(directory, manifest)

    def named(self, figure: str) -> SweepData:
        view = copy.copy(self)
        view.figure = figure
        return view

    def fail(self, message: str) -> ConfigError:
        return ConfigError("figures", f"{self.figure}: {message}")

    # -- configuration and theory -----------------------------------------------------

    def setting(self, point: Point, section: str, key: str) -> Any:
        """``config[section][key]`` of a point."""
        try:
            return point.config[section][key]
        except (KeyError, TypeError):
            raise self.fail(f"point {point.index} has no {section}.{key} in its config") from None

    def per_record(self, point: Point, key: str, times: np.ndarray) -> np.ndarray:
        """A per-record list of the point's theory (run-length encoded), one value per record ``times``."""
        values = expand_run_lengths(point.theory[key])
        if values.size != len(times):
            raise self.fail(f"the theory of point {point.index} has {values.size} values of {key!r} for "
                            f"{len(times)} records; re-run the sweep")
        return values

    # -- the metrics table ------------------------------------------------------------

    def metrics(self) -> dict[str, np.ndarray]:
        if "metrics" not in self._read:
            path = self.directory / "metrics.parquet"
            if not path.is_file():
                raise self.fail(f"{path} is missing")
            schema = pq.read_schema(path)  # numbers only: the swept-key text columns are not needed
            numeric = [f.name for f in schema if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)
                       or pa.types.is_boolean(f.type)]
            table = pq.read_table(path, columns=numeric)
            metrics = {name: _numpy(table.column(name)) for name in table.column_names}
            for needed in ("point", "scenario", "t"):
                if needed not in metrics:
                    raise self.fail(f"{path} has no {needed!r} column")
            order = np.argsort(metrics["point"], kind="stable")
            points, starts = np.unique(metrics["point"][order], return_index=True)
            self._read["rows"] = dict(zip(points.tolist(), np.split(order, starts[1:]), strict=True))
            self._read["metrics"] = metrics
        return self._read["metrics"]

    def column(self, name: str) -> np.ndarray:
        metrics = self.metrics()
        if name not in metrics:
            raise self.fail(f"metrics.parquet in {self.directory} has no {name!r} column")
        return metrics[name]

    def grid(self, point: Point, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(t of each record (R,), values (scenarios, R)) of one metric at one point, NaN where
        absent; a pooled point's scenarios are its replicates' one after the other."""
        column = self.column(name)
        parts = []
        for member in point.stored:
            rows = self._read["rows"].get(member.index)
            if rows is None or rows.size == 0:
                raise self.fail(f"metrics.parquet has no rows for point {member.index}")
            parts.append(rows)
        rows = np.concatenate(parts)
        metrics = self._read["metrics"]
        times, t_index = np.unique(metrics["t"][rows], return_inverse=True)
        replicate = np.repeat(np.arange(len(parts), dtype=np.int64), [part.size for part in parts])
        scenario = replicate * (int(metrics["scenario"][rows].max()) + 1) + metrics["scenario"][rows]
        scenarios, s_index = np.unique(scenario, return_inverse=True)
        values = np.full((scenarios.size, times.size), np.nan)
        values[s_index, t_index] = column[rows].astype(np.float64)
        return times, values

    def grid_diverged_as_inf(self, point: Point, name: str) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`grid` of a quantity of the parameters (error, loss, disagreement), +Inf where the
        scenario had diverged and the value is NaN.

        A diverged run's metrics go Inf and then NaN (Inf − Inf): that NaN is the divergence, not a
        missing value, and quantiles must not leave it out. Diverged is what ``ftsgd run`` counts
        (:func:`ftsgd_jax.results.diverged`): live processes whose mean loss is NaN or ±Inf.
        """
        t, values = self.grid(point, name)
        gone = diverged(self.grid(point, "loss_mean")[1], self.grid(point, "crashed")[1], self.grid(point, "blocked")[1], point.n)
        return t, np.where(gone & np.isnan(values), np.inf, values)

    def final(self, point: Point, name: str) -> np.ndarray:
        """(scenarios,) values of a metric at the point's last record."""
        return self.grid(point, name)[1][:, -1]

    def final_state(self, point: Point) -> dict[str, np.ndarray]:
        """The arrays of ``final.npz``; a pooled point's scenarios are its replicates' one after
        the other (the per-point arrays, the topology's, are its first replicate's)."""
        states = [self._stored_final_state(member) for member in point.stored]
        first = states[0]
        return {key: np.concatenate([state[key] for state in states]) if key not in FINAL_PER_POINT else value
                for key, value in first.items()}

    def _stored_final_state(self, point: Point) -> dict[str, np.ndarray]:
        path = self.directory / "points" / (point.id or str(point.index)) / "final.npz"
        if not path.is_file():
            raise self.fail(f"{path} is missing (the sweep did not save final states)")
        with np.load(path) as data:
            state = {key: np.asarray(data[key]) for key in data.files}
        for key in ("x", "live", "cluster_of", "group_of_cluster"):
            if key not in state:
                raise self.fail(f"{path} has no array {key!r}")
        return state

    # -- labels -----------------------------------------------------------------------

    def label(self, point: Point, drop: Iterable[str] = ()) -> str:
        """'sc · random · 3 crashes (random)', plus the swept keys the three parts do not name."""
        return point_label(point.config, self.swept, drop)


def pool_replicates(points: list[Point]) -> list[Point] | None:
    """One point per configuration apart from ``run.seed``, in the order of first appearance,
    pooling the points of the same configuration (their seeds); None where the seeds are not
    replicates: points of the same swept values but for the seed that differ in more (a
    dataset drawn from the run's seed, ``objective.data_seed = "run"``), whose seeds stay
    apart, each a series labelled with its seed."""
    groups: dict[str, list[Point]] = {}
    for point in points:
        config = {**point.config, "run": {k: v for k, v in point.config.get("run", {}).items() if k != "seed"}}
        groups.setdefault(json.dumps(config, sort_keys=True, default=str), []).append(point)
    pooled = []
    for members in groups.values():
        values = {key: value for key, value in members[0].values.items() if key != REPLICATE_KEY}
        pooled.append(dataclasses.replace(members[0], values=values, replicates=tuple(members) if len(members) > 1 else ()))
    distinct = {json.dumps(point.values, sort_keys=True, default=str) for point in pooled}
    return pooled if len(distinct) == len(pooled) else None


def by_point(columns: Sequence[np.ndarray]) -> np.ndarray:
    """(scenarios, points) from one (scenarios,) column per point, NaN (no value) below a
    point's own count: points may hold different numbers of scenarios (seeds pooled from a
    zip, a swept ``run.scenarios``)."""
    table = np.full((max(column.size for column in columns), len(columns)), np.nan)
    for j, column in enumerate(columns):
        table[: column.size, j] = column
    return table


def _point(entry: Any, position: int, directory: Path) -> Point:
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ConfigError("figures", f"{directory / 'manifest.json'}: point {position} has no 'config' object")
    if not isinstance(entry.get("theory"), dict):
        raise ConfigError("figures", f"{directory / 'manifest.json'}: point {position} has no theory record "
                                     "(results of an older ftsgd); re-run the sweep")
    ident = entry.get("id")
    return Point(int(entry.get("index", position)), dict(entry.get("values", {})), entry["config"], entry["theory"],
                 ident if isinstance(ident, str) else None)


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A numeric column as NumPy; nulls (if any) become NaN."""
    if column.null_count:
        return column.cast(pa.float64()).to_numpy()
    return column.to_numpy()


def load_sweep(directory: str | Path) -> SweepData:
    return SweepData.load(directory)
