"""A plain event-driven simulator of the cluster-based model, one scenario at a time.

It shares no code with the array path: registers that keep their history, a message
queue ordered by time, processes as little state machines. Fed the same drawn time
stamps (``schedule.RoundDraws``, stacked over rounds), it must produce the same collects,
messages, views, end times and blocked flags as ``schedule.resolve_round``; with value
hooks it also runs the algorithms, as the oracle of the engine and the baseline of the
benchmarks.

Steps at equal times are ordered write < read < send < arrival < end of round, which is
what the array code's ``<=`` comparisons mean. Times are absolute float64 time units,
exact for every tick count below 2**53: the array code, which works in float32 relative
to each round's origin, must reproduce them bit for bit. Crashes come as logical points
(:class:`~ftsgd_jax.model.CrashPoints`) and become times when a process starts its crash
round, with the same float32 product as the array code.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from ftsgd_jax.model import Topology
from ftsgd_jax.schedulers import TICKS_PER_UNIT

WRITE, READ, SEND, ARRIVE, END = range(5)

Compute = Callable[[int, int, Any], Any]  # (process, round, value) -> value to write
Combine = Callable[[int, int, Any, dict[int, Any]], Any]  # (process, round, own, view) -> new value


@dataclasses.dataclass
class ReferenceRun:
    """Per round (leading axis) and process, what the event simulation observed."""

    collect: np.ndarray  # (R, n, n) bool
    sent: np.ndarray  # (R, n, n) bool
    received: np.ndarray  # (R, n, n) bool
    view: np.ndarray  # (R, n, n) bool
    end_time: np.ndarray  # (R, n) float64 absolute, +inf where the round never ended
    finished: np.ndarray  # (R, n) bool
    blocked: np.ndarray  # (R, n) bool
    values: list[list[Any]]  # values[r][p]: value after round r (last one if unfinished)
    trace: list[tuple]  # (time, step, process, round, detail) in execution order
    crash_time: np.ndarray  # (n,) float64 absolute crash times, +inf where no crash happened


@dataclasses.dataclass
class _Process:
    pid: int
    round: int = 0
    value: Any = None
    written: Any = None
    write_time: float = 0.0
    collect: dict[int, Any] = dataclasses.field(default_factory=dict)
    waiting: bool = False


def simulate(
    topology: Topology,
    crash: Any,
    draws: Any,
    *,
    wait: bool,
    quorum: str = "weighted",
    heal: float = float("inf"),
    initial_values: list[Any] | None = None,
    compute: Compute | None = None,
    combine: Combine | None = None,
) -> ReferenceRun:
    """Run all rounds of ``draws`` (fields with a leading round axis) event by event.

    ``crash``: crash points (``round``, ``fraction``) per process; ``heal``: when messages
    across a partition (``draws.cut``) may arrive, absolute.
    """
    compute = compute or (lambda p, r, v: v)
    combine = combine or (lambda p, r, own, view: own)
    f32 = np.float32
    cut = np.asarray(draws.cut, bool)
    draws = {name: np.asarray(getattr(draws, name), np.float64) for name in draws._fields if name != "cut"}
    rounds = draws["compute"].shape[0]
    n, cluster_of = topology.n, topology.cluster_of
    mates = [np.flatnonzero(cluster_of == cluster_of[p]) for p in range(n)]
    others = [np.flatnonzero(cluster_of != cluster_of[p]) for p in range(n)]
    crash_round = np.asarray(crash.round)
    crash_fraction = np.asarray(crash.fraction, f32)
    crash_time = np.full(n, np.inf)
    sizes = np.asarray(topology.cluster_sizes, float)
    weight = sizes if quorum == "weighted" else np.ones(topology.m)
    threshold = topology.n / 2 if quorum == "weighted" else topology.m / 2

    registers: dict[tuple[int, int], Any] = {}  # (process, round) -> value
    inbox: dict[tuple[int, int], dict[int, dict[int, Any]]] = {}  # (receiver, round) -> sender -> collect
    out = ReferenceRun(
        collect=np.zeros((rounds, n, n), bool),
        sent=np.zeros((rounds, n, n), bool),
        received=np.zeros((rounds, n, n), bool),
        view=np.zeros((rounds, n, n), bool),
        end_time=np.full((rounds, n), np.inf),
        finished=np.zeros((rounds, n), bool),
        blocked=np.zeros((rounds, n), bool),
        values=[],
        trace=[],
        crash_time=crash_time,
    )
    queue: list[tuple] = []
    counter = iter(range(1 << 62))

    def push(time, step, pid, payload=None):
        heapq.heappush(queue, (float(time), step, next(counter), pid, payload))

    procs = [_Process(p, value=None if initial_values is None else initial_values[p]) for p in range(n)]
    history = [[None] * n for _ in range(rounds)]

    def start_round(proc: _Process, clock: float):
        r, p = proc.round, proc.pid
        if r == crash_round[p]:
            if crash_fraction[p] < 0:
                crash_time[p] = -np.inf
            else:
                reads = max([0.0, *(draws["read_offset"][r, p, j] for j in mates[p] if j != p)])
                sends = max([0.0, *(draws["send_offset"][r, p, q] for q in others[p])])
                own = f32(draws["compute"][r, p] + reads + sends)
                crash_time[p] = clock + np.floor(f32(crash_fraction[p] * own) * TICKS_PER_UNIT) / TICKS_PER_UNIT
        proc.write_time = clock + draws["compute"][r, p]
        push(proc.write_time, WRITE, p)

    def quorum_heard(proc: _Process) -> bool:
        heard = {cluster_of[proc.pid]} | {cluster_of[s] for s in inbox.get((proc.pid, proc.round), {})}
        return weight[list(heard)].sum() > threshold

    def end_round(proc: _Process, time: np.float32):
        r, p = proc.round, proc.pid
        got = inbox.get((p, r), {})
        view = dict(proc.collect)
        for sender, collect in got.items():
            out.received[r, p, sender] = True
            view.update(collect)
        for j in view:
            out.view[r, p, j] = True
        out.end_time[r, p] = time
        out.finished[r, p] = True
        out.trace.append((float(time), "end", p, r, sorted(view)))
        proc.value = combine(p, r, proc.written, view)
        history[r][p] = proc.value
        proc.round += 1
        proc.waiting = False
        if proc.round < rounds:
            start_round(proc, time)

    for proc in procs:
        start_round(proc, 0.0)

    while queue:
        time, step, _, p, payload = heapq.heappop(queue)
        proc = procs[p]
        if step != ARRIVE and not time <= crash_time[p]:
            continue  # a crashed process takes no step
        r = proc.round
        if step == WRITE:
            proc.written = compute(p, r, proc.value)
            registers[(p, r)] = proc.written
            proc.collect = {}
            out.trace.append((float(time), "write", p, r, None))
            read_offset = draws["read_offset"][r, p]
            for j in mates[p]:
                offset = f32(0) if j == p else read_offset[j]
                push(proc.write_time + offset, READ, p, int(j))
            collect_end = proc.write_time + max([0.0, *(read_offset[j] for j in mates[p] if j != p)])
            send_offset = draws["send_offset"][r, p]
            for q in others[p]:
                push(collect_end + send_offset[q], SEND, p, int(q))
            last_send = collect_end + max([0.0, *(send_offset[q] for q in others[p])])
            push(last_send, END, p, "sends done")
        elif step == READ:
            j = payload
            if (j, r) in registers:
                proc.collect[j] = registers[(j, r)]
                out.collect[r, p, j] = True
            out.trace.append((float(time), "read", p, r, j))
        elif step == SEND:
            q = payload
            out.sent[r, p, q] = True
            out.trace.append((float(time), "send", p, r, q))
            arrival = time + draws["delay"][r, p, q]
            if cut[r, p, q]:
                arrival = max(arrival, heal)
            if np.isfinite(arrival):
                push(arrival, ARRIVE, q, (p, r, dict(proc.collect)))
        elif step == ARRIVE:
            sender, msg_round, collect = payload
            if msg_round < proc.round or not time <= crash_time[p]:
                continue  # the receiver has left that round (or crashed): ignored
            inbox.setdefault((p, msg_round), {})[sender] = collect
            out.trace.append((float(time), "receive", p, msg_round, sender))
            if msg_round == proc.round and proc.waiting:
                push(time, END, p, "arrival")
        elif step == END:
            if payload == "sends done":
                if not wait or quorum_heard(proc):
                    end_round(proc, time)
                else:
                    proc.waiting = True
            elif proc.waiting and quorum_heard(proc):
                end_round(proc, time)

    for proc in procs:
        if proc.waiting and np.isinf(crash_time[proc.pid]):
            out.blocked[proc.round :, proc.pid] = True
    for p in np.flatnonzero(crash_time < np.inf):
        out.trace.append((max(float(crash_time[p]), 0.0), "crash", int(p), None, None))
    out.trace.sort(key=lambda event: event[0])  # stable: equal times keep execution order
    previous = [None if initial_values is None else initial_values[p] for p in range(n)]
    for r in range(rounds):
        history[r] = [previous[p] if history[r][p] is None else history[r][p] for p in range(n)]
        previous = history[r]
    out.values = history
    return out


def run_algorithm(config, index: int, schedule=None) -> tuple[ReferenceRun, np.ndarray]:
    """Scenario ``index`` of a configuration whose algorithm has a plain NumPy twin
    (``algorithms.reference_combine``: sc, nowait, and gen with the mean or midpoint rule),
    event by event.

    The time stamps and gradient noise come from the scenario's key exactly as in the
    engine (or from ``schedule``, an ``engine.ScenarioSchedule`` rebuilt beforehand);
    everything else (registers, messages, views, averaging) is done here in plain Python
    and NumPy, the view's combine being the algorithm's NumPy twin. Returns the run and the
    final parameters, (n, d).
    """
    import jax

    from ftsgd_jax import algorithms, engine

    spec = config.algorithm
    combine_view = algorithms.reference_combine(spec)
    if combine_view is None:
        what = f"{spec.kind} with rule {spec.rule!r}" if algorithms.ALGORITHMS[spec.kind].agreement else spec.kind
        raise ValueError(f"the reference has no plain twin of {what}")
    schedule = engine.scenario_schedule(config, index) if schedule is None else schedule
    alphas = algorithms.step_sizes(spec, config.objective, config.run.iterations)
    objective = config.objective
    gradient = jax.jit(lambda x, t, p: objective.stochastic_grad(x, algorithms.gradient_key(schedule.gradient_root, t, p)))
    n = config.topology.n
    x0 = np.asarray(objective.x0, np.float32)

    def compute(p, r, x):
        t = int(schedule.iteration[r])
        if schedule.round[r] > 0:
            return x
        return (x - alphas[t] * np.asarray(gradient(x, t, p))).astype(np.float32)

    def combine(p, r, own, view):
        return combine_view(np.stack([view[j] for j in sorted(view)]))

    run = simulate(
        config.topology,
        schedule.crash,
        schedule.draws,
        wait=algorithms.ALGORITHMS[spec.kind].waits,
        quorum=config.quorum,
        heal=schedule.heal,
        initial_values=[x0.copy() for _ in range(n)],
        compute=compute,
        combine=combine,
    )
    return run, np.stack(run.values[-1])
