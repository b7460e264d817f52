"""Tests of ftsgd_jax.schedule: time stamps -> collects, messages, views, end times."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftsgd_jax import rng
from ftsgd_jax.errors import ConfigError
from ftsgd_jax.model import NEVER, Topology, majority_condition
from ftsgd_jax.schedule import (
    SCHEDULERS,
    SMALLEST_MEAN,
    TICKS_PER_UNIT,
    ScenarioDraws,
    adversary_favoured,
    draw_round,
    eventually_delivers,
    make_scheduler,
)
from scenarios import CONFIGS, absolute, batched_runner

FINITE_DELAYS = {"sync", "random", "heavy_tail", "straggler", "adversarial", "searched"}
ROUNDS = 4


def _np(tree):
    return jax.tree.map(np.asarray, tree)


def _sample(config, wait, seed, crashes):
    sizes, kind, pattern, quorum = config
    run = batched_runner(sizes, kind, pattern, ROUNDS, wait, quorum)
    limit = run.topology.m if pattern == "clusters" else run.topology.n
    crashes = 0 if pattern == "none" else min(crashes, limit)
    return run.topology, _np(run(seed, 16, crashes))


config_ids = [f"{kind}-{pattern}-{quorum}-{'x'.join(map(str, sizes))}" for sizes, kind, pattern, quorum in CONFIGS]
runtime_draws = given(seed=st.integers(0, 2**31 - 1), crashes=st.integers(0, 4))


@pytest.mark.parametrize("config", CONFIGS, ids=config_ids)
@pytest.mark.parametrize("wait", [False, True], ids=["nowait", "wait"])
@runtime_draws
def test_of_two_mates_that_both_collected_one_read_the_other(config, wait, seed, crashes):
    topo, (_, played) = _sample(config, wait, seed, crashes)
    out = played.outcome
    collected = (out.collect_end <= played.crash_time) & np.isfinite(out.collect_end)
    both = collected[..., :, None] & collected[..., None, :] & topo.same_cluster
    one_read_other = out.collect | np.swapaxes(out.collect, -1, -2)
    assert np.all(one_read_other[both])


@pytest.mark.parametrize("config", CONFIGS, ids=config_ids)
@runtime_draws
def test_views_of_one_round_pairwise_intersect_under_the_quorum_wait(config, seed, crashes):
    _, (_, played) = _sample(config, True, seed, crashes)
    out = played.outcome
    view = out.view.astype(np.int32)
    shared = np.einsum("srpj,srqj->srpq", view, view)
    both_finished = out.finished[..., :, None] & out.finished[..., None, :]
    assert np.all(shared[both_finished] > 0)


@pytest.mark.parametrize("config", [c for c in CONFIGS if c[1] in FINITE_DELAYS], ids=lambda c: c[1])
@runtime_draws
def test_with_finite_delays_a_process_is_blocked_only_when_the_majority_condition_fails(config, seed, crashes):
    topo, (crash, played) = _sample(config, True, seed, crashes)
    run = batched_runner(config[0], config[1], config[2], ROUNDS, True, config[3])
    never_crash = jnp.asarray(crash.round == NEVER)
    delivers = eventually_delivers(topo, run.scheduler)
    majority = np.asarray(jax.vmap(lambda alive: majority_condition(alive, delivers, topo, config[3]))(never_crash))
    assert not np.any(played.outcome.blocked.any(axis=(1, 2)) & majority)


@pytest.mark.parametrize("config", CONFIGS, ids=config_ids)
@pytest.mark.parametrize("wait", [False, True], ids=["nowait", "wait"])
@runtime_draws
def test_no_step_after_a_crash(config, wait, seed, crashes):
    _, (_, played) = _sample(config, wait, seed, crashes)
    out, kappa = played.outcome, played.crash_time
    late_write = out.write_time > kappa
    # nobody reads a value written after the writer crashed
    assert not np.any(out.collect & late_write[..., None, :])
    assert not np.any(out.sent & (out.send_time > kappa[..., :, None]))
    assert not np.any(out.finished & (out.end_time > kappa))
    assert not np.any(out.finished & late_write)


def test_the_property_configurations_cover_every_scheduler_and_crash_pattern():
    assert {c[1] for c in CONFIGS} == set(SCHEDULERS)
    assert {c[2] for c in CONFIGS} == {"none", "random", "initial", "clusters"}


def test_initial_crashes_without_majority_block_every_live_process():
    run = batched_runner((1, 1, 1, 1, 1), "random", "initial", 3, True, "weighted")
    crash, played = _np(run(0, 16, 3))
    live, out = crash.round == NEVER, played.outcome
    assert np.all(out.blocked[:, 0][live]) and not np.any(out.finished[:, 0][live])


@pytest.mark.parametrize("quorum", ["weighted", "count"])
def test_partition_without_majority_side_blocks_everyone(quorum):
    run = batched_runner((2, 2, 2, 2), "partition", "none", 3, True, quorum, groups=((0, 1), (2, 3)))
    out = _np(run(0, 8, 0))[1].outcome
    assert np.all(out.blocked[:, -1]) and not np.any(out.finished[:, 1:])


def test_partition_with_majority_side_blocks_only_the_minority():
    run = batched_runner((2, 2, 2, 2), "partition", "none", 3, True, "weighted", groups=((0, 1, 2), (3,)))
    out = _np(run(0, 8, 0))[1].outcome
    minority = run.topology.cluster_of == 3
    assert np.all(out.blocked[:, -1][:, minority]) and np.all(out.finished[:, :, ~minority])


def test_partition_that_heals_lets_everyone_finish():
    run = batched_runner((2, 2, 2, 2), "partition", "none", 3, True, "weighted", groups=((0, 1), (2, 3)), until=25.0)
    out = _np(run(0, 8, 0))[1].outcome
    assert np.all(out.finished) and np.all(out.end_time[:, 0] >= 25.0)


def test_a_crash_cuts_some_broadcast_part_way():
    run = batched_runner((2, 2, 2, 2), "random", "random", 6, False, "weighted")
    crash, played = _np(run(3, 64, 3))
    out = played.outcome
    others = ~run.topology.same_cluster
    sent_some = (out.sent & others).any(-1)
    sent_all = (out.sent | ~others).all(-1)
    partial = sent_some & ~sent_all
    assert partial.any()
    # partial broadcasts come only from processes that crashed in that round
    s, r, p = np.nonzero(partial)
    assert np.all(crash.round[s, p] == r) and not np.any(out.finished[s, r, p])


def test_sync_views_are_complete_and_rounds_lockstep():
    run = batched_runner((3, 2, 1), "sync", "none", 4, False, "weighted")
    played = _np(run(0, 2, 0))[1]
    assert np.all(played.outcome.view)
    np.testing.assert_array_equal(absolute(played, run.scheduler)[0], np.arange(1, 5)[:, None] * np.ones(6))


def test_self_only_views_hold_at_most_the_own_cluster():
    run = batched_runner((3, 2, 1), "self_only", "none", 3, False, "weighted")
    out = _np(run(0, 8, 0))[1].outcome
    assert not np.any(out.view & ~run.topology.same_cluster)
    assert np.all(out.finished)


def test_random_clocks_drift_and_stamps_sit_on_the_grid():
    run = batched_runner((3, 2, 1), "random", "none", 5, False, "weighted")
    played = _np(run(0, 4, 0))[1]
    draws, out = played.draws, played.outcome
    assert len(np.unique(absolute(played, run.scheduler)[:, -1])) > 4
    for stamps in (draws.compute, draws.read_offset, draws.delay, out.end_time):
        np.testing.assert_array_equal(stamps * TICKS_PER_UNIT, np.round(stamps * TICKS_PER_UNIT))
    assert np.all(draws.compute > 0)


def test_straggler_slows_exactly_the_chosen_count():
    run = batched_runner((4, 4), "straggler", "none", 20, False, "weighted", stragglers=2, slowdown=50.0)
    draws = _np(run(0, 4, 0))[1].draws
    mean_compute = draws.compute.mean(axis=1)
    slow = mean_compute > 10
    assert np.all(slow.sum(-1) == 2)


def test_adversary_hears_from_minimal_quorums_that_differ():
    topo = Topology((1, 1, 1, 1, 1))
    favoured = adversary_favoured(topo, "weighted")
    assert np.all(favoured.sum(1) == 3)
    assert len({tuple(row) for row in favoured}) == topo.m


def test_same_seed_gives_identical_arrays_and_a_lane_reruns_alone():
    run = batched_runner((2, 3, 1), "heavy_tail", "random", 4, True, "count")
    first, second = _np(run(11, 6, 2)), _np(run(11, 6, 2))
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second)):
        np.testing.assert_array_equal(a, b)
    lane = 4
    alone = _np(run.one(rng.fold_in(rng.seed_key(11), lane), 2))
    for batched, single in zip(jax.tree.leaves(first), jax.tree.leaves(alone)):
        np.testing.assert_array_equal(batched[lane], single)


def test_heavy_tail_delays_keep_their_mean_within_1_percent_or_are_refused():
    """Delays come from 24-bit uniforms, so the Pareto tail is cut at 2**(24 / a) times its
    scale and its mean falls short by 2**(-24 (a - 1) / a): 6% at a = 1.2, 85% at 1.01,
    which ran with exit status 0. The mean over all 2**24 equally likely bins, through the
    compiled sampler and the time grid, is the exact mean a run draws from."""
    from ftsgd_jax import schedulers
    from ftsgd_jax.schedule import on_grid

    raw = jnp.arange(2**24, dtype=jnp.uint32) << 8
    draw = jax.jit(lambda r, p: on_grid(schedulers._pareto_delays(r, p)))
    smallest = round(schedulers.SMALLEST_TAIL_INDEX + 5e-4, 3)
    for tail_index in (smallest, 1.5, 3.0):
        params = make_scheduler("heavy_tail", Topology((2, 2)), tail_index=tail_index, delay_mean=2.0).params
        mean = np.asarray(draw(raw, params), np.float64).mean()
        assert abs(mean / 2.0 - 1) <= 0.01, (tail_index, mean)
    for tail_index in (1.01, 1.2, 1.38):
        with pytest.raises(ConfigError, match="schedule.tail_index.*24-bit"):
            make_scheduler("heavy_tail", Topology((2, 2)), tail_index=tail_index)


@pytest.mark.parametrize(
    ("kind", "settings", "field"),
    [
        ("randm", {}, "schedule.kind"),
        ("random", {"delay_mean": -1.0}, "schedule.delay_mean"),
        ("random", {"read_mean": -0.5}, "schedule.read_mean"),
        ("random", {"compute_mean": 0.0}, "schedule.compute_mean"),
        ("random", {"delay_man": 1.0}, "schedule.delay_man"),
        ("heavy_tail", {"tail_index": 1.0}, "schedule.tail_index"),
        ("straggler", {"stragglers": 9}, "schedule.stragglers"),
        ("partition", {"groups": [[0], [1]]}, "schedule.groups"),
        ("random", {"delay_mean": "fast"}, "schedule.delay_mean"),
        ("random", {"delay_mean": float("inf")}, "schedule.delay_mean"),
        ("random", {"compute_mean": float("nan")}, "schedule.compute_mean"),
        ("heavy_tail", {"tail_index": float("nan")}, "schedule.tail_index"),
        ("heavy_tail", {"tail_index": float("inf")}, "schedule.tail_index"),
        ("straggler", {"slowdown": float("inf")}, "schedule.slowdown"),
        ("adversarial", {"late": float("inf")}, "schedule.late"),
        ("partition", {"until": float("nan")}, "schedule.until"),
        ("partition", {"until": -1.0}, "schedule.until"),
        ("random", {"compute_mean": 0.01}, "schedule.compute_mean"),
        ("random", {"delay_mean": 0.01}, "schedule.delay_mean"),
        ("random", {"read_mean": 0.001}, "schedule.read_mean"),
        ("random", {"send_mean": 0.001}, "schedule.send_mean"),
    ],
)
def test_bad_schedule_settings_name_the_field(kind, settings, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        make_scheduler(kind, Topology((2, 2, 2)), **settings)


def test_misspelt_key_gets_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'delay_mean'"):
        make_scheduler("random", Topology((2, 2)), delay_man=1.0)


def test_means_below_the_grid_name_the_smallest_allowed_value():
    with pytest.raises(ConfigError, match=r"schedule.compute_mean: got 0.01: .* need >= 0.25"):
        make_scheduler("random", Topology((2, 2)), compute_mean=0.01)
    with pytest.raises(ConfigError, match=r"schedule.delay_mean: got 0.01: .* need 0 or >= 0.09375"):
        make_scheduler("random", Topology((2, 2)), delay_mean=0.01)
    assert make_scheduler("random", Topology((2, 2)), delay_mean=0.0, read_mean=0.0, send_mean=0.0)


@pytest.mark.parametrize("key", sorted(SMALLEST_MEAN))
@pytest.mark.parametrize("scale", [1.0, 1.5, 3.0, 40.0])
def test_durations_on_the_grid_keep_their_mean_and_computations_stay_positive(key, scale):
    """Down to the smallest allowed mean, rounding to whole ticks moves a mean by under 1%
    (+0.7% at worst, measured against the same draws before rounding over 4,096 rounds of
    an 8-process topology), the draws keep their mean within sampling error, and no
    computation takes 0."""
    topo = Topology((4, 4))
    mean = SMALLEST_MEAN[key] * scale
    scheduler = make_scheduler("random", topo, **{key: mean})
    fixtures = ScenarioDraws(slow=jnp.zeros((topo.n,), bool))
    keys = jax.vmap(lambda i: rng.fold_in(rng.seed_key(3), i))(jnp.arange(4096))
    draws = jax.jit(jax.vmap(lambda k: draw_round(k, topo, scheduler, fixtures, "weighted")))(keys)
    unrounded = jax.jit(jax.vmap(lambda k: SCHEDULERS["random"].draw(k, topo, scheduler.params, fixtures, "weighted")))(keys)
    field = {"compute_mean": "compute", "read_mean": "read_offset", "send_mean": "send_offset", "delay_mean": "delay"}[key]
    values = np.asarray(getattr(draws, field), np.float64)
    exact = np.asarray(getattr(unrounded, field), np.float64)
    assert abs(values.mean() / exact.mean() - 1) < 0.01
    assert abs(exact.mean() - mean) < 5 * exact.std() / np.sqrt(exact.size)
    assert np.all(np.asarray(draws.compute) > 0)


def _adversarial_views(seed: int, rounds: int = 3):
    run = batched_runner((3, 3, 3, 3), "adversarial", "none", rounds, True, "weighted")
    return _np(run(seed, 4, 0))[1].outcome.view


def test_the_adversary_draws_its_interleaving_from_its_key():
    """Seeds and rounds give different views (which clusters are favoured, the write order)."""
    views = _adversarial_views(0)
    assert len({views[s].tobytes() for s in range(views.shape[0])}) > 1  # across scenarios
    assert len({views[0, r].tobytes() for r in range(views.shape[1])}) > 1  # across rounds
    assert not np.array_equal(views, _adversarial_views(1))
    # inside a cluster the collects are no longer one fixed nested chain in process order
    sizes = views.sum(-1)[..., :3]
    assert len({tuple(s) for s in sizes.reshape(-1, 3)}) > 1


def test_the_adversary_offsets_its_sends_so_crashes_cut_broadcasts_part_way():
    run = batched_runner((2, 2, 2, 2), "adversarial", "random", 6, False, "weighted")
    crash, played = _np(run(3, 256, 4))
    out = played.outcome
    others = ~run.topology.same_cluster
    partial = (out.sent & others).any(-1) & ~(out.sent | ~others).all(-1)
    assert partial.any()
    s, r, p = np.nonzero(partial)
    assert np.all(crash.round[s, p] == r) and not np.any(out.finished[s, r, p])
    assert np.any(played.draws.send_offset[..., others] > 0)


@settings(max_examples=12, deadline=None)  # every topology is a compile
@given(seed=st.integers(0, 2**32 - 1), sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4))
def test_a_random_round_draws_from_one_key_per_process_at_the_documented_positions(seed, sizes):
    """Row p of ``process_bits`` is ``bits(fold_in(key, p), 1 + 3n)``: 0 its computation,
    1 + j its read of j, 1 + n + q its send to q, 1 + 2n + q its delay to q."""
    from ftsgd_jax.schedulers import process_bits

    topology = Topology(tuple(sizes))
    n = topology.n
    key = rng.fold_in(rng.seed_key(seed), 7)
    own = np.stack([np.asarray(rng.bits(rng.fold_in(key, p), (1 + 3 * n,))) for p in range(n)])
    np.testing.assert_array_equal(np.asarray(process_bits(key, n)), own)
    scheduler = make_scheduler("random", topology, stragglers=0)
    draws = draw_round(key, topology, scheduler, ScenarioDraws(slow=jnp.zeros((n,), bool)), "weighted")
    params = scheduler.params

    def on_grid(t):
        return np.round(np.asarray(t, np.float32) * TICKS_PER_UNIT) / TICKS_PER_UNIT

    uniform, exponential = (np.asarray(f(jnp.asarray(own))) for f in (rng.uniform_of_bits, rng.exponential_of_bits))
    compute = np.maximum(on_grid(params.compute_mean * exponential[:, 0]), 1 / TICKS_PER_UNIT)
    np.testing.assert_allclose(np.asarray(draws.compute), compute, atol=1 / TICKS_PER_UNIT)
    np.testing.assert_allclose(np.asarray(draws.read_offset), on_grid(2 * params.read_mean * uniform[:, 1 : 1 + n]), atol=1 / TICKS_PER_UNIT)
    np.testing.assert_allclose(np.asarray(draws.send_offset), on_grid(2 * params.send_mean * uniform[:, 1 + n : 1 + 2 * n]), atol=1 / TICKS_PER_UNIT)
    np.testing.assert_allclose(np.asarray(draws.delay), on_grid(params.delay_mean * exponential[:, 1 + 2 * n :]), atol=1 / TICKS_PER_UNIT)
