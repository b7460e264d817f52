"""Schedulers -> time stamps -> views: an asynchronous round as array operations.

An execution is an interleaving of atomic steps. Giving every step a real time stamp
represents any interleaving; a scheduler is a rule that draws the stamps. Per round
``(t, r)`` process ``p``:

1. computes for ``compute[p] > 0`` from its clock (the end of its previous round);
2. writes its value at ``w_p = clock_p + compute[p]``;
3. reads cluster-mate ``j`` at ``w_p + read_offset[p, j]``: ``j`` is in the collect
   ``S_p`` iff ``w_j <= w_p + read_offset[p, j]`` (registers keep every round's value, so
   a read asks for round ``(t, r)`` and sees it iff it was written by then);
4. sends to each process ``q`` of another cluster at
   ``s_pq = collect_end_p + send_offset[p, q]``; the message arrives at
   ``max(s_pq + delay[p, q], hold[p, q])`` (``hold`` models partitions);
5. ends the round right after its last send (``wait=False``: the strongly convex
   algorithm), or at the earliest later time at which the clusters it heard from
   (its own included) satisfy the quorum rule (``wait=True``; ``+inf`` = blocked);
6. its view is its collect joined with the collects carried by the messages that
   arrived by its end time: ``V = (M @ S) > 0``.

A step at time ``s`` of a process with crash time ``kappa`` happens iff ``s <= kappa``,
so a crash between two sends cuts a broadcast part-way. A message that arrives before
its receiver reaches that round waits in a buffer; one that arrives after the receiver
left the round is ignored (a reconstruction choice, see docs/model.md).

All functions are pure and shape-stable for a given topology, so they jit once and vmap
over scenarios.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import rng
from ftsgd_jax.errors import ConfigError, choice, closest
from ftsgd_jax.model import Topology, quorum_threshold, quorum_weights

# Time stamps live on a grid of 1/32 time unit; float32 holds every grid point exactly up
# to 2**24 ticks, so runs must end before EXACT_TIME_LIMIT time units.
TICKS_PER_UNIT = 32
EXACT_TIME_LIMIT = 2**24 / TICKS_PER_UNIT

SCHEDULERS = ("sync", "random", "heavy_tail", "straggler", "partition", "self_only", "adversarial")

# Time unit: the mean local computation of one round. Every default below is in it.
SCHEDULE_DEFAULTS: dict[str, Any] = {
    "compute_mean": 1.0,  # mean duration of the local computation before a write
    "read_mean": 0.1,  # mean offset of each register read after the own write (uniform)
    "send_mean": 0.1,  # mean gap between the end of the collect and each send (uniform)
    "delay_mean": 1.0,  # mean message delay
    "tail_index": 1.5,  # heavy_tail: Pareto shape (> 1, so the mean delay is finite)
    "stragglers": 1,  # straggler: how many processes are slow
    "slowdown": 10.0,  # straggler: factor on their computation time
    "groups": None,  # partition: lists of cluster ids; default: first half vs rest
    "until": math.inf,  # partition: time at which the cut heals
    "late": 1.0e5,  # adversarial: delay of the messages it holds back
}


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ScheduleParams:
    """Numeric scheduler parameters: run-time values, so sweeping them does not recompile."""

    compute_mean: jax.Array
    read_mean: jax.Array
    send_mean: jax.Array
    delay_mean: jax.Array
    tail_index: jax.Array
    stragglers: jax.Array
    slowdown: jax.Array
    cluster_group: jax.Array  # (m,) int: partition side of each cluster
    until: jax.Array
    late: jax.Array


@dataclasses.dataclass(frozen=True)
class Scheduler:
    """A scheduler family (static ``kind``) with its parameters."""

    kind: str
    params: ScheduleParams
    settings: Mapping[str, Any]  # the resolved user-facing values, for manifests


def make_scheduler(kind: str, topology: Topology, **settings: Any) -> Scheduler:
    """Validate user settings for a scheduler and resolve every default."""
    choice("schedule.kind", kind, SCHEDULERS)
    for key in settings:
        if key not in SCHEDULE_DEFAULTS:
            raise ConfigError(
                f"schedule.{key}", f"unknown key; allowed: {', '.join(SCHEDULE_DEFAULTS)}"
                + closest(key, SCHEDULE_DEFAULTS)
            )
    resolved = {**SCHEDULE_DEFAULTS, **settings}
    for key in ("compute_mean", "read_mean", "send_mean", "delay_mean", "slowdown", "late", "until"):
        value = resolved[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(f"schedule.{key}", f"need a number, got {value!r}")
        if value < 0:
            raise ConfigError(f"schedule.{key}", f"delays and durations must be >= 0, got {value!r}")
    if resolved["compute_mean"] <= 0:
        raise ConfigError("schedule.compute_mean", "every computation takes a positive time: need > 0")
    if resolved["slowdown"] < 1:
        raise ConfigError("schedule.slowdown", f"need >= 1, got {resolved['slowdown']!r}")
    if not isinstance(resolved["tail_index"], (int, float)) or resolved["tail_index"] <= 1:
        raise ConfigError("schedule.tail_index", f"need a number > 1 (finite mean delay), got {resolved['tail_index']!r}")
    stragglers = resolved["stragglers"]
    if isinstance(stragglers, bool) or not isinstance(stragglers, int) or not 0 <= stragglers <= topology.n:
        raise ConfigError("schedule.stragglers", f"need an integer in [0, {topology.n}], got {stragglers!r}")
    group_of = _cluster_groups(resolved["groups"], topology)
    resolved["groups"] = [np.flatnonzero(group_of == g).tolist() for g in (0, 1)]
    params = ScheduleParams(
        compute_mean=jnp.float32(resolved["compute_mean"]),
        read_mean=jnp.float32(resolved["read_mean"]),
        send_mean=jnp.float32(resolved["send_mean"]),
        delay_mean=jnp.float32(resolved["delay_mean"]),
        tail_index=jnp.float32(resolved["tail_index"]),
        stragglers=jnp.int32(stragglers),
        slowdown=jnp.float32(resolved["slowdown"]),
        cluster_group=jnp.asarray(group_of, jnp.int32),
        until=jnp.float32(resolved["until"]),
        late=jnp.float32(resolved["late"]),
    )
    return Scheduler(kind, params, resolved)


def _cluster_groups(groups: Any, topology: Topology) -> np.ndarray:
    """(m,) side (0 or 1) of each cluster from a list of two lists of cluster ids."""
    m = topology.m
    if groups is None:
        return (np.arange(m) >= (m + 1) // 2).astype(np.int32)
    if not isinstance(groups, (list, tuple)) or len(groups) != 2 or not all(isinstance(g, (list, tuple)) for g in groups):
        raise ConfigError("schedule.groups", f"need two lists of cluster ids, got {groups!r}")
    ids = [c for g in groups for c in g]
    if any(isinstance(c, bool) or not isinstance(c, int) for c in ids) or sorted(ids) != list(range(m)):
        raise ConfigError(
            "schedule.groups", f"the two groups must list each cluster id 0..{m - 1} exactly once, got {groups!r}"
        )
    side = np.zeros(m, np.int32)
    side[list(groups[1])] = 1
    return side


def nominal_round_time(params: ScheduleParams) -> jax.Array:
    """A typical round length, used to place crash times over a run."""
    return params.compute_mean + params.read_mean + params.send_mean + params.delay_mean


class ScenarioDraws(NamedTuple):
    """What a scheduler fixes once per scenario."""

    slow: jax.Array  # (n,) bool: stragglers


class RoundDraws(NamedTuple):
    """The time stamps a scheduler draws for one round (relative durations)."""

    compute: jax.Array  # (n,) > 0
    read_offset: jax.Array  # (n, n) >= 0, [p, j]: p reads j this long after its write
    send_offset: jax.Array  # (n, n) >= 0, [p, q]: p sends to q this long after its collect
    delay: jax.Array  # (n, n) >= 0, [p, q]: transit time of p's message to q
    hold: jax.Array  # (n, n): [p, q] earliest arrival time (partitions)


def draw_scenario(key: jax.Array, topology: Topology, scheduler: Scheduler) -> ScenarioDraws:
    slow = (rng.rank(key, topology.n) < scheduler.params.stragglers) & (scheduler.kind == "straggler")
    return ScenarioDraws(slow=slow)


def draw_round(
    key: jax.Array, topology: Topology, scheduler: Scheduler, scenario: ScenarioDraws, quorum: str
) -> RoundDraws:
    """Draw one round's durations, read offsets, send offsets and delays, on the time grid.

    Every stamp is a multiple of ``1 / TICKS_PER_UNIT``: sums of such numbers are exact
    in float32 (below ``EXACT_TIME_LIMIT``), so the order in which XLA adds them (fused,
    reassociated or with multiply-adds) cannot change a single comparison, and the plain
    reference simulator reproduces every time stamp bit for bit.
    """
    draws = _draw_round(key, topology, scheduler, scenario, quorum)
    return RoundDraws(
        compute=jnp.maximum(on_grid(draws.compute, jnp.ceil), 1.0 / TICKS_PER_UNIT),
        read_offset=on_grid(draws.read_offset),
        send_offset=on_grid(draws.send_offset),
        delay=on_grid(draws.delay),
        hold=on_grid(draws.hold),
    )


def on_grid(time: jax.Array, rounding=jnp.round) -> jax.Array:
    """Snap durations to the time grid; infinities stay infinite."""
    return (rounding(time * TICKS_PER_UNIT) / TICKS_PER_UNIT).astype(jnp.float32)


def _draw_round(
    key: jax.Array, topology: Topology, scheduler: Scheduler, scenario: ScenarioDraws, quorum: str
) -> RoundDraws:
    n = topology.n
    params = scheduler.params
    kind = scheduler.kind
    zeros = jnp.zeros((n, n), jnp.float32)
    no_hold = jnp.full((n, n), -jnp.inf, jnp.float32)
    if kind == "sync":
        return RoundDraws(jnp.ones((n,), jnp.float32) * params.compute_mean, zeros, zeros, zeros, no_hold)
    if kind == "adversarial":
        return _adversarial_round(topology, params, quorum)
    k_compute, k_read, k_send, k_delay = rng.split(key, 4)
    compute = params.compute_mean * rng.exponential(k_compute, (n,))
    compute = jnp.where(scenario.slow, compute * params.slowdown, compute)
    # Offsets inside one step are uniform on [0, 2 mean]: the same mean as an exponential
    # without its logarithm, two thirds of a round's transcendental work.
    read_offset = 2.0 * params.read_mean * rng.uniform(k_read, (n, n))
    send_offset = 2.0 * params.send_mean * rng.uniform(k_send, (n, n))
    if kind == "heavy_tail":
        scale = params.delay_mean * (params.tail_index - 1) / params.tail_index
        delay = scale * rng.pareto(k_delay, params.tail_index, (n, n))
    elif kind == "self_only":
        delay = jnp.full((n, n), jnp.inf, jnp.float32)
    else:
        delay = params.delay_mean * rng.exponential(k_delay, (n, n))
    hold = no_hold
    if kind == "partition":
        side = params.cluster_group[jnp.asarray(topology.cluster_of)]
        cut = side[:, None] != side[None, :]
        hold = jnp.where(cut, params.until, no_hold)
    return RoundDraws(compute, read_offset, send_offset, delay, hold)


def adversary_favoured(topology: Topology, quorum: str) -> np.ndarray:
    """(m, m) bool: the clusters whose messages reach a receiver of cluster c in time.

    Each receiver hears from the shortest run of clusters ``c, c+1, ...`` (cyclically)
    that satisfies the quorum rule, so views of different clusters overlap as little as
    the rule allows.
    """
    m = topology.m
    weights = quorum_weights(topology, quorum)
    threshold = quorum_threshold(topology, quorum)
    favoured = np.zeros((m, m), bool)
    for c in range(m):
        total = 0.0
        for step in range(m):
            favoured[c, (c + step) % m] = True
            total += weights[(c + step) % m]
            if total > threshold:
                break
    return favoured


def _adversarial_round(topology: Topology, params: ScheduleParams, quorum: str) -> RoundDraws:
    """Deterministic worst-case-style round: staggered writes, minimal quorums."""
    n = topology.n
    rank_in_cluster = np.arange(n) - np.repeat(np.cumsum((0,) + topology.cluster_sizes[:-1]), topology.cluster_sizes)
    # later writers see the earlier ones, the first writer of a cluster sees only itself
    compute = params.compute_mean * jnp.asarray(1.0 + rank_in_cluster, jnp.float32)
    favoured = adversary_favoured(topology, quorum)
    cluster_of = topology.cluster_of
    in_time = favoured[cluster_of[None, :], cluster_of[:, None]]  # [p, q]: q (receiver) favours p's cluster
    delay = jnp.where(jnp.asarray(in_time), 0.0, params.late).astype(jnp.float32)
    zeros = jnp.zeros((n, n), jnp.float32)
    return RoundDraws(compute, zeros, zeros, delay, jnp.full((n, n), -jnp.inf, jnp.float32))


class RoundOutcome(NamedTuple):
    """Everything one round's time stamps imply, per process."""

    write_time: jax.Array  # (n,)
    collect: jax.Array  # (n, n) bool, [p, j]: j in p's collect
    collect_end: jax.Array  # (n,)
    send_time: jax.Array  # (n, n), [p, q]
    sent: jax.Array  # (n, n) bool, [p, q]: the send happened
    arrival: jax.Array  # (n, n), [p, q]: arrival at q, +inf if not sent
    received: jax.Array  # (n, n) bool, [p, q]: p got q's message by its round end
    view: jax.Array  # (n, n) bool, [p, j]: j's value is in p's view
    end_time: jax.Array  # (n,) +inf when blocked
    finished: jax.Array  # (n,) bool: ended the round before crashing
    blocked: jax.Array  # (n,) bool: waits forever and never crashes


