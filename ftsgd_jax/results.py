"""The results store: metrics tables, summaries and manifests, written atomically.

``metrics.parquet`` has one row per scenario and recorded iteration; ``summary.json``
gives, per metric at the last record, the mean, median and max over the scenarios where
the metric is finite, with the count of the others (never averaging NaN away silently);
``manifest.json`` records the resolved configuration, seed, versions, device and
timings, enough to rerun any scenario, and what the theory says of the configuration
(:func:`ftsgd_jax.theory.record`).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import resource
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftsgd_jax import rng
from ftsgd_jax.algorithms import UNBOUNDED_ROUNDS
from ftsgd_jax.engine import RunResult
from ftsgd_jax.errors import ConfigError
from ftsgd_jax.metrics import METRIC_COLUMNS

PACKAGES = ("ftsgd-jax", "jax", "jaxlib", "optax", "numpy", "pyarrow", "matplotlib")


def environment() -> dict[str, Any]:
    """Package versions, devices and the machine, for manifests and benchmarks."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "versions": versions,
        "random_streams": rng.STREAMS,
        "python": platform.python_version(),
        "devices": [str(device) for device in jax.devices()],
        "backend": jax.default_backend(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        # where compiled programs were cached across runs (JAX_COMPILATION_CACHE_DIR), so that
        # a small compile_seconds reads as a cache hit, not as a cheaper program
        "compilation_cache": jax.config.jax_compilation_cache_dir if jax.config.jax_enable_compilation_cache else None,
    }


def streams_of(stored: Mapping[str, Any] | None) -> int:
    """The random streams' version that results were drawn with: the ``random_streams`` or
    ``streams`` entry of their manifest environment or spec stamp; 1 where results predate
    the entry."""
    stored = stored if isinstance(stored, Mapping) else {}
    value = stored.get("random_streams", stored.get("streams", 1))
    return value if isinstance(value, int) else 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def metrics_table(result: RunResult, indices: np.ndarray, extra: Mapping[str, Any] | None = None) -> pa.Table:
    """One row per (scenario, recorded iteration); ``extra`` adds constant columns (swept keys)."""
    scenarios, records = result.metrics["err_mean"].shape
    columns: dict[str, Any] = {
        "scenario": np.repeat(np.asarray(indices, np.int64), records),
        "t": np.tile(result.t.astype(np.int64), scenarios),
    }
    for name in METRIC_COLUMNS:
        columns[name] = result.metrics[name].reshape(-1)
    for name, value in (extra or {}).items():
        columns[name] = constant_column(pa.scalar(table_cell(value)), scenarios * records)
    return pa.table(columns)


def constant_column(value: pa.Scalar, rows: int) -> pa.Array:
    """``rows`` copies of one cell, built by Arrow (a Python list of a million cells takes a second)."""
    return pa.repeat(value, rows)


def table_cell(value: Any) -> Any:
    """Table cells hold scalars; lists (cluster layouts) become their JSON text."""
    return json.dumps(value) if isinstance(value, (list, tuple, dict)) else value


def summarize(result: RunResult, processes: int) -> dict[str, Any]:
    """Per metric at the last record: mean/median/max over finite scenarios, and counts."""
    last = {name: values[:, -1].astype(np.float64) for name, values in result.metrics.items()}
    summary: dict[str, Any] = {"scenarios": result.scenarios, "t": int(result.t[-1]), "metrics": {}}
    for name in METRIC_COLUMNS:
        values = last[name]
        finite = np.isfinite(values)
        entry = {"finite": int(finite.sum()), "nan": int((~finite).sum())}
        if finite.any():
            entry.update(
                mean=float(values[finite].mean()),
                median=float(np.median(values[finite])),
                max=float(values[finite].max()),
            )
        summary["metrics"][name] = entry
    summary["blocked_fraction"] = float((last["blocked"] > 0).mean())
    summary["majority_fraction"] = float(last["majority"].mean())
    summary["rounds_capped_iterations"] = int(np.sum(result.rounds_needed > result.rounds_per_iteration))
    summary["safe_fallbacks"] = int(result.metrics["safe_fallbacks"].sum())
    summary["nonfinite"] = nonfinite_scenarios(result, processes)
    return summary


def input_files(config: Any) -> dict[str, str]:
    """The files a config reads, by setting: a LIBSVM file as ``objective.path``, the one
    file-valued setting (``''`` is synthetic data and reads none)."""
    path = config.objective.config.get("path")
    return {"objective.path": path} if path else {}


