"""The engine: one configuration -> ``jit(vmap(scan))`` over scenarios and iterations.

A scenario is (key, crash count, scheduler parameters): run-time values, so a sweep
over crash counts, schedule parameters or seeds reuses one compiled program. Its key is
``fold_in(seed_key(seed), index)``, so any scenario reruns alone (``replay``) and gives
its lane of the batch. Per scenario: crash times and scheduler fixtures are drawn once;
an outer ``scan`` over record blocks wraps an inner ``scan`` over iterations; ``gen``
adds a fixed-length ``scan`` over ``max R_t`` agreement rounds with inactive rounds
masked (no ``cond``/``while_loop``, which under ``vmap`` would run both branches or wait
for the slowest lane). Scenarios run in chunks of a fixed size, the last one padded.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import agreement, algorithms, rng
from ftsgd_jax.config import RunConfig
from ftsgd_jax.metrics import METRIC_COLUMNS, Record, contraction, record
from ftsgd_jax.model import draw_crash_times, majority_condition
from ftsgd_jax.schedule import (
    EXACT_TIME_LIMIT,
    SCHEDULE_DEFAULTS,
    ScheduleParams,
    draw_round,
    draw_scenario,
    nominal_round_time,
    happens,
    resolve_round,
)
from ftsgd_jax.devices import chunk_size, scenario_sharding, select_devices
from ftsgd_jax.errors import ConfigError

class ScenarioInputs(NamedTuple):
    """Per-scenario run-time inputs (leading scenario axis when batched)."""

    key: jax.Array  # uint32[2]
    crashes: jax.Array  # int32
    schedule: ScheduleParams


class EngineState(NamedTuple):
    x: jax.Array  # (n, d)
    clock: jax.Array  # (n,)
    live: jax.Array  # (n,) bool: completed the last iteration
    blocked: jax.Array  # (n,) bool
    view_size: jax.Array  # (n,) int32: smallest view of the last iteration
    rounds: jax.Array  # int32: agreement rounds of the last iteration
    contraction_max: jax.Array  # worst diameter ratio of the last iteration's agreement rounds
    contraction_mean: jax.Array  # their mean ratio


class ScenarioRun(NamedTuple):
    records: Record  # fields (K,) per scenario
    crash_time: jax.Array  # (n,)
    final: EngineState


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Metrics of every scenario at every recorded iteration, plus run facts."""

    metrics: dict[str, np.ndarray]  # column -> (S, K)
    t: np.ndarray  # (K,) iterations completed at each record
    rounds_per_iteration: np.ndarray  # (T,)
    compile_seconds: float
    run_seconds: float
    chunk: int
    final: dict[str, np.ndarray] | None = None  # x (S, n, d), live (S, n), crash_time (S, n)

    @property
    def scenarios(self) -> int:
        return next(iter(self.metrics.values())).shape[0]


