"""The results store: metrics tables, summaries and manifests, written atomically.

``metrics.parquet`` has one row per scenario and recorded iteration; ``summary.json``
gives, per metric at the last record, the mean, median and max over the scenarios where
the metric is finite, with the count of the others (never averaging NaN away silently);
``manifest.json`` records the resolved configuration, seed, versions, device and
timings, enough to rerun any scenario.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ftsgd_jax.engine import RunResult
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
        "python": platform.python_version(),
        "devices": [str(device) for device in jax.devices()],
        "backend": jax.default_backend(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
    }


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
        columns[name] = pa.array([table_cell(value)] * (scenarios * records))
    return pa.table(columns)


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
    summary["nonfinite"] = nonfinite_scenarios(result, processes)
    return summary


def nonfinite_scenarios(result: RunResult, processes: int) -> dict[str, Any]:
    """Scenarios whose live processes produced NaN or Inf (divergence), by index."""
    live = processes - result.metrics["crashed"] - result.metrics["blocked"]
    bad = (live > 0) & ~np.isfinite(result.metrics["loss_mean"])
    which = np.flatnonzero(bad.any(axis=1))
    return {"count": int(which.size), "scenarios": which[:100].tolist()}


def write_json(path: Path, payload: Any) -> None:
    write_atomic(path, (json.dumps(payload, indent=2, default=_json_default) + "\n").encode())


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def write_table(path: Path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        temporary = Path(handle.name)
    pq.write_table(table, temporary)
    os.replace(temporary, path)


def write_atomic(path: Path, data: bytes) -> None:
    """Write then rename, so a reader never sees half a file, even after a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
        handle.write(data)
    os.replace(handle.name, path)


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
