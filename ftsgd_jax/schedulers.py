"""Schedulers: the rules that draw a round's time stamps, their parameters and their registry.

An execution is an interleaving of atomic steps, and a scheduler is a rule that draws the
time stamps of one round (:class:`RoundDraws`: computations, read and send offsets, message
delays, cut links) from the round's key and its parameters; :mod:`ftsgd_jax.schedule` turns
them into collects, messages and views. Every scheduler is an entry of :data:`SCHEDULERS`
(name -> :class:`SchedulerKind`: its draw and what the rest of the model must know about
it), and :func:`make_scheduler` validates the ``[schedule]`` settings into the run-time
:class:`ScheduleParams` that every scheduler shares, so sweeping them never recompiles.

Every duration is a whole number of ticks (``1 / TICKS_PER_UNIT`` time unit): the grid on
which a round's time stamps stay exact (see :mod:`ftsgd_jax.schedule`), and which settings
are checked against (``SMALLEST_MEAN``, ``EXACT_SPAN``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import rng
from ftsgd_jax.errors import ConfigError, choice, integer, known_keys, real
from ftsgd_jax.model import NEVER, CrashPoints, Topology, quorum_threshold, quorum_weights

TICKS_PER_UNIT = 32
EXACT_TICKS = 2**24  # float32 holds every integer tick count below this exactly
EXACT_SPAN = EXACT_TICKS / TICKS_PER_UNIT  # time units a round may span from its origin
EPOCH_TICKS = 2**24  # the origin is epoch * EPOCH_TICKS + tick, two int32 words
LONGEST_UNTIL = 2.0**50 / TICKS_PER_UNIT  # a partition's healing time must fit the epoch word

# A mean of a few ticks would be distorted by the grid (durations round to whole ticks):
# below these, refused. A computation lasts at least one tick, which moves a mean of 8
# ticks by under 1%; the other durations may be zero, and rounding an exponential of mean
# 3 ticks to whole ticks moves its mean by 0.5% (tests/test_schedule.py measures both).
SMALLEST_MEAN = {
    "compute_mean": 8 / TICKS_PER_UNIT,
    "read_mean": 3 / TICKS_PER_UNIT,
    "send_mean": 3 / TICKS_PER_UNIT,
    "delay_mean": 3 / TICKS_PER_UNIT,
}

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
    "spread": 8.0,  # searched: every duration lies in [0, spread x its mean] (a computation: from one tick)
    "genome": None,  # searched: the schedule's parameters, genome_size(n) reals (None: all 0, mid-range)
}

LARGEST_SPREAD = 1000.0
LARGEST_GENE = 1.0e6


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
    heals: jax.Array  # bool: the partition heals (``until`` finite)
    until_epoch: jax.Array  # int32: the healing time in ticks is until_epoch * EPOCH_TICKS + until_tick
    until_tick: jax.Array  # int32
    late: jax.Array
    spread: jax.Array  # searched: durations range over [0, spread x mean]
    genome: jax.Array  # searched: (genome_size(n),) float32; (0,) for every other scheduler


@dataclasses.dataclass(frozen=True)
class Scheduler:
    """A scheduler family (static ``kind``) with its parameters."""

    kind: str
    params: ScheduleParams
    settings: Mapping[str, Any]  # the resolved user-facing values, for manifests


SMALLEST_TAIL_INDEX = 1 / (1 - math.log2(100) / 24)
"""heavy_tail's smallest Pareto shape a: a delay is ``scale * (1 - u) ** (-1 / a)`` for a
24-bit uniform u, so the tail is cut at 2**(24 / a) times the scale and the mean falls short
by 2**(-24 (a - 1) / a), at most 1% from this a (about 1.383) up."""


def make_scheduler(kind: str, topology: Topology, **settings: Any) -> Scheduler:
    """Validate user settings for a scheduler and resolve every default."""
    family = SCHEDULERS[choice("schedule.kind", kind, SCHEDULERS)]
    known_keys("schedule", settings, SCHEDULE_DEFAULTS)
    resolved = {**SCHEDULE_DEFAULTS, **settings}
    for key, smallest in SMALLEST_MEAN.items():
        value = real(f"schedule.{key}", resolved[key], low=0.0, high=EXACT_SPAN)
        if value < smallest and (value > 0 or key == "compute_mean"):
            zero = "" if key == "compute_mean" else "0 or "
            raise ConfigError(
                f"schedule.{key}",
                f"got {value!r}: time stamps sit on a grid of 1/{TICKS_PER_UNIT} time unit, and a mean below "
                f"{smallest} ({smallest * TICKS_PER_UNIT:g} ticks) would be distorted by it; need {zero}>= {smallest} "
                "(scale every duration up instead)",
            )
    real("schedule.slowdown", resolved["slowdown"], low=1.0, high=EXACT_SPAN)
    real("schedule.late", resolved["late"], low=0.0, high=LONGEST_UNTIL)
    tail_index = real("schedule.tail_index", resolved["tail_index"], low=1.0, high=1000.0, low_open=True, note=" (finite mean delay)")
    if tail_index < SMALLEST_TAIL_INDEX:
        raise ConfigError(
            "schedule.tail_index",
            f"got {tail_index!r}: delays are drawn from 24-bit uniforms, which cut the Pareto tail at "
            f"{2 ** (24 / tail_index):.3g} times its scale and so lower the mean delay by "
            f"{2 ** (-24 * (tail_index - 1) / tail_index):.1%}; need >= {math.ceil(SMALLEST_TAIL_INDEX * 1000) / 1000} "
            "(at most 1% below delay_mean)",
        )
    until = resolved["until"]
    if not (isinstance(until, (int, float)) and not isinstance(until, bool) and until == math.inf):
        real("schedule.until", until, low=0.0, high=LONGEST_UNTIL, note=" or inf (never heals)")
    stragglers = integer("schedule.stragglers", resolved["stragglers"], 0, topology.n)
    real("schedule.spread", resolved["spread"], low=1.0, high=LARGEST_SPREAD)
    genome = _genome(resolved["genome"], kind, family.genome, topology)
    resolved["genome"] = None if resolved["genome"] is None else genome.tolist()
    group_of = _cluster_groups(resolved["groups"], topology)
    resolved["groups"] = [np.flatnonzero(group_of == g).tolist() for g in (0, 1)]
    heals = math.isfinite(until)
    until_ticks = round(until * TICKS_PER_UNIT) if heals else 0
    params = ScheduleParams(
        compute_mean=jnp.float32(resolved["compute_mean"]),
        read_mean=jnp.float32(resolved["read_mean"]),
        send_mean=jnp.float32(resolved["send_mean"]),
        delay_mean=jnp.float32(resolved["delay_mean"]),
        tail_index=jnp.float32(resolved["tail_index"]),
        stragglers=jnp.int32(stragglers),
        slowdown=jnp.float32(resolved["slowdown"]),
        cluster_group=jnp.asarray(group_of, jnp.int32),
        heals=jnp.bool_(heals),
        until_epoch=jnp.int32(until_ticks // EPOCH_TICKS),
        until_tick=jnp.int32(until_ticks % EPOCH_TICKS),
        late=jnp.float32(resolved["late"]),
        spread=jnp.float32(resolved["spread"]),
        genome=jnp.asarray(genome, jnp.float32),
    )
    return Scheduler(kind, params, resolved)


def _genome(value: Any, kind: str, takes_genome: bool, topology: Topology) -> np.ndarray:
    """A searched scheduler's genome as float32 (zeros when None); (0,) for other kinds."""
    size = genome_size(topology.n)
    if not takes_genome:
        if value is not None:
            takers = ", ".join(repr(name) for name, family in SCHEDULERS.items() if family.genome)
            raise ConfigError("schedule.genome", f"only the {takers} scheduler takes a genome (kind is {kind!r})")
        return np.zeros((0,), np.float32)
    if value is None:
        return np.zeros((size,), np.float32)
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, (list, tuple, np.ndarray))
        or len(value) != size
        or any(isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) for v in value)
    ):
        what = f"a list of {len(value)}" if isinstance(value, (list, tuple)) else repr(value)[:40]
        raise ConfigError("schedule.genome", f"need a list of {size} reals (genome_size of n = {topology.n}), got {what}")
    genome = np.asarray(value, np.float64)
    if not np.all(np.isfinite(genome)) or np.any(np.abs(genome) > LARGEST_GENE):
        raise ConfigError("schedule.genome", f"every value must be finite and within +-{LARGEST_GENE:g}")
    return genome.astype(np.float32)


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


