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
   ``s_pq + delay[p, q]``, or not before the partition heals where ``cut[p, q]``;
5. ends the round right after its last send (``wait=False``: the strongly convex
   algorithm), or at the earliest later time at which the clusters it heard from
   (its own included) satisfy the quorum rule (``wait=True``; ``+inf`` = blocked);
6. its view is its collect joined with the collects carried by the messages that
   arrived by its end time: ``V = (M @ S) > 0``.

A step at time ``s`` of a process with crash time ``kappa`` happens iff ``s <= kappa``,
so a crash between two sends cuts a broadcast part-way. A message that arrives before
its receiver reaches that round waits in a buffer; one that arrives after the receiver
left the round is ignored (a reconstruction choice, see docs/reconstruction.md).

Exact time at any run length. Every duration is a whole number of ticks (1/32 time unit),
and a round is computed in float32 relative to its own origin, the earliest clock of a
process still running (:class:`Timeline`); the origin itself is an integer tick count in
two int32 words. A float32 holds every tick count below 2**24 exactly, so every sum and
comparison of a round is exact while the round's steps stay within ``EXACT_SPAN`` time
units of its origin, however long the run. A larger value rounds monotonically, so it can
still be compared with an exact one correctly; whether any step that took place left the
exact range is tracked inside the compiled program (``Timeline.latest``, an overflow flag
in the manner of jax-md) and checked for every scenario by the engine.

The schedulers themselves, their parameters and their registry live in
:mod:`ftsgd_jax.schedulers`; the names other modules use are reachable from here too. All
functions are pure and shape-stable for a given topology, so they jit once and vmap over
scenarios.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import rng
from ftsgd_jax.model import CrashPoints, Topology, quorum_threshold, quorum_weights

# Besides what the rounds use, the schedulers' names that other modules reach from here.
from ftsgd_jax.schedulers import (  # noqa: F401
    EPOCH_TICKS,
    EXACT_SPAN,
    SCHEDULE_DEFAULTS,
    SCHEDULERS,
    SMALLEST_MEAN,
    TICKS_PER_UNIT,
    RoundDraws,
    ScenarioDraws,
    ScheduleParams,
    Scheduler,
    SchedulerKind,
    adversary_favoured,
    genome_size,
    make_scheduler,
    split_genome,
)


def draw_scenario(key: jax.Array, topology: Topology, scheduler: Scheduler) -> ScenarioDraws:
    slow = (rng.rank(key, topology.n) < scheduler.params.stragglers) & SCHEDULERS[scheduler.kind].stragglers
    return ScenarioDraws(slow=slow)


def draw_round(
    key: jax.Array, topology: Topology, scheduler: Scheduler, scenario: ScenarioDraws, quorum: str
) -> RoundDraws:
    """Draw one round's durations, read offsets, send offsets and delays, in whole ticks.

    Every stamp is a multiple of ``1 / TICKS_PER_UNIT``, rounded to the nearest tick, and a
    computation lasts at least one tick (every step takes a positive time): sums of such
    numbers are exact in float32 near a round's origin, so the order in which XLA adds them
    (fused, reassociated or with multiply-adds) cannot change a single comparison, and the
    plain reference simulator reproduces every time stamp bit for bit.
    """
    draws = SCHEDULERS[scheduler.kind].draw(key, topology, scheduler.params, scenario, quorum)
    return RoundDraws(
        compute=jnp.maximum(on_grid(draws.compute), 1.0 / TICKS_PER_UNIT),
        read_offset=on_grid(draws.read_offset),
        send_offset=on_grid(draws.send_offset),
        delay=on_grid(draws.delay),
        cut=draws.cut,
    )


def on_grid(time: jax.Array, rounding=jnp.round) -> jax.Array:
    """Snap durations to the time grid; infinities stay infinite."""
    return (rounding(time * TICKS_PER_UNIT) / TICKS_PER_UNIT).astype(jnp.float32)


def eventually_delivers(topology: Topology, scheduler: Scheduler) -> jax.Array:
    """(n, n) bool: [p, q] a message from p reaches q at a finite time (sent at a finite time).

    False across a partition that never heals and everywhere under ``self_only``; true for
    every other scheduler, whose delays are finite (``late`` included).
    """
    return SCHEDULERS[scheduler.kind].delivers(topology, scheduler.params)


