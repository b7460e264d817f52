"""What a suite leaves behind: the machine it ran on, ``bench.json`` (everything),
``bench.csv`` (one row per measurement, the machine on each) and the Markdown table for
the README.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from benchmarks.plan import host_memory
from ftsgd_jax import results

CSV_COLUMNS = (
    "kind", "status", "reason", "algorithm", "rule", "rounds", "part", "n", "d", "clusters", "scenarios", "iterations",
    "chunk", "repeats", "calls_per_run", "compile_seconds", "first_run_seconds", "best_seconds", "median_seconds",
    "best_scenario_iterations_per_second", "median_scenario_iterations_per_second", "scenario_rounds_per_second",
    "ratio", "engine_scenario_iterations_per_second", "total_scenario_iterations_per_second", "unit",
    "seconds_per_unit", "share_of_sc_iteration", "estimated_bytes", "xla_bytes", "peak_rss_bytes",
    "device_peak_bytes_in_use", "headline", "cpu", "cores", "backend", "devices",
)
THREAD_VARIABLES = ("XLA_FLAGS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def machine_info(device=None) -> dict[str, Any]:
    """``results.environment()`` plus what a benchmark reader needs about threads and memory."""
    info = results.environment()
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["usable_cores"] = info.get("cores")
    info["device"] = str(device or jax.devices()[0])
    info["device_kind"] = getattr(device or jax.devices()[0], "device_kind", None)
    info["host_memory"] = host_memory()
    info["threads_env"] = {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ}
    return info


def write_report(out: Path, payload: dict[str, Any]) -> None:
    """``bench.json`` and ``bench.csv`` in ``out`` (created if needed), each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    results.write_json(out / "bench.json", payload)
    results.write_atomic(out / "bench.csv", csv_text(payload["measurements"], payload["machine"]).encode())


def csv_text(rows: list[Mapping[str, Any]], machine: Mapping[str, Any]) -> str:
    """One row per measurement (skipped ones included, with their reason); machine columns on each."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells = {**row, "cpu": machine["cpu"], "cores": machine["cores"], "backend": machine["backend"],
                 "devices": " ".join(machine["devices"])}
        if isinstance(cells.get("clusters"), list):
            cells["clusters"] = "-".join(map(str, cells["clusters"]))
        writer.writerow({k: _cell(v) for k, v in cells.items() if k in CSV_COLUMNS})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def gib(value: float | None) -> str:
    """Bytes, human-readable: '1.5 GiB', '12 MiB', '3 KiB'."""
    if value is None:
        return "-"
    if value >= 1 << 30:
        return f"{value / (1 << 30):.1f} GiB"
    if value >= 1 << 20:
        return f"{value / (1 << 20):.0f} MiB"
    return f"{value / 1024:.0f} KiB"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def markdown_table(payload: Mapping[str, Any]) -> str:
    """The README table: machine line, measurements, then the breakdown."""
    machine = payload["machine"]
    lines = [
        f"Machine: {machine['cpu']}, {machine['cores']} cores ({machine.get('usable_cores')} usable); "
        f"jax {machine['versions'].get('jax')} backend {machine['backend']}, devices {', '.join(machine['devices'])}. "
        f"Mode: {payload['mode']}.",
        "",
        "| what | algorithm | n | d | S | T | compile s | best scen-it/s | median scen-it/s | vs | memory | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    lines += [_measurement_line(row) for row in payload["measurements"] if row["kind"] != "breakdown"]
    for result in payload.get("breakdown", []):
        lines += _breakdown_lines(result)
    return "\n".join(lines)


def _measurement_line(row: Mapping[str, Any]) -> str:
    algorithm = row["algorithm"] + (f" ({row['rule']}, R={row['rounds']})" if row["algorithm"] == "gen" else "")
    what = row["kind"] + (" (headline)" if row.get("headline") else "")
    size = f"| {what} | {algorithm} | {row['n']} | {row['d']} | {row['scenarios']} | {row.get('iterations') or '-'} "
    if row["status"] != "ok":
        memory = gib(row.get("xla_bytes") or row.get("estimated_bytes"))
        return size + f"| - | - | - | - | {memory} | skipped: {row['reason']} |"
    ratio = row.get("ratio")
    vs = f"engine {ratio:,.1f}x" if ratio else "-"
    compile_s = f"{row['compile_seconds']:.1f}" if "compile_seconds" in row else "-"
    memory = gib(row.get("xla_bytes")) if row["kind"] == "engine" else "-"
    note = ""
    if row["kind"] == "reference":
        note = (f"{row['scenarios']} scenarios, marginal per iteration (T={row['baseline_iterations']}..{row['iterations']}); "
                f"{_rate(row['total_scenario_iterations_per_second'])}/s all-in at T={row['iterations']}")
    elif row["kind"] == "engine":
        note = f"chunk {row['chunk']}, {row['calls_per_run']} call(s)/run"
    return size + (
        f"| {compile_s} | {_rate(row['best_scenario_iterations_per_second'])} "
        f"| {_rate(row['median_scenario_iterations_per_second'])} | {vs} | {memory} | {note} |"
    )


def _breakdown_lines(result: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        f"Breakdown at n={result['n']}, d={result['d']}, S={result['scenarios']} "
        f"(each part its own jit(vmap); {result['random_numbers_per_round']} random numbers per round, "
        f"{result['gradient_normals_per_iteration']} gradient normals per iteration):",
        "",
        "| part | per | µs per scenario-unit | share of fused sc iteration |",
        "|---|---|---:|---:|",
    ]
    for name, part in result["parts"].items():
        lines.append(f"| {name} | {part['unit']} | {part['seconds_per_unit'] * 1e6:.3f} | {_share(part['share_of_sc_iteration'])} |")
    for name, message in result.get("failed_parts", {}).items():
        lines.append(f"| {name} | - | failed: {message} | - |")
    whole = result.get("engine_sc_seconds_per_scenario_iteration")
    if whole:
        fused = result["parts"].get("sc_iteration", {}).get("seconds_per_unit")
        lines.append(f"| engine sc (whole run) | scenario-iteration | {whole * 1e6:.3f} | {_share(whole / fused if fused else None)} |")
    return lines
