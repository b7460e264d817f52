"""The benchmark harness: ``ftsgd bench`` and ``benchmarks/run_benchmarks.py``.

What it measures (see ``benchmarks/README.md`` for the columns and the caveats):

- :func:`bench_engine`: the compiled ``jit(vmap(scan))`` program of one configuration,
  compile time apart, best and median scenario-iterations per second over repeated runs;
- :func:`bench_reference`: the plain event-driven simulator (``reference.run_algorithm``),
  scenario by scenario, on a small sample, extrapolated per scenario-iteration;
- :func:`bench_numpy_sc`: a straightforward batched NumPy implementation of ``sc`` with
  the same schedule semantics (:func:`numpy_sc`), an honest plain-NumPy baseline;
- :func:`breakdown`: the parts of one ``sc`` iteration and one ``gen`` agreement round,
  each jitted and vmapped over scenarios, to show where the time goes;
- :func:`run_suite`: the grid, written to ``bench.json`` and ``bench.csv`` with the
  machine named, and a Markdown table for the README.

Timings never include compilation: every program is compiled (or run once) before the
timed runs, and every timed run ends with ``jax.block_until_ready``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ftsgd_jax.errors import ConfigError, choice

# jax and numpy are imported inside the functions that use them, so that registering the
# ``bench`` subcommand keeps the ``ftsgd`` command line quick to start.

HEADLINE = {"n": 16, "d": 10, "scenarios": 4096}
ALGORITHMS = ("sc", "gen")
TARGET_RUN_SECONDS = 0.2  # every timed run lasts at least this long (calls are repeated)
MAX_ITERATIONS = 2000  # beyond this, a timed run repeats calls instead of growing the scan

Progress = Callable[[str], Any]


# --------------------------------------------------------------------------- configs


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
    rounds: int = 3,
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


def estimate_engine_bytes(algorithm: str, n: int, d: int, scenarios: int, rule: str = "mean") -> int:
    """A conservative a-priori estimate of a batch's working memory (before compiling).

    Fitted from XLA's ``memory_analysis`` on a 2-core CPU with generous margins: the round's
    n x n time-stamp arrays, the (n, d) parameters, gradients and outputs, the (n, n, m)
    quorum arrays of ``gen`` and the O(n^5) per-view constraint clipping of ``safe_area``
    in d = 2. The compiled program's own figure is checked as well before running.
    """
    m = len(clusters_for(n))
    per = 4 * (12 * n * n + 8 * n * d) + 1024
    if algorithm == "gen":
        per += 4 * (12 * n * n + 4 * n * n * m + 4 * n * d)
        if rule == "safe_area":
            per += 24 * n * (n * n + 4) ** 2
    return int(per * scenarios)


# --------------------------------------------------------------------------- timing


def _stats(seconds: list[float], work: float) -> dict[str, Any]:
    best, median = min(seconds), statistics.median(seconds)
    return {
        "run_seconds": seconds,
        "best_seconds": best,
        "median_seconds": median,
        "best_scenario_iterations_per_second": work / best,
        "median_scenario_iterations_per_second": work / median,
        "scenario_iterations_per_second": work / best,
    }


def _memory_fields(device=None) -> dict[str, Any]:
    from ftsgd_jax.results import peak_rss_bytes

    fields: dict[str, Any] = {"peak_rss_bytes": peak_rss_bytes()}
    stats = device_memory(device)
    if stats:
        fields["device_peak_bytes_in_use"] = stats.get("peak_bytes_in_use")
        fields["device_bytes_in_use"] = stats.get("bytes_in_use")
        fields["device_bytes_limit"] = stats.get("bytes_limit")
    return fields


def _xla_bytes(compiled) -> int | None:
    try:
        analysis = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - not every backend implements it
        return None
    if analysis is None:
        return None
    total = 0
    for name in ("temp_size_in_bytes", "argument_size_in_bytes", "output_size_in_bytes"):
        total += int(getattr(analysis, name, 0) or 0)
    return total


def _time_best(
    fn: Callable[[], Any], repeats: int = 5, min_seconds: float = 0.02, max_seconds: float = 2.0
) -> tuple[float, int]:
    """Best seconds per call of ``fn`` (which blocks), after a warm-up call; short calls are
    repeated inside each timed run so that a run lasts ``min_seconds``, and slow ones get
    fewer runs (about ``max_seconds`` in all, at least one)."""
    started = time.perf_counter()
    fn()
    first = max(time.perf_counter() - started, 1e-7)
    calls = max(1, math.ceil(min_seconds / first))
    repeats = max(1, min(repeats, math.ceil(max_seconds / (first * calls))))  # slow parts: fewer
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - started) / calls)
    return best, calls


# --------------------------------------------------------------------------- engine


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
    import jax

    from ftsgd_jax import devices, engine

    config = bench_config(algorithm, n, d, scenarios, iterations, rule, rounds, seed)
    row = _engine_row(config, repeats)
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
    row["xla_bytes"] = _xla_bytes(program)
    if memory_budget_bytes is not None and row["xla_bytes"] and row["xla_bytes"] > memory_budget_bytes:
        row.update(
            status="skipped",
            reason=f"XLA memory analysis {_gib(row['xla_bytes'])} exceeds the budget {_gib(memory_budget_bytes)}",
        )
        return row

    def run_all():
        out = None
        for inputs in batches:
            out = program(inputs)
        return jax.block_until_ready(out)

    started = time.perf_counter()
    run_all()
    first = time.perf_counter() - started
    calls = max(1, math.ceil(min_run_seconds / max(first, 1e-6)))
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(calls):
            run_all()
        seconds.append(time.perf_counter() - started)
    work = float(scenarios) * iterations * calls
    row.update(first_run_seconds=first, calls_per_run=calls, **_stats(seconds, work), **_memory_fields(device))
    row["scenario_rounds_per_second"] = row["best_scenario_iterations_per_second"] * (rounds if algorithm == "gen" else 1)
    return row


def _engine_row(config, repeats: int) -> dict[str, Any]:
    spec = config.algorithm
    return {
        "kind": "engine",
        "status": "ok",
        "reason": "",
        "algorithm": spec.kind,
        "rule": spec.rule if spec.kind == "gen" else "mean",
        "rounds": int(spec.rounds) if spec.kind == "gen" else 1,
        "n": config.topology.n,
        "d": config.objective.dim,
        "clusters": list(config.topology.cluster_sizes),
        "scenarios": config.run.scenarios,
        "iterations": config.run.iterations,
        "repeats": repeats,
    }


# --------------------------------------------------------------------------- reference


def bench_reference(
    algorithm: str,
    n: int,
    d: int,
    scenarios_sample: int = 2,
    iterations: int = 50,
    *,
    rounds: int = 3,
    engine_rate: float | None = None,
    baseline_iterations: int | None = None,
) -> dict[str, Any]:
    """The plain event-driven reference (``reference.run_algorithm``), one scenario at a time.

    Each sampled scenario runs twice, for ``iterations`` and for ``baseline_iterations``
    (default ``iterations // 5``, at least 1). Every call has fixed costs besides its event
    loop: rebuilding the scenario's time stamps from its key (timed inside the call) and
    compiling its small gradient function. Rates per scenario-iteration:

    - ``scenario_iterations_per_second`` (used for the ratio): the marginal rate of the
      event loop, ``(iterations - baseline_iterations) / (time_T - time_T0)``, which drops
      every fixed per-call cost, so the ratio engine/reference is the conservative one;
      best and median over the sampled scenarios;
    - ``total_scenario_iterations_per_second``: everything ``run_algorithm`` does at
      ``iterations``, fixed costs included.
    """
    from ftsgd_jax import engine, reference

    base = max(1, iterations // 5) if baseline_iterations is None else int(baseline_iterations)

    def event_loops(steps: int) -> tuple[list[float], list[float]]:
        """(seconds of each call, seconds of each call's event loop, its schedule rebuilt apart)."""
        config = bench_config(algorithm, n, d, scenarios_sample, steps, "mean", rounds)
        engine.scenario_schedule(config, 0)  # build the shared simulator of this configuration first
        calls, loops = [], []
        for index in range(scenarios_sample):
            started = time.perf_counter()
            schedule = engine.scenario_schedule(config, index)
            rebuilt = time.perf_counter()
            reference.run_algorithm(config, index, schedule)
            calls.append(time.perf_counter() - started)
            loops.append(max(calls[-1] - (rebuilt - started), 1e-9))
        return calls, loops

    calls, loops = event_loops(iterations)
    marginal = []
    if base < iterations:
        _, short = event_loops(base)
        marginal = [(iterations - base) / (a - b) for a, b in zip(loops, short) if a > b]
    if not marginal:  # no baseline, or timing noise: fall back to the whole event loop
        marginal = [iterations / loop for loop in loops]
    row = {
        "kind": "reference",
        "status": "ok",
        "reason": "",
        "algorithm": algorithm,
        "rule": "mean",
        "rounds": rounds if algorithm == "gen" else 1,
        "n": n,
        "d": d,
        "clusters": clusters_for(n),
        "scenarios": scenarios_sample,
        "iterations": iterations,
        "baseline_iterations": base,
        "call_seconds": calls,
        "event_loop_seconds": loops,
        "total_scenario_iterations_per_second": scenarios_sample * iterations / sum(calls),
        "best_scenario_iterations_per_second": max(marginal),
        "median_scenario_iterations_per_second": statistics.median(marginal),
        "scenario_iterations_per_second": statistics.median(marginal),
    }
    if engine_rate:
        row["engine_scenario_iterations_per_second"] = engine_rate
        row["ratio"] = engine_rate / row["scenario_iterations_per_second"]
    return row


# --------------------------------------------------------------------------- NumPy baseline


class NumpySCRun(NamedTuple):
    x: np.ndarray  # (S, n, d) parameters after the last iteration
    clock: np.ndarray  # (S, n) end of each process's last round
    finished: np.ndarray  # (S, n) bool: finished the last iteration
    view: np.ndarray  # (S, n, n) bool: views of the last iteration
    view_min: np.ndarray  # (S,) smallest view of a finishing process over the run


def numpy_sc(
    clusters: Iterable[int],
    d: int,
    scenarios: int,
    iterations: int,
    *,
    schedule: str = "random",
    seed: int = 0,
    sigma: float = 1.0,
    mu: float = 1.0,
    L: float | None = None,
    x_star: float | np.ndarray = 1.0,
    x0: float | np.ndarray = 0.0,
    crash_time: np.ndarray | None = None,
    compute_mean: float = 1.0,
    read_mean: float = 0.1,
    send_mean: float = 0.1,
    delay_mean: float = 1.0,
    step_offset: float = 1.0,
) -> NumpySCRun:
    """The ``sc`` algorithm on a batch of scenarios in plain NumPy (float32).

    Same semantics as the engine (``schedule.resolve_round`` with ``wait=False`` and
    ``agreement.view_mean``), written directly: PCG64 exponential durations, read
    offsets, send offsets and delays (``schedule = "random"``; ``"sync"``: every duration
    ``compute_mean``, no offsets or delays), collects and message arrivals by time-stamp
    comparison, ``V = (M @ S) > 0``, then ``x_p <- mean{y_q : q in V_p}`` with
    ``y = x - alpha_t G(x)``, ``alpha_t = 1 / (mu (t + step_offset))`` on the quadratic
    ``Q = 1/2 sum_i h_i (x_i - x*_i)^2``, ``h = linspace(mu, L, d)``, Gaussian noise of
    total variance ``sigma^2``. Not bit-identical to the engine (other generator, no time
    grid), but the same distribution of executions.
    """

    choice("schedule", schedule, ("random", "sync"))
    sizes = [int(c) for c in clusters]
    n = sum(sizes)
    f32 = np.float32
    gen = np.random.Generator(np.random.PCG64(seed))
    cluster_of = np.repeat(np.arange(len(sizes)), sizes)
    mates = cluster_of[:, None] == cluster_of[None, :]
    others = ~mates
    eye = np.eye(n, dtype=bool)
    h = np.linspace(mu, mu if L is None else L, d).astype(f32)
    target = np.broadcast_to(np.asarray(x_star, f32), (d,))
    x = np.array(np.broadcast_to(np.asarray(x0, f32), (scenarios, n, d)), dtype=f32)
    clock = np.zeros((scenarios, n), f32)
    crash = np.full((scenarios, n), np.inf, f32) if crash_time is None else np.broadcast_to(
        np.asarray(crash_time, f32), (scenarios, n)
    )
    noise_scale = f32(sigma / math.sqrt(d))
    view = np.zeros((scenarios, n, n), bool)
    finished = np.zeros((scenarios, n), bool)
    view_min = np.full(scenarios, n, np.int64)

    def happens(t, kappa):
        return (t <= kappa) & np.isfinite(t)

    for t in range(iterations):
        alpha = f32(1.0 / (mu * (t + step_offset)))
        gradient = h * (x - target)
        if sigma:
            gradient += noise_scale * gen.standard_normal((scenarios, n, d), dtype=f32)
        y = x - alpha * gradient
        if schedule == "random":
            compute = f32(compute_mean) * gen.standard_exponential((scenarios, n), dtype=f32)
            read = f32(read_mean) * gen.standard_exponential((scenarios, n, n), dtype=f32)
            send = f32(send_mean) * gen.standard_exponential((scenarios, n, n), dtype=f32)
            delay = f32(delay_mean) * gen.standard_exponential((scenarios, n, n), dtype=f32)
            read[:, eye] = 0.0
        else:
            compute = np.full((scenarios, n), compute_mean, f32)
            read = send = delay = np.zeros((scenarios, n, n), f32)
        write = clock + compute
        wrote = happens(write, crash)
        read_time = write[:, :, None] + read
        collect = mates & happens(read_time, crash[:, :, None]) & wrote[:, None, :] & (write[:, None, :] <= read_time)
        collect_end = write + np.max(np.where(mates, read, 0.0), axis=2)
        send_time = collect_end[:, :, None] + send
        sent = others & happens(collect_end, crash)[:, :, None] & happens(send_time, crash[:, :, None])
        arrival = np.where(sent, send_time + delay, np.inf)
        end = collect_end + np.max(np.where(others, send, 0.0), axis=2)
        finished = happens(end, crash)
        received = finished[:, :, None] & (np.swapaxes(arrival, 1, 2) <= end[:, :, None])
        holds = (received | eye).astype(f32)
        view = finished[:, :, None] & (np.matmul(holds, collect.astype(f32)) > 0)
        counts = view.sum(axis=2)
        averaged = np.matmul(view.astype(f32), y) / np.maximum(counts, 1)[:, :, None].astype(f32)
        x = np.where((finished & (counts > 0))[:, :, None], averaged, x)
        clock = end.astype(f32)
        view_min = np.minimum(view_min, np.where(finished, counts, n).min(axis=1))
    return NumpySCRun(x, clock, finished, view, view_min)


def bench_numpy_sc(
    n: int,
    d: int,
    scenarios: int,
    iterations: int | None = None,
    *,
    repeats: int = 3,
    engine_rate: float | None = None,
    min_run_seconds: float = TARGET_RUN_SECONDS,
) -> dict[str, Any]:
    """Throughput of :func:`numpy_sc` on the benchmark configuration (random schedule).

    ``iterations=None`` picks enough iterations for a run of ``min_run_seconds`` from one
    timed iteration. With ``engine_rate`` the ratio engine/NumPy is reported.
    """
    clusters = clusters_for(n)
    started = time.perf_counter()
    numpy_sc(clusters, d, scenarios, 1)
    first = time.perf_counter() - started
    if iterations is None:
        iterations = max(1, math.ceil(min_run_seconds / max(first, 1e-6)))
    seconds = []
    for seed in range(repeats):
        started = time.perf_counter()
        numpy_sc(clusters, d, scenarios, iterations, seed=seed)
        seconds.append(time.perf_counter() - started)
    row = {
        "kind": "numpy",
        "status": "ok",
        "reason": "",
        "algorithm": "sc",
        "rule": "mean",
        "rounds": 1,
        "n": n,
        "d": d,
        "clusters": clusters,
        "scenarios": scenarios,
        "iterations": iterations,
        "repeats": repeats,
        **_stats(seconds, float(scenarios) * iterations),
        **_memory_fields(),
    }
    if engine_rate:
        row["engine_scenario_iterations_per_second"] = engine_rate
        row["ratio"] = engine_rate / row["scenario_iterations_per_second"]
    return row


# --------------------------------------------------------------------------- breakdown


def breakdown(n: int, d: int, scenarios: int, *, safe_area_scenarios: int = 32, repeats: int = 5) -> dict[str, Any]:
    """Seconds per scenario-iteration (per scenario-round for a ``gen`` round) of each part.

    Each part is its own ``jit(vmap(...))`` over ``scenarios`` (safe_area over at most
    ``safe_area_scenarios``, as it is O(n^5) per round), best of ``repeats`` timed runs:
    ``draws`` (``draw_round``), ``draws_threefry`` (the same count of exponentials from
    JAX's threefry, for comparison), ``views_sc``/``views_gen`` (``resolve_round`` without
    and with the quorum wait), ``gradients`` (``stochastic_grad`` vmapped over processes,
    keys included), ``averaging_sc`` (``agreement.view_mean``, the sc update),
    ``agreement_mean`` (``apply_rule('mean')``, the gen update), ``agreement_safe_area_d2``
    (``apply_rule('safe_area')`` in d = 2, f = 1), ``record`` (``metrics.record``, once per
    record), and the fused ``sc_iteration`` / ``gen_iteration`` (the engine's own steps,
    ``algorithms.ALGORITHMS[...].iteration``, with everything they do). A standalone part
    also writes its outputs to memory, which the fused engine often avoids: the parts need
    not add up to the fused time.
    """
    import jax
    import jax.numpy as jnp

    from ftsgd_jax import agreement, algorithms, engine, metrics, rng
    from ftsgd_jax.model import NEVER, CrashPoints
    from ftsgd_jax.schedule import ScenarioDraws, draw_round, resolve_round

    def setup(algorithm: str):
        """The engine's plan and per-scenario setup of a bench configuration, batched (the
        scheduler's parameters ride as arrays; its kind is put back inside each step)."""
        config = bench_config(algorithm, n, d, scenarios, 1, "mean", 3)
        static = engine.static_part(config)
        plan = engine.make_plan(static)
        inputs = engine.scenario_inputs(config, np.arange(scenarios))

        def arrays(lane):
            scenario = engine.scenario_setup(static, plan, lane)
            return scenario._replace(scheduler=scenario.scheduler.params)

        return config, plan, jax.vmap(arrays)(inputs)

    config, sc_plan, sc_scenario = setup("sc")
    _, gen_plan, gen_scenario = setup("gen")
    topology, objective, scheduler = config.topology, config.objective, config.scheduler
    fixtures = ScenarioDraws(slow=jnp.zeros((n,), bool))
    quorum = "weighted"
    keys = jax.vmap(lambda i: rng.fold_in(rng.seed_key(0), i))(jnp.arange(scenarios, dtype=jnp.uint32))
    threefry = jax.random.split(jax.random.PRNGKey(0), scenarios)
    clock = jnp.zeros((scenarios, n), jnp.float32)
    crash = jnp.full((scenarios, n), jnp.inf, jnp.float32)
    x = jnp.broadcast_to(objective.x0.astype(jnp.float32), (scenarios, n, d))
    alpha = jnp.float32(0.5)
    count = n + 3 * n * n

    def draws_of(key):
        return draw_round(key, topology, scheduler, fixtures, quorum)

    def views_of(draws, clk, kappa, wait):
        outcome = resolve_round(topology, clk, kappa, draws, wait=wait, quorum=quorum)
        return outcome.view, outcome.end_time, outcome.finished

    def gradients_of(xs, key):
        point_keys = jax.vmap(lambda p: algorithms.gradient_key(key, 0, p))(jnp.arange(n))
        return xs - alpha * jax.vmap(objective.stochastic_grad)(xs, point_keys)

    def iteration_of(plan):
        step = algorithms.ALGORITHMS[plan.spec.kind].iteration

        def one(scenario, state):
            scenario = scenario._replace(scheduler=dataclasses.replace(scheduler, params=scenario.scheduler))
            return step(plan, scenario, state, jnp.int32(0)).x

        return one

    start = jax.vmap(lambda scenario: algorithms.initial_state(sc_plan, scenario.crash))(sc_scenario)

    never = CrashPoints(jnp.full((n,), NEVER, jnp.int32), jnp.zeros((n,), jnp.float32))

    def record_of(xs):
        state = algorithms.initial_state(sc_plan, never)._replace(x=xs, view_size=jnp.full((n,), n, jnp.int32))
        return metrics.record(objective, state, jnp.bool_(True), jnp.int32(0))

    batched = {
        "draws": (jax.jit(jax.vmap(draws_of)), (keys,)),
        "draws_threefry": (jax.jit(jax.vmap(lambda k: jax.random.exponential(k, (count,)))), (threefry,)),
    }
    draws = jax.block_until_ready(batched["draws"][0](keys))
    batched["views_sc"] = (jax.jit(jax.vmap(lambda dr, c, k: views_of(dr, c, k, False))), (draws, clock, crash))
    batched["views_gen"] = (jax.jit(jax.vmap(lambda dr, c, k: views_of(dr, c, k, True))), (draws, clock, crash))
    view_gen = jax.block_until_ready(batched["views_gen"][0](draws, clock, crash))[0]
    batched["gradients"] = (jax.jit(jax.vmap(gradients_of)), (x, keys))
    values = x + jax.random.normal(jax.random.PRNGKey(1), x.shape)
    batched["averaging_sc"] = (jax.jit(jax.vmap(agreement.view_mean)), (values, view_gen))
    batched["agreement_mean"] = (jax.jit(jax.vmap(lambda v, w: agreement.apply_rule("mean", v, w))), (values, view_gen))
    batched["record"] = (jax.jit(jax.vmap(record_of)), (values,))
    batched["sc_iteration"] = (jax.jit(jax.vmap(iteration_of(sc_plan))), (sc_scenario, start))
    batched["gen_iteration"] = (jax.jit(jax.vmap(iteration_of(gen_plan))), (gen_scenario, start))
    small = min(scenarios, safe_area_scenarios)
    points = jax.random.normal(jax.random.PRNGKey(2), (small, n, 2))
    safe = jax.jit(jax.vmap(lambda v, w: agreement.apply_rule("safe_area", v, w, 1)))

    parts: dict[str, dict[str, Any]] = {}
    units = {
        "draws": "scenario-round",
        "draws_threefry": "scenario-round",
        "views_sc": "scenario-round",
        "views_gen": "scenario-round",
        "gradients": "scenario-iteration",
        "averaging_sc": "scenario-iteration",
        "agreement_mean": "scenario-round",
        "agreement_safe_area_d2": "scenario-round",
        "record": "scenario-record",
        "sc_iteration": "scenario-iteration",
        "gen_iteration": "scenario-iteration",
    }
    failed: dict[str, str] = {}
    for name, (fn, args) in [*batched.items(), ("agreement_safe_area_d2", (safe, (points, view_gen[:small])))]:
        started = time.perf_counter()
        try:
            jax.block_until_ready(fn(*args))  # compile + first run, untimed
        except Exception as error:  # noqa: BLE001 - one broken part must not sink the suite
            failed[name] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            continue
        compile_seconds = time.perf_counter() - started
        best, calls = _time_best(lambda fn=fn, args=args: jax.block_until_ready(fn(*args)), repeats)
        lanes = small if name == "agreement_safe_area_d2" else scenarios
        parts[name] = {
            "seconds_per_call": best,
            "calls_per_run": calls,
            "scenarios": lanes,
            "unit": units[name],
            "seconds_per_unit": best / lanes,
            "first_call_seconds": compile_seconds,
        }
    fused = parts.get("sc_iteration", {}).get("seconds_per_unit")
    for name, part in parts.items():
        part["share_of_sc_iteration"] = part["seconds_per_unit"] / fused if fused else None
    sc_parts = [name for name in ("draws", "views_sc", "gradients", "averaging_sc") if name in parts]
    dominant = max(sc_parts, key=lambda name: parts[name]["seconds_per_unit"]) if sc_parts else None
    return {
        "n": n,
        "d": d,
        "scenarios": scenarios,
        "clusters": clusters_for(n),
        "random_numbers_per_round": count,
        "gradient_normals_per_iteration": n * d,
        "parts": parts,
        "failed_parts": failed,
        "dominant_sc_part": dominant,
    }


# --------------------------------------------------------------------------- the suite


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


def suite_plan(quick: bool = False, tiny: bool = False, only: str | None = None) -> Plan:
    n0, d0, s0 = HEADLINE["n"], HEADLINE["d"], HEADLINE["scenarios"]
    if tiny:
        plan = Plan(
            mode="tiny",
            engine=(("sc", "mean", 4, 2, 4), ("gen", "mean", 4, 2, 4)),
            reference=(("sc", 4, 2, 1, 2), ("gen", 4, 2, 1, 1)),
            numpy=((4, 2, 4),),
            breakdown=(),
            repeats=2,
            measurement_cap_seconds=10.0,
            budget_seconds=60.0,
            min_run_seconds=0.001,
            max_iterations=4,
        )
    elif quick:
        grid = [("sc", "mean", n0, d0, s0), ("gen", "mean", n0, d0, s0)]
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
        grid = [("sc", "mean", n0, d0, s0), ("gen", "mean", n0, d0, s0)]
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
    if only is not None:
        choice("--only", only, ALGORITHMS)
        plan = dataclasses.replace(
            plan,
            engine=tuple(e for e in plan.engine if e[0] == only),
            reference=tuple(r for r in plan.reference if r[0] == only),
            numpy=plan.numpy if only == "sc" else (),
        )
    return plan


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
        rounds = 3 if algorithm == "gen" else 1
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


def run_suite(
    out_dir: str | Path,
    quick: bool = False,
    progress: Progress | None = print,
    *,
    tiny: bool = False,
    only: str | None = None,
    device=None,
    budget_seconds: float | None = None,
) -> dict[str, Any]:
    """Run the benchmark grid and write ``bench.json`` and ``bench.csv`` to ``out_dir``.

    ``quick``: a small grid (~1-2 minutes on 2 CPU cores) that always includes the two
    headline configurations (sc and gen, n = 16, d = 10, S = 4096); ``tiny``: a smoke test
    of seconds (tests). ``only``: 'sc' or 'gen'. ``device``: a ``jax.Device`` to run on.
    Measurements whose memory (estimated, then from XLA's analysis) exceeds the budget, or
    whose estimated time exceeds the plan's cap or the rest of the suite budget, are
    recorded as skipped with the reason. Returns the JSON payload; its ``markdown`` key
    holds the README table.
    """
    import jax

    from ftsgd_jax import results

    say = progress or (lambda _message: None)
    plan = suite_plan(quick, tiny, only)
    if budget_seconds is not None:
        plan = dataclasses.replace(plan, budget_seconds=float(budget_seconds))
    out = Path(out_dir)
    started = time.perf_counter()
    with jax.default_device(device) if device is not None else contextlib.nullcontext():
        machine = machine_info(device)
        memory = memory_budget(device)
        say(f"bench ({plan.mode}) on {machine['cpu']}, {machine['cores']} cores, backend {machine['backend']}; "
            f"memory budget {_gib(memory['budget_bytes'])} ({memory['source']})")
        cost = CostModel()
        rows: list[dict[str, Any]] = []
        engine_rates: dict[tuple, float] = {}
        # the first entries (the headline configurations) are skipped for memory only, never for time
        headline_count = len(ALGORITHMS) if only is None else 1

        for position, (algorithm, rule, n, d, scenarios) in enumerate(plan.engine):
            label = f"engine {algorithm}/{rule} n={n} d={d} S={scenarios}"
            iterations = choose_iterations(cost, plan, algorithm, rule, n, d, scenarios)
            estimate = estimate_engine_bytes(algorithm, n, d, min(scenarios, 4096), rule)
            call = cost.call_seconds(algorithm, rule, n, d, scenarios, iterations)
            expected = (plan.repeats + 1) * max(call, plan.min_run_seconds) + 3.0  # + compile
            elapsed = time.perf_counter() - started
            reason = ""
            if estimate > memory["budget_bytes"]:
                reason = f"estimated memory {_gib(estimate)} exceeds the budget {_gib(memory['budget_bytes'])}"
            elif position >= headline_count and expected > plan.measurement_cap_seconds:
                reason = f"estimated {expected:.0f} s exceeds the per-measurement cap {plan.measurement_cap_seconds:.0f} s"
            elif position >= headline_count and elapsed + expected > plan.budget_seconds:
                reason = f"suite time budget ({plan.budget_seconds:.0f} s) spent"
            if reason:
                row = {
                    "kind": "engine", "status": "skipped", "reason": reason, "algorithm": algorithm, "rule": rule,
                    "rounds": 3 if algorithm == "gen" else 1, "n": n, "d": d, "clusters": clusters_for(n),
                    "scenarios": scenarios, "iterations": iterations,
                }
                say(f"{label}: skipped ({reason})")
            else:
                row = bench_engine(
                    algorithm, n, d, scenarios, iterations, rule, 3, plan.repeats,
                    min_run_seconds=plan.min_run_seconds, memory_budget_bytes=memory["budget_bytes"], device=device,
                )
                cost.learn(row)
                if row["status"] == "ok":
                    engine_rates[(algorithm, rule, n, d, scenarios)] = row["best_scenario_iterations_per_second"]
                    say(f"{label}: {row['best_scenario_iterations_per_second']:,.0f} scenario-iterations/s "
                        f"(T={iterations}, compile {row['compile_seconds']:.1f} s)")
                else:
                    say(f"{label}: skipped ({row['reason']})")
            row["estimated_bytes"] = estimate
            row["headline"] = rule == "mean" and (n, d, scenarios) == (HEADLINE["n"], HEADLINE["d"], HEADLINE["scenarios"])
            rows.append(row)

        def engine_rate(algorithm, n, d, scenarios=None):
            matches = [
                (s, rate) for (a, r, nn, dd, s), rate in engine_rates.items() if a == algorithm and r == "mean" and nn == n and dd == d
            ]
            exact = [rate for s, rate in matches if s == scenarios]
            if exact:
                return exact[0]
            return max((rate for _, rate in matches), default=None)

        for algorithm, n, d, sample, iterations in plan.reference:
            if time.perf_counter() - started > plan.budget_seconds and rows:
                rows.append(_skipped("reference", algorithm, n, d, sample, iterations, "suite time budget spent"))
                continue
            row = bench_reference(algorithm, n, d, sample, iterations, engine_rate=engine_rate(algorithm, n, d))
            rows.append(row)
            say(f"reference {algorithm} n={n} d={d}: {row['scenario_iterations_per_second']:,.1f} scenario-iterations/s"
                + (f" (engine {row['ratio']:,.0f}x)" if row.get("ratio") else ""))

        for n, d, scenarios in plan.numpy:
            need = 4 * scenarios * (10 * n * n + 6 * n * d)
            if need > memory["budget_bytes"]:
                rows.append(_skipped("numpy", "sc", n, d, scenarios, 0, f"estimated memory {_gib(need)} exceeds the budget"))
                continue
            if time.perf_counter() - started > plan.budget_seconds:
                rows.append(_skipped("numpy", "sc", n, d, scenarios, 0, "suite time budget spent"))
                continue
            row = bench_numpy_sc(
                n, d, scenarios, repeats=plan.repeats, engine_rate=engine_rate("sc", n, d, scenarios),
                min_run_seconds=plan.min_run_seconds,
            )
            rows.append(row)
            say(f"numpy sc n={n} d={d} S={scenarios}: {row['scenario_iterations_per_second']:,.0f} scenario-iterations/s"
                + (f" (engine {row['ratio']:,.1f}x)" if row.get("ratio") else ""))

        breakdowns = []
        for n, d, scenarios in plan.breakdown:
            if time.perf_counter() - started > plan.budget_seconds and breakdowns:
                break
            result = breakdown(n, d, scenarios)
            rate = engine_rate("sc", n, d, scenarios)
            if rate:
                result["engine_sc_seconds_per_scenario_iteration"] = 1.0 / rate
            breakdowns.append(result)
            for name, part in result["parts"].items():
                rows.append({
                    "kind": "breakdown", "status": "ok", "reason": "", "part": name, "n": n, "d": d,
                    "clusters": clusters_for(n), "scenarios": part["scenarios"], "unit": part["unit"],
                    "seconds_per_unit": part["seconds_per_unit"], "share_of_sc_iteration": part["share_of_sc_iteration"],
                })
            say(f"breakdown n={n} d={d} S={scenarios}: dominant sc part {result['dominant_sc_part']}")

    payload = {
        "mode": plan.mode,
        "only": only,
        "machine": machine,
        "memory": memory,
        "total_seconds": time.perf_counter() - started,
        "plan": dataclasses.asdict(plan),
        "measurements": rows,
        "skipped": [row for row in rows if row.get("status") == "skipped"],
        "breakdown": breakdowns,
    }
    payload["markdown"] = markdown_table(payload)
    out.mkdir(parents=True, exist_ok=True)
    results.write_json(out / "bench.json", payload)
    results.write_atomic(out / "bench.csv", csv_text(rows, machine).encode())
    say(payload["markdown"])
    say(f"wrote {out / 'bench.json'} and {out / 'bench.csv'} in {payload['total_seconds']:.0f} s")
    return payload


def _skipped(kind, algorithm, n, d, scenarios, iterations, reason) -> dict[str, Any]:
    return {
        "kind": kind, "status": "skipped", "reason": reason, "algorithm": algorithm, "rule": "mean",
        "rounds": 3 if algorithm == "gen" else 1, "n": n, "d": d, "clusters": clusters_for(n),
        "scenarios": scenarios, "iterations": iterations,
    }


# --------------------------------------------------------------------------- outputs


def machine_info(device=None) -> dict[str, Any]:
    """``results.environment()`` plus what a benchmark reader needs about threads and memory."""
    import jax

    from ftsgd_jax.results import environment

    info = environment()
    try:
        info["usable_cores"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["usable_cores"] = info.get("cores")
    info["device"] = str(device or jax.devices()[0])
    info["device_kind"] = getattr(device or jax.devices()[0], "device_kind", None)
    info["host_memory"] = host_memory()
    info["threads_env"] = {k: os.environ[k] for k in ("XLA_FLAGS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ}
    return info


CSV_COLUMNS = (
    "kind", "status", "reason", "algorithm", "rule", "rounds", "part", "n", "d", "clusters", "scenarios", "iterations",
    "chunk", "repeats", "calls_per_run", "compile_seconds", "first_run_seconds", "best_seconds", "median_seconds",
    "best_scenario_iterations_per_second", "median_scenario_iterations_per_second", "scenario_rounds_per_second",
    "ratio", "engine_scenario_iterations_per_second", "total_scenario_iterations_per_second", "unit",
    "seconds_per_unit", "share_of_sc_iteration", "estimated_bytes", "xla_bytes", "peak_rss_bytes",
    "device_peak_bytes_in_use", "headline", "cpu", "cores", "backend", "devices",
)


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


def _gib(value: float | None) -> str:
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
    for row in payload["measurements"]:
        if row["kind"] == "breakdown":
            continue
        algorithm = row["algorithm"] + (f" ({row['rule']}, R={row['rounds']})" if row["algorithm"] == "gen" else "")
        what = row["kind"] + (" (headline)" if row.get("headline") else "")
        if row["status"] != "ok":
            lines.append(
                f"| {what} | {algorithm} | {row['n']} | {row['d']} | {row['scenarios']} | {row.get('iterations') or '-'} "
                f"| - | - | - | - | {_gib(row.get('xla_bytes') or row.get('estimated_bytes'))} | skipped: {row['reason']} |"
            )
            continue
        ratio = row.get("ratio")
        vs = f"engine {ratio:,.1f}x" if ratio else "-"
        compile_s = f"{row['compile_seconds']:.1f}" if "compile_seconds" in row else "-"
        memory = _gib(row.get("xla_bytes")) if row["kind"] == "engine" else "-"
        note = ""
        if row["kind"] == "reference":
            note = (f"{row['scenarios']} scenarios, marginal per iteration (T={row['baseline_iterations']}..{row['iterations']}); "
                    f"{_rate(row['total_scenario_iterations_per_second'])}/s all-in at T={row['iterations']}")
        elif row["kind"] == "engine":
            note = f"chunk {row['chunk']}, {row['calls_per_run']} call(s)/run"
        lines.append(
            f"| {what} | {algorithm} | {row['n']} | {row['d']} | {row['scenarios']} | {row['iterations']} | {compile_s} "
            f"| {_rate(row['best_scenario_iterations_per_second'])} | {_rate(row['median_scenario_iterations_per_second'])} "
            f"| {vs} | {memory} | {note} |"
        )
    for result in payload.get("breakdown", []):
        lines += [
            "",
            f"Breakdown at n={result['n']}, d={result['d']}, S={result['scenarios']} "
            f"(each part its own jit(vmap); {result['random_numbers_per_round']} random numbers per round, "
            f"{result['gradient_normals_per_iteration']} gradient normals per iteration):",
            "",
            "| part | per | µs per scenario-unit | share of fused sc iteration |",
            "|---|---|---:|---:|",
        ]
        for name, part in result["parts"].items():
            lines.append(
                f"| {name} | {part['unit']} | {part['seconds_per_unit'] * 1e6:.3f} | {_share(part['share_of_sc_iteration'])} |"
            )
        for name, message in result.get("failed_parts", {}).items():
            lines.append(f"| {name} | - | failed: {message} | - |")
        whole = result.get("engine_sc_seconds_per_scenario_iteration")
        if whole:
            fused = result["parts"].get("sc_iteration", {}).get("seconds_per_unit")
            lines.append(
                f"| engine sc (whole run) | scenario-iteration | {whole * 1e6:.3f} | {_share(whole / fused if fused else None)} |"
            )
    return "\n".join(lines)


# --------------------------------------------------------------------------- CLI


def resolve_device(kind: str | None):
    """The first device of ``kind`` ('cpu', 'gpu' or 'tpu'); ConfigError naming what exists."""
    if kind is None:
        return None
    from ftsgd_jax.devices import select_devices

    return select_devices(str(kind).lower(), field="--device")[0]


def command_bench(args: argparse.Namespace) -> int:
    only = args.only
    if only is not None:
        only = choice("--only", only, ALGORITHMS)
    budget = getattr(args, "budget_seconds", None)
    if budget is not None and not budget > 0:
        raise ConfigError("--budget-seconds", f"need a number of seconds > 0, got {budget!r}")
    device = resolve_device(args.device)
    payload = run_suite(args.out, quick=args.quick, progress=_split_progress, only=only, device=device, budget_seconds=budget)
    return 0 if payload["measurements"] else 1


def _split_progress(message: str) -> None:
    """Progress lines to stderr; the Markdown table (multi-line) to stdout."""
    stream = sys.stdout if "\n" in message else sys.stderr
    print(message, file=stream, flush=True)


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``ftsgd bench [--out DIR] [--quick] [--only sc|gen] [--device cpu|gpu|tpu]``."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmark the engine against the reference and a NumPy baseline",
        description="Time the compiled engine over a grid of sizes, the event-driven reference and a plain "
        "NumPy sc baseline, and break one iteration into parts; writes bench.json and bench.csv.",
    )
    parser.add_argument("--out", default="results/bench", help="output folder (default: results/bench)")
    parser.add_argument("--quick", action="store_true", help="a small grid (~1-2 minutes on 2 CPU cores)")
    parser.add_argument("--only", default=None, metavar="sc|gen", help="benchmark one algorithm only")
    parser.add_argument("--device", default=None, metavar="cpu|gpu|tpu", help="run on this kind of device")
    parser.add_argument(
        "--budget-seconds", type=float, default=None, metavar="S",
        help="soft time limit of the suite: later grid points are skipped (default: 110 quick, 3600 full)",
    )
    parser.set_defaults(handler=command_bench)
    return parser