class ScenarioDraws(NamedTuple):
    """What a scheduler fixes once per scenario."""

    slow: jax.Array  # (n,) bool: stragglers


class RoundDraws(NamedTuple):
    """The time stamps a scheduler draws for one round (relative durations)."""

    compute: jax.Array  # (n,) > 0
    read_offset: jax.Array  # (n, n) >= 0, [p, j]: p reads j this long after its write
    send_offset: jax.Array  # (n, n) >= 0, [p, q]: p sends to q this long after its collect
    delay: jax.Array  # (n, n) >= 0, [p, q]: transit time of p's message to q
    cut: jax.Array  # (n, n) bool, [p, q]: the message waits for the partition to heal


def _sync_round(key, topology: Topology, params: ScheduleParams, scenario: ScenarioDraws, quorum: str) -> RoundDraws:
    """Lockstep: every process computes for ``compute_mean``, every read, send and delivery is instant."""
    n = topology.n
    zeros = jnp.zeros((n, n), jnp.float32)
    return RoundDraws(jnp.ones((n,), jnp.float32) * params.compute_mean, zeros, zeros, zeros, jnp.zeros((n, n), bool))


def _exponential_delays(raw: jax.Array, params: ScheduleParams) -> jax.Array:
    return params.delay_mean * rng.exponential_of_bits(raw)


