"""The engine: one configuration -> ``jit(vmap(scan))`` over scenarios and iterations.

A configuration splits in two. Its static part (:class:`Static`: topology, quorum rule,
scheduler and crash-pattern kinds, objective, algorithm, run length) fixes shapes and code:
the compiled program is built from it alone, so it cannot read a value that changes from
one sweep point to the next. Its run-time part (:class:`ScenarioInputs`: key, crash count,
crash window, scheduler parameters) enters as data, so a sweep over crash counts, windows,
schedule parameters or seeds reuses one compiled program.

A scenario's key is ``fold_in(seed_key(seed), index)``, and :func:`scenario_setup` derives
everything else from it (crash points, scheduler fixtures, the round and gradient keys), for
the engine and for replay alike, so any scenario reruns alone. Per scenario, an outer
``scan`` over record blocks wraps an inner ``scan`` over iterations of the algorithm's pure
step (``algorithms.ALGORITHMS``); ``gen`` adds a fixed-length scan over ``max R_t`` rounds
with inactive rounds masked (no ``cond``/``while_loop``, which under ``vmap`` would run both
branches or wait for the slowest lane). Scenarios run in chunks of a fixed size, the last
one padded, each dispatched before the previous one's results are handed over
(:func:`run_chunks`), so that host work on results overlaps the device.

Exactness of time is checked twice: before a run, for configurations that cannot be exact
(:func:`check_exact_time`), and after every chunk, on the in-band ``time_span`` each
scenario carries (:func:`_check_time_span`): a run whose time stamps left float32's exact
range stops with an error instead of returning numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import algorithms, rng
from ftsgd_jax.algorithms import ALGORITHMS, Plan, Scenario
from ftsgd_jax.config import RunConfig
from ftsgd_jax.devices import block_size, chunk_size, scenario_sharding, select_devices
from ftsgd_jax.errors import ConfigError
from ftsgd_jax.metrics import METRIC_COLUMNS, Record, record
from ftsgd_jax.model import CrashPoints, Topology, draw_crash_points, majority_condition, window_iterations
from ftsgd_jax.objectives import Objective
from ftsgd_jax.schedule import draw_round, draw_scenario, eventually_delivers, round_key
from ftsgd_jax.schedulers import EXACT_SPAN, SCHEDULE_DEFAULTS, SCHEDULERS, TICKS_PER_UNIT, ScheduleParams, Scheduler


@dataclasses.dataclass(frozen=True)
class Static:
    """The part of a configuration that fixes the compiled program."""

    topology: Topology
    quorum: str
    crash_kind: str
    scheduler_kind: str
    objective: Objective
    algorithm: Any  # config.AlgorithmSpec
    iterations: int
    record_every: int
    track_contraction: bool


def static_part(config: RunConfig) -> Static:
    return Static(
        topology=config.topology,
        quorum=config.quorum,
        crash_kind=config.crash_pattern.kind,
        scheduler_kind=config.scheduler.kind,
        objective=config.objective,
        algorithm=config.algorithm,
        iterations=config.run.iterations,
        record_every=config.run.record_every,
        track_contraction=config.run.track_contraction,
    )


# Values that enter a run as data, not as program structure.
RUNTIME_KEYS = {
    "faults": {"crashes", "window"},
    "run": {"seed", "scenarios", "chunk", "device"},
    "schedule": set(SCHEDULE_DEFAULTS),
}


def static_signature(config: RunConfig) -> str:
    """The static part of a resolved configuration as text: equal text, one program.

    Data read from a file enter as the digest of the bytes they were parsed from: the
    program holds the data, and the same path may hold other data by the next run.
    """
    static = {
        section: {k: v for k, v in values.items() if k not in RUNTIME_KEYS.get(section, ())}
        for section, values in config.resolved.items()
    }
    static["objective data sha256"] = config.objective.data_sha256
    return json.dumps(static, sort_keys=True, default=str)


class ScenarioInputs(NamedTuple):
    """Per-scenario run-time inputs (leading scenario axis when batched)."""

    key: jax.Array  # uint32[2]
    crashes: jax.Array  # int32
    window: jax.Array  # (2,) int32: the crash window's iterations [start, stop)
    schedule: ScheduleParams


@jax.jit
def scenario_keys(seed: jax.Array, indices: jax.Array) -> jax.Array:
    """``fold_in(seed_key(seed), i)`` of every scenario ``i``: one small program, where the
    same hashes run op by op would compile a program per operation (seconds on a first run)."""
    root = rng.seed_key(seed)
    return jax.vmap(lambda i: rng.fold_in(root, i))(indices)


@jax.jit
def _batched_inputs(indices: jax.Array, seed_and_crashes: jax.Array, window: jax.Array, schedule: ScheduleParams) -> ScenarioInputs:
    count = indices.shape[0]

    def every_scenario(value: jax.Array) -> jax.Array:
        return jnp.broadcast_to(value, (count,) + jnp.shape(value))

    crashes = every_scenario(seed_and_crashes[1].astype(jnp.int32))
    keys = scenario_keys(seed_and_crashes[0], indices)
    return ScenarioInputs(keys, crashes, every_scenario(window), jax.tree.map(every_scenario, schedule))


def scenario_inputs(config: RunConfig, indices: np.ndarray) -> ScenarioInputs:
    """Batched run-time inputs of scenarios ``indices`` of a configuration, on the device.

    One small program builds them from three host arrays: every transfer from the host
    and every eager operation costs a round trip (about 17 ms each on an H200 host).
    """
    seed_and_crashes = np.array([config.run.seed, config.crashes], np.uint32)
    window = window_iterations(config.crash_pattern.window, config.run.iterations)
    return _batched_inputs(np.asarray(indices, np.uint32), seed_and_crashes, window, config.scheduler.params)


def make_plan(static: Static) -> Plan:
    """Step sizes and rounds per iteration: what the theory fixes before the run."""
    spec = static.algorithm
    plan = algorithms.rounds_schedule(spec, static.objective, static.topology, static.iterations)
    first_round = np.concatenate([[0], np.cumsum(plan.rounds)[:-1]]).astype(np.int32)
    return Plan(
        topology=static.topology,
        quorum=static.quorum,
        objective=static.objective,
        spec=spec,
        alphas=algorithms.step_sizes(spec, static.objective, static.iterations),
        rounds=plan.rounds,
        rounds_needed=plan.needed,
        first_round=first_round,
        track_contraction=static.track_contraction,
        crashes=static.crash_kind != "none",
    )


def scenario_setup(static: Static, plan: Plan, inputs: ScenarioInputs) -> Scenario:
    """Everything a scenario draws once from its key: crash points, fixtures, round and gradient keys."""
    scheduler = Scheduler(static.scheduler_kind, inputs.schedule, {})
    k_crash, k_scenario, k_rounds, k_grad = rng.split(inputs.key, 4)
    places_crashes = SCHEDULERS[static.scheduler_kind].crash_points
    if places_crashes is None:
        crash = draw_crash_points(k_crash, static.topology, static.crash_kind, inputs.crashes, inputs.window, plan.rounds)
    else:
        crash = places_crashes(inputs.schedule, static.topology, inputs.crashes, inputs.window, plan.rounds)
    fixtures = draw_scenario(k_scenario, static.topology, scheduler)
    return Scenario(scheduler, fixtures, crash, k_rounds, k_grad)


class ScenarioRun(NamedTuple):
    records: Record  # fields (K,) per scenario
    crash: CrashPoints
    final: algorithms.State


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Metrics of every scenario at every recorded iteration, plus run facts."""

    metrics: dict[str, np.ndarray]  # column -> (S, K)
    t: np.ndarray  # (K,) iterations completed at each record
    rounds_per_iteration: np.ndarray  # (T,) rounds that ran
    rounds_needed: np.ndarray  # (T,) rounds the proven factor asked for (> rounds where capped)
    compile_seconds: float
    run_seconds: float
    chunk: int
    final: dict[str, np.ndarray] | None = None  # x (S, n, d), live (S, n), crashed (S, n)

    @property
    def scenarios(self) -> int:
        return next(iter(self.metrics.values())).shape[0]


