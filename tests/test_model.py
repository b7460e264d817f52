"""Tests of ftsgd_jax.model: topology, quorum rules, majority condition, crash patterns."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftsgd_jax.errors import ConfigError
from ftsgd_jax import rng
from ftsgd_jax.model import (
    CrashPattern,
    Topology,
    draw_crash_times,
    majority_condition,
    quorum_met,
    validate_crash_count,
)

cluster_sizes = st.lists(st.integers(1, 5), min_size=1, max_size=6)


def test_topology_numbers_processes_cluster_by_cluster():
    topo = Topology((3, 1, 2))
    assert (topo.n, topo.m) == (6, 3)
    np.testing.assert_array_equal(topo.cluster_of, [0, 0, 0, 1, 2, 2])
    assert topo.same_cluster[0, 2] and not topo.same_cluster[2, 3]
    np.testing.assert_array_equal(topo.membership.sum(0), [3, 1, 2])


@pytest.mark.parametrize("sizes", [(), (0, 2), (-1,), (1.5, 2), ("2",), "3", (True, 2), 5])
def test_bad_cluster_sizes_name_the_field(sizes):
    with pytest.raises(ConfigError, match="system.clusters"):
        Topology(sizes)


def test_the_two_quorum_rules_differ_on_uneven_clusters():
    topo = Topology((5, 1, 1))  # n = 7, m = 3
    big_only = jnp.array([True, False, False])
    smalls = jnp.array([False, True, True])
    assert bool(quorum_met(big_only, topo, "weighted")) and not bool(quorum_met(big_only, topo, "count"))
    assert bool(quorum_met(smalls, topo, "count")) and not bool(quorum_met(smalls, topo, "weighted"))


def test_unknown_quorum_rule_is_refused():
    with pytest.raises(ConfigError, match="system.quorum.*weighted"):
        quorum_met(jnp.ones(2, bool), Topology((1, 1)), "majority")


@given(cluster_sizes, st.sampled_from(["weighted", "count"]), st.data())
def test_any_two_quorums_intersect(sizes, rule, data):
    topo = Topology(tuple(sizes))
    a = np.array(data.draw(st.lists(st.booleans(), min_size=topo.m, max_size=topo.m)))
    b = np.array(data.draw(st.lists(st.booleans(), min_size=topo.m, max_size=topo.m)))
    if bool(quorum_met(a, topo, rule)) and bool(quorum_met(b, topo, rule)):
        assert np.any(a & b)


@given(cluster_sizes, st.sampled_from(["weighted", "count"]), st.data())
def test_majority_condition_matches_a_plain_count(sizes, rule, data):
    topo = Topology(tuple(sizes))
    crashed = np.array(data.draw(st.lists(st.booleans(), min_size=topo.n, max_size=topo.n)))
    crash_time = np.where(crashed, 1.0, np.inf).astype(np.float32)
    live_clusters = {c for p, c in enumerate(topo.cluster_of) if not crashed[p]}
    if rule == "weighted":
        expected = sum(topo.cluster_sizes[c] for c in live_clusters) > topo.n / 2
    else:
        expected = len(live_clusters) > topo.m / 2
    assert bool(majority_condition(jnp.asarray(crash_time), topo, rule)) == expected


@pytest.mark.parametrize("kind", ["random", "initial", "clusters"])
@pytest.mark.parametrize("crashes", [0, 1, 3])
def test_crash_patterns_crash_exactly_the_asked_count(kind, crashes):
    topo = Topology((2, 2, 3, 1))
    pattern = CrashPattern(kind)
    times = np.asarray(draw_crash_times(rng.seed_key(7), topo, pattern, crashes, jnp.float32(50.0)))
    crashed = np.isfinite(times)
    if kind == "clusters":
        crashed_clusters = set(topo.cluster_of[crashed])
        assert len(crashed_clusters) == crashes
        for c in crashed_clusters:  # whole clusters, at one time
            assert crashed[topo.cluster_of == c].all()
            assert len(set(times[topo.cluster_of == c])) == 1
    else:
        assert crashed.sum() == crashes
    if kind == "initial":
        assert np.all(times[crashed] == 0)
    else:
        assert np.all((times[crashed] >= 0) & (times[crashed] <= 50.0))


def test_crash_count_is_a_runtime_value():
    topo = Topology((2, 2, 2))
    draw = jax.jit(lambda key, f: draw_crash_times(key, topo, CrashPattern("random"), f, jnp.float32(10.0)))
    counts = [int(np.isfinite(draw(rng.seed_key(0), f)).sum()) for f in range(topo.n + 1)]
    assert counts == list(range(topo.n + 1))
    assert draw._cache_size() == 1


def test_every_process_can_be_the_one_that_crashes():
    topo = Topology((1, 2, 1))
    seen = set()
    for seed in range(40):
        times = np.asarray(draw_crash_times(rng.seed_key(seed), topo, CrashPattern("random"), 1, jnp.float32(1.0)))
        seen.add(int(np.flatnonzero(np.isfinite(times))[0]))
    assert seen == set(range(topo.n))


@pytest.mark.parametrize(
    ("kind", "crashes", "message"),
    [
        ("random", 7, "7 crashes but only 6 processes"),
        ("clusters", 4, "4 crashes but only 3 clusters"),
        ("random", -1, "non-negative integer"),
        ("random", 1.5, "non-negative integer"),
        ("none", 1, "pattern 'none'"),
    ],
)
def test_bad_crash_counts_name_the_field(kind, crashes, message):
    with pytest.raises(ConfigError, match=f"faults.crashes.*{message}"):
        validate_crash_count(CrashPattern(kind), crashes, Topology((2, 2, 2)))


def test_unknown_crash_pattern_suggests_the_closest():
    with pytest.raises(ConfigError, match="faults.pattern.*did you mean 'initial'"):
        CrashPattern("inital")


def test_bad_crash_window():
    with pytest.raises(ConfigError, match="faults.window"):
        CrashPattern("random", window=(0.5, 0.2))


def test_quorum_brute_force_on_all_subsets():
    topo = Topology((3, 1, 1, 2))
    for bits in itertools.product([False, True], repeat=topo.m):
        heard = np.array(bits)
        weighted = sum(s for s, h in zip(topo.cluster_sizes, bits) if h) > topo.n / 2
        count = sum(bits) > topo.m / 2
        assert bool(quorum_met(heard, topo, "weighted")) == weighted
        assert bool(quorum_met(heard, topo, "count")) == count