def input_digests(config: Any) -> dict[str, dict[str, str]]:
    """``{setting: {"path": file, "sha256": digest}}`` of every file the config reads, for
    manifests: the digest of the bytes its data were parsed from (``Objective.data_sha256``),
    not of the file as it is by the time the manifest is written."""
    return {field: {"path": path, "sha256": config.objective.data_sha256} for field, path in input_files(config).items()}


def run_lengths(values: np.ndarray) -> list[list[Any]]:
    """``[[value, count], ...]`` of a per-iteration array: manifests stay small."""
    values = np.asarray(values)
    if values.size == 0:
        return []
    starts = np.flatnonzero(np.concatenate([[True], values[1:] != values[:-1]]))
    counts = np.diff(np.concatenate([starts, [values.size]]))
    return [[values[s].item(), int(c)] for s, c in zip(starts, counts)]


def expand_run_lengths(pairs: list[list[Any]]) -> np.ndarray:
    """The array that :func:`run_lengths` encoded."""
    if not pairs:
        return np.zeros(0)
    return np.repeat([value for value, _ in pairs], [count for _, count in pairs])


def capped_rounds_warning(result: RunResult, max_rounds: int) -> str | None:
    """One line when ``rounds = "auto"`` hit ``max_rounds`` somewhere, else None."""
    capped = result.rounds_needed > result.rounds_per_iteration
    if not capped.any():
        return None
    most = int(result.rounds_needed.max())
    needed = "exact agreement (eps_t = 0, a step size of 0)" if most == UNBOUNDED_ROUNDS else f"up to {most} agreement rounds"
    return (
        f"warning: rounds = 'auto' needed {needed}; "
        f"{int(capped.sum())} of {capped.size} iterations ran max_rounds = {max_rounds}, where eps_t is not "
        "guaranteed (column rounds_capped; raise algorithm.max_rounds)"
    )


def diverged(loss_mean: np.ndarray, crashed: np.ndarray, blocked: np.ndarray, processes: int) -> np.ndarray:
    """Where a record's live processes produced NaN or Inf: the one rule of divergence that
    ``ftsgd run``, sweeps and figures count by (elementwise over records)."""
    return (processes - crashed - blocked > 0) & ~np.isfinite(loss_mean)


def nonfinite_scenarios(result: RunResult, processes: int) -> dict[str, Any]:
    """Scenarios whose live processes produced NaN or Inf (divergence), by index."""
    m = result.metrics
    which = np.flatnonzero(diverged(m["loss_mean"], m["crashed"], m["blocked"], processes).any(axis=1))
    return {"count": int(which.size), "scenarios": which[:100].tolist()}


def json_safe(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays as plain Python and non-finite floats as the
    strings ``"inf"``, ``"-inf"`` and ``"nan"``: standard JSON that jq, Node and Python's
    strict parser read (``restore_floats`` turns the strings back)."""
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}

FINAL_PER_POINT = ("cluster_of", "group_of_cluster")
"""The arrays of a point's ``final.npz`` without a scenario axis (the topology's); every
other array has one."""


def restore_floats(value: Any) -> Any:
    """The inverse of ``json_safe`` for configurations: ``"inf"`` -> ``float("inf")`` etc."""
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, Mapping):
        return {key: restore_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [restore_floats(item) for item in value]
    return value


def write_json(path: Path, payload: Any) -> None:
    write_atomic(path, (json.dumps(json_safe(payload), indent=2, allow_nan=False) + "\n").encode())


def read_json(path: Path) -> Any:
    """A JSON file of the store; unreadable or malformed files raise ConfigError naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(str(path), f"cannot read results file: {getattr(error, 'strerror', None) or error}") from None


def file_mode() -> int:
    """The mode open() would give a new file: 0o666 less the current umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _temporary(folder: Path) -> Path:
    """An empty temporary file in ``folder`` (same file system, so the rename is atomic)."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=folder, suffix=".tmp", delete=False) as handle:
        temporary = Path(handle.name)
    os.chmod(temporary, file_mode())  # mkstemp makes 0600: result files honour the umask
    return temporary


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth a Parquet dictionary: counts, flags and labels repeat, while
    float metrics rarely do, and encoding them with a dictionary made writing 3-4x slower."""
    return [field.name for field in schema if not pa.types.is_floating(field.type)]


def write_table(path: Path, table: pa.Table) -> None:
    temporary = _temporary(path.parent)
    try:
        pq.write_table(table, temporary, use_dictionary=dictionary_columns(table.schema))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write then rename, so a reader never sees half a file, even after a crash."""
    temporary = _temporary(path.parent)
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def remove_temporaries(folder: Path) -> int:
    """Delete ``*.tmp`` files left in ``folder`` (and below) by a process killed mid-write.

    Called only under the folder's lock, so no other writer can have one in flight.
    """
    removed = 0
    if folder.is_dir():
        for path in folder.rglob("*.tmp"):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed += 1
    return removed


