"""The cluster-based system model: topology, quorum rules, crash patterns.

``n`` processes are partitioned into ``m`` clusters of any sizes. Inside a cluster the
processes share single-writer registers; between clusters they exchange messages. A
process may crash at any instant and never recovers.

Everything here is static description (``Topology``) or a pure array function of it, so
that the schedule and engine layers can vmap over scenarios with fixed shapes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from fractions import Fraction
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import rng
from ftsgd_jax.errors import ConfigError, choice, integer

QUORUM_RULES = ("weighted", "count")
CRASH_PATTERNS = ("none", "random", "initial", "clusters")


@dataclasses.dataclass(frozen=True)
class Topology:
    """Cluster sizes, e.g. ``(3, 3, 2)``; processes are numbered cluster by cluster.

    Hashable and static: a topology fixes every array shape of a run.
    """

    cluster_sizes: tuple[int, ...]

    def __post_init__(self):
        sizes = self.cluster_sizes
        if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence) or len(sizes) == 0:
            raise ConfigError("system.clusters", f"need a non-empty list of positive integers, got {sizes!r}")
        for size in sizes:
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
                raise ConfigError(
                    "system.clusters", f"cluster sizes must be positive integers, got {list(sizes)!r}"
                )
        object.__setattr__(self, "cluster_sizes", tuple(int(s) for s in sizes))

    @property
    def n(self) -> int:
        return sum(self.cluster_sizes)

    @property
    def m(self) -> int:
        return len(self.cluster_sizes)

    @cached_property
    def cluster_of(self) -> np.ndarray:
        """(n,) int: the cluster of each process."""
        return np.repeat(np.arange(self.m), self.cluster_sizes)

    @cached_property
    def same_cluster(self) -> np.ndarray:
        """(n, n) bool: cluster-mates (a process is its own mate)."""
        return self.cluster_of[:, None] == self.cluster_of[None, :]

    @cached_property
    def membership(self) -> np.ndarray:
        """(n, m) float32 one-hot: process p belongs to cluster c."""
        return (self.cluster_of[:, None] == np.arange(self.m)[None, :]).astype(np.float32)


def quorum_weights(topology: Topology, rule: str) -> np.ndarray:
    """(m,) weight of each cluster and the threshold a heard set must exceed.

    ``weighted``: cluster sizes, threshold n/2 (journal version).
    ``count``: one per cluster, threshold m/2 (conference version).
    """
    choice("system.quorum", rule, QUORUM_RULES)
    if rule == "weighted":
        return np.asarray(topology.cluster_sizes, np.float32)
    return np.ones(topology.m, np.float32)


def quorum_threshold(topology: Topology, rule: str) -> float:
    choice("system.quorum", rule, QUORUM_RULES)
    return topology.n / 2 if rule == "weighted" else topology.m / 2


def quorum_met(heard: jax.Array, topology: Topology, rule: str) -> jax.Array:
    """Whether a set of heard clusters, ``(..., m)`` bool, satisfies the quorum rule."""
    weights = jnp.asarray(quorum_weights(topology, rule))
    return jnp.sum(jnp.where(heard, weights, 0.0), axis=-1) > quorum_threshold(topology, rule)


def majority_condition(alive: jax.Array, delivers: jax.Array, topology: Topology, rule: str) -> jax.Array:
    """Every process that has not crashed can still hear from a quorum of clusters.

    A live process q hears, eventually, its own cluster and every cluster holding a live
    process whose messages reach q (``delivers[p, q]``: the scheduler delivers p's messages to
    q at a finite time; a partition that never heals or ``self_only`` does not). The general
    algorithm terminates iff this holds: with finite delays everywhere it is the classic
    condition "the clusters holding a live process satisfy the quorum rule". False when no
    process is live (there is no quorum left to form).

    ``alive``: ``(..., n)`` bool; ``delivers``: ``(..., n, n)`` bool.
    """
    membership = jnp.asarray(topology.membership, bool)  # (n, m)
    reach = (delivers | jnp.asarray(topology.same_cluster)) & alive[..., :, None]
    # heard[q, c]: some live process of cluster c reaches q
    heard = jnp.any(reach[..., :, :, None] & membership[:, None, :], axis=-3)
    met = quorum_met(heard, topology, rule)
    return jnp.any(alive, axis=-1) & jnp.all(met | ~alive, axis=-1)


NEVER = np.iinfo(np.int32).max
"""The crash round of a process that does not crash."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CrashPoints:
    """When each process crashes, in logical time.

    ``round``: (n,) int32, the global index of the round (counting every agreement round of
    every iteration) during which the process crashes, ``NEVER`` for a correct process.
    ``fraction``: (n,) float32 in [0, 1): how far into that round's own steps (compute, write,
    reads, sends) the crash falls; negative for a crash before the first step (``initial``).
    The schedule turns a point into a time once the round's durations are drawn.
    """

    round: jax.Array
    fraction: jax.Array


