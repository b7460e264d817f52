"""The array views of ftsgd_jax.schedule against the event-driven ftsgd_jax.reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftsgd_jax import rng
from ftsgd_jax.model import NEVER, CrashPoints, Topology
from ftsgd_jax.reference import simulate
from ftsgd_jax.schedule import EXACT_SPAN, make_scheduler, run_rounds
from scenarios import CONFIGS, absolute, batched_runner, heal_of

SCENARIOS = 16
ROUNDS = 5
FIELDS = ("collect", "sent", "received", "view", "finished", "blocked")


def _compare(topology, scheduler, crash, played, wait, quorum):
    """Every observation of the array rounds equals the event simulation, end times to the bit."""
    ref = simulate(topology, crash, played.draws, wait=wait, quorum=quorum, heal=heal_of(scheduler))
    for field in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(played.outcome, field)), getattr(ref, field), err_msg=field)
    finished = np.asarray(played.outcome.finished)
    np.testing.assert_array_equal(absolute(played, scheduler)[finished], ref.end_time[finished])
    return ref


def _lanes(crash, played, scenarios):
    for s in range(scenarios):
        yield jax.tree.map(lambda a: np.asarray(a)[s], (crash, played))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c[1]}-{c[2]}-{c[3]}-{'x'.join(map(str, c[0]))}")
@pytest.mark.parametrize("wait", [False, True], ids=["nowait", "wait"])
@settings(max_examples=6)
@given(seed=st.integers(0, 2**31 - 1), crashes=st.integers(0, 4))
def test_array_views_equal_the_event_simulation_bit_for_bit(config, wait, seed, crashes):
    sizes, kind, pattern, quorum = config
    run = batched_runner(sizes, kind, pattern, ROUNDS, wait, quorum)
    limit = run.topology.m if pattern == "clusters" else run.topology.n
    crashes = 0 if pattern == "none" else min(crashes, limit)
    crash, played = run(seed, SCENARIOS, crashes)
    for lane_crash, lane in _lanes(crash, played, SCENARIOS):
        _compare(run.topology, run.scheduler, lane_crash, lane, wait, quorum)


# Runs far beyond float32's exact range of absolute time stamps (2**19 time units on the
# 1/32 grid): the array code works relative to each round's origin and must still equal the
# event simulation, which keeps absolute times in float64, bit for bit.
LONG_RUNS = [
    ("sc-100k-rounds", (2, 1, 1), "random", 100_000, False, {"compute_mean": 10.0}, 2),
    ("partition-heals-at-9e6", (2, 2), "partition", 6, True, {"until": 9e6 + 1 / 32}, 8),
]


@pytest.mark.parametrize(("name", "sizes", "kind", "rounds", "wait", "settings_", "scenarios"), LONG_RUNS, ids=[c[0] for c in LONG_RUNS])
def test_long_runs_stay_exact_relative_to_each_rounds_origin(name, sizes, kind, rounds, wait, settings_, scenarios):
    run = batched_runner(sizes, kind, "none", rounds, wait, "weighted", **settings_)
    crash, played = run(5, scenarios, 0)
    ends = absolute(played, run.scheduler)
    assert np.nanmax(np.where(np.isfinite(ends), ends, np.nan)) > EXACT_SPAN  # absolute float32 would be inexact
    assert np.all(np.asarray(played.outcome.latest) < EXACT_SPAN)
    for lane_crash, lane in _lanes(crash, played, scenarios):
        _compare(run.topology, run.scheduler, lane_crash, lane, wait, "weighted")


def test_adversarial_rounds_with_a_favoured_cluster_crashed_stay_exact():
    """Five singleton clusters, each hearing in time only from the next three; cluster 0 crashes
    first, so the processes that counted on it wait for `late` messages every round."""
    topo = Topology((1, 1, 1, 1, 1))
    scheduler = make_scheduler("adversarial", topo)
    crash = CrashPoints(jnp.asarray([0, NEVER, NEVER, NEVER, NEVER], jnp.int32), jnp.asarray([-1.0, 0, 0, 0, 0], jnp.float32))
    played = jax.jit(lambda key: run_rounds(key, topo, scheduler, crash, 12, wait=True, quorum="weighted"))(rng.seed_key(0))
    played = jax.tree.map(np.asarray, played)
    assert absolute(played, scheduler)[-1, 1:].min() > EXACT_SPAN
    assert np.all(played.outcome.latest < EXACT_SPAN)
    ref = _compare(topo, scheduler, jax.tree.map(np.asarray, crash), played, True, "weighted")
    assert ref.finished[:, 1:].all() and not ref.finished[:, 0].any()


def test_sync_rounds_tie_every_step_and_a_crash_in_one_falls_before_its_write():
    topo = Topology((2, 2, 1))
    scheduler = make_scheduler("sync", topo)
    # every step of a sync round shares one time; a crash during the round precedes them all
    crash = CrashPoints(jnp.asarray([NEVER, 1, NEVER, NEVER, NEVER], jnp.int32), jnp.asarray([0, 0.999, 0, 0, 0], jnp.float32))
    played = jax.tree.map(np.asarray, run_rounds(rng.seed_key(0), topo, scheduler, crash, 3, wait=True))
    ref = _compare(topo, scheduler, jax.tree.map(np.asarray, crash), played, True, "weighted")
    assert ref.view[0].all() and ref.finished[0, 1]
    assert not ref.finished[1, 1] and not ref.view[2, :, 1].any()


def test_reference_trace_is_time_ordered_and_marks_crashes():
    topo = Topology((2, 1))
    scheduler = make_scheduler("random", topo)
    crash = CrashPoints(jnp.asarray([NEVER, 1, NEVER], jnp.int32), jnp.asarray([0, 0.5, 0], jnp.float32))
    played = run_rounds(rng.seed_key(1), topo, scheduler, crash, 3, wait=False)
    ref = simulate(topo, jax.tree.map(np.asarray, crash), played.draws, wait=False)
    times = [event[0] for event in ref.trace]
    assert times == sorted(times)
    assert ("crash" in {event[1] for event in ref.trace}) and {"write", "read", "send", "end"} <= {
        event[1] for event in ref.trace
    }
    kappa = ref.crash_time[1]
    assert np.isfinite(kappa) and all(event[0] <= kappa for event in ref.trace if event[2] == 1 and event[1] != "receive")


def test_reference_runs_value_hooks_like_an_algorithm():
    topo = Topology((1, 1, 1))
    scheduler = make_scheduler("sync", topo)
    crash = CrashPoints(jnp.full((3,), NEVER, jnp.int32), jnp.zeros((3,), jnp.float32))
    played = run_rounds(rng.seed_key(2), topo, scheduler, crash, 2, wait=False)
    ref = simulate(
        topo,
        jax.tree.map(np.asarray, crash),
        played.draws,
        wait=False,
        initial_values=[0.0, 3.0, 6.0],
        compute=lambda p, r, v: v + 1.0,
        combine=lambda p, r, own, view: float(np.mean(list(view.values()))),
    )
    assert ref.values[0] == [4.0, 4.0, 4.0] and ref.values[1] == [5.0, 5.0, 5.0]
