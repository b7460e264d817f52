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
what is done and ends with exactly the results of an uninterrupted run. The same store
takes the chunks of several processes (:func:`run_shared_sweep`, ``ftsgd sweep
--coordinator``), each running its share.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import itertools
import json
import math
import os
import re
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftsgd_jax import devices, engine, processes, results, rng, theory
from ftsgd_jax.config import DEFAULTS, RunConfig, build_config
from ftsgd_jax.errors import ConfigError, closest, integer
from ftsgd_jax.metrics import METRIC_COLUMNS

SWEEP_KEYS = ("name", "figures", "seeds", "grid", "zip", "description")
MAX_POINTS = 100_000


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


def _check_setting(field: str, key: str, what: str = "swept key") -> None:
    """Refuse a dotted ``key`` that names no setting of a run config (any ``objective.*`` is one)."""
    section, _, name = key.partition(".")
    dotted = [f"{part}.{setting}" for part, settings in DEFAULTS.items() for setting in settings]
    if not name:
        raise ConfigError(field, f"{what} {key!r} must be section.key{closest(key, dotted)}")
    if section not in DEFAULTS:
        raise ConfigError(field, f"{what} {key!r} does not exist: unknown section {section!r}{closest(key, dotted)}")
    if section != "objective" and name not in DEFAULTS[section]:
        raise ConfigError(field, f"{what} {key!r} does not exist{closest(key, dotted)}")


