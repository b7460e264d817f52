"""A whole suite: every measurement of a :class:`~benchmarks.plan.Plan` in order (engine,
reference, NumPy, breakdown), each skipped with its reason when it would not fit the
memory or time budget, then the report written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax

from benchmarks.baselines import bench_numpy_sc, bench_reference, numpy_sc_bytes
from benchmarks.breakdown import breakdown
from benchmarks.measure import bench_engine
from benchmarks.plan import (
    GEN_ROUNDS,
    CostModel,
    Plan,
    choose_iterations,
    clusters_for,
    engine_bytes,
    is_headline,
    memory_budget,
    skipped_row,
)
from benchmarks.report import gib, machine_info, markdown_table, write_report

Progress = Callable[[str], Any]
BUDGET_SPENT = "suite time budget spent"


def run_suite(
    out_dir: str | Path,
    plan: Plan,
    *,
    progress: Progress | None = print,
    device=None,
    memory: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the plan and write ``bench.json`` and ``bench.csv`` to ``out_dir``.

    ``device``: a ``jax.Device`` to run on (default: jax's default device). ``memory``: the
    budget (as :func:`~benchmarks.plan.memory_budget` returns it; measured when None).
    Measurements whose memory (estimated, then from XLA's analysis) exceeds the budget, or
    whose estimated time exceeds the plan's cap or the rest of the suite budget, are
    recorded as skipped with the reason; the headline configurations are skipped for
    memory only. Returns the JSON payload; its ``markdown`` key holds the README table.
    """
    say = progress or (lambda _message: None)
    started = time.perf_counter()

    def elapsed() -> float:
        return time.perf_counter() - started

    with jax.default_device(device) if device is not None else contextlib.nullcontext():
        machine = machine_info(device)
        memory = memory or memory_budget(device)
        say(f"bench ({plan.mode}) on {machine['cpu']}, {machine['cores']} cores, backend {machine['backend']}; "
            f"memory budget {gib(memory['budget_bytes'])} ({memory['source']})")
        rows = engine_rows(plan, memory["budget_bytes"], elapsed, say, device)
        rows += reference_rows(plan, rows, elapsed, say)
        rows += numpy_rows(plan, memory["budget_bytes"], rows, elapsed, say)
        breakdowns = breakdown_results(plan, rows, elapsed, say)
        rows += [row for result in breakdowns for row in breakdown_rows(result)]

    payload = {
        "mode": plan.mode,
        "only": plan.only,
        "machine": machine,
        "memory": memory,
        "total_seconds": elapsed(),
        "plan": dataclasses.asdict(plan),
        "measurements": rows,
        "skipped": [row for row in rows if row.get("status") == "skipped"],
        "breakdown": breakdowns,
    }
    payload["markdown"] = markdown_table(payload)
    out = Path(out_dir)
    write_report(out, payload)
    say(payload["markdown"])
    say(f"wrote {out / 'bench.json'} and {out / 'bench.csv'} in {payload['total_seconds']:.0f} s")
    return payload


def engine_rate(rows: list[dict[str, Any]], algorithm: str, n: int, d: int, scenarios: int | None = None) -> float | None:
    """The engine's measured rate (rule mean) at this size: at the same S when measured,
    else the best over every S; None when it was not measured."""
    matches = [
        row for row in rows
        if row["kind"] == "engine" and row["status"] == "ok" and row["algorithm"] == algorithm
        and row["rule"] == "mean" and row["n"] == n and row["d"] == d
    ]
    exact = [row for row in matches if row["scenarios"] == scenarios]
    best = [row["best_scenario_iterations_per_second"] for row in exact or matches]
    return (best[0] if exact else max(best)) if best else None


