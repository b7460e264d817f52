"""The Python API: run one configuration or a sweep from a script or a notebook.

:func:`run` and :func:`run_sweep` do what ``ftsgd run`` and ``ftsgd sweep`` do (the
command line calls them): the same checks before any work, the same files in the output
folder, the same numbers. They return the results instead of printing them. Bad input
raises :class:`ftsgd_jax.errors.ConfigError`, whose message is one line naming the field
and what is allowed. (``run_sweep``, not ``sweep``: ``ftsgd_jax.sweep`` is the module of
sweep specs, and a package attribute of that name would be replaced by the module as soon
as it is imported.)

JAX, pyarrow and the simulator are imported on first use, so that importing the package
(and ``ftsgd --help``) stays fast.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from ftsgd_jax.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

    from ftsgd_jax.config import RunConfig
    from ftsgd_jax.processes import Group
    from ftsgd_jax.sweep import Sweep

ConfigSource = Union[str, os.PathLike, Mapping[str, Any], "RunConfig"]
Overrides = Union[Mapping[str, Any], Iterable[str], None]

# Work above either size starts only when the caller says yes (`--yes`).
CONFIRM_SCENARIO_ITERATIONS = 10**11
CONFIRM_RESULT_BYTES = 20 * 2**30
REFERENCE_RATE = 300_000  # scenario-iterations/s of sc at n = 16 on 2 CPU cores (README, Performance)


class Interrupted(Exception):
    """``stop()`` ended the work early; ``message`` says what is kept."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def _frame(table: pa.Table):
    try:
        import pandas  # noqa: F401  (pyarrow needs it to build a frame)
    except ImportError:
        raise ImportError(
            "to_pandas() needs pandas, which ftsgd-jax does not install (pip install pandas); "
            "the metrics are a pyarrow table without it"
        ) from None
    return table.to_pandas()


@dataclasses.dataclass(frozen=True)
class Result:
    """What :func:`run` returns.

    ``metrics``: one row per scenario and recorded iteration (``scenario``, ``t`` and one
    column per metric), as written to ``metrics.parquet``; ``summary``: what
    ``summary.json`` holds; ``manifest``: what ``manifest.json`` holds; ``warnings``: the
    lines ``ftsgd run`` prints on stderr (capped agreement rounds, diverged scenarios);
    ``out``: the folder written, or None.
    """

    config: RunConfig
    metrics: pa.Table
    summary: dict[str, Any]
    manifest: dict[str, Any]
    warnings: tuple[str, ...]
    out: Path | None

    def to_pandas(self):
        """The metrics as a pandas DataFrame (pandas must be installed)."""
        return _frame(self.metrics)