@dataclasses.dataclass(frozen=True)
class CrashPattern:
    """Which processes crash and when.

    ``kind``: ``none``; ``random`` (``crashes`` processes chosen uniformly, each during an
    iteration drawn uniformly from the ``window`` of the run's iterations, in one of that
    iteration's rounds drawn uniformly, at a uniform point of that round's steps, so crashes
    between two sends of a broadcast happen); ``initial`` (``crashes`` processes crash before
    their first step); ``clusters`` (``crashes`` whole clusters chosen uniformly, all processes
    of a cluster in the same round at the same fraction of their own steps).
    The count and the window are run-time values, so sweeping them does not recompile.
    """

    kind: str = "none"
    window: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        choice("faults.pattern", self.kind, CRASH_PATTERNS)
        window = self.window
        if (
            not isinstance(window, (tuple, list))
            or len(window) != 2
            or any(isinstance(w, bool) or not isinstance(w, (int, float, np.floating)) for w in window)
            or not 0.0 <= window[0] <= window[1] <= 1.0
        ):
            raise ConfigError("faults.window", f"need [start, end] with 0 <= start <= end <= 1, got {list(window) if isinstance(window, (tuple, list)) else window!r}")
        object.__setattr__(self, "window", (float(window[0]), float(window[1])))


def validate_crash_count(pattern: CrashPattern, crashes: int, topology: Topology) -> int:
    """Check a crash count against the pattern and topology; return it as int."""
    crashes = integer("faults.crashes", crashes, 0)
    limit = topology.m if pattern.kind == "clusters" else topology.n
    what = "clusters" if pattern.kind == "clusters" else "processes"
    if crashes > limit:
        raise ConfigError("faults.crashes", f"{crashes} crashes but only {limit} {what}")
    if pattern.kind == "none" and crashes:
        raise ConfigError("faults.crashes", "pattern 'none' takes crashes = 0")
    return crashes


def window_iterations(window: tuple[float, float], iterations: int) -> np.ndarray:
    """(2,) int32 ``[start, stop)``: the iterations of a crash window given as fractions of
    the run, ``[floor(start T), ceil(end T))`` with at least one iteration, within the run.

    Computed on the host in exact decimal arithmetic (the fractions as written): in float32,
    0.15 x 100 is 15.0000006 and 0.59 x 100 is 58.9999970, whose ceil and floor moved
    crashes one iteration outside the window.
    """
    start = min(math.floor(Fraction(str(window[0])) * iterations), iterations - 1)
    stop = min(max(math.ceil(Fraction(str(window[1])) * iterations), start + 1), iterations)
    return np.array([start, stop], np.int32)


def draw_crash_points(
    key: jax.Array,
    topology: Topology,
    kind: str,
    crashes: jax.Array,
    window: jax.Array,
    rounds_per_iteration: np.ndarray,
) -> CrashPoints:
    """The crash point of every process (see :class:`CrashPoints`).

    ``window``: (2,) int32 ``[start, stop)``, the iterations in which crashes fall
    (:func:`window_iterations`); the iteration is uniform on it, so with ``crashes = f``
    exactly f processes crash within the run. ``rounds_per_iteration``: (T,) static round
    counts, which place an iteration's rounds on the global round axis.
    """
    n, m = topology.n, topology.m
    never = CrashPoints(jnp.full((n,), NEVER, jnp.int32), jnp.zeros((n,), jnp.float32))
    if kind == "none":
        return never
    first_round = jnp.asarray(np.concatenate([[0], np.cumsum(rounds_per_iteration)[:-1]]), jnp.int32)
    per_iteration = jnp.asarray(rounds_per_iteration, jnp.int32)
    key_who, key_iteration, key_round, key_fraction = rng.split(key, 4)
    units = m if kind == "clusters" else n
    chosen = rng.rank(key_who, units) < crashes
    start, stop = window[0], window[1]
    offset = jnp.floor(rng.uniform(key_iteration, (units,)) * (stop - start).astype(jnp.float32)).astype(jnp.int32)
    iteration = start + jnp.minimum(offset, stop - start - 1)  # u (stop - start) may round up to stop - start
    within = jnp.floor(rng.uniform(key_round, (units,)) * per_iteration[iteration]).astype(jnp.int32)
    fraction = rng.uniform(key_fraction, (units,))
    round_index = first_round[iteration] + jnp.minimum(within, per_iteration[iteration] - 1)
    if kind == "initial":
        round_index, fraction = jnp.zeros_like(round_index), -jnp.ones_like(fraction)
    if kind == "clusters":
        chosen, round_index, fraction = (a[topology.cluster_of] for a in (chosen, round_index, fraction))
    return CrashPoints(jnp.where(chosen, round_index, NEVER), jnp.where(chosen, fraction, 0.0))