def _pareto_delays(raw: jax.Array, params: ScheduleParams) -> jax.Array:
    """Pareto delays of shape ``tail_index`` with mean ``delay_mean``."""
    scale = params.delay_mean * (params.tail_index - 1) / params.tail_index
    return scale * rng.pareto_of_bits(raw, params.tail_index)


def _never_delivered(raw: jax.Array, params: ScheduleParams) -> jax.Array:
    return jnp.full(raw.shape, jnp.inf, jnp.float32)


def process_bits(key: jax.Array, n: int) -> jax.Array:
    """uint32 (n, 1 + 3n): row p is what process p draws in the round of ``key``.

    Row p is ``rng.bits(fold_in(key, p), 1 + 3n)``: position 0 its computation, 1 + j its
    read of j, 1 + n + q its send to q, 1 + 2n + q the delay of its message to q. One key
    per process, not per purpose: XLA recomputes a scalar key's derivation inside every
    fused loop that reads the stamps, where n keys are derived once per round (measured:
    about half the integer work of the round's draws on a CPU).
    """
    return rng.bits_rows(rng.fold_in_range(key, n), 1 + 3 * n)


def random_round(delays: Callable[[jax.Array, ScheduleParams], jax.Array], cut: bool = False):
    """The ``draw`` of the random family (:func:`process_bits`): exponential computations
    (``slowdown`` times longer for stragglers), uniform read and send offsets, and
    ``delays(bits (n, n), params)``; with ``cut``, the links across the partition wait for
    it to heal."""

    def draw(key, topology: Topology, params: ScheduleParams, scenario: ScenarioDraws, quorum: str) -> RoundDraws:
        n = topology.n
        own = process_bits(key, n)
        compute = params.compute_mean * rng.exponential_of_bits(own[:, 0])
        compute = jnp.where(scenario.slow, compute * params.slowdown, compute)
        # Offsets inside one step are uniform on [0, 2 mean]: the same mean as an exponential
        # without its logarithm, two thirds of a round's transcendental work.
        read_offset = 2.0 * params.read_mean * rng.uniform_of_bits(own[:, 1 : 1 + n])
        send_offset = 2.0 * params.send_mean * rng.uniform_of_bits(own[:, 1 + n : 1 + 2 * n])
        delay = delays(own[:, 1 + 2 * n :], params)
        links = partition_cut(topology, params) if cut else jnp.zeros((n, n), bool)
        return RoundDraws(compute, read_offset, send_offset, delay, links)

    return draw


def partition_cut(topology: Topology, params: ScheduleParams) -> jax.Array:
    """(n, n) bool: [p, q] are on different sides of the partition."""
    side = params.cluster_group[jnp.asarray(topology.cluster_of)]
    return side[:, None] != side[None, :]


def every_message(topology: Topology, params: ScheduleParams) -> jax.Array:
    """``delivers`` of a scheduler whose delays are all finite."""
    return jnp.ones((topology.n, topology.n), bool)


def _after_healing(topology: Topology, params: ScheduleParams) -> jax.Array:
    return ~partition_cut(topology, params) | params.heals


def _no_message(topology: Topology, params: ScheduleParams) -> jax.Array:
    return jnp.zeros((topology.n, topology.n), bool)