class Simulation:
    """A compiled simulator of one static configuration."""

    def __init__(self, static: Static):
        self.static = static
        self.plan = make_plan(static)
        capped = self.plan.rounds_needed > self.plan.rounds
        self.capped_per_record = capped.reshape(-1, static.record_every).sum(axis=1).astype(np.int32)
        self.batched = jax.jit(jax.vmap(self.simulate_one))
        self.single = jax.jit(self.simulate_one)
        self._compiled: dict[tuple, Callable] = {}
        self.compile_seconds = 0.0

    def compiled(self, inputs: ScenarioInputs, block: int | None = None) -> Callable:
        """The batched program for this chunk size and block on the inputs' devices,
        compiled once (compile time kept apart).

        It runs the chunk in consecutive blocks (:func:`in_blocks`) as
        :func:`devices.block_size` says: on one CPU device of ``block`` scenarios (a sweep's
        plan; default sized from the round's arrays), elsewhere as one batch.
        No lane reads another, so a chunk size and block give the same bits every time;
        another block is another XLA program, whose float reductions may round otherwise
        (README, "Bit for bit, and within what tolerance").
        """
        size = int(inputs.crashes.shape[0])
        placed = inputs.crashes.sharding.device_set
        block = block_size(placed, size, self.static.topology.n, self.static.objective.dim, planned=block)
        key = (size, block, frozenset(placed))
        if key not in self._compiled:
            started = time.perf_counter()
            program = self.batched if block == size else jax.jit(functools.partial(in_blocks, self.simulate_one, block))
            self._compiled[key] = program.lower(inputs).compile()
            self.compile_seconds += time.perf_counter() - started
        return self._compiled[key]

    def simulate_one(self, inputs: ScenarioInputs) -> ScenarioRun:
        static, plan = self.static, self.plan
        scenario = scenario_setup(static, plan, inputs)
        step = ALGORITHMS[static.algorithm.kind].iteration
        delivers = eventually_delivers(static.topology, scenario.scheduler)
        capped = jnp.asarray(self.capped_per_record)

        def iteration(state, t):
            return step(plan, scenario, state, t), None

        def block(state, index):
            state = state._replace(safe_residual=jnp.float32(jnp.nan), fallbacks=jnp.int32(0))
            ts = index * static.record_every + jnp.arange(static.record_every)
            # not unrolled: two iterations per loop step ran no faster on a 2-core CPU (sc n=16
            # S=4096, gen, safe area d=2; 6% faster at S=16 only), 43% slower on an H200 at
            # S=65,536 (sc; 15% faster at S=4,096), and took 0.8-1.9 s longer to compile
            state, _ = jax.lax.scan(iteration, state, ts)
            alive = ~state.timeline.crashed
            majority = majority_condition(alive, delivers, static.topology, static.quorum)
            return state, record(static.objective, state, majority, capped[index])

        blocks = jnp.arange(static.iterations // static.record_every)
        final, records = jax.lax.scan(block, algorithms.initial_state(plan, scenario.crash), blocks)
        return ScenarioRun(records, scenario.crash, final)

    @property
    def record_times(self) -> np.ndarray:
        every = self.static.record_every
        return np.arange(every, self.static.iterations + 1, every)


def in_blocks(simulate_one: Callable[[ScenarioInputs], ScenarioRun], block: int, inputs: ScenarioInputs) -> ScenarioRun:
    """``vmap(simulate_one)`` over the scenarios, ``block`` at a time in a loop; the last
    block is filled with copies of the last scenario, which are dropped."""
    size = inputs.crashes.shape[0]
    extra = -size % block
    if extra:
        inputs = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], extra, axis=0)]), inputs)
    out = jax.lax.map(simulate_one, inputs, batch_size=block)
    return jax.tree.map(lambda a: a[:size], out)


