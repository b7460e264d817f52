"""What a benchmark suite measures and what it may spend: the grid, the configurations, the
memory and time budgets, and the cost model that picks iteration counts and skips points.

A measurement is a row (a dict): :func:`measurement_row` gives every kind the same leading
fields, so the report can put engine, reference, NumPy and skipped rows in one table.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftsgd_jax.errors import ConfigError, choice, real

# jax and the library's array modules are imported where used: the command line reads its
# plan from here and refuses bad flags before jax starts.

HEADLINE = {"n": 16, "d": 10, "scenarios": 4096}
ALGORITHMS = ("sc", "gen")
GEN_ROUNDS = 3  # agreement rounds of every gen configuration
TARGET_RUN_SECONDS = 0.2  # every timed run lasts at least this long (calls are repeated)
MAX_ITERATIONS = 2000  # beyond this, a timed run repeats calls instead of growing the scan


def clusters_for(n: int) -> list[int]:
    """Four equal clusters when 4 divides n, else n singletons."""
    if n < 1:
        raise ConfigError("n", f"need at least one process, got {n}")
    return [n // 4] * 4 if n % 4 == 0 else [1] * n


def bench_config(
    algorithm: str,
    n: int,
    d: int,
    scenarios: int,
    iterations: int,
    rule: str = "mean",
    rounds: int = GEN_ROUNDS,
    seed: int = 0,
):
    """The benchmark configuration: random schedule, quadratic objective (sigma 1), no crashes,
    one record at the end (``record_every = iterations``)."""
    from ftsgd_jax.config import build_config

    choice("algorithm", algorithm, ALGORITHMS)
    raw = {
        "system": {"clusters": clusters_for(n)},
        "schedule": {"kind": "random"},
        "objective": {"kind": "quadratic", "dim": int(d), "sigma": 1.0},
        "algorithm": {"kind": algorithm, "rule": rule, "rounds": int(rounds)},
        "run": {
            "iterations": int(iterations),
            "scenarios": int(scenarios),
            "record_every": int(iterations),
            "seed": int(seed),
        },
    }
    return build_config(raw)


def measurement_row(
    kind: str, algorithm: str, n: int, d: int, scenarios: int, iterations: int, rule: str = "mean", rounds: int = GEN_ROUNDS
) -> dict[str, Any]:
    """The fields every measurement starts with (status ``ok`` until it is skipped)."""
    return {
        "kind": kind,
        "status": "ok",
        "reason": "",
        "algorithm": algorithm,
        "rule": rule,
        "rounds": int(rounds) if algorithm == "gen" else 1,
        "n": n,
        "d": d,
        "clusters": clusters_for(n),
        "scenarios": scenarios,
        "iterations": iterations,
    }


def skipped_row(kind: str, algorithm: str, n: int, d: int, scenarios: int, iterations: int, reason: str, rule: str = "mean"):
    """A measurement that did not run, with why."""
    return {**measurement_row(kind, algorithm, n, d, scenarios, iterations, rule), "status": "skipped", "reason": reason}


def is_headline(rule: str, n: int, d: int, scenarios: int) -> bool:
    return rule == "mean" and (n, d, scenarios) == (HEADLINE["n"], HEADLINE["d"], HEADLINE["scenarios"])


# --------------------------------------------------------------------------- the grid


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a suite measures."""

    mode: str
    engine: tuple[tuple[str, str, int, int, int], ...]  # (algorithm, rule, n, d, S), headline first
    reference: tuple[tuple[str, int, int, int, int], ...]  # (algorithm, n, d, sample, iterations)
    numpy: tuple[tuple[int, int, int], ...]  # (n, d, S)
    breakdown: tuple[tuple[int, int, int], ...]  # (n, d, S)
    repeats: int
    measurement_cap_seconds: float  # skip a measurement estimated to run longer
    budget_seconds: float  # soft limit of the whole suite: later grid points are skipped
    min_run_seconds: float = TARGET_RUN_SECONDS
    max_iterations: int = MAX_ITERATIONS
    min_iterations: int = 1
    only: str | None = None  # the one algorithm measured, or None for both


