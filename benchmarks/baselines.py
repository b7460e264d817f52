"""What the engine is compared with: the library's event-driven reference, timed scenario by
scenario, and a straightforward batched NumPy ``sc`` (:func:`numpy_sc`), the honest
plain-NumPy way to write the simulator.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from benchmarks.measure import memory_fields, rates, with_ratio
from benchmarks.plan import GEN_ROUNDS, TARGET_RUN_SECONDS, bench_config, clusters_for, measurement_row
from ftsgd_jax import engine, reference
from ftsgd_jax.errors import choice

# --------------------------------------------------------------------------- reference


def bench_reference(
    algorithm: str,
    n: int,
    d: int,
    scenarios_sample: int = 2,
    iterations: int = 50,
    *,
    rounds: int = GEN_ROUNDS,
    engine_rate: float | None = None,
    baseline_iterations: int | None = None,
) -> dict[str, Any]:
    """The plain event-driven reference (``reference.run_algorithm``), one scenario at a time.

    Each sampled scenario runs twice, for ``iterations`` and for ``baseline_iterations``
    (default ``iterations // 5``, at least 1). Every call has fixed costs besides its event
    loop: rebuilding the scenario's time stamps from its key (done before the call, with
    ``engine.scenario_schedule``, and timed apart) and compiling its small gradient
    function. Rates per scenario-iteration:

    - ``scenario_iterations_per_second`` (used for the ratio): the marginal rate of the
      event loop, ``(iterations - baseline_iterations) / (time_T - time_T0)``, which drops
      every fixed per-call cost, so the ratio engine/reference is the conservative one;
      best and median over the sampled scenarios;
    - ``total_scenario_iterations_per_second``: everything ``run_algorithm`` does at
      ``iterations``, fixed costs included.
    """
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
        **measurement_row("reference", algorithm, n, d, scenarios_sample, iterations, rounds=rounds),
        "baseline_iterations": base,
        "call_seconds": calls,
        "event_loop_seconds": loops,
        "total_scenario_iterations_per_second": scenarios_sample * iterations / sum(calls),
        "best_scenario_iterations_per_second": max(marginal),
        "median_scenario_iterations_per_second": statistics.median(marginal),
        "scenario_iterations_per_second": statistics.median(marginal),
    }
    return with_ratio(row, engine_rate)


# --------------------------------------------------------------------------- NumPy


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


def numpy_sc_bytes(n: int, d: int, scenarios: int) -> int:
    """The working memory of :func:`numpy_sc`: its (S, n, n) stamp arrays and (S, n, d) values."""
    return 4 * scenarios * (10 * n * n + 6 * n * d)


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
    for seed in range(repeats):  # a fresh seed per run: NumPy has no compiled program to reuse
        started = time.perf_counter()
        numpy_sc(clusters, d, scenarios, iterations, seed=seed)
        seconds.append(time.perf_counter() - started)
    row = {
        **measurement_row("numpy", "sc", n, d, scenarios, iterations),
        "repeats": repeats,
        **rates(seconds, float(scenarios) * iterations),
        **memory_fields(),
    }
    return with_ratio(row, engine_rate)