_SIMULATIONS: dict[str, Simulation] = {}


def simulation(config: RunConfig) -> Simulation:
    """The simulator of a configuration's static part, shared by every configuration that has it."""
    signature = static_signature(config)
    if signature not in _SIMULATIONS:
        _SIMULATIONS[signature] = Simulation(static_part(config))
    return _SIMULATIONS[signature]


def check_crash_pattern(config: RunConfig) -> None:
    """A scheduler that places crashes itself (``searched``, from its genome) does so within
    the budget and window of the ``random`` pattern: any other pattern would be silently
    ignored, so it is refused."""
    kind = config.scheduler.kind
    if SCHEDULERS[kind].crash_points is not None and config.crash_pattern.kind not in ("none", "random"):
        raise ConfigError(
            "faults.pattern",
            f"got {config.crash_pattern.kind!r}, but the {kind!r} scheduler places crashes itself within the "
            "budget (faults.crashes) and window of pattern 'random'; allowed: 'none', 'random'",
        )


def check_exact_time(config: RunConfig) -> None:
    """Refuse, before any work, a configuration whose time stamps cannot stay exact.

    The cases known in advance are the scheduler's (``SchedulerKind.refuse``: a straggler
    that drifts behind the others by more than the exact range when nobody waits for it,
    held-back messages later than the exact range where processes wait for a quorum).
    Every other case is caught in-band.
    """
    refuse = SCHEDULERS[config.scheduler.kind].refuse
    if refuse is not None:
        waits = ALGORITHMS[config.algorithm.kind].waits
        refuse(config.scheduler.settings, waits, lambda: int(simulation(config).plan.rounds.sum()))