def suite_plan(quick: bool = False, only: str | None = None, budget_seconds: float | None = None) -> Plan:
    """The full grid, or the quick one (~1-2 minutes on 2 CPU cores); both start with the two
    headline configurations (sc and gen, n = 16, d = 10, S = 4096). ``only``: 'sc' or 'gen'
    (the NumPy baseline implements sc, so it goes with gen). ``budget_seconds`` replaces the
    mode's soft time limit."""
    n0, d0, s0 = HEADLINE["n"], HEADLINE["d"], HEADLINE["scenarios"]
    headline = [("sc", "mean", n0, d0, s0), ("gen", "mean", n0, d0, s0)]
    if quick:
        grid = list(headline)
        for algorithm in ALGORITHMS:
            grid += [(algorithm, "mean", 8, 10, 64), (algorithm, "mean", 8, 10, 1024), (algorithm, "mean", 32, 10, 1024)]
        grid += [("sc", "mean", 32, 1000, 64), ("gen", "safe_area", 8, 2, 16)]
        plan = Plan(
            mode="quick",
            engine=tuple(grid),
            reference=(("sc", n0, d0, 2, 60), ("gen", n0, d0, 2, 20)),
            numpy=((n0, d0, s0),),
            breakdown=((n0, d0, s0),),
            repeats=3,
            measurement_cap_seconds=10.0,
            budget_seconds=110.0,
            min_run_seconds=0.2,
            max_iterations=200,
            min_iterations=20,
        )
    else:
        grid = list(headline)
        for algorithm in ALGORITHMS:
            grid += [(algorithm, "mean", n, d, s) for n in (8, 32, 128) for d in (10, 1000) for s in (1, 64, 1024, 8192)]
        grid += [("gen", "safe_area", n, 2, s) for n in (8, 32) for s in (1, 64, 1024, 8192)]
        plan = Plan(
            mode="full",
            engine=tuple(grid),
            reference=tuple((a, n, 10, 2, 100 if a == "sc" else 30) for a in ALGORITHMS for n in (8, n0, 32)),
            numpy=((n0, d0, s0), *((n, d, 1024) for n in (8, 32, 128) for d in (10, 1000))),
            breakdown=((n0, d0, s0), (128, 1000, 256)),
            repeats=3,
            measurement_cap_seconds=90.0,
            budget_seconds=3600.0,
            min_iterations=10,
        )
    if budget_seconds is not None:
        plan = dataclasses.replace(plan, budget_seconds=real("--budget-seconds", budget_seconds, low=0, low_open=True))
    if only is not None:
        choice("--only", only, ALGORITHMS)
        plan = dataclasses.replace(
            plan,
            engine=tuple(e for e in plan.engine if e[0] == only),
            reference=tuple(r for r in plan.reference if r[0] == only),
            numpy=plan.numpy if only == "sc" else (),
            only=only,
        )
    return plan


# --------------------------------------------------------------------------- memory


def device_memory(device=None) -> dict[str, int] | None:
    """``memory_stats()`` of a device where it reports any (GPU, TPU); None on CPU."""
    import jax

    device = device or jax.devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - some backends raise instead of returning None
        return None
    return dict(stats) if stats else None


def host_memory() -> dict[str, int | None]:
    """Total and available host memory in bytes (``/proc/meminfo``; sysconf elsewhere)."""
    total = available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "MemTotal":
                total = int(value.split()[0]) * 1024
            elif key == "MemAvailable":
                available = int(value.split()[0]) * 1024
    except OSError:
        pass
    if total is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = None
    return {"total_bytes": total, "available_bytes": available if available is not None else total}


