"""A plain event-driven simulator of the cluster-based model, one scenario at a time.

It shares no code with the array path: registers that keep their history, a message
queue ordered by time, processes as little state machines. Fed the same drawn time
stamps (``schedule.RoundDraws``, stacked over rounds), it must produce the same collects,
messages, views, end times and blocked flags as ``schedule.resolve_round``; with value
hooks it also runs the algorithms, as the oracle of the engine and the baseline of the
benchmarks.

Steps at equal times are ordered write < read < send < arrival < end of round, which is
what the array code's ``<=`` comparisons mean. All time arithmetic is float32, in the
same order as the array code, so results agree bit for bit.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable
from typing import Any

import numpy as np

from ftsgd_jax.model import Topology

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
    end_time: np.ndarray  # (R, n) float32, +inf where the round never ended
    finished: np.ndarray  # (R, n) bool
    blocked: np.ndarray  # (R, n) bool
    values: list[list[Any]]  # values[r][p]: value after round r (last one if unfinished)
    trace: list[tuple]  # (time, step, process, round, detail) in execution order


@dataclasses.dataclass
class _Process:
    pid: int
    round: int = 0
    value: Any = None
    written: Any = None
    write_time: np.float32 = np.float32(0)
    collect: dict[int, Any] = dataclasses.field(default_factory=dict)
    sends_left: int = 0
    waiting: bool = False


def simulate(
    topology: Topology,
    crash_time: np.ndarray,
    draws: Any,
    *,
    wait: bool,
    quorum: str = "weighted",
    initial_values: list[Any] | None = None,
    compute: Compute | None = None,
    combine: Combine | None = None,
) -> ReferenceRun:
    """Run all rounds of ``draws`` (fields with a leading round axis) event by event."""
    compute = compute or (lambda p, r, v: v)
    combine = combine or (lambda p, r, own, view: own)
    f32 = np.float32
    draws = {name: np.asarray(getattr(draws, name), f32) for name in draws._fields}
    rounds = draws["compute"].shape[0]
    n, cluster_of = topology.n, topology.cluster_of
    mates = [np.flatnonzero(cluster_of == cluster_of[p]) for p in range(n)]
    others = [np.flatnonzero(cluster_of != cluster_of[p]) for p in range(n)]
    crash_time = np.asarray(crash_time, f32)
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
        end_time=np.full((rounds, n), np.inf, f32),
        finished=np.zeros((rounds, n), bool),
        blocked=np.zeros((rounds, n), bool),
        values=[],
        trace=[],
    )
    queue: list[tuple] = []
    counter = iter(range(1 << 62))

    def push(time, step, pid, payload=None):
        heapq.heappush(queue, (f32(time), step, next(counter), pid, payload))

    procs = [_Process(p, value=None if initial_values is None else initial_values[p]) for p in range(n)]
    history = [[None] * n for _ in range(rounds)]

    def start_round(proc: _Process, clock: np.float32):
        r = proc.round
        proc.write_time = f32(clock + draws["compute"][r, proc.pid])
        push(proc.write_time, WRITE, proc.pid)

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
        start_round(proc, f32(0))

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
                push(f32(proc.write_time + offset), READ, p, int(j))
            collect_end = f32(proc.write_time + max([f32(0), *(read_offset[j] for j in mates[p] if j != p)]))
            send_offset = draws["send_offset"][r, p]
            proc.sends_left = len(others[p])
            for q in others[p]:
                push(f32(collect_end + send_offset[q]), SEND, p, int(q))
            last_send = f32(collect_end + max([f32(0), *(send_offset[q] for q in others[p])]))
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
            arrival = max(f32(time + draws["delay"][r, p, q]), draws["hold"][r, p, q])
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
    for p in np.flatnonzero(np.isfinite(crash_time)):
        out.trace.append((float(crash_time[p]), "crash", int(p), None, None))
    out.trace.sort(key=lambda event: event[0])  # stable: equal times keep execution order
    previous = [None if initial_values is None else initial_values[p] for p in range(n)]
    for r in range(rounds):
        history[r] = [previous[p] if history[r][p] is None else history[r][p] for p in range(n)]
        previous = history[r]
    out.values = history
    return out


def run_algorithm(config, index: int) -> tuple[ReferenceRun, np.ndarray]:
    """Scenario ``index`` of a ``sc``/``nowait``/``gen`` configuration, event by event.

    The time stamps and gradient noise come from the scenario's key exactly as in the
    engine; everything else (registers, messages, views, averaging) is done here in
    plain Python and NumPy. Returns the run and the final parameters, (n, d).
    """
    import jax

    from ftsgd_jax import algorithms, engine

    spec = config.algorithm
    if spec.kind not in ("sc", "nowait", "gen"):
        raise ValueError(f"the reference runs sc, nowait and gen, not {spec.kind!r}")
    schedule = engine.scenario_schedule(config, index)
    alphas = np.asarray(jax.vmap(algorithms.step_size(config))(np.arange(config.run.iterations)), np.float32)
    objective = config.objective
    gradient = jax.jit(lambda x, t, p: objective.stochastic_grad(x, engine.gradient_key(schedule.gradient_root, t, p)))
    n = config.topology.n
    x0 = np.asarray(objective.x0, np.float32)

    def compute(p, r, x):
        t = int(schedule.iteration[r])
        if schedule.round[r] > 0:
            return x
        return (x - alphas[t] * np.asarray(gradient(x, t, p))).astype(np.float32)

    def combine(p, r, own, view):
        points = np.stack([view[j] for j in sorted(view)])
        if spec.kind == "gen" and spec.rule != "mean":
            return _reference_rule(spec.rule, points)
        return points.mean(axis=0, dtype=np.float64).astype(np.float32)

    run = simulate(
        config.topology,
        schedule.crash_time,
        schedule.draws,
        wait=spec.kind == "gen",
        quorum=config.quorum,
        initial_values=[x0.copy() for _ in range(n)],
        compute=compute,
        combine=combine,
    )
    return run, np.stack(run.values[-1])


def _reference_rule(rule: str, points: np.ndarray) -> np.ndarray:
    if rule == "midpoint":
        return ((points.min(axis=0) + points.max(axis=0)) / 2).astype(np.float32)
    raise ValueError(f"the reference implements the mean and midpoint rules, not {rule!r}")