def _favoured_runs(position: jax.Array, weights: np.ndarray, threshold: float) -> jax.Array:
    """(m, m) bool [c, c']: a receiver of cluster c hears cluster c' in time.

    ``position``: (m,) each cluster's place on a cycle. Cluster c hears the shortest run of
    clusters starting at itself along the cycle whose weights exceed the threshold.
    """
    m = weights.shape[0]
    order = jnp.argsort(position)  # the clusters along the cycle
    steps = order[(position[:, None] + jnp.arange(m)[None, :]) % m]  # [c, s]: s-th cluster after c
    w = jnp.asarray(weights)[steps]
    before = jnp.cumsum(w, axis=1) - w  # weight heard before adding the s-th cluster
    take = before <= threshold
    return jnp.any(take[:, :, None] & (steps[:, :, None] == jnp.arange(m)[None, None, :]), axis=1)


def adversary_favoured(topology: Topology, quorum: str, position: np.ndarray | None = None) -> np.ndarray:
    """(m, m) bool: the clusters whose messages reach a receiver of cluster c in time.

    The clusters sit on a cycle (``position``: each cluster's place; default 0, 1, ...,
    m - 1). Each receiver hears from the shortest run of clusters along it, starting at its
    own, that satisfies the quorum rule, so views of different clusters overlap as little
    as the rule allows. The ``adversarial`` scheduler draws the cycle afresh every round.
    """
    position = np.arange(topology.m) if position is None else np.asarray(position)
    runs = _favoured_runs(
        jnp.asarray(position, jnp.int32), quorum_weights(topology, quorum), quorum_threshold(topology, quorum)
    )
    return np.asarray(runs)


def _rank_within_clusters(key: jax.Array, topology: Topology) -> jax.Array:
    """(n,) int: a uniformly random order of the processes inside each cluster (0 = first)."""
    cluster_of = jnp.asarray(topology.cluster_of)
    score = cluster_of.astype(jnp.float32) + rng.uniform(key, (topology.n,))  # clusters apart, random inside
    start = jnp.asarray(np.concatenate([[0], np.cumsum(topology.cluster_sizes)[:-1]]), jnp.int32)
    return jnp.argsort(jnp.argsort(score)).astype(jnp.int32) - start[cluster_of]


def _adversarial_round(
    key: jax.Array, topology: Topology, params: ScheduleParams, scenario: ScenarioDraws, quorum: str
) -> RoundDraws:
    """A seeded adversary: staggered writes, minimal quorums that differ, one speaker per cluster.

    Every round, from the round's key:

    * a fresh random write order inside each cluster: the process of rank k computes for
      ``compute_mean * (1 + k + u/2)`` (u uniform on [0, 1)), so the first writer collects
      only itself and the last collects its whole cluster;
    * a fresh random cycle of the clusters: a receiver of cluster c hears in time only the
      shortest run of clusters from c along the cycle that satisfies the quorum rule
      (:func:`adversary_favoured`), so different clusters' views overlap as little as the
      rule allows;
    * from each favoured cluster only its first writer (the smallest collect) speaks in
      time: its messages have delay 0, every other message the delay ``late``;
    * read offsets uniform on [0, 2 read_mean] and send offsets uniform on
      [0, 2 send_mean] per pair, so a crash between two sends cuts a broadcast part-way.
    """
    n = topology.n
    k_cycle, k_order, k_jitter, k_read, k_send = rng.split(key, 5)
    cluster_of = jnp.asarray(topology.cluster_of)
    rank = _rank_within_clusters(k_order, topology)
    compute = params.compute_mean * (1.0 + rank.astype(jnp.float32) + 0.5 * rng.uniform(k_jitter, (n,)))
    position = rng.rank(k_cycle, topology.m)
    favoured = _favoured_runs(position, quorum_weights(topology, quorum), quorum_threshold(topology, quorum))
    in_time = favoured[cluster_of[None, :], cluster_of[:, None]] & (rank == 0)[:, None]  # [p, q]
    delay = jnp.where(in_time, 0.0, params.late).astype(jnp.float32)
    read_offset = 2.0 * params.read_mean * rng.uniform(k_read, (n, n))
    send_offset = 2.0 * params.send_mean * rng.uniform(k_send, (n, n))
    return RoundDraws(compute, read_offset, send_offset, delay, jnp.zeros((n, n), bool))


class Genome(NamedTuple):
    """The searched scheduler's genome, split by meaning (every gene is an unbounded real)."""

    compute: jax.Array  # (n,) each process's computation
    read: jax.Array  # (n, n) read offsets (only cluster-mates matter)
    send: jax.Array  # (n, n) send offsets (only other clusters matter)
    delay: jax.Array  # (n, n) message delays (only other clusters matter)
    crash_score: jax.Array  # (n,) the crash budget goes to the highest positive scores
    crash_at: jax.Array  # (n,) where in the crash window the process crashes
    crash_fraction: jax.Array  # (n,) how far into that round's own steps