class Simulation:
    """A compiled simulator of one configuration's shapes and static choices."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.rounds = algorithms.rounds_schedule(config)
        self.max_rounds = int(self.rounds.max())
        schedule = algorithms.step_size(config)
        self.alphas = np.asarray(jax.vmap(schedule)(jnp.arange(config.run.iterations)), np.float32)
        self.traces = 0
        self.batched = jax.jit(jax.vmap(self.simulate_one))
        self.single = jax.jit(self.simulate_one)
        self._compiled: dict[int, Callable] = {}
        self.compile_seconds = 0.0
        params = config.scheduler.params
        slowest = float(params.slowdown) if config.scheduler.kind == "straggler" else 1.0
        longest = float(self.rounds.sum()) * float(nominal_round_time(params)) * slowest
        if longest > EXACT_TIME_LIMIT:
            raise ConfigError(
                "run.iterations",
                f"about {longest:.3g} time units of simulated time exceed the exact time range "
                f"({EXACT_TIME_LIMIT:.3g}); use fewer iterations or shorter delays",
            )

    def compiled(self, inputs: ScenarioInputs) -> Callable:
        """The batched program for this chunk size, compiled once (compile time kept apart)."""
        size = int(inputs.crashes.shape[0])
        if size not in self._compiled:
            started = time.perf_counter()
            self._compiled[size] = self.batched.lower(inputs).compile()
            self.compile_seconds += time.perf_counter() - started
        return self._compiled[size]

    @staticmethod
    def inputs(config: RunConfig, indices: np.ndarray) -> ScenarioInputs:
        """Batched inputs for scenarios ``indices`` of a configuration (its seed, crashes, schedule)."""
        indices = np.asarray(indices, np.uint32)
        root = rng.seed_key(config.run.seed)
        keys = jax.vmap(lambda i: rng.fold_in(root, i))(jnp.asarray(indices))
        crashes = jnp.full(indices.shape, config.crashes, jnp.int32)
        schedule = jax.tree.map(lambda a: jnp.broadcast_to(a, indices.shape + jnp.shape(a)), config.scheduler.params)
        return ScenarioInputs(keys, crashes, schedule)

    def simulate_one(self, inputs: ScenarioInputs) -> ScenarioRun:
        self.traces += 1  # counts traces: tests assert a sweep compiles once per shape
        config = self.config
        topology, quorum, spec = config.topology, config.quorum, config.algorithm
        n, d = topology.n, config.objective.dim
        scheduler = dataclasses.replace(config.scheduler, params=inputs.schedule)
        k_crash, k_scenario, k_rounds, k_grad = rng.split(inputs.key, 4)
        horizon = float(self.rounds.sum()) * nominal_round_time(inputs.schedule)
        crash_time = draw_crash_times(k_crash, topology, config.crash_pattern, inputs.crashes, horizon)
        fixtures = draw_scenario(k_scenario, topology, scheduler)
        majority = majority_condition(crash_time, topology, quorum)
        rounds = jnp.asarray(self.rounds)
        alphas = jnp.asarray(self.alphas)
        objective = config.objective

        def resolve(clock, t, r, wait):
            draws = draw_round(rng.fold_in(rng.fold_in(k_rounds, t), r), topology, scheduler, fixtures, quorum)
            return resolve_round(topology, clock, crash_time, draws, wait=wait, quorum=quorum)

        def local_step(state, t):
            keys = jax.vmap(lambda p: gradient_key(k_grad, t, p))(jnp.arange(n))
            gradients = jax.vmap(objective.stochastic_grad)(state.x, keys)
            return state.x - alphas[t] * gradients

        def one_round_iteration(state, t):
            y = local_step(state, t)
            outcome = resolve(state.clock, t, 0, wait=False)
            view, end, finished = outcome.view, outcome.end_time, outcome.finished
            if spec.kind == "seq":
                view = algorithms.seq_view(outcome)
            elif spec.kind == "minibatch":
                view, end, finished = algorithms.minibatch_outcome(outcome, n)
            x = jnp.where(finished[:, None], agreement.view_mean(y, view), state.x)
            return x, end, finished, algorithms.view_sizes(view), jnp.float32(jnp.nan), jnp.float32(jnp.nan)

        def agreement_iteration(state, t):
            y = local_step(state, t)

            def agreement_round(carry, r):
                values, clock, finished, smallest, worst, total = carry
                outcome = resolve(clock, t, r, wait=True)
                active = r < rounds[t]
                agreed = algorithms.agreement_update(spec.rule, values, outcome, spec.safe_f)
                if config.run.track_contraction:
                    ratio = contraction(values, happens(outcome.write_time, crash_time), agreed, outcome.finished)
                else:
                    ratio = jnp.float32(jnp.nan)
                values = jnp.where((active & outcome.finished)[:, None], agreed, values)
                clock = jnp.where(active, outcome.end_time, clock)
                finished = jnp.where(active, finished & outcome.finished, finished)
                smallest = jnp.where(active, jnp.minimum(smallest, algorithms.view_sizes(outcome.view)), smallest)
                measured = active & jnp.isfinite(ratio)
                worst = jnp.where(measured, jnp.fmax(worst, ratio), worst)
                total = total + jnp.where(measured, jnp.stack([ratio, 1.0]), 0.0)
                return (values, clock, finished, smallest, worst, total), None

            start = (y, state.clock, jnp.ones((n,), bool), jnp.full((n,), n, jnp.int32), jnp.float32(jnp.nan), jnp.zeros(2))
            carry, _ = jax.lax.scan(agreement_round, start, jnp.arange(self.max_rounds))
            values, clock, finished, smallest, worst, (ratio_sum, measured) = carry
            x = jnp.where(finished[:, None], values, state.x)
            mean_ratio = jnp.where(measured > 0, ratio_sum / jnp.maximum(measured, 1.0), jnp.nan)
            return x, clock, finished, jnp.where(finished, smallest, 0), worst, mean_ratio

        iterate = agreement_iteration if spec.kind == "gen" else one_round_iteration

        def iteration(state, t):
            x, clock, finished, view_size, worst, mean_ratio = iterate(state, t)
            blocked = jnp.isinf(clock) & jnp.isinf(crash_time)
            return EngineState(x, clock, finished, blocked, view_size, rounds[t], worst, mean_ratio), None

        def block(state, first):
            ts = first + jnp.arange(config.run.record_every)
            # two iterations per loop step: measured 10% faster on a 2-core CPU (sc, n=16, S=4096)
            state, _ = jax.lax.scan(iteration, state, ts, unroll=2)
            rec = record(objective, state, majority)
            return state, rec

        x0 = jnp.broadcast_to(objective.x0.astype(jnp.float32), (n, d))
        state = EngineState(
            x=x0,
            clock=jnp.zeros((n,), jnp.float32),
            live=jnp.ones((n,), bool),
            blocked=jnp.zeros((n,), bool),
            view_size=jnp.zeros((n,), jnp.int32),
            rounds=jnp.int32(0),
            contraction_max=jnp.float32(jnp.nan),
            contraction_mean=jnp.float32(jnp.nan),
        )
        starts = jnp.arange(0, config.run.iterations, config.run.record_every)
        final, records = jax.lax.scan(block, state, starts)
        return ScenarioRun(records, crash_time, final)

    @property
    def record_times(self) -> np.ndarray:
        every = self.config.run.record_every
        return np.arange(every, self.config.run.iterations + 1, every)


# Values that enter a run as data, not as program structure: configurations that differ
# only in these share one compiled simulator.
RUNTIME_KEYS = {"faults": {"crashes"}, "run": {"seed", "scenarios", "chunk", "device"}, "schedule": set(SCHEDULE_DEFAULTS)}
_SIMULATIONS: dict[str, Simulation] = {}


def static_signature(config: RunConfig) -> str:
    """The part of a resolved configuration that fixes shapes and compiled code."""
    static = {
        section: {k: v for k, v in values.items() if k not in RUNTIME_KEYS.get(section, ())}
        for section, values in config.resolved.items()
    }
    return json.dumps(static, sort_keys=True, default=str)


def simulation(config: RunConfig) -> Simulation:
    """The simulator for a configuration, shared by every configuration of the same signature."""
    signature = static_signature(config)
    if signature not in _SIMULATIONS:
        _SIMULATIONS[signature] = Simulation(config)
    return _SIMULATIONS[signature]


def run(
    config: RunConfig,
    indices: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_final: bool = False,
) -> RunResult:
    """Simulate scenarios ``indices`` (default: all of ``run.scenarios``) in chunks."""
    sim = simulation(config)
    indices = np.arange(config.run.scenarios) if indices is None else np.asarray(indices)
    chunk = chunk_size(config)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in METRIC_COLUMNS}
    finals: dict[str, list[np.ndarray]] = {"x": [], "live": [], "crash_time": []}
    compile_before = sim.compile_seconds
    run_seconds = 0.0
    done = 0
    devices = select_devices(config.run.device)
    for begin in range(0, len(indices), chunk):
        part = indices[begin : begin + chunk]
        padded = np.concatenate([part, np.full(chunk - len(part), part[-1])])
        inputs = sim.inputs(config, padded)
        placement = scenario_sharding(devices) if len(devices) > 1 else devices[0]
        inputs = jax.device_put(inputs, placement)
        program = sim.compiled(inputs)
        started = time.perf_counter()
        out = jax.block_until_ready(program(inputs))
        run_seconds += time.perf_counter() - started
        for name in METRIC_COLUMNS:
            columns[name].append(np.asarray(getattr(out.records, name))[: len(part)])
        if keep_final:
            finals["x"].append(np.asarray(out.final.x)[: len(part)])
            finals["live"].append(np.asarray(out.final.live)[: len(part)])
            finals["crash_time"].append(np.asarray(out.crash_time)[: len(part)])
        done += len(part)
        if progress is not None:
            progress(done, len(indices))
    metrics = {name: np.concatenate(parts) for name, parts in columns.items()}
    final = {name: np.concatenate(parts) for name, parts in finals.items()} if keep_final else None
    return RunResult(
        metrics, sim.record_times, sim.rounds, sim.compile_seconds - compile_before, run_seconds, chunk, final
    )


def gradient_key(gradient_root: jax.Array, t, p) -> jax.Array:
    """The key of process p's stochastic gradient at iteration t."""
    return rng.fold_in(rng.fold_in(gradient_root, t), p)


