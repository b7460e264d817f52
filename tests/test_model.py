"""Tests of ftsgd_jax.model: topology, quorum rules, majority condition, crash patterns."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftsgd_jax.errors import ConfigError
from ftsgd_jax import rng
from ftsgd_jax.model import (
    NEVER,
    CrashPattern,
    Topology,
    draw_crash_points,
    majority_condition,
    quorum_met,
    validate_crash_count,
    window_iterations,
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
    """With every message delivered, the condition is the classic one: the clusters holding a
    live process satisfy the quorum rule (and someone is alive)."""
    topo = Topology(tuple(sizes))
    crashed = np.array(data.draw(st.lists(st.booleans(), min_size=topo.n, max_size=topo.n)))
    live_clusters = {c for p, c in enumerate(topo.cluster_of) if not crashed[p]}
    if rule == "weighted":
        expected = sum(topo.cluster_sizes[c] for c in live_clusters) > topo.n / 2
    else:
        expected = len(live_clusters) > topo.m / 2
    delivers = jnp.ones((topo.n, topo.n), bool)
    assert bool(majority_condition(jnp.asarray(~crashed), delivers, topo, rule)) == expected


@given(cluster_sizes, st.sampled_from(["weighted", "count"]), st.data())
def test_majority_condition_asks_every_live_process_for_a_reachable_quorum(sizes, rule, data):
    """Brute force over processes: each live q must hear (own cluster + live senders reaching q) a quorum."""
    topo = Topology(tuple(sizes))
    n = topo.n
    alive = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    delivers = np.array(data.draw(st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=n, max_size=n)))
    weights = topo.cluster_sizes if rule == "weighted" else [1] * topo.m
    threshold = n / 2 if rule == "weighted" else topo.m / 2

    def hears_quorum(q):
        heard = {topo.cluster_of[q]} | {topo.cluster_of[p] for p in range(n) if alive[p] and delivers[p, q]}
        return sum(weights[c] for c in heard) > threshold

    expected = alive.any() and all(hears_quorum(q) for q in range(n) if alive[q])
    assert bool(majority_condition(jnp.asarray(alive), jnp.asarray(delivers), topo, rule)) == expected


def _points(kind, crashes, rounds=np.ones(50, np.int32), window=(0.0, 1.0), seed=7, topo=Topology((2, 2, 3, 1))):
    return jax.tree.map(
        np.asarray, draw_crash_points(rng.seed_key(seed), topo, kind, crashes, window_iterations(window, len(rounds)), rounds)
    )


@pytest.mark.parametrize("kind", ["random", "initial", "clusters"])
@pytest.mark.parametrize("crashes", [0, 1, 3])
def test_crash_patterns_crash_exactly_the_asked_count_within_the_run(kind, crashes):
    topo = Topology((2, 2, 3, 1))
    rounds = np.array([1, 3, 2, 1, 4], np.int32)
    points = _points(kind, crashes, rounds, topo=topo)
    crashed = points.round != NEVER
    if kind == "clusters":
        crashed_clusters = set(topo.cluster_of[crashed])
        assert len(crashed_clusters) == crashes
        for c in crashed_clusters:  # whole clusters, in one round at one fraction
            members = topo.cluster_of == c
            assert crashed[members].all()
            assert len(set(points.round[members])) == 1 and len(set(points.fraction[members])) == 1
    else:
        assert crashed.sum() == crashes
    if kind == "initial":
        assert np.all(points.round[crashed] == 0) and np.all(points.fraction[crashed] < 0)
    else:
        assert np.all((points.round[crashed] >= 0) & (points.round[crashed] < rounds.sum()))
        assert np.all((points.fraction[crashed] >= 0) & (points.fraction[crashed] < 1))


def test_crash_iterations_are_uniform_over_the_window():
    """Over many seeds, crash iterations fill [floor(0.25 T), ceil(0.75 T)) evenly, rounds of the iteration too."""
    rounds = np.full(40, 3, np.int32)
    topo = Topology((2, 2, 3, 1))
    window = window_iterations((0.25, 0.75), len(rounds))
    draw = jax.vmap(lambda key: draw_crash_points(key, topo, "random", 1, window, rounds).round)
    hits = np.asarray(jax.jit(draw)(jax.vmap(rng.seed_key)(jnp.arange(2000)))).ravel()
    hits = hits[hits != NEVER]
    iterations, within = hits // 3, hits % 3
    assert iterations.min() == 10 and iterations.max() == 29
    counts = np.bincount(iterations - 10, minlength=20)
    assert counts.min() > 0.6 * counts.mean()
    assert np.all(np.bincount(within) > 0.25 * len(within))


@pytest.mark.parametrize(("window", "iterations"), [((0.0, 0.15), 100), ((0.59, 1.0), 100), ((0.07, 0.29), 100), ((0.3, 0.7), 1000)])
def test_crashes_fall_in_the_windows_iterations_exactly(window, iterations):
    """[floor(start T), ceil(end T)) in exact decimal arithmetic, every iteration of it hit,
    none beyond: in float32, 0.15 x 100 is 15.0000006 (ceil 16) and 0.59 x 100 is
    58.9999970 (floor 58), which moved crashes one iteration outside the window."""
    from fractions import Fraction

    from ftsgd_jax import engine
    from ftsgd_jax.config import build_config

    config = build_config(
        {
            "system": {"clusters": [4, 4]},
            "faults": {"pattern": "random", "crashes": 8, "window": list(window)},
            "run": {"iterations": iterations, "scenarios": 400, "record_every": iterations},
        }
    )
    sim = engine.simulation(config)
    inputs = engine.scenario_inputs(config, np.arange(config.run.scenarios))
    crash = jax.jit(jax.vmap(lambda one: engine.scenario_setup(sim.static, sim.plan, one).crash))(inputs)
    hit = np.unique(np.asarray(crash.round))  # one round per iteration
    start = math.floor(Fraction(str(window[0])) * iterations)
    stop = math.ceil(Fraction(str(window[1])) * iterations)
    np.testing.assert_array_equal(hit, np.arange(start, stop))


def test_crash_count_and_window_are_runtime_values():
    topo = Topology((2, 2, 2))
    rounds = np.ones(10, np.int32)
    draw = jax.jit(lambda key, f, w: draw_crash_points(key, topo, "random", f, w, rounds))
    window = window_iterations((0.0, 1.0), len(rounds))
    counts = [int((np.asarray(draw(rng.seed_key(0), f, window).round) != NEVER).sum()) for f in range(topo.n + 1)]
    assert counts == list(range(topo.n + 1))
    late = np.asarray(draw(rng.seed_key(0), 6, window_iterations((0.9, 1.0), len(rounds))).round)
    assert np.all(late == 9)
    assert draw._cache_size() == 1


def test_every_process_can_be_the_one_that_crashes():
    topo = Topology((1, 2, 1))
    seen = set()
    for seed in range(40):
        points = _points("random", 1, topo=topo, seed=seed)
        seen.add(int(np.flatnonzero(points.round != NEVER)[0]))
    assert seen == set(range(topo.n))


@pytest.mark.parametrize(
    ("kind", "crashes", "message"),
    [
        ("random", 7, "7 crashes but only 6 processes"),
        ("clusters", 4, "4 crashes but only 3 clusters"),
        ("random", -1, "integer >= 0"),
        ("random", 1.5, "integer >= 0"),
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