def happens(time: jax.Array, crash_time: jax.Array) -> jax.Array:
    """A step at ``time`` takes place: it is finite and not after the crash."""
    return (time <= crash_time) & jnp.isfinite(time)


def resolve_round(
    topology: Topology,
    clock: jax.Array,
    crash_time: jax.Array,
    draws: RoundDraws,
    *,
    wait: bool,
    quorum: str = "weighted",
) -> RoundOutcome:
    """Turn one round's time stamps into collects, messages, views and end times."""
    n = topology.n
    mates = jnp.asarray(topology.same_cluster)
    others = ~mates
    # own register: read at the write itself, so a process always holds its own value
    read_offset = jnp.where(jnp.eye(n, dtype=bool), 0.0, draws.read_offset)

    write_time = clock + draws.compute
    wrote = happens(write_time, crash_time)
    read_time = write_time[:, None] + read_offset
    read_done = mates & happens(read_time, crash_time[:, None])
    collect = read_done & wrote[None, :] & (write_time[None, :] <= read_time)

    collect_end = write_time + jnp.max(jnp.where(mates, read_offset, 0.0), axis=1)
    collected = happens(collect_end, crash_time)
    send_time = collect_end[:, None] + draws.send_offset
    sent = others & collected[:, None] & happens(send_time, crash_time[:, None])
    arrival = jnp.where(sent, jnp.maximum(send_time + draws.delay, draws.hold), jnp.inf)
    last_send = collect_end + jnp.max(jnp.where(others, draws.send_offset, 0.0), axis=1)

    if wait:
        end_time = jnp.maximum(last_send, quorum_time(topology, arrival, quorum))
    else:
        end_time = last_send
    finished = happens(end_time, crash_time)
    received = finished[:, None] & (arrival.T <= end_time[:, None])
    holds = received | jnp.eye(n, dtype=bool)
    view = finished[:, None] & ((holds.astype(jnp.float32) @ collect.astype(jnp.float32)) > 0)
    blocked = jnp.isinf(end_time) & jnp.isinf(crash_time)
    return RoundOutcome(
        write_time, collect, collect_end, send_time, sent, arrival, received, view, end_time, finished, blocked
    )


