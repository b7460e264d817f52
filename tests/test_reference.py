"""The array views of ftsgd_jax.schedule against the event-driven ftsgd_jax.reference."""

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftsgd_jax.model import Topology
from ftsgd_jax.reference import simulate
from ftsgd_jax.schedule import make_scheduler, run_rounds
from ftsgd_jax import rng
from scenarios import CONFIGS, batched_runner

SCENARIOS = 16
ROUNDS = 5
FIELDS = ("collect", "sent", "received", "view", "finished", "blocked")


def _compare(topology, crash_time, draws, out, wait, quorum):
    ref = simulate(topology, crash_time, draws, wait=wait, quorum=quorum)
    for field in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(out, field)), getattr(ref, field), err_msg=field)
    finished = np.asarray(out.finished)
    np.testing.assert_array_equal(np.asarray(out.end_time)[finished], ref.end_time[finished])
    return ref


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c[1]}-{c[2]}-{c[3]}-{'x'.join(map(str, c[0]))}")
@pytest.mark.parametrize("wait", [False, True], ids=["nowait", "wait"])
@settings(max_examples=6)
@given(seed=st.integers(0, 2**31 - 1), crashes=st.integers(0, 4))
def test_array_views_equal_the_event_simulation_bit_for_bit(config, wait, seed, crashes):
    sizes, kind, pattern, quorum = config
    run = batched_runner(sizes, kind, pattern, ROUNDS, wait, quorum)
    limit = run.topology.m if pattern == "clusters" else run.topology.n
    crashes = 0 if pattern == "none" else min(crashes, limit)
    crash_time, draws, out = jax.tree.map(np.asarray, run(seed, SCENARIOS, crashes))
    for s in range(SCENARIOS):
        lane = jax.tree.map(lambda a: a[s], (crash_time, draws, out))
        _compare(run.topology, *lane, wait, quorum)


def test_ties_in_sync_rounds_follow_write_read_send_arrive_end_order():
    topo = Topology((2, 2, 1))
    scheduler = make_scheduler("sync", topo)
    crash_time = np.full(topo.n, np.inf, np.float32)
    crash_time[1] = 2.0  # every step of round 1 happens at time 2: a crash at 2 lets them all happen
    draws, out = run_rounds(rng.seed_key(0), topo, scheduler, crash_time, 3, wait=True)
    ref = _compare(topo, crash_time, draws, out, True, "weighted")
    assert ref.view[:2].all() and ref.finished[1, 1]
    assert not ref.finished[2, 1] and not ref.view[2, :, 1].any()


def test_reference_trace_is_time_ordered_and_marks_crashes():
    topo = Topology((2, 1))
    scheduler = make_scheduler("random", topo)
    crash_time = np.array([np.inf, 1.5, np.inf], np.float32)
    draws, _ = run_rounds(rng.seed_key(1), topo, scheduler, crash_time, 3, wait=False)
    ref = simulate(topo, crash_time, draws, wait=False)
    times = [event[0] for event in ref.trace]
    assert times == sorted(times)
    assert ("crash" in {event[1] for event in ref.trace}) and {"write", "read", "send", "end"} <= {
        event[1] for event in ref.trace
    }
    assert all(event[0] <= 1.5 for event in ref.trace if event[2] == 1 and event[1] != "receive")


def test_reference_runs_value_hooks_like_an_algorithm():
    topo = Topology((1, 1, 1))
    scheduler = make_scheduler("sync", topo)
    crash_time = np.full(topo.n, np.inf, np.float32)
    draws, _ = run_rounds(rng.seed_key(2), topo, scheduler, crash_time, 2, wait=False)
    ref = simulate(
        topo,
        crash_time,
        draws,
        wait=False,
        initial_values=[0.0, 3.0, 6.0],
        compute=lambda p, r, v: v + 1.0,
        combine=lambda p, r, own, view: float(np.mean(list(view.values()))),
    )
    assert ref.values[0] == [4.0, 4.0, 4.0] and ref.values[1] == [5.0, 5.0, 5.0]