def memory_budget(device=None) -> dict[str, Any]:
    """The bytes one measurement may use: 80% of the free accelerator memory, or half of
    the available host memory on a CPU (the host also holds Python, XLA and the results)."""
    stats = device_memory(device)
    if stats and stats.get("bytes_limit"):
        free = int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
        return {"source": "device bytes_limit - bytes_in_use", "available_bytes": free, "budget_bytes": int(0.8 * free)}
    host = host_memory()
    available = host["available_bytes"] or 8 << 30
    return {"source": "host MemAvailable", "available_bytes": int(available), "budget_bytes": int(0.5 * available)}


def engine_bytes(algorithm: str, rule: str, n: int, d: int, scenarios: int) -> int:
    """The engine's own a-priori estimate (``devices.bytes_per_scenario``) for one chunk of
    a benchmark configuration; the compiled program's XLA figure is checked before running."""
    from ftsgd_jax.devices import DEFAULT_CHUNK, bytes_per_scenario

    config = bench_config(algorithm, n, d, scenarios, 1, rule)
    return bytes_per_scenario(config) * min(scenarios, DEFAULT_CHUNK)


# --------------------------------------------------------------------------- time


class CostModel:
    """Seconds per scenario-iteration, a priori (constants from a 2-core CPU) and then
    from the measurements: the grid runs in increasing S, so each configuration learns
    from the smaller batch of the same (algorithm, rule, n, d)."""

    PER_ITERATION_OVERHEAD = 5e-6  # scan step and dispatch, independent of S

    def __init__(self):
        self.measured: dict[tuple, float] = {}

    def per_scenario_iteration(self, algorithm: str, rule: str, n: int, d: int, iterations: int) -> float:
        key = (algorithm, rule, n, d)
        if key in self.measured:
            return self.measured[key]
        rounds = GEN_ROUNDS if algorithm == "gen" else 1
        per_round = 30e-9 * n * n * (1.2 if algorithm == "gen" else 1.0)
        cost = rounds * per_round + 15e-9 * n * d * (1 + (rounds if algorithm == "gen" else 0))
        if rule == "safe_area":
            cost += rounds * 25e-9 * n * (n * n + 4) ** 2
        cost += 1e-9 * n * n * d / max(iterations, 1)  # the final record's pairwise distances
        return cost

    def call_seconds(self, algorithm: str, rule: str, n: int, d: int, scenarios: int, iterations: int) -> float:
        per = self.per_scenario_iteration(algorithm, rule, n, d, iterations)
        return iterations * (self.PER_ITERATION_OVERHEAD + scenarios * per)

    def learn(self, row: Mapping[str, Any]) -> None:
        if row.get("status") == "ok" and row.get("best_scenario_iterations_per_second"):
            key = (row["algorithm"], row["rule"], row["n"], row["d"])
            measured = 1.0 / row["best_scenario_iterations_per_second"]
            # take the per-iteration overhead out, so a small batch does not inflate larger ones
            self.measured[key] = max(measured - self.PER_ITERATION_OVERHEAD / row["scenarios"], 0.2 * measured)


def choose_iterations(cost: CostModel, plan: Plan, algorithm: str, rule: str, n: int, d: int, scenarios: int) -> int:
    """Enough iterations for one call of the program to last ``min_run_seconds`` (estimated),
    at least ``plan.min_iterations`` (which amortise the final record) while a call stays
    within about a second and the warm-up and timed runs within the per-measurement cap, at most ``max_iterations``
    (shorter calls are repeated inside a timed run instead); never below 1."""
    per_iteration = max(cost.call_seconds(algorithm, rule, n, d, scenarios, 1), 1e-9)
    amortise = min(plan.min_iterations, math.floor(1.0 / per_iteration))  # only while a call stays ~1 s
    wanted = max(math.ceil(plan.min_run_seconds / per_iteration), amortise)
    affordable = math.floor((plan.measurement_cap_seconds - 3.0) / (plan.repeats + 1) / per_iteration)
    return int(max(1, min(wanted, plan.max_iterations, affordable)))