def genome_size(n: int) -> int:
    """Reals in a searched schedule's genome for ``n`` processes: n + 3 n^2 + 3 n."""
    return n + 3 * n * n + 3 * n


def split_genome(genome: jax.Array, n: int) -> Genome:
    sizes = (n, n * n, n * n, n * n, n, n, n)
    shapes = ((n,), (n, n), (n, n), (n, n), (n,), (n,), (n,))
    bounds = np.cumsum((0,) + sizes)
    return Genome(*(genome[a:b].reshape(shape) for a, b, shape in zip(bounds[:-1], bounds[1:], shapes)))


def _searched_round(
    key: jax.Array, topology: Topology, params: ScheduleParams, scenario: ScenarioDraws, quorum: str
) -> RoundDraws:
    """Every round's durations from the genome, each squashed into its bounded range.

    A computation lies in [1 tick, spread x compute_mean], a read offset in
    [0, spread x read_mean], a send offset in [0, spread x send_mean], a delay in
    [0, spread x delay_mean] (``sigmoid`` of the gene); :func:`draw_round` then puts them
    on the grid like every other draw. The same durations serve every round (the clocks
    still drift, and crashes are placed by the genome, see :func:`searched_crash_points`).
    """
    genes = split_genome(params.genome, topology.n)
    tick = 1.0 / TICKS_PER_UNIT
    spread = params.spread
    compute = tick + (spread * params.compute_mean - tick) * jax.nn.sigmoid(genes.compute)
    read_offset = spread * params.read_mean * jax.nn.sigmoid(genes.read)
    send_offset = spread * params.send_mean * jax.nn.sigmoid(genes.send)
    delay = spread * params.delay_mean * jax.nn.sigmoid(genes.delay)
    return RoundDraws(compute, read_offset, send_offset, delay, jnp.zeros((topology.n, topology.n), bool))


def searched_crash_points(
    params: ScheduleParams, topology: Topology, crashes: jax.Array, window: jax.Array, rounds_per_iteration: np.ndarray
) -> CrashPoints:
    """The crash points a searched schedule's genome places, within the crash budget.

    At most ``crashes`` processes crash: those of the ``crashes`` highest crash scores whose
    score is positive (ties go to the lower process id). Each crashes in the round
    ``sigmoid(crash_at)`` of the way through the crash window's rounds, at the fraction
    ``sigmoid(crash_fraction)`` (below 1) of that round's own steps. ``window``: (2,) int32,
    the crash window's iterations ``[start, stop)`` (:func:`ftsgd_jax.model.window_iterations`).
    """
    n = topology.n
    genes = split_genome(params.genome, n)
    first_round = jnp.asarray(np.concatenate([[0], np.cumsum(rounds_per_iteration)]), jnp.int32)
    low, high = first_round[window[0]], first_round[window[1]]
    offset = jnp.floor(jax.nn.sigmoid(genes.crash_at) * (high - low).astype(jnp.float32)).astype(jnp.int32)
    round_index = jnp.minimum(low + offset, high - 1)
    fraction = jnp.minimum(jax.nn.sigmoid(genes.crash_fraction), np.float32(1.0 - 2.0**-24))
    score = genes.crash_score
    ids = jnp.arange(n)
    ahead = (score[None, :] > score[:, None]) | ((score[None, :] == score[:, None]) & (ids[None, :] < ids[:, None]))
    chosen = (jnp.sum(ahead, axis=1) < crashes) & (score > 0)
    return CrashPoints(jnp.where(chosen, round_index, NEVER), jnp.where(chosen, fraction, 0.0))


def _straggler_drift(settings: Mapping[str, Any], waits: bool, rounds: Callable[[], int]) -> None:
    """Refuse stragglers that drift behind the others beyond the exact range when nobody waits for them."""
    if waits or settings["stragglers"] == 0:
        return
    total = rounds()
    drift = (settings["slowdown"] - 1.0) * settings["compute_mean"] * total
    if drift >= EXACT_SPAN:
        raise ConfigError(
            "schedule.slowdown",
            f"stragglers drift about {drift:.3g} time units behind the others over {total} rounds, beyond the "
            f"exact range of time stamps ({EXACT_SPAN:g} units on the 1/{TICKS_PER_UNIT} grid); "
            "use a smaller slowdown or fewer iterations",
        )