def expand(sweep: Mapping[str, Any], base_seed: int = 0, owners: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The grid points: one dict of dotted-key overrides per point, in a fixed order;
    ``owners``, if given, receives the table that sweeps each key."""
    for key in sweep:
        if key not in SWEEP_KEYS:
            raise ConfigError(f"sweep.{key}", f"unknown key; allowed: {', '.join(SWEEP_KEYS)}{closest(key, SWEEP_KEYS)}")
    axes: list[list[dict[str, Any]]] = []
    grid = sweep.get("grid", {})
    if not isinstance(grid, Mapping):
        raise ConfigError("sweep.grid", f"must be a table of lists ([sweep.grid]), got {grid!r}")
    grid = flatten(grid)
    owner: dict[str, str] = {} if owners is None else owners

    def claim(key: str, where: str) -> None:
        if key in owner:
            raise ConfigError(where, f"{key!r} is also swept under {owner[key]}; sweep each key in one place")
        owner[key] = where

    for key, values in grid.items():
        _check_setting("sweep.grid", key)
        claim(key, "sweep.grid")
        if not isinstance(values, list) or not values:
            raise ConfigError("sweep.grid", f"{key!r} needs a non-empty list of values, got {values!r}")
        axes.append([{key: value} for value in values])
    zips = sweep.get("zip", [])
    groups = [zips] if isinstance(zips, Mapping) else zips
    if not isinstance(groups, list) or not all(isinstance(group, Mapping) for group in groups):
        raise ConfigError("sweep.zip", f"must be a table of lists ([sweep.zip] or [[sweep.zip]]), got {zips!r}")
    for group in groups:
        group = flatten(group)
        lengths = {key: len(v) if isinstance(v, list) else -1 for key, v in group.items()}
        for key in group:
            _check_setting("sweep.zip", key)
            claim(key, "sweep.zip")
        if any(length <= 0 for length in lengths.values()) or len(set(lengths.values())) > 1:
            raise ConfigError("sweep.zip", f"zipped keys need non-empty lists of one length, got lengths {lengths}")
        if group:
            axes.append([dict(zip(group, values)) for values in zip(*group.values())])
    seeds = sweep.get("seeds", 1)
    seeds = integer("sweep.seeds", seeds, 1, MAX_POINTS)
    if seeds > 1:
        if "run.seed" in owner:
            raise ConfigError("sweep.seeds", f"'run.seed' is swept under {owner['run.seed']}; use one or the other")
        claim("run.seed", "sweep.seeds")
        axes.append([{"run.seed": base_seed + i} for i in range(seeds)])
    if not axes:
        raise ConfigError("sweep", "empty grid: give [sweep.grid] or [sweep.zip] lists (or seeds > 1)")
    count = math.prod(len(axis) for axis in axes)
    if count > MAX_POINTS:
        raise ConfigError("sweep", f"{count} points; at most {MAX_POINTS} (split the sweep, or use more scenarios per point)")
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*axes)]


def _figure_names(names: Any) -> list[str]:
    if not isinstance(names, list):
        raise ConfigError("sweep.figures", f"need a list of figure names, got {names!r}")
    if not names:
        return []  # without importing the figures, and matplotlib with them (a second on a first run)
    from ftsgd_jax.figures import FIGURES

    for name in names:
        if name not in FIGURES:
            raise ConfigError("sweep.figures", f"unknown figure {name!r}; allowed: {', '.join(FIGURES)}{closest(str(name), FIGURES)}")
    return list(names)


def point_config(base: Mapping[str, Any], values: Mapping[str, Any], base_dir: Path | None) -> RunConfig:
    raw = copy.deepcopy(dict(base))
    for key, value in values.items():
        section, name = key.split(".", 1)
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(section, f"must be a table ([{section}]), got {table!r}")
        table[name] = value
    try:
        return build_config(raw, base_dir=base_dir)
    except ConfigError as error:
        raise ConfigError(error.field, f"{error.message} (at sweep point {json.dumps(values)})") from None


FORMAT = 2  # the store's layout: points by value, chunk files by scenario range


def point_id(values: Mapping[str, Any]) -> str:
    """A point's name in the store: a hash of its swept values, whatever their order in the spec."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


def _comparable(value: Any) -> Any:
    """A resolved config value as a hashable key in which equal numbers are one (1 and 1.0,
    which ``point_id`` tells apart) and booleans stay apart from numbers (True == 1 in Python)."""
    if isinstance(value, Mapping):
        return (dict, tuple(sorted((key, _comparable(item)) for key, item in value.items())))
    if isinstance(value, (list, tuple)):
        return (list, tuple(_comparable(item) for item in value))
    if isinstance(value, bool):
        return (bool, value)
    return value


def _refuse_duplicates(points: list[dict[str, Any]], configs: list[RunConfig]) -> None:
    """Two points of one resolved configuration would run the same scenarios twice under two ids."""
    seen: dict[Any, int] = {}
    for index, config in enumerate(configs):
        first = seen.setdefault(_comparable(config.resolved), index)
        if first != index:
            raise ConfigError(
                "sweep",
                f"points {json.dumps(points[first])} and {json.dumps(points[index])} are the same configuration; "
                "every point must differ",
            )


def _column_type(values: list[Any]) -> pa.DataType:
    """One Parquet type per swept key: bool, int64, float64 or string.

    Values of one kind keep their type; a key mixing kinds (``[3, "auto"]``) or holding
    lists (``[0, [1, 2]]``) is stored as text (``table_cell``) so that every point fits
    one column; the typed values are in the manifest.
    """
    if all(isinstance(v, bool) for v in values):
        return pa.bool_()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return pa.int64()
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return pa.float64()
    return pa.string()


def cell(value: Any, kind: pa.DataType) -> Any:
    """A swept value as a cell of its column's type."""
    if kind == pa.string():
        return value if isinstance(value, str) else json.dumps(value)
    if kind == pa.float64():
        return float(value)
    return value


def input_digests(configs: list[RunConfig]) -> dict[str, dict[str, str]]:
    """``{setting: {file: sha256}}`` of the files the points read: the digests of the bytes
    their data were parsed from (``results.input_digests``). A file that changed while the
    points were read gave two points two versions of it, and is refused."""
    digests: dict[str, dict[str, str]] = {}
    for config in configs:
        for field, read in results.input_digests(config).items():
            known = digests.setdefault(field, {})
            if known.setdefault(read["path"], read["sha256"]) != read["sha256"]:
                raise ConfigError(field, f"{read['path']!r} changed while the sweep's points were read; run it again")
    return digests


def point_inputs(config: RunConfig, digests: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """A point's files as ``ftsgd run`` records them: ``{setting: {"path": file, "sha256": digest}}``."""
    return {field: {"path": path, "sha256": digests[field][path]} for field, path in results.input_files(config).items()}


def changed_input(stored: Any, current: Mapping[str, Mapping[str, str]]) -> tuple[str, str] | None:
    """(setting, file) of a file whose bytes differ from those ``stored`` recorded, or None."""
    stored = stored if isinstance(stored, Mapping) else {}
    for field, files in current.items():
        before = stored.get(field)
        for path, digest in files.items():
            if isinstance(before, Mapping) and before.get(path) not in (None, digest):
                return field, path
    return None


class Sweep:
    """A parsed sweep spec: base config, points and their validated configs."""

    def __init__(self, spec: Mapping[str, Any], path: Path, overrides: Mapping[str, Any] | None = None):
        spec = copy.deepcopy(dict(spec))
        for key, value in (overrides or {}).items():
            section, name = key.split(".", 1)
            table = spec.setdefault(section, {})
            if not isinstance(table, dict):
                raise ConfigError(section, f"must be a table ([{section}]), got {table!r}")
            table[name] = value
        if "sweep" not in spec:
            raise ConfigError(str(path), "not a sweep spec: it has no [sweep] table")
        sweep = spec.pop("sweep")
        if not isinstance(sweep, Mapping):
            raise ConfigError("sweep", f"must be a table ([sweep]), got {sweep!r}")
        self.spec = spec
        self.base = spec
        name = sweep.get("name", path.stem)
        if not isinstance(name, str) or not name or not SAFE_NAME.fullmatch(name):
            raise ConfigError("sweep.name", f"need a folder name of letters, digits, '-', '_' and '.', got {name!r}")
        self.name = name
        self.figures = _figure_names(sweep.get("figures", []))
        run_table = spec.get("run", {})
        base_seed = run_table.get("seed", DEFAULTS["run"]["seed"]) if isinstance(run_table, Mapping) else 0
        if "seeds" in sweep:
            base_seed = integer("run.seed", base_seed, 0, 2**32 - 1)
        owners: dict[str, str] = {}
        self.points = expand(sweep, base_seed, owners)
        self.swept = list(dict.fromkeys(k for point in self.points for k in point))
        for key in overrides or {}:
            # the seeds axis counts up from run.seed, so a suite's run.seed moves it: not dropped
            if owners.get(key, "sweep.seeds") != "sweep.seeds":
                raise ConfigError(
                    "suite.set",
                    f"override {key!r} is swept by sweep {name!r} ({owners[key]}), which would replace it "
                    "at every point; set it in one place",
                )
        self.ids = [point_id(values) for values in self.points]
        self.column_types = {key: _column_type([p[key] for p in self.points]) for key in self.swept}
        self.configs = [point_config(self.base, values, path.parent) for values in self.points]
        _refuse_duplicates(self.points, self.configs)  # so the ids differ too: equal values resolve alike
        self.inputs = input_digests(self.configs)
        # What decides the results: the base config, the set of points (not their order,
        # name, figures or description) and the bytes of the files they read. The inputs
        # enter only where there are some, so that the folders of sweeps without files,
        # written before files were hashed, still resume.
        identity = {"format": FORMAT, "streams": rng.STREAMS, "base": self.spec, "points": sorted(self.ids)}
        if self.inputs:
            identity["inputs"] = self.inputs
        self.digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
        self.sweep_table = sweep

    def cells(self, values: Mapping[str, Any]) -> dict[str, Any]:
        return {key: cell(values[key], self.column_types[key]) for key in self.swept}


SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


class Interrupted(Exception):
    """The user asked to stop (Ctrl-C): raised between chunks, after the finished ones are written."""

    def __init__(self, done: int, total: int):
        self.done, self.total = done, total
        super().__init__(f"stopped after {done} of {total} scenarios")


CHUNK_FILE = re.compile(r"(\d{10})-(\d{10})\.parquet")


def _point_dir(out: Path, ident: str) -> Path:
    return out / "points" / ident


def _chunk_path(out: Path, ident: str, begin: int, end: int) -> Path:
    """A chunk file is named by the scenarios it holds, [begin, end): never by a chunk number."""
    return _point_dir(out, ident) / f"{begin:010d}-{end:010d}.parquet"


def finished_ranges(folder: Path) -> list[tuple[int, int, Path]]:
    """(begin, end, file) of every finished chunk of a point, sorted by begin."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = CHUNK_FILE.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), int(match.group(2)), path))
    return sorted(found)


def missing_ranges(done: list[tuple[int, int, Path]], scenarios: int) -> list[tuple[int, int]]:
    """The scenario ranges of ``range(scenarios)`` that no finished chunk holds."""
    missing, cursor = [], 0
    for begin, end, path in done:
        if begin < cursor or end > scenarios or begin >= end:
            raise ConfigError("--resume", f"{path} overlaps another chunk or lies outside 0..{scenarios}; rerun with --force")
        if begin > cursor:
            missing.append((cursor, begin))
        cursor = end
    if cursor < scenarios:
        missing.append((cursor, scenarios))
    return missing


def plan_chunks(missing: list[tuple[int, int]], size: int) -> list[tuple[int, int]]:
    """Split the missing ranges into chunks of at most ``size`` scenarios."""
    return [(b, min(b + size, end)) for begin, end in missing for b in range(begin, end, size)]


def _prepare(out: Path, sweep: Sweep, resume: bool, force: bool) -> None:
    """Check what ``out`` holds and clear what must go, before any work (under the folder lock)."""
    stamp = out / "spec.json"
    kind = results.folder_kind(out)
    if kind == "sweep" and stamp.is_file():
        drawn_with = results.streams_of(_stored_stamp(out))
        if resume and not force and drawn_with != rng.STREAMS:
            raise ConfigError(
                "--resume",
                f"{out} holds scenarios drawn with random streams {drawn_with} (an older ftsgd), this "
                f"version draws streams {rng.STREAMS}: the two would mix other scenarios under one seed; "
                "use another folder or --force to replace them",
            )
        changed = changed_input((_stored_stamp(out) or {}).get("inputs"), sweep.inputs)
        if changed and not force:
            field, path = changed
            raise ConfigError(
                field,
                f"{path} changed since the sweep in {out} began: its results would mix two datasets; "
                "--force starts over",
            )
        if _stored_digest(out) != sweep.digest:
            if not force:
                raise ConfigError(
                    "--out",
                    f"{out} holds results of a different sweep spec (or of an older ftsgd); "
                    "use another folder or --force to replace them",
                )
            results.clear_results(out)
        elif resume:
            (out / "manifest.json").unlink(missing_ok=True)  # no longer finished once work resumes
        else:
            if not force:
                _refuse_to_redo(out, sweep)
            results.clear_results(out)
    elif kind is not None:
        if not force:
            what = {"run": "the results of `ftsgd run`", "suite": "a suite of sweeps", "sweep": "an unreadable sweep"}
            raise ConfigError(
                "--out", f"{out} holds {what.get(kind, 'other files')}; use another folder or --force to replace them"
            )
        results.clear_results(out)
    results.remove_temporaries(out)
    results.write_json(
        stamp,
        {"digest": sweep.digest, "format": FORMAT, "streams": rng.STREAMS, "name": sweep.name,
         "spec": sweep.spec | {"sweep": sweep.sweep_table}, "inputs": sweep.inputs},
    )


def _refuse_to_redo(out: Path, sweep: Sweep) -> None:
    """Refuse to clear the finished chunks of this very sweep: a rerun that forgot --resume
    would throw them away. A folder with none finished has nothing to lose and starts again."""
    points_done = scenarios_done = 0
    for ident, config in zip(sweep.ids, sweep.configs):
        written = sum(end - begin for begin, end, _ in finished_ranges(_point_dir(out, ident)))
        scenarios_done += min(written, config.run.scenarios)
        points_done += written >= config.run.scenarios
    if scenarios_done:
        total = sum(config.run.scenarios for config in sweep.configs)
        raise ConfigError(
            "--out",
            f"{out} holds results of this sweep ({points_done} of {len(sweep.points)} points done, "
            f"{scenarios_done} of {total} scenarios); use --resume to keep them and run what is missing, "
            "or --force to start over",
        )


def _stored_stamp(out: Path) -> dict[str, Any] | None:
    """The ``spec.json`` of the sweep whose results ``out`` holds (None if unreadable)."""
    try:
        stamp = json.loads((out / "spec.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return stamp if isinstance(stamp, dict) else None


def _stored_digest(out: Path) -> str | None:
    """The digest of the spec whose results ``out`` holds (None if unreadable)."""
    return (_stored_stamp(out) or {}).get("digest")


class ChunkPlan(NamedTuple):
    """How a point's scenarios run: ``chunk`` per compiled call, in blocks of ``block``."""

    chunk: int
    block: int


def _stored_plan(folder: Path) -> ChunkPlan | None:
    """The chunk plan a point's plan.json holds (None if none is readable).

    A plan written before chunks ran in blocks has no ``block``: its chunks ran as one
    batch, and so do the rest of them.
    """
    try:
        stored = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
        chunk = int(stored["chunk"])
        block = int(stored.get("block", chunk))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, json.JSONDecodeError):
        return None
    return ChunkPlan(chunk, block) if chunk > 0 and block > 0 else None


def chunk_plan(config: RunConfig, folder: Path) -> ChunkPlan:
    """Scenarios per chunk and per block of a point: what its first run chose, where that
    still fits.

    Reusing the first run's plan keeps a resumed point bit-for-bit equal to an
    uninterrupted one on the same devices, even after a version that sizes blocks
    otherwise; where the chunk no longer fits (less free memory) a smaller one is used, and
    the results stay within the tolerance of the README's Reproducibility section. Chunk
    files are named by scenario range either way, so no scenario is lost or repeated.
    """
    stored = _stored_plan(folder)
    if stored is not None and (config.run.chunk or stored.chunk <= devices.fitting_chunk(config)):
        return stored
    chosen = devices.chunk_size(config)
    plan = ChunkPlan(chosen, devices.chunk_block(config, chosen))
    results.write_json(folder / "plan.json", plan._asdict())
    return plan


def _work(out: Path, sweep: Sweep, plans: list[ChunkPlan]) -> list[tuple[int, int, int]]:
    """(point, begin, end) of every chunk no earlier run finished, in point order."""
    work = []
    for index, (ident, config) in enumerate(zip(sweep.ids, sweep.configs)):
        missing = missing_ranges(finished_ranges(_point_dir(out, ident)), config.run.scenarios)
        work += [(index, begin, end) for begin, end in plan_chunks(missing, plans[index].chunk)]
    return work


def _run_chunks(
    out: Path,
    sweep: Sweep,
    plans: list[ChunkPlan],
    work: list[tuple[int, int, int]],
    already: int,
    progress: Callable[[int, int, int], None] | None,
    stop: Callable[[], bool] | None,
    fail_after: int | None,
) -> list[dict[str, Any]]:
    """Run and write the chunks of ``work``; return the time each point took.

    Each chunk file is written while the device runs the next chunk (``engine.run_chunks``);
    a stop request starts no further chunk, and one that fails to start leaves every chunk
    before it written. ``progress(done, total, fresh)`` counts ``already`` finished
    scenarios as done.
    """
    done = already
    total = already + sum(end - begin for _, begin, end in work)
    fresh = 0
    timings: dict[int, dict[str, Any]] = {}
    started = time.perf_counter()

    def chunks():
        for number, (index, begin, end) in enumerate(work):
            if number and stop is not None and stop():
                return
            if fail_after is not None and number >= fail_after:
                raise RuntimeError(f"simulated interruption after {number} chunks")
            config = sweep.configs[index]
            sized = dataclasses.replace(config, run=dataclasses.replace(config.run, chunk=plans[index].chunk))
            # the program's batch: the plan's chunk rounded up to a multiple of the devices here
            yield engine.Chunk(sized, np.arange(begin, end), devices.chunk_size(sized), _keeps_final(config), plans[index].block)

    # results come in the order of work (fewer when stopped)
    for (index, begin, end), result in zip(work, engine.run_chunks(chunks())):
        ident, config = sweep.ids[index], sweep.configs[index]
        _write_chunk(_chunk_path(out, ident, begin, end), result, np.arange(begin, end), config)
        timing = timings.setdefault(
            index, {"point": index, "id": ident, "chunk": plans[index].chunk, "seconds": 0.0, "compile_seconds": 0.0, "run_seconds": 0.0}
        )
        now = time.perf_counter()
        timing["seconds"] += now - started  # from the previous chunk written to this one
        timing["compile_seconds"] += result.compile_seconds
        timing["run_seconds"] += result.run_seconds
        started = now
        done += end - begin
        fresh += end - begin
        if progress is not None:
            progress(done, total, fresh)
        if stop is not None and stop() and done < total:
            raise Interrupted(done, total)
    if progress is not None and fresh == 0:
        progress(done, total, fresh)  # everything was done before: say so once
    return list(timings.values())


def run_sweep(
    sweep: Sweep,
    out: Path,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
    fail_after: int | None = None,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Run every point (skipping finished chunks), then assemble metrics, summary, manifest.

    The output folder is locked for the whole call. ``fail_after`` stops with an error
    after that many chunks (to test resumption); ``stop()`` is asked after every chunk and
    ends the run with :class:`Interrupted` when true (Ctrl-C).
    """
    out = Path(out)
    with results.FolderLock(out, f"sweep {sweep.name}"):
        _prepare(out, sweep, resume, force)
        plans = [chunk_plan(config, _point_dir(out, ident)) for ident, config in zip(sweep.ids, sweep.configs)]
        work = _work(out, sweep, plans)
        already = sum(cfg.run.scenarios for cfg in sweep.configs) - sum(end - begin for _, begin, end in work)
        timings = _run_chunks(out, sweep, plans, work, already, progress, stop, fail_after)
        manifest = _assemble(out, sweep, timings)
    _warn_of_divergence(manifest)
    return manifest


def run_shared_sweep(
    sweep: Sweep,
    out: Path,
    group: processes.Group,
    *,
    resume: bool = False,
    force: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """:func:`run_sweep` split over the processes of ``group``, into one folder they share.

    Process 0 locks and prepares the folder and fixes every point's chunk plan; then each
    process lists the chunks still to run (all must see the same list: one folder, one
    spec), runs every ``count``-th of them and writes them as a single process would
    (``progress`` counts this process's share); when all are done, process 0 assembles
    the results. With the same chunk plan and the same
    device count on every process, the results are those of one process bit for bit. A
    failure anywhere stops every process (after its current chunk, while they run), each
    naming the process that failed; finished chunks are kept for ``--resume``.
    """
    out = Path(out)
    lock = results.FolderLock(out, f"sweep {sweep.name} (process 0 of {group.count})") if group.lead else contextlib.nullcontext()
    with lock:

        def prepare() -> None:
            if group.lead:
                _prepare(out, sweep, resume, force)
                for ident, config in zip(sweep.ids, sweep.configs):
                    chunk_plan(config, _point_dir(out, ident))

        processes.together(group, f"{sweep.name}/prepare", prepare)

        plan: dict[str, Any] = {}

        def make_plan() -> str:
            if _stored_digest(out) != sweep.digest:
                raise ConfigError("--out", f"{out} does not hold this spec's sweep here: every process needs the same spec and one shared folder")
            plan["plans"] = [_stored_plan(_point_dir(out, ident)) for ident in sweep.ids]
            if None in plan["plans"]:
                raise ConfigError("--out", f"{out} holds no chunk plan here: every process needs the folder process 0 prepared, shared")
            plan["work"] = _work(out, sweep, plan["plans"])
            return hashlib.sha256(json.dumps([sweep.digest, plan["plans"], plan["work"]]).encode()).hexdigest()

        if len(set(processes.together(group, f"{sweep.name}/plan", make_plan))) > 1:
            raise ConfigError(
                "--out", f"the processes see different specs or different files in {out}: they need one spec and one shared folder"
            )
        run_step = f"{sweep.name}/run"

        def stopping() -> bool:
            processes.check_others(group, run_step)
            return stop is not None and stop()

        timings = processes.together(
            group, run_step, lambda: _run_chunks(out, sweep, plan["plans"], group.share(plan["work"]), 0, progress, stopping, None)
        )
        merged = [timing | {"process": k} for k, part in enumerate(timings) for timing in part]

        def assemble() -> None:
            if group.lead:
                _warn_of_divergence(_assemble(out, sweep, merged))  # one process warns, as one would alone

        processes.together(group, f"{sweep.name}/assemble", assemble)
    return json.loads((out / "manifest.json").read_text(encoding="utf-8"))


def _keeps_final(config: RunConfig) -> bool:
    """Final parameters are kept where they are small (d <= 8): the impossibility figure needs them."""
    return config.objective.dim <= 8


def _write_chunk(path: Path, result: engine.RunResult, indices, config: RunConfig) -> None:
    """A chunk's metrics (scenario, t and the metric columns; labels are added when assembling)."""
    table = results.metrics_table(result, indices)
    if result.final is not None:
        final = {name: np.asarray(array) for name, array in result.final.items()}
        final["cluster_of"] = config.topology.cluster_of
        final["group_of_cluster"] = np.asarray(config.scheduler.params.cluster_group)
        buffer = io.BytesIO()
        np.savez(buffer, **final)
        results.write_atomic(path.with_suffix(".npz"), buffer.getvalue())
    results.write_table(path, table)  # written last: its presence marks the chunk done


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with ``schema``'s columns in order (absent ones null): chunks of any version merge."""
    if table.schema.equals(schema):
        return table
    columns = [
        table.column(field.name).cast(field.type) if field.name in table.column_names else pa.nulls(table.num_rows, field.type)
        for field in schema
    ]
    return pa.table(columns, schema=schema)


def _assemble(out: Path, sweep: Sweep, timings: list[dict[str, Any]]) -> dict[str, Any]:
    """metrics.parquet (streamed chunk by chunk), summary.parquet and finally manifest.json."""
    label_fields = [pa.field("point", pa.int64()), pa.field("point_id", pa.string())]
    label_fields += [pa.field(key, sweep.column_types[key]) for key in sweep.swept]
    writer = None
    temporary = results._temporary(out)
    summaries, diverged = [], []
    try:
        for index, (values, ident, config) in enumerate(zip(sweep.points, sweep.ids, sweep.configs)):
            folder = _point_dir(out, ident)
            chunks = finished_ranges(folder)
            if missing_ranges(chunks, config.run.scenarios):
                raise RuntimeError(f"point {ident} is incomplete")  # cannot happen after run_sweep's loop
            cells = sweep.cells(values)
            last_rows, point_diverged = [], []
            for begin, end, path in chunks:
                table = pq.read_table(path)
                if writer is None:
                    metric_schema = table.schema
                    schema = pa.schema([*metric_schema, *label_fields])
                    writer = pq.ParquetWriter(temporary, schema, use_dictionary=results.dictionary_columns(schema))
                table = _conform(table, metric_schema)
                scenario = table.column("scenario").to_numpy()
                if table.num_rows == 0 or scenario.min() != begin or scenario.max() != end - 1:
                    raise ConfigError("--resume", f"{path} does not hold scenarios {begin}..{end - 1}; rerun with --force")
                labels = [
                    results.constant_column(pa.scalar(value, field.type), table.num_rows)
                    for value, field in zip([index, ident, *(cells[key] for key in sweep.swept)], label_fields)
                ]
                writer.write_table(pa.table([*table.columns, *labels], schema=schema))
                point_diverged.append(diverged_scenarios(table, config.topology.n))
                last_t = pa.compute.max(table.column("t"))
                last_rows.append(table.filter(pa.compute.equal(table.column("t"), last_t)))
            _merge_finals(folder, chunks)
            diverged.append(np.concatenate(point_diverged))
            summaries.append(_point_summary(index, ident, cells, pa.concat_tables(last_rows), diverged[-1].size))
        writer.close()
        writer = None
        os.replace(temporary, out / "metrics.parquet")
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
    summary_types = {"point": pa.int64(), "point_id": pa.string(), **sweep.column_types}
    columns = list(summaries[0])
    arrays = [pa.array([row[name] for row in summaries], summary_types.get(name)) for name in columns]
    results.write_table(out / "summary.parquet", pa.table(arrays, names=columns))
    manifest = {
        "command": "sweep",
        "name": sweep.name,
        "figures": sweep.figures,
        "swept": sweep.swept,
        "spec": sweep.spec | {"sweep": sweep.sweep_table},
        "digest": sweep.digest,
        "points": [
            {"index": i, "id": ident, "values": values, "config": config.resolved,
             "inputs": point_inputs(config, sweep.inputs), "seed": config.run.seed, "theory": theory.record(config),
             "diverged": {"count": int(bad.size), "scenarios": bad[:100].tolist()}}
            for i, (values, ident, config, bad) in enumerate(zip(sweep.points, sweep.ids, sweep.configs, diverged))
        ],
        "scenario_keys": "fold_in(seed_key(run.seed), scenario)",
        "non_finite_json": "inf, -inf and nan are written as the strings \"inf\", \"-inf\", \"nan\"",
        "environment": results.environment(),
        "timings": timings,
        "peak_rss_bytes": results.peak_rss_bytes(),
    }
    results.write_json(out / "manifest.json", manifest)  # written last: its presence marks the sweep finished
    return manifest


def _merge_finals(folder: Path, chunks: list[tuple[int, int, Path]]) -> None:
    files = [path.with_suffix(".npz") for _, _, path in chunks]
    if not files or not all(f.is_file() for f in files):
        return
    finals = [np.load(f) for f in files]
    shared = results.FINAL_PER_POINT
    merged = {name: np.concatenate([f[name] for f in finals]) for name in finals[0].files if name not in shared}
    merged |= {name: finals[0][name] for name in shared}
    buffer = io.BytesIO()
    np.savez(buffer, **merged)
    results.write_atomic(folder / "final.npz", buffer.getvalue())


def diverged_scenarios(table: pa.Table, processes: int) -> np.ndarray:
    """The scenarios of a metrics table that diverged at some record (:func:`results.diverged`,
    the rule by which ``ftsgd run`` warns)."""
    scenario, crashed, blocked, loss = (
        table.column(name).to_numpy(zero_copy_only=False) for name in ("scenario", "crashed", "blocked", "loss_mean")
    )
    return np.unique(scenario[results.diverged(loss, crashed, blocked, processes)])


def divergence_warnings(manifest: Mapping[str, Any]) -> list[str]:
    """One line per point with diverged scenarios, as ``ftsgd run`` words its own."""
    return [
        f"point {point['index']} {json.dumps(point['values'])}: {point['diverged']['count']} of "
        f"{point['config']['run']['scenarios']} scenarios produced NaN/Inf: {point['diverged']['scenarios'][:20]}"
        for point in manifest["points"]
        if point["diverged"]["count"]
    ]


def _warn_of_divergence(manifest: Mapping[str, Any]) -> None:
    """Python warnings: the CLI prints each as a ``warning:`` line, a script may filter them."""
    for line in divergence_warnings(manifest):
        warnings.warn(line, UserWarning, stacklevel=3)


def _point_summary(index: int, ident: str, cells: Mapping[str, Any], rows: pa.Table, diverged: int) -> dict[str, Any]:
    """One summary row: for every metric column at the last record, median/q10/q90 over the
    scenarios where it is finite and the count of the others (booleans: the fraction true),
    and the count of ``diverged`` scenarios (:func:`diverged_scenarios`, at any record)."""
    row: dict[str, Any] = {"point": index, "point_id": ident, **cells, "scenarios": rows.num_rows, "diverged": int(diverged)}
    for name in METRIC_COLUMNS:
        if name not in rows.column_names:
            continue
        column = rows.column(name)
        if pa.types.is_boolean(column.type):
            values = column.to_numpy(zero_copy_only=False)
            row[f"{name}_fraction"] = float(np.mean(values.astype(np.float64))) if values.size else float("nan")
            continue
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        finite = values[np.isfinite(values)]
        for label, q in (("median", 0.5), ("q10", 0.1), ("q90", 0.9)):
            row[f"{name}_{label}"] = float(np.quantile(finite, q)) if finite.size else float("nan")
        row[f"{name}_nan"] = int(values.size - finite.size)
    blocked = rows.column("blocked").to_numpy(zero_copy_only=False)
    row["blocked_fraction"] = float(np.mean(blocked > 0))
    row["rounds_last"] = int(rows.column("rounds").to_numpy(zero_copy_only=False).max())
    return row


def is_suite(spec: Mapping[str, Any]) -> bool:
    return "suite" in spec


def suite_members(spec: Mapping[str, Any], path: Path) -> list[tuple[Path, dict[str, Any]]]:
    """(member spec path, dotted overrides) for each sweep of a suite.

    An override (``[suite.set]``) is a ``section.key`` of a run config or of ``[sweep]``
    (``"sweep.seeds" = 1``); each member's own checks refuse a bad value or sweep key.
    """
    suite = spec["suite"]
    if not isinstance(suite, Mapping):
        raise ConfigError("suite", f"must be a table ([suite] with sweeps = [...]), got {suite!r}")
    for key in suite:
        if key not in ("sweeps", "set", "description"):
            raise ConfigError(f"suite.{key}", "unknown key; allowed: sweeps, set, description")
    members = suite.get("sweeps")
    if not isinstance(members, list) or not members or not all(isinstance(member, str) for member in members):
        raise ConfigError("suite.sweeps", f"need a non-empty list of sweep spec files (strings), got {members!r}")
    settings = suite.get("set", {})
    if not isinstance(settings, Mapping):
        raise ConfigError("suite.set", f'must be a table of overrides ([suite.set] "section.key" = value), got {settings!r}')
    overrides = flatten(settings)
    for key in overrides:
        if not key.startswith("sweep."):
            _check_setting("suite.set", key, "override")
    return [(path.parent / member, overrides) for member in members]


def format_points(summary_rows: list[Mapping[str, Any]], swept: list[str]) -> str:
    """A short table: the swept values and headline results of every point. The medians are
    of the finite values only, so ``diverged`` (scenarios with NaN/Inf, as ``ftsgd run``
    counts them) says when some scenarios are missing from them."""
    header = [*swept, "err_median", "loss_median", "disagree", "blocked", "diverged"]
    lines = ["  ".join(f"{h:>14}" for h in header)]
    for row in summary_rows:
        cells = [str(row.get(k, ""))[:14] for k in swept]
        cells += [f"{row['err_mean_median']:.4g}", f"{row['loss_mean_median']:.4g}"]
        cells += [f"{row['disagreement_median']:.3g}", f"{row['blocked_fraction']:.0%}", str(row["diverged"])]
        lines.append("  ".join(f"{c:>14}" for c in cells))
    return "\n".join(lines)