# -- output folders: one kind of result each, one writer at a time -------------------------

LOCK_NAME = ".ftsgd.lock"
RESULT_FILES = ("metrics.parquet", "summary.json", "summary.parquet", "spec.json", "suite.json")


class FolderLock:
    """An exclusive lock on an output folder (``fcntl.flock`` on ``DIR/.ftsgd.lock``).

    The folder is created if needed, which also proves it writable before any work. The
    lock is released when the process ends in any way, SIGKILL included; a second
    writer is refused with one line naming the holder.
    """

    def __init__(self, folder: Path, command: str, field: str = "--out"):
        self.folder, self.command, self.field = Path(folder), command, field
        self.handle = None

    def __enter__(self) -> FolderLock:
        check_folder(self.folder, self.field)
        path = self.folder / LOCK_NAME
        try:
            handle = open(path, "a+", encoding="utf-8")
        except OSError as error:
            raise ConfigError(self.field, f"cannot write in {self.folder}: {error.strerror or error}") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                self.field, f"{self.folder} is in use by {holder}; wait for it to end or use another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.write(f"ftsgd {self.command} (pid {os.getpid()} on {socket.gethostname()}, since {started})\n")
        handle.flush()
        self.handle = handle
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.handle is not None:
            self.handle.seek(0)
            self.handle.truncate()
            fcntl.flock(self.handle, fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None


def check_folder(folder: Path, field: str = "--out") -> None:
    """Create ``folder`` (and parents) or raise one line saying why it cannot be used."""
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise ConfigError(field, f"{folder} exists and is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(field, f"cannot create {folder}: {error.strerror or error}") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(field, f"cannot write in {folder}: permission denied")


def folder_kind(folder: Path) -> str | None:
    """What an output folder holds: 'run', 'sweep', 'suite', 'other' (unknown files) or None (empty)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            command = json.loads(manifest.read_text(encoding="utf-8")).get("command")
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            command = None
        if command in ("run", "sweep"):
            return command
    if (folder / "spec.json").is_file():
        return "sweep"
    if (folder / "suite.json").is_file():
        return "suite"
    if any(entry.name != LOCK_NAME for entry in folder.iterdir()):
        return "other"
    return None


def clear_results(folder: Path) -> None:
    """Remove the results ftsgd wrote in ``folder``, the manifest first.

    The manifest marks finished results, so an interruption half-way leaves no folder
    that claims results it no longer holds. Files ftsgd did not write are left alone.
    """
    folder = Path(folder)
    members: list[Path] = []
    suite = folder / "suite.json"
    if suite.is_file():
        try:
            members = [folder / str(name) for name in json.loads(suite.read_text(encoding="utf-8")).get("sweeps", [])]
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            members = []
    (folder / "manifest.json").unlink(missing_ok=True)
    for name in RESULT_FILES:
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "points", ignore_errors=True)
    for member in members:
        if member.parent == folder and folder_kind(member) == "sweep":
            clear_results(member)
    remove_temporaries(folder)


def format_summary(summary: Mapping[str, Any], columns: tuple[str, ...] = METRIC_COLUMNS) -> str:
    """A short plain-text table of a summary."""
    lines = [f"{'metric':<14}{'mean':>12}{'median':>12}{'max':>12}{'NaN':>6}"]
    for name in columns:
        entry = summary["metrics"][name]
        cells = [f"{entry[k]:>12.4g}" if k in entry else f"{'-':>12}" for k in ("mean", "median", "max")]
        lines.append(f"{name:<14}{''.join(cells)}{entry['nan']:>6}")
    lines.append(
        f"blocked scenarios {summary['blocked_fraction']:.1%}, majority condition holds in "
        f"{summary['majority_fraction']:.1%}, diverged (NaN/Inf) {summary['nonfinite']['count']}"
    )
    return "\n".join(lines)