class ScenarioSchedule(NamedTuple):
    """The time stamps of one scenario, rebuilt from its key: what replay and the reference need."""

    crash_time: np.ndarray  # (n,)
    draws: object  # RoundDraws with a leading axis over the executed rounds
    iteration: np.ndarray  # (R,) iteration of each executed round
    round: np.ndarray  # (R,) index of the round inside its iteration
    gradient_root: jax.Array  # key of the scenario's gradient noise (see gradient_key)


def scenario_schedule(config: RunConfig, index: int) -> ScenarioSchedule:
    """Rebuild every executed round's draws of scenario ``index`` from its derived key."""
    sim = simulation(config)
    inputs = jax.tree.map(lambda a: a[0], sim.inputs(config, np.array([index])))
    scheduler = dataclasses.replace(config.scheduler, params=inputs.schedule)
    k_crash, k_scenario, k_rounds, k_grad = rng.split(inputs.key, 4)
    horizon = float(sim.rounds.sum()) * nominal_round_time(inputs.schedule)
    crash_time = draw_crash_times(k_crash, config.topology, config.crash_pattern, inputs.crashes, horizon)
    fixtures = draw_scenario(k_scenario, config.topology, scheduler)
    iteration = np.repeat(np.arange(config.run.iterations), sim.rounds)
    within = np.concatenate([np.arange(r) for r in sim.rounds])

    @jax.jit
    def draws_of(t, r):
        key = rng.fold_in(rng.fold_in(k_rounds, t), r)
        return draw_round(key, config.topology, scheduler, fixtures, config.quorum)

    draws = jax.vmap(draws_of)(jnp.asarray(iteration), jnp.asarray(within))
    return ScenarioSchedule(np.asarray(crash_time), jax.tree.map(np.asarray, draws), iteration, within, k_grad)