class RoundOutcome(NamedTuple):
    """Everything one round's time stamps imply, per process (times relative to the round's origin)."""

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
    latest: jax.Array  # (): the latest time of a step that took place (-inf if none)


def happens(time: jax.Array, crash_time: jax.Array) -> jax.Array:
    """A step at ``time`` takes place: it is finite and not after the crash."""
    return (time <= crash_time) & jnp.isfinite(time)


def own_steps(topology: Topology, draws: RoundDraws) -> jax.Array:
    """(n,) how long each process's own steps last: compute, then every read, then every send."""
    mates = jnp.asarray(topology.same_cluster) & ~jnp.eye(topology.n, dtype=bool)
    reads = jnp.max(jnp.where(mates, draws.read_offset, 0.0), axis=1)
    sends = jnp.max(jnp.where(~jnp.asarray(topology.same_cluster), draws.send_offset, 0.0), axis=1)
    return draws.compute + reads + sends


def resolve_round(
    topology: Topology,
    clock: jax.Array,
    crash_time: jax.Array | None,
    draws: RoundDraws,
    *,
    wait: bool,
    quorum: str = "weighted",
    heal_time: jax.Array | None = None,
) -> RoundOutcome:
    """Turn one round's time stamps into collects, messages, views and end times.

    ``clock`` and ``crash_time`` are relative to the round's origin; so is every time
    returned. ``crash_time`` None: no process can crash (the program then has no crash
    comparisons). ``heal_time`` (partitions only, else None) is when messages on cut links may
    arrive, relative to the origin: possibly far beyond the exact range, where it still
    stands exactly for the healing moment (see :func:`heal_time`).
    """
    n = topology.n
    mates = jnp.asarray(topology.same_cluster)
    others = ~mates
    crash_free = crash_time is None
    if crash_free:
        crash_time = jnp.full_like(clock, jnp.inf)
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
    transit = send_time + draws.delay
    if heal_time is not None:
        transit = jnp.where(draws.cut, jnp.maximum(transit, heal_time), transit)
    arrival = jnp.where(sent, transit, jnp.inf)
    last_send = collect_end + jnp.max(jnp.where(others, draws.send_offset, 0.0), axis=1)

    if wait:
        end_time = jnp.maximum(last_send, quorum_time(topology, arrival, quorum))
    else:
        end_time = last_send
    finished = happens(end_time, crash_time)
    received = finished[:, None] & (arrival.T <= end_time[:, None])
    holds = received | jnp.eye(n, dtype=bool)
    view = finished[:, None] & ((holds.astype(jnp.float32) @ collect.astype(jnp.float32)) > 0)
    blocked = jnp.isinf(end_time) & (crash_time == jnp.inf)
    # Every step of a process lies between its clock and its last send, or its end, and a
    # received message arrived by its receiver's end: the latest of these over the
    # processes that took a step bounds every time of the round. An end at the healing
    # moment is exempt (it is known exactly, as an integer), so the messages that arrived
    # over links that were never cut must then be counted on their own.
    started = jnp.isfinite(clock) & (clock < crash_time)
    counted_end = finished
    # without crashes or waits every process that starts also ends, after its last send
    stops_early = wait or not crash_free
    latest = jnp.max(jnp.where(started, last_send, -jnp.inf)) if stops_early else -jnp.inf
    if heal_time is not None:
        counted_end = finished & ~((end_time == heal_time) & (heal_time >= EXACT_SPAN))
        uncut = jnp.where(received & ~draws.cut.T, arrival.T, -jnp.inf)
        latest = jnp.maximum(latest, jnp.max(uncut))
    latest = jnp.maximum(latest, jnp.max(jnp.where(counted_end, end_time, -jnp.inf)))
    return RoundOutcome(
        write_time, collect, collect_end, send_time, sent, arrival, received, view, end_time, finished, blocked, latest
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


class Timeline(NamedTuple):
    """Where every process stands between two rounds, in the current round's frame.

    clock: (n,) when each process starts its next round, relative to ``origin``; +inf for a
        process that is blocked or has crashed.
    crashed: (n,) bool, the process has reached its crash point.
    to_crash: (n,) int32, rounds the process has still to play before its crash round (0: this
        one; a process that never crashes starts from ``model.NEVER``).
    healed: (n,) bool, the process's clock is the moment a partition healed, far from the
        origin: it stands for that exact integer time, not for its float32 value.
    origin: (2,) int32 ``[epoch, tick]``: the frame's origin is ``epoch * EPOCH_TICKS + tick``
        ticks after time 0.
    latest: () the latest time of any step so far, relative to the origin of its round: the
        run's time stamps are exact iff it stays below ``EXACT_SPAN``.
    """

    clock: jax.Array
    crashed: jax.Array
    to_crash: jax.Array
    healed: jax.Array
    origin: jax.Array
    latest: jax.Array


def start_timeline(crash: CrashPoints) -> Timeline:
    """Every process at time 0, its crash round ahead of it."""
    n = crash.round.shape[-1]
    return Timeline(
        clock=jnp.zeros((n,), jnp.float32),
        crashed=jnp.zeros((n,), bool),
        to_crash=jnp.asarray(crash.round, jnp.int32),
        healed=jnp.zeros((n,), bool),
        origin=jnp.zeros((2,), jnp.int32),
        latest=jnp.float32(0.0),
    )


def absolute_time(origin: jax.Array | np.ndarray, relative: jax.Array | np.ndarray) -> np.ndarray:
    """Relative times of a frame as absolute float64 time units (host side, exact)."""
    origin = np.asarray(origin, np.int64)
    ticks = origin[..., 0] * EPOCH_TICKS + origin[..., 1]
    return ticks[..., None] / TICKS_PER_UNIT + np.asarray(relative, np.float64)


def absolute_end_time(played: PlayedRound, heal: float) -> np.ndarray:
    """A played round's end times as absolute float64 time units; ``heal``: the absolute
    healing time, which an end at the healing moment stands for."""
    ends = absolute_time(played.origin, played.outcome.end_time)
    return np.where(np.asarray(played.healed), heal, ends)


def reframe(timeline: Timeline, params: ScheduleParams, healing: bool) -> tuple[jax.Array, jax.Array]:
    """Move the origin to the earliest clock of a running process: (clocks, origin) in the new frame.

    Where that clock is a healing moment (``healing``: the scheduler partitions), the new
    origin is the healing time itself, read exactly from its integer form.
    """
    running = jnp.isfinite(timeline.clock)
    earliest = jnp.min(jnp.where(running, timeline.clock, jnp.inf))
    shift = jnp.where(jnp.isfinite(earliest), earliest, 0.0)
    # an exact shift is below 2**24 ticks; a larger one has already been flagged by ``latest``
    ticks = jnp.minimum(shift * TICKS_PER_UNIT, 2.0**30).astype(jnp.int32)
    tick = timeline.origin[1] + ticks
    shifted = jnp.stack([timeline.origin[0] + tick // EPOCH_TICKS, tick % EPOCH_TICKS])
    if healing:
        at_heal = jnp.any(running & timeline.healed & (timeline.clock == earliest))
        shifted = jnp.where(at_heal, jnp.stack([params.until_epoch, params.until_tick]), shifted)
    return timeline.clock - shift, shifted


def heal_time(origin: jax.Array, params: ScheduleParams) -> jax.Array:
    """When a partition heals, relative to ``origin`` (+inf if never).

    Exact while within 2**24 ticks of the origin; farther, a monotone rounding, which still
    compares correctly with every exact time of the round.
    """
    epochs = jnp.clip(params.until_epoch - origin[0], -64, 64)
    ticks = epochs * EPOCH_TICKS + (params.until_tick - origin[1])
    return jnp.where(params.heals, ticks.astype(jnp.float32) / TICKS_PER_UNIT, jnp.inf)


def crash_times(crash: CrashPoints, timeline: Timeline, clock: jax.Array, own: jax.Array) -> jax.Array:
    """(n,) each process's crash time in this round's frame.

    -inf once it has crashed (no step takes place); in its crash round
    ``clock + fraction * own`` on the grid (rounded down), ``own`` being the length of the
    process's own steps, or -inf for a crash before the first step (negative fraction);
    +inf otherwise (before its crash round, or forever if it blocked before reaching it).
    """
    # the crash round is told by a countdown carried in the timeline, not by comparing the
    # round index with crash.round: measured twice as fast on a 2-core CPU (sc, n = 16)
    at = clock + on_grid(crash.fraction * own, jnp.floor)
    during = jnp.where(crash.fraction < 0, -jnp.inf, at)
    return jnp.where(timeline.crashed, -jnp.inf, jnp.where(timeline.to_crash == 0, during, jnp.inf))


class PlayedRound(NamedTuple):
    """One round of a scenario: its draws, the outcome, its frame and crash times."""

    draws: RoundDraws
    outcome: RoundOutcome
    origin: jax.Array  # (2,) int32
    clock: jax.Array  # (n,) start of the round, relative to origin
    crash_time: jax.Array  # (n,) relative to origin
    healed: jax.Array  # (n,) bool: the round ended at the partition's healing moment (far from origin)


def play_round(
    topology: Topology,
    scheduler: Scheduler,
    scenario: ScenarioDraws,
    crash: CrashPoints | None,
    timeline: Timeline,
    key: jax.Array,
    *,
    wait: bool,
    quorum: str,
    barrier: bool = False,
) -> tuple[Timeline, PlayedRound]:
    """Draw and resolve one round from where the processes stand, and move them on.

    ``barrier``: the round ends for everyone when the last process ends it, and for no one
    if some process does not (synchronous parallel SGD). ``crash`` None: no process crashes.
    """
    partitions = SCHEDULERS[scheduler.kind].partitions
    clock, origin = reframe(timeline, scheduler.params, partitions)
    draws = draw_round(key, topology, scheduler, scenario, quorum)
    crash_time = None if crash is None else crash_times(crash, timeline, clock, own_steps(topology, draws))
    heal = heal_time(origin, scheduler.params) if partitions else None
    outcome = resolve_round(topology, clock, crash_time, draws, wait=wait, quorum=quorum, heal_time=heal)
    if crash_time is None:
        crash_time = jnp.full_like(clock, jnp.inf)
    if barrier:
        everyone = jnp.all(outcome.finished)
        end = jnp.where(everyone, jnp.max(outcome.end_time), jnp.inf)
        outcome = outcome._replace(
            end_time=jnp.full_like(outcome.end_time, end),
            finished=jnp.full_like(outcome.finished, everyone),
            blocked=~everyone & (crash_time == jnp.inf),
        )
    if crash is None:  # the crash countdown is never consulted: carried through unchanged
        crashed, to_crash, next_clock = timeline.crashed, timeline.to_crash, outcome.end_time
    else:
        crashed = timeline.crashed | (jnp.isfinite(clock) & (timeline.to_crash == 0))
        to_crash, next_clock = timeline.to_crash - 1, jnp.where(crashed, jnp.inf, outcome.end_time)
    healed = timeline.healed if heal is None else outcome.finished & (outcome.end_time == heal) & (heal >= EXACT_SPAN)
    moved = Timeline(
        clock=next_clock,
        crashed=crashed,
        to_crash=to_crash,
        healed=healed,
        origin=origin,
        latest=jnp.maximum(timeline.latest, outcome.latest),
    )
    return moved, PlayedRound(draws, outcome, origin, clock, crash_time, healed)


def round_key(rounds_key: jax.Array, round_index) -> jax.Array:
    """The key of a scenario's global round ``round_index`` (every agreement round counts)."""
    return rng.fold_in(rounds_key, round_index)


def run_rounds(
    key: jax.Array,
    topology: Topology,
    scheduler: Scheduler,
    crash: CrashPoints,
    rounds: int,
    *,
    wait: bool,
    quorum: str = "weighted",
) -> PlayedRound:
    """Play ``rounds`` consecutive rounds from time 0, clocks drifting; stacked over rounds.

    Used by tests and the reference comparison; the engine plays the same rounds with
    :func:`play_round` inside its algorithms.
    """
    scenario_key, rounds_key = rng.split(key, 2)
    scenario = draw_scenario(scenario_key, topology, scheduler)

    def one_round(timeline, index):
        return play_round(topology, scheduler, scenario, crash, timeline, round_key(rounds_key, index), wait=wait, quorum=quorum)

    _, played = jax.lax.scan(one_round, start_timeline(crash), jnp.arange(rounds))
    return played