def engine_rows(plan: Plan, budget_bytes: int, elapsed: Callable[[], float], say: Progress, device) -> list[dict[str, Any]]:
    """The engine over the plan's grid, the cost model learning from each measured point."""
    cost = CostModel()
    rows: list[dict[str, Any]] = []
    for algorithm, rule, n, d, scenarios in plan.engine:
        label = f"engine {algorithm}/{rule} n={n} d={d} S={scenarios}"
        iterations = choose_iterations(cost, plan, algorithm, rule, n, d, scenarios)
        estimate = engine_bytes(algorithm, rule, n, d, scenarios)
        call = cost.call_seconds(algorithm, rule, n, d, scenarios, iterations)
        expected = (plan.repeats + 1) * max(call, plan.min_run_seconds) + 3.0  # + compile
        headline = is_headline(rule, n, d, scenarios)
        reason = ""
        if estimate > budget_bytes:
            reason = f"estimated memory {gib(estimate)} exceeds the budget {gib(budget_bytes)}"
        elif not headline and expected > plan.measurement_cap_seconds:
            reason = f"estimated {expected:.0f} s exceeds the per-measurement cap {plan.measurement_cap_seconds:.0f} s"
        elif not headline and elapsed() + expected > plan.budget_seconds:
            reason = f"suite time budget ({plan.budget_seconds:.0f} s) spent"
        if reason:
            row = skipped_row("engine", algorithm, n, d, scenarios, iterations, reason, rule)
        else:
            row = bench_engine(
                algorithm, n, d, scenarios, iterations, rule, GEN_ROUNDS, plan.repeats,
                min_run_seconds=plan.min_run_seconds, memory_budget_bytes=budget_bytes, device=device,
            )
            cost.learn(row)
        if row["status"] == "ok":
            say(f"{label}: {row['best_scenario_iterations_per_second']:,.0f} scenario-iterations/s "
                f"(T={iterations}, compile {row['compile_seconds']:.1f} s)")
        else:
            say(f"{label}: skipped ({row['reason']})")
        row["estimated_bytes"] = estimate
        row["headline"] = headline
        rows.append(row)
    return rows


def reference_rows(plan: Plan, measured: list[dict[str, Any]], elapsed: Callable[[], float], say: Progress):
    """The event-driven reference at the plan's sizes, against the engine's rate at each."""
    rows = []
    for algorithm, n, d, sample, iterations in plan.reference:
        if elapsed() > plan.budget_seconds and (measured or rows):
            rows.append(skipped_row("reference", algorithm, n, d, sample, iterations, BUDGET_SPENT))
            continue
        row = bench_reference(algorithm, n, d, sample, iterations, engine_rate=engine_rate(measured, algorithm, n, d))
        rows.append(row)
        say(f"reference {algorithm} n={n} d={d}: {row['scenario_iterations_per_second']:,.1f} scenario-iterations/s"
            + (f" (engine {row['ratio']:,.0f}x)" if row.get("ratio") else ""))
    return rows


def numpy_rows(plan: Plan, budget_bytes: int, measured: list[dict[str, Any]], elapsed: Callable[[], float], say: Progress):
    """The NumPy sc baseline at the plan's sizes, against the engine at the same S."""
    rows = []
    for n, d, scenarios in plan.numpy:
        need = numpy_sc_bytes(n, d, scenarios)
        if need > budget_bytes:
            rows.append(skipped_row("numpy", "sc", n, d, scenarios, 0, f"estimated memory {gib(need)} exceeds the budget"))
            continue
        if elapsed() > plan.budget_seconds:
            rows.append(skipped_row("numpy", "sc", n, d, scenarios, 0, BUDGET_SPENT))
            continue
        row = bench_numpy_sc(
            n, d, scenarios, repeats=plan.repeats, engine_rate=engine_rate(measured, "sc", n, d, scenarios),
            min_run_seconds=plan.min_run_seconds,
        )
        rows.append(row)
        say(f"numpy sc n={n} d={d} S={scenarios}: {row['scenario_iterations_per_second']:,.0f} scenario-iterations/s"
            + (f" (engine {row['ratio']:,.1f}x)" if row.get("ratio") else ""))
    return rows


def breakdown_results(plan: Plan, measured: list[dict[str, Any]], elapsed: Callable[[], float], say: Progress):
    """The plan's breakdowns (at least one, then while the budget lasts), each with the
    engine's whole-run time per sc scenario-iteration at its size when measured."""
    results = []
    for n, d, scenarios in plan.breakdown:
        if elapsed() > plan.budget_seconds and results:
            break
        result = breakdown(n, d, scenarios)
        rate = engine_rate(measured, "sc", n, d, scenarios)
        if rate:
            result["engine_sc_seconds_per_scenario_iteration"] = 1.0 / rate
        results.append(result)
        say(f"breakdown n={n} d={d} S={scenarios}: dominant sc part {result['dominant_sc_part']}")
    return results


def breakdown_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One CSV-ready row per part of a breakdown."""
    n, d = result["n"], result["d"]
    return [
        {
            "kind": "breakdown", "status": "ok", "reason": "", "part": name, "n": n, "d": d,
            "clusters": clusters_for(n), "scenarios": part["scenarios"], "unit": part["unit"],
            "seconds_per_unit": part["seconds_per_unit"], "share_of_sc_iteration": part["share_of_sc_iteration"],
        }
        for name, part in result["parts"].items()
    ]