@dataclasses.dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` returns for one sweep.

    ``summary``: one row per point (``summary.parquet``); ``manifest``: what
    ``manifest.json`` holds (every point's values, id and resolved config); ``metrics``:
    every point's rows with one column per swept key, read from ``metrics.parquet`` on
    first use (it can be large).
    """

    name: str
    out: Path
    summary: pa.Table
    manifest: dict[str, Any]

    @functools.cached_property
    def metrics(self) -> pa.Table:
        import pyarrow.parquet as pq

        return pq.read_table(self.out / "metrics.parquet")

    def to_pandas(self):
        """The metrics as a pandas DataFrame (pandas must be installed)."""
        return _frame(self.metrics)


def load(config_or_path: ConfigSource, overrides: Overrides = None) -> RunConfig:
    """A validated configuration from a TOML file, a dict of sections or a RunConfig.

    ``overrides`` are dotted keys and values (``{"faults.crashes": 2}``) or the command
    line's ``--set`` texts (``["faults.crashes=2"]``); a relative ``objective.path`` is
    read from the config file's folder (the current folder for a dict).
    """
    from ftsgd_jax.config import RunConfig, apply_overrides, build_config, load_toml, set_values

    if isinstance(config_or_path, (str, os.PathLike)):
        path = Path(config_or_path)
        raw, base_dir = load_toml(path), path.parent
    elif isinstance(config_or_path, RunConfig):
        if not overrides:
            return config_or_path
        raw, base_dir = config_or_path.resolved, None
    elif isinstance(config_or_path, Mapping):
        raw, base_dir = config_or_path, None
    else:
        raise ConfigError("config", f"need a TOML file path, a dict of sections or a RunConfig, got {type(config_or_path).__name__}")
    if isinstance(overrides, Mapping):
        raw = set_values(raw, overrides)
    elif isinstance(overrides, str):
        raise ConfigError("overrides", f"need a list of section.key=value texts or a dict, got the text {overrides!r}")
    else:
        raw = apply_overrides(raw, list(overrides or ()))
    return build_config(raw, base_dir=base_dir)


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"


def _duration(seconds: float) -> str:
    for unit, length in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= length:
            return f"{seconds / length:.3g} {unit}"
    return f"{seconds:.2g} seconds"


def check_size(configs: list[RunConfig], out: Path | None, yes: bool, field: str) -> str:
    """Refuse work that cannot fit, ask for ``yes`` above the thresholds; return a one-line estimate.

    ``out`` is where the results go (its disk must hold them); None writes nothing.
    """
    from ftsgd_jax import devices
    from ftsgd_jax.metrics import METRIC_COLUMNS

    for config in configs:
        devices.chunk_size(config)  # refuses a scenario that does not fit in memory
    work = sum(c.run.scenarios * c.run.iterations for c in configs)
    stored = sum(devices.result_bytes(c, len(METRIC_COLUMNS) + 2) for c in configs)
    estimate = (
        f"about {work:.3g} scenario-iterations (roughly {_duration(work / REFERENCE_RATE)} at "
        f"{REFERENCE_RATE:,}/s, sc at n = 16 on 2 CPU cores) and up to {_size(stored)} of results"
    )
    reasons = []
    if work > CONFIRM_SCENARIO_ITERATIONS or stored > CONFIRM_RESULT_BYTES:
        reasons.append("that is large")
    if out is not None:
        free_disk = devices.free_disk_bytes(out)
        if stored > free_disk:
            reasons.append(f"only {_size(free_disk)} are free on the disk of {out}")
    if reasons and not yes:
        raise ConfigError(field, f"{estimate}; {', '.join(reasons)}: pass --yes to start it anyway")
    return estimate


def _warn_before_running(configs: list[RunConfig]) -> None:
    """Warn (once per distinct line) of settings that run but cannot do what they ask for."""
    from ftsgd_jax import theory

    for line in dict.fromkeys(theory.safe_area_shortfall(config) for config in configs):
        if line:
            warnings.warn(line, UserWarning, stacklevel=3)


def _check_result_memory(config: RunConfig) -> None:
    """A run holds every result in memory until it ends: refuse one whose results cannot fit."""
    from ftsgd_jax import devices
    from ftsgd_jax.metrics import METRIC_COLUMNS

    needed = 3 * devices.result_bytes(config, len(METRIC_COLUMNS) + 2)  # chunks, joined arrays, table
    free = devices.host_memory_bytes()
    if needed > free:
        raise ConfigError(
            "run.scenarios",
            f"{config.run.scenarios} scenarios x {config.run.iterations // config.run.record_every} records need about "
            f"{_size(needed)} of memory for the results but {_size(free)} are free; use fewer scenarios, a larger "
            "run.record_every, or `ftsgd sweep` with seeds (it writes as it goes)",
        )


def _prepare_run_folder(out: Path, force: bool) -> str | None:
    """What ``out`` held (``results.folder_kind``), after clearing another kind of results when forced."""
    from ftsgd_jax import results

    kind = results.folder_kind(out)
    if kind not in (None, "run"):
        if not force:
            what = {"sweep": "a sweep's results", "suite": "a suite of sweeps"}.get(kind, "other files")
            raise ConfigError("--out", f"{out} holds {what}; use another folder or --force to replace them")
        results.clear_results(out)
    results.remove_temporaries(out)
    return kind


def run(
    config_or_path: ConfigSource,
    overrides: Overrides = None,
    *,
    out: str | os.PathLike | None = None,
    force: bool = False,
    yes: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] | None = None,
) -> Result:
    """Simulate one configuration over all its scenarios; what ``ftsgd run`` does.

    ``config_or_path``: a TOML file, a dict of sections (``{"faults": {"crashes": 2}}``)
    or a RunConfig; ``overrides``: see :func:`load`. With ``out``, the folder receives
    ``metrics.parquet``, ``summary.json`` and ``manifest.json`` (under its lock; another
    kind of results there is refused unless ``force``); without, nothing is written.
    ``yes`` starts work above the size thresholds; ``progress(done, total)`` hears of
    every finished chunk; ``stop()`` is asked after each one and, when true, ends the run
    with :class:`Interrupted` before anything is written.
    """
    import numpy as np

    from ftsgd_jax import engine, results, theory

    config = load(config_or_path, overrides)
    inputs = results.input_digests(config)
    folder = None if out is None else Path(out)
    with contextlib.nullcontext() if folder is None else results.FolderLock(folder, "run"):
        kind = None if folder is None else _prepare_run_folder(folder, force)
        check_size([config], folder, yes, "run")
        _check_result_memory(config)
        _warn_before_running([config])
        started = time.perf_counter()

        def report(done: int, total: int) -> None:
            if progress is not None:
                progress(done, total)
            if stop is not None and stop() and done < total:
                if folder is None:
                    raise Interrupted(f"interrupted after {done} of {total} scenarios; nothing is kept")
                unchanged = "it is unchanged" if kind == "run" else "nothing else is there"
                raise Interrupted(f"interrupted: nothing was written to {folder} ({unchanged})")

        result = engine.run(config, progress=report)
        simulated = time.perf_counter()
        summary = results.summarize(result, config.topology.n)
        metrics = results.metrics_table(result, np.arange(config.run.scenarios))
        if folder is not None:
            (folder / "manifest.json").unlink(missing_ok=True)  # the old manifest goes first: no mixed folder
            results.write_table(folder / "metrics.parquet", metrics)
            results.write_json(folder / "summary.json", summary)
        source = str(Path(config_or_path).resolve()) if isinstance(config_or_path, (str, os.PathLike)) else None
        manifest = {
            "command": "run",
            "config_file": source,
            "overrides": dict(overrides) if isinstance(overrides, Mapping) else list(overrides or ()),
            "config": config.resolved,
            "inputs": inputs,
            "seed": config.run.seed,
            "scenario_keys": "fold_in(seed_key(seed), scenario)",
            "non_finite_json": 'inf, -inf and nan are written as the strings "inf", "-inf", "nan"',
            "theory": theory.record(config),
            "run_lengths": "per-iteration lists are written as [[value, count], ...]",
            "environment": results.environment(),
            "timings": {
                "compile_seconds": result.compile_seconds,
                "run_seconds": result.run_seconds,
                "results_seconds": time.perf_counter() - simulated,  # tables, summary, theory record and their files
                "total_seconds": time.perf_counter() - started,
                "scenario_iterations_per_second": config.run.scenarios * config.run.iterations / max(result.run_seconds, 1e-9),
                "chunk": result.chunk,
                "peak_rss_bytes": results.peak_rss_bytes(),
            },
        }
        if folder is not None:
            results.write_json(folder / "manifest.json", manifest)
    warnings = [results.capped_rounds_warning(result, config.algorithm.max_rounds)]
    nonfinite = summary["nonfinite"]
    if nonfinite["count"]:
        warnings.append(f"warning: {nonfinite['count']} scenarios produced NaN/Inf: {nonfinite['scenarios'][:20]}")
    return Result(config, metrics, summary, manifest, tuple(w for w in warnings if w), folder)


def _read_spec(spec_or_path: str | os.PathLike | Mapping[str, Any]) -> tuple[Mapping[str, Any], Path, str | None]:
    """(spec, path its members and files are found from, the file's full name or None).

    A dict spec is read as if it were a file ``sweep.toml`` in the current folder: its
    suite members and a relative ``objective.path`` are found there, and its sweep is
    named ``sweep`` unless ``[sweep] name`` says otherwise.
    """
    from ftsgd_jax import sweep as sweeps
    from ftsgd_jax.config import load_toml

    if isinstance(spec_or_path, (str, os.PathLike)):
        path = Path(spec_or_path)
        return load_toml(path), path, str(path.resolve())
    if isinstance(spec_or_path, Mapping):
        if "sweep" not in spec_or_path and not sweeps.is_suite(spec_or_path):
            raise ConfigError("sweep", "not a sweep spec: it has no [sweep] table (nor a [suite])")
        return spec_or_path, Path("sweep.toml"), None
    raise ConfigError("spec", f"need a TOML file path or a dict of sections, got {type(spec_or_path).__name__}")


def _parse_sweeps(spec: Mapping[str, Any], path: Path) -> list[Sweep]:
    """The sweeps of a spec: one for a ``[sweep]`` spec, every member of a ``[suite]``."""
    from ftsgd_jax import sweep as sweeps
    from ftsgd_jax.config import load_toml

    if not sweeps.is_suite(spec):
        return [sweeps.Sweep(spec, path)]
    parsed = [sweeps.Sweep(load_toml(member), member, values) for member, values in sweeps.suite_members(spec, path)]
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise ConfigError("suite.sweeps", f"two sweeps have the same name (their folder): {names}")
    return parsed


def _prepare_suite_folder(out: Path, force: bool) -> None:
    from ftsgd_jax import results

    kind = results.folder_kind(out)
    if kind not in (None, "suite"):
        if not force:
            raise ConfigError("--out", f"{out} holds results that are not a suite's; use another folder or --force")
        results.clear_results(out)
    results.remove_temporaries(out)


def run_sweep(
    spec_or_path: str | os.PathLike | Mapping[str, Any],
    out: str | os.PathLike,
    *,
    resume: bool = False,
    force: bool = False,
    yes: bool = False,
    progress: Callable[[list[Sweep], int, str], Callable[[int, int, int], None] | None] | None = None,
    stop: Callable[[], bool] | None = None,
    finished: Callable[[SweepResult], None] | None = None,
    group: Group | None = None,
) -> SweepResult | dict[str, SweepResult]:
    """Run every point of a sweep spec (or every sweep of a suite); what ``ftsgd sweep`` does.

    ``spec_or_path``: a TOML file or a dict of sections with a ``[sweep]`` table (or a
    ``[suite]``, whose sweeps go to sub-folders of ``out``). ``resume`` skips the chunks
    an earlier run of the same spec finished; ``force`` replaces the results in ``out`` of
    another spec (or kind), and of this spec unless ``resume``; without either, a folder
    holding finished chunks of this spec is refused; ``yes`` starts work above the size
    thresholds.
    ``progress(sweeps, number, estimate)`` is called as sweep ``number`` (from 1) of
    ``sweeps`` starts, with the estimate of the whole work, and returns the callback
    ``(done, total, fresh)`` of that sweep's chunks or None; ``finished(result)`` hears
    of each sweep as it ends; ``stop()`` is asked after each chunk and, when true, ends
    the work with :class:`Interrupted` (finished chunks are kept: resume later).
    ``group`` (:func:`ftsgd_jax.processes.join`) splits a sweep spec's chunks over the
    processes that joined it, into one shared ``out``; every process calls this alike.

    Returns the :class:`SweepResult` of a sweep spec, or of a suite every sweep's by name.
    """
    import pyarrow.parquet as pq

    from ftsgd_jax import results
    from ftsgd_jax import sweep as sweeps

    spec, path, source = _read_spec(spec_or_path)
    suite = sweeps.is_suite(spec)
    parsed = _parse_sweeps(spec, path)
    if suite and group is not None:
        raise ConfigError("--num-processes", "a suite is split over processes one sweep at a time: run each member spec so")
    folder = Path(out)
    done: dict[str, SweepResult] = {}
    with results.FolderLock(folder, "sweep (suite)") if suite else contextlib.nullcontext():
        if suite:
            _prepare_suite_folder(folder, force)
        else:
            results.check_folder(folder)
        estimate = check_size([c for s in parsed for c in s.configs], folder, yes, "sweep")
        _warn_before_running([c for s in parsed for c in s.configs])
        if suite:
            results.write_json(folder / "suite.json", {"suite": source, "sweeps": [s.name for s in parsed]})
        for number, member in enumerate(parsed, 1):
            target = folder / member.name if suite else folder
            report = progress(parsed, number, estimate) if progress is not None else None
            try:
                if group is None:
                    manifest = sweeps.run_sweep(member, target, resume=resume, force=force, progress=report, stop=stop)
                else:
                    manifest = sweeps.run_shared_sweep(member, target, group, resume=resume, force=force, progress=report, stop=stop)
            except sweeps.Interrupted as stopped:
                raise Interrupted(
                    f"interrupted: {stopped.done} of {stopped.total} scenarios of sweep {member.name} are kept in {target}"
                ) from None
            result = SweepResult(member.name, target, pq.read_table(target / "summary.parquet"), manifest)
            done[member.name] = result
            if finished is not None:
                finished(result)
            if stop is not None and stop() and number < len(parsed):
                raise Interrupted(f"interrupted after sweep {member.name}; finished sweeps are kept in {folder}")
    return done if suite else done[parsed[0].name]