def _late_beyond_range(settings: Mapping[str, Any], waits: bool, rounds: Callable[[], int]) -> None:
    """Refuse held-back messages later than the exact range where the quorum wait may wait for them."""
    if waits and settings["late"] >= EXACT_SPAN:
        raise ConfigError(
            "schedule.late",
            f"{settings['late']:g} exceeds the exact range of time stamps within one round ({EXACT_SPAN:g} time units "
            f"on the 1/{TICKS_PER_UNIT} grid), and the quorum wait may wait for a late message; use a smaller value",
        )


@dataclasses.dataclass(frozen=True)
class SchedulerKind:
    """A scheduler of the registry :data:`SCHEDULERS`: how it draws a round, and what the
    rest of the model must know about it. Only ``draw`` and ``summary`` are required.

    draw: ``(key, topology, params, scenario, quorum) -> RoundDraws``, one round's durations
        in time units, pure and shape-stable (:func:`draw_round` puts them on the grid).
    summary: one line saying what it models.
    stragglers: ``params.stragglers`` processes, drawn once per scenario, are slow
        (``ScenarioDraws.slow``; ``draw`` decides what slow means).
    partitions: messages over the ``cut`` links of its draws arrive no earlier than the
        healing time ``until`` (kept exact as an integer tick count).
    delivers: ``(topology, params) -> (n, n) bool``, [p, q] p's messages reach q at a finite
        time: the reachability behind the majority condition.
    crash_points: ``(params, topology, crashes, window, rounds_per_iteration) -> CrashPoints``
        when the scheduler places the crashes itself, within the budget and window of the
        ``random`` pattern (any other crash pattern is then refused); None: the crash
        pattern places them.
    genome: it reads ``schedule.genome`` (``genome_size(n)`` reals); the others refuse one.
    refuse: ``(settings, waits, rounds) -> None``, raises ConfigError before any work for a
        configuration whose time stamps cannot stay exact (``waits``: the algorithm's rounds
        end at the quorum wait; ``rounds()``: the run's total rounds).
    span_field, span_advice: the setting to change, and how, when a run leaves the exact range.
    """

    draw: Callable[[jax.Array, Topology, ScheduleParams, ScenarioDraws, str], RoundDraws]
    summary: str
    stragglers: bool = False
    partitions: bool = False
    delivers: Callable[[Topology, ScheduleParams], jax.Array] = every_message
    crash_points: Callable[..., CrashPoints] | None = None
    genome: bool = False
    refuse: Callable[[Mapping[str, Any], bool, Callable[[], int]], None] | None = None
    span_field: str = "schedule.delay_mean"
    span_advice: str = "shorter delays"


SCHEDULERS: dict[str, SchedulerKind] = {
    "sync": SchedulerKind(_sync_round, "lockstep: every view complete"),
    "random": SchedulerKind(random_round(_exponential_delays), "exponential durations and delays"),
    "heavy_tail": SchedulerKind(
        random_round(_pareto_delays),
        "Pareto delays",
        span_field="schedule.tail_index",
        span_advice="a larger tail index or a smaller delay_mean",
    ),
    "straggler": SchedulerKind(
        random_round(_exponential_delays),
        "slow processes",
        stragglers=True,
        refuse=_straggler_drift,
        span_field="schedule.slowdown",
        span_advice="a smaller slowdown or fewer iterations",
    ),
    "partition": SchedulerKind(
        random_round(_exponential_delays, cut=True),
        "two groups of clusters whose messages wait until the partition heals",
        partitions=True,
        delivers=_after_healing,
        span_field="schedule.until",
        span_advice="a healing time closer to the run, or inf",
    ),
    "self_only": SchedulerKind(
        random_round(_never_delivered), "every message late: a view is the own cluster's collect", delivers=_no_message
    ),
    "adversarial": SchedulerKind(
        _adversarial_round,
        "a seeded adversary: minimal quorums that differ, one speaker per favoured cluster",
        refuse=_late_beyond_range,
        span_field="schedule.late",
        span_advice="a smaller value",
    ),
    "searched": SchedulerKind(
        _searched_round,
        "every duration and crash point from a genome",
        crash_points=searched_crash_points,
        genome=True,
        span_field="schedule.spread",
        span_advice="a smaller spread or fewer iterations",
    ),
}
"""Every scheduler by name. Registering one is a dict insertion:
``SCHEDULERS["name"] = SchedulerKind(draw, "summary")`` (see docs/extending.md)."""