def quorum_time(topology: Topology, arrival: jax.Array, quorum: str) -> jax.Array:
    """(n,) earliest time each receiver has heard from a quorum of clusters (own counts).

    The quorum forms at the arrival of some cluster's first message; trying every
    cluster's first arrival as that moment (an (n, m, m) comparison) avoids a sort.
    """
    membership = jnp.asarray(topology.membership, bool)  # (n, m)
    # first[q, c]: first arrival at q of a message from cluster c
    first = jnp.min(jnp.where(membership[:, None, :], arrival[:, :, None], jnp.inf), axis=0)
    first = jnp.where(membership, -jnp.inf, first)
    weights = jnp.asarray(quorum_weights(topology, quorum))
    heard_by = first[:, None, :] <= first[:, :, None]  # [q, c, c']: c' heard by c's first arrival
    reached = jnp.sum(jnp.where(heard_by, weights, 0.0), axis=-1) > quorum_threshold(topology, quorum)
    return jnp.min(jnp.where(reached, first, jnp.inf), axis=1)


def run_rounds(
    key: jax.Array,
    topology: Topology,
    scheduler: Scheduler,
    crash_time: jax.Array,
    rounds: int,
    *,
    wait: bool,
    quorum: str = "weighted",
) -> tuple[RoundDraws, RoundOutcome]:
    """Draw and resolve ``rounds`` consecutive rounds from clock 0, clocks drifting.

    Returns the draws and outcomes stacked over rounds (leading axis). Used by tests,
    replay and the reference comparison; the engine inlines the same two calls.
    """
    scenario_key, rounds_key = rng.split(key, 2)
    scenario = draw_scenario(scenario_key, topology, scheduler)

    def one_round(clock, index):
        draws = draw_round(rng.fold_in(rounds_key, index), topology, scheduler, scenario, quorum)
        outcome = resolve_round(topology, clock, crash_time, draws, wait=wait, quorum=quorum)
        return outcome.end_time, (draws, outcome)

    _, (draws, outcomes) = jax.lax.scan(one_round, jnp.zeros((topology.n,), jnp.float32), jnp.arange(rounds))
    return draws, outcomes