def _check_time_span(config: RunConfig, span: np.ndarray, indices: np.ndarray) -> None:
    """Stop if some scenario's time stamps left the exact range (``span``: (S, K) time_span)."""
    worst = np.max(span, axis=1)
    over = np.flatnonzero(~(worst < EXACT_SPAN))
    if over.size:
        family = SCHEDULERS[config.scheduler.kind]
        raise ConfigError(
            family.span_field,
            f"scenario {int(indices[over[0]])} (and {over.size - 1} more in its chunk) reached {float(worst[over[0]]):.3g} "
            f"time units from its round's origin, beyond the exact range of time stamps ({EXACT_SPAN:g} units on the "
            f"1/{TICKS_PER_UNIT} grid), so its results would not be exact; use {family.span_advice}",
        )


class Chunk(NamedTuple):
    """Scenarios ``indices`` of ``config``, run as one call of its program padded to ``size``,
    in blocks of ``block`` scenarios on one CPU device (None: sized there, :meth:`Simulation.compiled`);
    ``keep_final`` also brings back the final parameters and process states."""

    config: RunConfig
    indices: np.ndarray
    size: int
    keep_final: bool = False
    block: int | None = None


class _Launched(NamedTuple):
    """A chunk whose program was dispatched and may still be running."""

    chunk: Chunk
    out: ScenarioRun
    dispatched: float
    compile_seconds: float


def _launch(chunk: Chunk) -> _Launched:
    """Build a chunk's inputs, compile its program if needed, and dispatch it without waiting."""
    config, part = chunk.config, chunk.indices
    check_crash_pattern(config)
    check_exact_time(config)
    sim = simulation(config)
    padded = np.concatenate([part, np.full(chunk.size - len(part), part[-1])])
    devices = select_devices(config.run.device)
    placement = scenario_sharding(devices) if len(devices) > 1 else devices[0]
    inputs = jax.device_put(scenario_inputs(config, padded), placement)
    compiled_before = sim.compile_seconds
    program = sim.compiled(inputs, chunk.block)
    return _Launched(chunk, program(inputs), time.perf_counter(), sim.compile_seconds - compiled_before)


def _collect(launched: _Launched, device_free: float) -> tuple[RunResult, float]:
    """Wait for a dispatched chunk and bring its results to the host, checked; also when it was done.

    ``device_free``: when the previous chunk was done. The run time is the time this chunk
    held the device: from its dispatch, or the previous chunk's end, to its own end.
    """
    chunk, out = launched.chunk, launched.out
    jax.block_until_ready(out.records)
    done = time.perf_counter()
    count = len(chunk.indices)
    # one device_get for all the arrays: their copies overlap instead of waiting one by one
    wanted = {"records": out.records._asdict()}
    if chunk.keep_final:
        wanted["final"] = {"x": out.final.x, "live": out.final.live, "crashed": out.final.timeline.crashed}
    host = jax.tree.map(lambda a: a[:count], jax.device_get(wanted))
    records = {name: host["records"][name] for name in METRIC_COLUMNS}
    _check_time_span(chunk.config, records["time_span"], chunk.indices)
    final = host.get("final")
    sim = simulation(chunk.config)
    run_seconds = done - max(launched.dispatched, device_free)
    result = RunResult(
        records, sim.record_times, sim.plan.rounds, sim.plan.rounds_needed, launched.compile_seconds, run_seconds, chunk.size, final
    )
    return result, done


