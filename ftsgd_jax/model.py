"""The cluster-based system model: topology, quorum rules, crash patterns.

``n`` processes are partitioned into ``m`` clusters of any sizes. Inside a cluster the
processes share single-writer registers; between clusters they exchange messages. A
process may crash at any instant and never recovers.

Everything here is static description (``Topology``) or a pure array function of it, so
that the schedule and engine layers can vmap over scenarios with fixed shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import rng
from ftsgd_jax.errors import ConfigError, choice

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


def majority_condition(crash_time: jax.Array, topology: Topology, rule: str) -> jax.Array:
    """The clusters holding a never-crashing process satisfy the quorum rule.

    ``crash_time``: ``(..., n)``, ``+inf`` for a correct process. The general algorithm
    terminates iff this holds (given finite message delays).
    """
    correct = jnp.isinf(crash_time).astype(jnp.float32)
    live_cluster = (correct @ jnp.asarray(topology.membership)) > 0
    return quorum_met(live_cluster, topology, rule)


@dataclasses.dataclass(frozen=True)
class CrashPattern:
    """Which processes crash and when.

    ``kind``: ``none``; ``random`` (``crashes`` processes chosen uniformly, each at a
    uniform time in ``[window[0], window[1]] * horizon``); ``initial`` (``crashes``
    processes crash before their first step); ``clusters`` (``crashes`` whole clusters
    chosen uniformly, each cluster at one uniform time in the window).
    The count is a run-time value, so sweeping it does not recompile.
    """

    kind: str = "none"
    window: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self):
        choice("faults.pattern", self.kind, CRASH_PATTERNS)
        low, high = self.window
        if not 0.0 <= low <= high <= 1.0:
            raise ConfigError("faults.window", f"need 0 <= start <= end <= 1, got {list(self.window)!r}")


def validate_crash_count(pattern: CrashPattern, crashes: int, topology: Topology) -> int:
    """Check a crash count against the pattern and topology; return it as int."""
    if isinstance(crashes, bool) or not isinstance(crashes, (int, np.integer)) or crashes < 0:
        raise ConfigError("faults.crashes", f"need a non-negative integer, got {crashes!r}")
    limit = topology.m if pattern.kind == "clusters" else topology.n
    what = "clusters" if pattern.kind == "clusters" else "processes"
    if crashes > limit:
        raise ConfigError("faults.crashes", f"{crashes} crashes but only {limit} {what}")
    if pattern.kind == "none" and crashes:
        raise ConfigError("faults.crashes", "pattern 'none' takes crashes = 0")
    return int(crashes)


def draw_crash_times(
    key: jax.Array, topology: Topology, pattern: CrashPattern, crashes: jax.Array, horizon: jax.Array
) -> jax.Array:
    """(n,) crash time of each process, ``+inf`` for a correct one.

    A step at time ``s`` of process ``p`` happens iff ``s <= crash_time[p]``. ``initial``
    crashes get time 0, before any step (every step takes a positive time).
    """
    n, m = topology.n, topology.m
    if pattern.kind == "none":
        return jnp.full((n,), jnp.inf, jnp.float32)
    key_who, key_when = rng.split(key, 2)
    low, high = pattern.window
    if pattern.kind == "clusters":
        crashed = (rng.rank(key_who, m) < crashes)[topology.cluster_of]
        when = rng.uniform(key_when, (m,))[topology.cluster_of]
    else:
        crashed = rng.rank(key_who, n) < crashes
        when = rng.uniform(key_when, (n,))
    time = horizon * (low + (high - low) * when)
    if pattern.kind == "initial":
        time = jnp.zeros((n,), jnp.float32)
    return jnp.where(crashed, time.astype(jnp.float32), jnp.inf)
