"""Timing the library's compiled engine, and the timing primitives every measurement shares.

:func:`bench_engine` times ``engine.Simulation``, the very program ``ftsgd run`` executes
(its scan over ``algorithms.ALGORITHMS[kind].iteration``), chunked by ``devices.chunk_size``.
Timings never include compilation: every program is compiled (or run once) before the
timed runs, and every timed run ends with ``jax.block_until_ready``.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from benchmarks.plan import TARGET_RUN_SECONDS, bench_config, device_memory, measurement_row
from benchmarks.report import gib
from ftsgd_jax import devices, engine
from ftsgd_jax.results import peak_rss_bytes


def rates(seconds: list[float], work: float) -> dict[str, Any]:
    """Best and median scenario-iterations per second of timed runs that each did ``work``."""
    best, median = min(seconds), statistics.median(seconds)
    return {
        "run_seconds": seconds,
        "best_seconds": best,
        "median_seconds": median,
        "best_scenario_iterations_per_second": work / best,
        "median_scenario_iterations_per_second": work / median,
        "scenario_iterations_per_second": work / best,
    }


def memory_fields(device=None) -> dict[str, Any]:
    """Peak resident memory of the process so far, and the device's figures where it has any."""
    fields: dict[str, Any] = {"peak_rss_bytes": peak_rss_bytes()}
    stats = device_memory(device)
    if stats:
        fields["device_peak_bytes_in_use"] = stats.get("peak_bytes_in_use")
        fields["device_bytes_in_use"] = stats.get("bytes_in_use")
        fields["device_bytes_limit"] = stats.get("bytes_limit")
    return fields


def with_ratio(row: dict[str, Any], engine_rate: float | None) -> dict[str, Any]:
    """The row with ``ratio`` = engine rate / its rate, when the engine's rate is known."""
    if engine_rate:
        row["engine_scenario_iterations_per_second"] = engine_rate
        row["ratio"] = engine_rate / row["scenario_iterations_per_second"]
    return row


def xla_bytes(compiled) -> int | None:
    """Temporaries + arguments + outputs of a compiled program, per XLA's memory analysis."""
    try:
        analysis = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if analysis is None:
        return None
    names = ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes")
    return sum(int(getattr(analysis, name, 0) or 0) for name in names)


def repeated_runs(
    run: Callable[[], Any], repeats: int, min_seconds: float, max_seconds: float = math.inf
) -> tuple[float, int, list[float]]:
    """Time ``run`` (which blocks): one untimed warm-up call, then ``repeats`` timed runs of
    ``calls`` back-to-back calls each, ``calls`` chosen so that a run lasts ``min_seconds``;
    with a finite ``max_seconds``, slow calls get fewer runs (about ``max_seconds`` in all,
    at least one). Returns (warm-up seconds, calls per run, seconds of each run)."""
    started = time.perf_counter()
    run()
    first = max(time.perf_counter() - started, 1e-6)
    calls = max(1, math.ceil(min_seconds / first))
    if math.isfinite(max_seconds):
        repeats = max(1, min(repeats, math.ceil(max_seconds / (first * calls))))
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            run()
        seconds.append(time.perf_counter() - started)
    return first, calls, seconds


def bench_engine(
    algorithm: str,
    n: int,
    d: int,
    scenarios: int,
    iterations: int,
    rule: str = "mean",
    rounds: int = 3,
    repeats: int = 3,
    *,
    min_run_seconds: float = TARGET_RUN_SECONDS,
    memory_budget_bytes: int | None = None,
    seed: int = 0,
    device=None,
) -> dict[str, Any]:
    """Compile the engine for one configuration once, then time ``repeats`` runs.

    The scenarios run in the engine's chunks (``devices.chunk_size``: up to 4096 per
    compiled batch), exactly as ``ftsgd run`` does. After one untimed warm-up run, each
    timed run calls the compiled program ``calls_per_run`` times back to back (so that a
    run lasts at least ``min_run_seconds``), ending with ``jax.block_until_ready``.
    With ``memory_budget_bytes``, a program whose XLA memory analysis exceeds the budget
    is compiled but not run: the result has ``status = "skipped"`` and the reason.
    """
    config = bench_config(algorithm, n, d, scenarios, iterations, rule, rounds, seed)
    row = measurement_row("engine", algorithm, n, d, scenarios, iterations, rule if algorithm == "gen" else "mean", rounds)
    row["repeats"] = repeats
    sim = engine.Simulation(engine.static_part(config))  # a fresh simulator: its compile time is not cached
    chunk = devices.chunk_size(config)
    indices = np.arange(scenarios)
    batches = []
    for begin in range(0, scenarios, chunk):
        part = indices[begin : begin + chunk]
        padded = np.concatenate([part, np.full(chunk - len(part), part[-1])])
        batches.append(jax.block_until_ready(engine.scenario_inputs(config, padded)))
    program = sim.compiled(batches[0])
    row["chunk"] = chunk
    row["compile_seconds"] = sim.compile_seconds
    row["xla_bytes"] = xla_bytes(program)
    if memory_budget_bytes is not None and row["xla_bytes"] and row["xla_bytes"] > memory_budget_bytes:
        row.update(
            status="skipped",
            reason=f"XLA memory analysis {gib(row['xla_bytes'])} exceeds the budget {gib(memory_budget_bytes)}",
        )
        return row

    def run_all():
        out = None
        for inputs in batches:
            out = program(inputs)
        return jax.block_until_ready(out)

    first, calls, seconds = repeated_runs(run_all, repeats, min_run_seconds)
    work = float(scenarios) * iterations * calls
    row.update(first_run_seconds=first, calls_per_run=calls, **rates(seconds, work), **memory_fields(device))
    row["scenario_rounds_per_second"] = row["best_scenario_iterations_per_second"] * row["rounds"]
    return row