def run_chunks(chunks: Iterable[Chunk]) -> Iterator[RunResult]:
    """The result of every chunk, in order, each chunk dispatched before the previous one's
    result is handed over: what the caller does with a result (tables, files) overlaps the
    device's run of the next chunk, and so does building and compiling the next chunk.

    ``chunks`` is read lazily, one ahead of the results: stop yielding chunks and no
    further chunk starts. When a chunk cannot start (a refused configuration, a failed
    compile, an error raised by ``chunks`` itself), the result before it is still handed
    over first, so a caller that writes each result keeps every finished chunk.
    """
    pending: _Launched | None = None
    device_free = time.perf_counter()
    upcoming = iter(chunks)
    while True:
        try:
            chunk = next(upcoming, None)
            launched = None if chunk is None else _launch(chunk)
        except Exception:
            if pending is not None:
                yield _collect(pending, device_free)[0]
            raise
        if pending is not None:
            result, device_free = _collect(pending, device_free)
            yield result
        if launched is None:
            return
        pending = launched


def run(
    config: RunConfig,
    indices: np.ndarray | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep_final: bool = False,
) -> RunResult:
    """Simulate scenarios ``indices`` (default: all of ``run.scenarios``) in chunks."""
    indices = np.arange(config.run.scenarios) if indices is None else np.asarray(indices)
    size = chunk_size(config)
    chunks = (Chunk(config, indices[begin : begin + size], size, keep_final) for begin in range(0, len(indices), size))
    parts: list[RunResult] = []
    for part in run_chunks(chunks):
        parts.append(part)
        if progress is not None:
            progress(sum(p.scenarios for p in parts), len(indices))
    return join_results(parts)


def join_results(parts: list[RunResult]) -> RunResult:
    """The chunks of one configuration as one result (scenarios in the chunks' order)."""
    first = parts[0]
    metrics = {name: np.concatenate([p.metrics[name] for p in parts]) for name in first.metrics}
    final = None if first.final is None else {name: np.concatenate([p.final[name] for p in parts]) for name in first.final}
    return dataclasses.replace(
        first,
        metrics=metrics,
        compile_seconds=sum(p.compile_seconds for p in parts),
        run_seconds=sum(p.run_seconds for p in parts),
        final=final,
    )


class ScenarioSchedule(NamedTuple):
    """The time stamps of one scenario, rebuilt from its key: what replay and the reference need."""

    crash: CrashPoints  # numpy fields (n,)
    draws: object  # RoundDraws with a leading axis over the executed rounds
    iteration: np.ndarray  # (R,) iteration of each executed round
    round: np.ndarray  # (R,) index of the round inside its iteration
    gradient_root: jax.Array  # key of the scenario's gradient noise (see algorithms.gradient_key)
    heal: float  # when a partition heals, absolute time units (inf: never)


def scenario_schedule(config: RunConfig, index: int) -> ScenarioSchedule:
    """Rebuild every executed round's draws of scenario ``index`` from its derived key."""
    sim = simulation(config)
    plan = sim.plan
    inputs = jax.tree.map(lambda a: a[0], scenario_inputs(config, np.array([index])))
    scenario = scenario_setup(sim.static, plan, inputs)
    iteration = np.repeat(np.arange(config.run.iterations), plan.rounds)
    within = np.concatenate([np.arange(r) for r in plan.rounds])

    @jax.jit
    def draws_of(g):
        return draw_round(round_key(scenario.rounds_key, g), config.topology, scenario.scheduler, scenario.fixtures, config.quorum)

    draws = jax.vmap(draws_of)(jnp.arange(len(iteration)))
    until = config.scheduler.settings["until"]
    heal = float(round(until * TICKS_PER_UNIT) / TICKS_PER_UNIT) if np.isfinite(until) else float("inf")
    crash = jax.tree.map(np.asarray, scenario.crash)
    return ScenarioSchedule(crash, jax.tree.map(np.asarray, draws), iteration, within, scenario.gradient_key, heal)
