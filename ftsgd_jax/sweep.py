"""Sweeps: a base config plus a grid of overrides, run point by point, resumable.

A spec is a run config with a ``[sweep]`` table::

    [sweep]
    name = "faults"                 # default: the file name
    figures = ["faults"]            # what `ftsgd figures` draws from the results
    seeds = 2                       # repeat every point with run.seed, run.seed + 1, ...
    [sweep.grid]                    # cartesian product of these lists
    "faults.crashes" = [0, 1, 2]
    [sweep.zip]                     # lists varied together (equal lengths), crossed with the grid
    "algorithm.kind" = ["sc", "gen"]
    "faults.pattern" = ["random", "random"]

(``[[sweep.zip]]`` gives several zip groups.) A suite spec, ``[suite] sweeps = [...]``
with ``[suite.set]`` overrides, runs several sweeps into sub-folders.

Every point's configuration shares the compiled simulator of its shape: crash counts,
schedule parameters and seeds are run-time values. Results are written per chunk of
scenarios with atomic renames, so an interrupted sweep rerun with ``--resume`` skips
what is done and ends with exactly the results of an uninterrupted run.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftsgd_jax import devices, engine, results
from ftsgd_jax.config import DEFAULTS, RunConfig, build_config
from ftsgd_jax.errors import ConfigError, closest

SWEEP_KEYS = ("name", "figures", "seeds", "grid", "zip", "description")


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"faults": {"crashes": [..]}}`` or ``{"faults.crashes": [..]}`` -> dotted keys."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _check_swept_key(field: str, key: str) -> None:
    section, _, name = key.partition(".")
    if section not in DEFAULTS:
        raise ConfigError(field, f"swept key {key!r} does not exist: unknown section {section!r}{closest(section, DEFAULTS)}")
    if not name:
        raise ConfigError(field, f"swept key {key!r} must be section.key")
    if section != "objective" and name not in DEFAULTS[section]:
        raise ConfigError(field, f"swept key {key!r} does not exist{closest(name, DEFAULTS[section])}")


def expand(sweep: Mapping[str, Any], base_seed: int = 0) -> list[dict[str, Any]]:
    """The grid points: one dict of dotted-key overrides per point, in a fixed order."""
    for key in sweep:
        if key not in SWEEP_KEYS:
            raise ConfigError(f"sweep.{key}", f"unknown key; allowed: {', '.join(SWEEP_KEYS)}{closest(key, SWEEP_KEYS)}")
    axes: list[list[dict[str, Any]]] = []
    grid = flatten(sweep.get("grid", {}))
    for key, values in grid.items():
        _check_swept_key("sweep.grid", key)
        if not isinstance(values, list) or not values:
            raise ConfigError("sweep.grid", f"{key!r} needs a non-empty list of values, got {values!r}")
        axes.append([{key: value} for value in values])
    zips = sweep.get("zip", [])
    for group in [zips] if isinstance(zips, Mapping) else zips:
        group = flatten(group)
        lengths = {key: len(v) if isinstance(v, list) else -1 for key, v in group.items()}
        for key in group:
            _check_swept_key("sweep.zip", key)
        if any(length <= 0 for length in lengths.values()) or len(set(lengths.values())) > 1:
            raise ConfigError("sweep.zip", f"zipped keys need non-empty lists of one length, got lengths {lengths}")
        if group:
            axes.append([dict(zip(group, values)) for values in zip(*group.values())])
    seeds = sweep.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ConfigError("sweep.seeds", f"need an integer >= 1, got {seeds!r}")
    if seeds > 1:
        axes.append([{"run.seed": base_seed + i} for i in range(seeds)])
    if not axes:
        raise ConfigError("sweep", "empty grid: give [sweep.grid] or [sweep.zip] lists (or seeds > 1)")
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]


def _figure_names(names: Any) -> list[str]:
    from ftsgd_jax.figures import FIGURES

    if not isinstance(names, list):
        raise ConfigError("sweep.figures", f"need a list of figure names, got {names!r}")
    for name in names:
        if name not in FIGURES:
            raise ConfigError("sweep.figures", f"unknown figure {name!r}; allowed: {', '.join(FIGURES)}{closest(str(name), FIGURES)}")
    return list(names)


def point_config(base: Mapping[str, Any], values: Mapping[str, Any], base_dir: Path | None) -> RunConfig:
    raw = copy.deepcopy(dict(base))
    for key, value in values.items():
        section, name = key.split(".", 1)
        raw.setdefault(section, {})[name] = value
    try:
        return build_config(raw, base_dir=base_dir)
    except ConfigError as error:
        raise ConfigError(error.field, f"{error.message} (at sweep point {json.dumps(values)})") from None


class Sweep:
    """A parsed sweep spec: base config, points and their validated configs."""

    def __init__(self, spec: Mapping[str, Any], path: Path, overrides: Mapping[str, Any] | None = None):
        spec = copy.deepcopy(dict(spec))
        for key, value in (overrides or {}).items():
            section, name = key.split(".", 1)
            spec.setdefault(section, {})[name] = value
        if "sweep" not in spec:
            raise ConfigError(str(path), "not a sweep spec: it has no [sweep] table")
        self.spec = spec
        sweep = spec.pop("sweep")
        self.base = spec
        self.name = str(sweep.get("name", path.stem))
        self.figures = _figure_names(sweep.get("figures", []))
        base_seed = spec.get("run", {}).get("seed", DEFAULTS["run"]["seed"])
        self.points = expand(sweep, base_seed)
        self.swept = list(dict.fromkeys(k for point in self.points for k in point))
        self.configs = [point_config(self.base, values, path.parent) for values in self.points]
        self.digest = hashlib.sha256(json.dumps([self.spec, sweep], sort_keys=True, default=str).encode()).hexdigest()
        self.sweep_table = sweep


def _chunk_path(out: Path, point: int, chunk: int) -> Path:
    return out / "points" / str(point) / f"chunk-{chunk:05d}.parquet"


def _prepare(out: Path, sweep: Sweep, resume: bool, force: bool) -> None:
    stamp = out / "spec.json"
    if stamp.exists():
        previous = json.loads(stamp.read_text()).get("digest")
        if previous != sweep.digest and not force:
            raise ConfigError(
                "--out", f"{out} holds results of a different sweep spec; use another folder or --force to replace them"
            )
        if previous != sweep.digest or not resume:
            shutil.rmtree(out / "points", ignore_errors=True)
    elif out.exists() and any(out.iterdir()) and not force:
        raise ConfigError("--out", f"{out} is not empty and holds no sweep results; use another folder or --force")
    results.write_json(stamp, {"digest": sweep.digest, "name": sweep.name, "spec": sweep.spec | {"sweep": sweep.sweep_table}})


def run_sweep(
    sweep: Sweep,
    out: Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int], None] | None = None,
    fail_after: int | None = None,
) -> dict[str, Any]:
    """Run every point (skipping finished chunks), then assemble metrics, summary, manifest.

    ``fail_after`` stops with an error after that many chunks (to test resumption).
    """
    out = Path(out)
    _prepare(out, sweep, resume, force)
    total = sum(cfg.run.scenarios for cfg in sweep.configs)
    done = 0
    chunks_run = 0
    timings = []
    for index, (values, config) in enumerate(zip(sweep.points, sweep.configs)):
        chunk = devices.chunk_size(config)
        started = time.perf_counter()
        sim = engine.simulation(config)
        compile_before = sim.compile_seconds
        for number, begin in enumerate(range(0, config.run.scenarios, chunk)):
            indices = np.arange(begin, min(begin + chunk, config.run.scenarios))
            path = _chunk_path(out, index, number)
            if not path.exists():
                if fail_after is not None and chunks_run >= fail_after:
                    raise RuntimeError(f"simulated interruption after {chunks_run} chunks")
                result = engine.run(config, indices=indices, keep_final=_keeps_final(config))
                _write_chunk(path, result, indices, index, values, config)
                chunks_run += 1
            done += len(indices)
            if progress is not None:
                progress(done, total)
        timings.append(
            {"point": index, "seconds": time.perf_counter() - started, "compile_seconds": sim.compile_seconds - compile_before}
        )
    return _assemble(out, sweep, timings)


def _keeps_final(config: RunConfig) -> bool:
    """Final parameters are kept where they are small (d <= 8): the impossibility figure needs them."""
    return config.objective.dim <= 8


def _write_chunk(path: Path, result: engine.RunResult, indices, point: int, values, config: RunConfig) -> None:
    extra = {"point": point, **values}
    table = results.metrics_table(result, indices, extra)
    if result.final is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        final = {name: np.asarray(array) for name, array in result.final.items()}
        final["cluster_of"] = config.topology.cluster_of
        final["group_of_cluster"] = np.asarray(config.scheduler.params.cluster_group)
        npz = path.with_suffix(".npz")
        with open(npz.with_suffix(".tmp"), "wb") as handle:
            np.savez(handle, **final)
        npz.with_suffix(".tmp").replace(npz)
    results.write_table(path, table)  # written last: its presence marks the chunk done


def _assemble(out: Path, sweep: Sweep, timings: list[dict[str, Any]]) -> dict[str, Any]:
    tables, summaries = [], []
    for index, (values, config) in enumerate(zip(sweep.points, sweep.configs)):
        chunk_files = sorted((out / "points" / str(index)).glob("chunk-*.parquet"))
        table = pa.concat_tables([pq.read_table(f) for f in chunk_files], promote_options="default")
        tables.append(table)
        finals = [np.load(f.with_suffix(".npz")) for f in chunk_files if f.with_suffix(".npz").exists()]
        if finals:
            merged = {name: np.concatenate([f[name] for f in finals]) for name in ("x", "live", "crash_time")}
            merged |= {name: finals[0][name] for name in ("cluster_of", "group_of_cluster")}
            buffer = out / "points" / str(index) / "final.tmp"
            with open(buffer, "wb") as handle:
                np.savez(handle, **merged)
            buffer.replace(out / "points" / str(index) / "final.npz")
        summaries.append(_point_summary(index, values, table, config))
    results.write_table(out / "metrics.parquet", pa.concat_tables(tables, promote_options="permissive"))
    summary = pa.Table.from_pylist(summaries)
    results.write_table(out / "summary.parquet", summary)
    manifest = {
        "command": "sweep",
        "name": sweep.name,
        "figures": sweep.figures,
        "swept": sweep.swept,
        "spec": sweep.spec | {"sweep": sweep.sweep_table},
        "digest": sweep.digest,
        "points": [
            {"index": i, "values": values, "config": config.resolved, "seed": config.run.seed}
            for i, (values, config) in enumerate(zip(sweep.points, sweep.configs))
        ],
        "scenario_keys": "fold_in(seed_key(run.seed), scenario)",
        "environment": results.environment(),
        "timings": timings,
        "peak_rss_bytes": results.peak_rss_bytes(),
    }
    results.write_json(out / "manifest.json", manifest)
    return manifest


def _point_summary(index: int, values: Mapping[str, Any], table: pa.Table, config: RunConfig) -> dict[str, Any]:
    last_t = max(table.column("t").to_pylist())
    rows = table.filter(pa.compute.equal(table.column("t"), last_t))
    row: dict[str, Any] = {"point": index, **{k: results.table_cell(v) for k, v in values.items()}}
    row["scenarios"] = rows.num_rows
    for name in ("err_mean", "err_max", "loss_mean", "disagreement", "view_min", "contraction_max"):
        column = rows.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        finite = column[np.isfinite(column)]
        row[f"{name}_median"] = float(np.median(finite)) if finite.size else float("nan")
        row[f"{name}_q10"] = float(np.quantile(finite, 0.1)) if finite.size else float("nan")
        row[f"{name}_q90"] = float(np.quantile(finite, 0.9)) if finite.size else float("nan")
        row[f"{name}_nan"] = int(column.size - finite.size)
    row["blocked_fraction"] = float(np.mean(rows.column("blocked").to_numpy() > 0))
    row["majority_fraction"] = float(np.mean(rows.column("majority").to_numpy()))
    row["rounds_last"] = int(rows.column("rounds").to_numpy().max())
    return row


def is_suite(spec: Mapping[str, Any]) -> bool:
    return "suite" in spec


def suite_members(spec: Mapping[str, Any], path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(member spec path, dotted overrides) for each sweep of a suite."""
    suite = spec["suite"]
    for key in suite:
        if key not in ("sweeps", "set", "description"):
            raise ConfigError(f"suite.{key}", "unknown key; allowed: sweeps, set, description")
    members = suite.get("sweeps")
    if not isinstance(members, list) or not members:
        raise ConfigError("suite.sweeps", "need a non-empty list of sweep spec files")
    overrides = flatten(suite.get("set", {}))
    return [(path.parent / member, overrides) for member in members]


def format_points(summary_rows: list[Mapping[str, Any]], swept: list[str]) -> str:
    """A short table: the swept values and headline results of every point."""
    header = [*swept, "err_median", "loss_median", "disagree", "blocked"]
    lines = ["  ".join(f"{h:>14}" for h in header)]
    for row in summary_rows:
        cells = [str(row.get(k, ""))[:14] for k in swept]
        cells += [f"{row['err_mean_median']:.4g}", f"{row['loss_mean_median']:.4g}"]
        cells += [f"{row['disagreement_median']:.3g}", f"{row['blocked_fraction']:.0%}"]
        lines.append("  ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)
