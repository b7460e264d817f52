"""The engine's runs against theory (exact rates, bounds, impossibility) and the reference."""

from __future__ import annotations

import numpy as np
import pytest

from ftsgd_jax import devices, engine
from ftsgd_jax.config import build_config
from ftsgd_jax.errors import ConfigError
from ftsgd_jax.reference import run_algorithm


def config(**sections):
    base = {
        "system": {"clusters": [2, 2, 2, 2]},
        "objective": {"kind": "quadratic", "dim": 10, "mu": 1.0, "L": 1.0, "sigma": 1.0, "x0": 3.0},
        "algorithm": {"kind": "sc"},
        "run": {"iterations": 40, "scenarios": 256, "record_every": 10},
    }
    for name, values in sections.items():
        replaces_objective = name == "objective" and "kind" in values
        base[name] = dict(values) if replaces_objective else {**base.get(name, {}), **values}
    return build_config(base)


def monte_carlo_ratio(result, expected, dim):
    """Measured/expected E|x_T - x*|^2 and its 5-sigma band (|x_T - x*|^2 ~ expected chi2_d / d)."""
    final = result.metrics["err_mean"][:, -1]
    return final.mean() / expected, 5 * np.sqrt(2 / (dim * final.size))


@pytest.mark.parametrize("x0", [3.0, -20.0])
def test_sync_sc_reaches_sigma2_over_mu2_n_T_exactly(x0):
    cfg = config(
        schedule={"kind": "sync"},
        objective={"x0": x0},
        run={"iterations": 40, "scenarios": 3000, "record_every": 40},
    )
    result = engine.run(cfg)
    n, T = cfg.topology.n, cfg.run.iterations
    ratio, band = monte_carlo_ratio(result, 1.0 / (n * T), 10)
    assert abs(ratio - 1) < band
    assert np.all(result.metrics["view_min"] == n)


def test_self_only_singletons_are_sequential_sgd_sigma2_over_mu2_T():
    cfg = config(
        system={"clusters": [1] * 8},
        schedule={"kind": "self_only"},
        run={"iterations": 40, "scenarios": 3000, "record_every": 40},
    )
    result = engine.run(cfg)
    ratio, band = monte_carlo_ratio(result, 1.0 / cfg.run.iterations, 10)
    assert abs(ratio - 1) < band
    assert np.all(result.metrics["view_min"] == 1)


@pytest.mark.parametrize("crashes", [0, 3, 7])
def test_sc_survives_any_number_of_crashes_within_the_bound(crashes):
    gamma = 8.0  # >= 2 L / mu for L = 4, mu = 1
    cfg = config(
        system={"clusters": [3, 1, 2, 2]},
        faults={"pattern": "random", "crashes": crashes},
        objective={"L": 4.0, "x0": 2.0},
        algorithm={"step_scale": 2.0, "step_offset": gamma},
        run={"iterations": 60, "scenarios": 512, "record_every": 1},
    )
    result = engine.run(cfg)
    T = cfg.run.iterations
    k = np.nanmin(result.metrics["view_min"])
    x_gap = np.sum((np.asarray(cfg.objective.x0) - np.asarray(cfg.objective.x_star)) ** 2)
    bound = max(4 * 1.0 / k, gamma * x_gap) / (T + gamma)
    final = result.metrics["err_max"][:, -1]
    live = np.isfinite(final)
    assert live.mean() > 0.5 and final[live].mean() <= bound
    assert np.all(result.metrics["blocked"] == 0)


def test_gen_keeps_disagreement_below_eps_t_every_iteration():
    cfg = config(
        system={"clusters": [3, 2, 2, 1]},
        faults={"pattern": "random", "crashes": 2},
        objective={"kind": "logistic", "dim": 5, "samples": 128, "batch": 4, "lam": 0.1},
        algorithm={"kind": "gen", "rounds": "auto", "eps0": 0.5, "step_scale": 1.0, "step_offset": 10.0},
        run={"iterations": 30, "scenarios": 256, "record_every": 1},
    )
    from ftsgd_jax import algorithms

    result = engine.run(cfg)
    alphas = algorithms.step_sizes(cfg.algorithm, cfg.objective, cfg.run.iterations)
    eps = algorithms.eps_schedule(cfg.algorithm, alphas)
    dis = result.metrics["disagreement"]
    assert np.all((dis <= eps[None, :] * (1 + 1e-5)) | np.isnan(dis))
    assert np.all(result.metrics["rounds"] == result.rounds_per_iteration[None, :])


@pytest.mark.parametrize("quorum", ["weighted", "count"])
def test_gen_terminates_iff_the_majority_condition_holds(quorum):
    cfg = config(
        system={"clusters": [3, 1, 1, 2], "quorum": quorum},
        faults={"pattern": "initial", "crashes": 4},
        algorithm={"kind": "gen", "rounds": 2},
        run={"iterations": 10, "scenarios": 256, "record_every": 10},
    )
    result = engine.run(cfg)
    majority = result.metrics["majority"][:, -1]
    blocked = result.metrics["blocked"][:, -1] > 0
    assert majority.any() and (~majority).any()
    np.testing.assert_array_equal(blocked, ~majority)


def impossibility(kind, groups, seeds=200):
    return config(
        system={"clusters": [2, 2, 2, 2]},
        schedule={"kind": "partition", "groups": groups, "delay_mean": 0.5},
        objective={"kind": "double_well", "dim": 1, "sigma": 0.5, "x0": 0.0},
        algorithm={"kind": kind, "step": "cosine", "lr": 0.3, "rounds": 2},
        run={"iterations": 300, "scenarios": seeds, "record_every": 300},
    )


def test_impossibility_nowait_splits_into_two_minima_while_gen_blocks():
    nowait = engine.run(impossibility("nowait", [[0, 1], [2, 3]]))
    gap = nowait.metrics["disagreement"][:, -1]
    split = np.abs(gap - 2 * 0.9575) < 0.2  # the two groups sit in different minima
    assert split.mean() > 0.3 and np.all(split | (gap < 0.5))
    gen = engine.run(impossibility("gen", [[0, 1], [2, 3]]))
    assert np.all(gen.metrics["blocked"][:, -1] == 8)  # no side can tell a slow side from a crashed one


def test_with_a_majority_group_gen_agrees():
    gen = engine.run(impossibility("gen", [[0, 1, 2], [3]]))
    assert np.all(gen.metrics["blocked"][:, -1] == 2)  # the cut-off cluster waits
    assert np.all(gen.metrics["disagreement"][:, -1] < 0.1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"algorithm": {"kind": "sc"}, "schedule": {"kind": "random"}, "faults": {"pattern": "random", "crashes": 2}},
        {"algorithm": {"kind": "sc"}, "schedule": {"kind": "heavy_tail"}},
        {"algorithm": {"kind": "gen", "rounds": 3}, "schedule": {"kind": "random"}, "faults": {"pattern": "random", "crashes": 2}},
        {
            "algorithm": {"kind": "gen", "rounds": 2, "rule": "midpoint", "step": "constant"},
            "objective": {"kind": "double_well", "dim": 1, "x0": 0.0},
            "schedule": {"kind": "straggler"},
        },
        {
            "algorithm": {"kind": "gen", "rounds": 64},
            "faults": {"pattern": "random", "crashes": 1},
            "run": {"iterations": 3, "scenarios": 4, "record_every": 3},
        },
        {"algorithm": {"kind": "gen", "rounds": 2}, "schedule": {"kind": "partition", "until": 40.0}},
    ],
    ids=["sc-random", "sc-heavy_tail", "gen-mean", "gen-midpoint", "gen-64-rounds", "gen-partition-heals"],
)
def test_engine_equals_the_reference_driven_step_by_step(overrides):
    sections = {"system": {"clusters": [2, 1, 2]}, "run": {"iterations": 6, "scenarios": 4, "record_every": 6}}
    for name, values in overrides.items():
        sections[name] = values
    cfg = config(**sections)
    sim = engine.simulation(cfg)
    out = sim.batched(engine.scenario_inputs(cfg, np.arange(4)))
    for index in range(4):
        ref, x_ref = run_algorithm(cfg, index)
        live = np.asarray(out.final.live[index])
        np.testing.assert_array_equal(live, ref.finished[-1])
        np.testing.assert_allclose(np.asarray(out.final.x[index])[live], x_ref[live], rtol=2e-5, atol=2e-6)
        np.testing.assert_array_equal(np.asarray(out.final.timeline.crashed[index]), np.isfinite(ref.crash_time) | (ref.crash_time == -np.inf))


@pytest.mark.parametrize(("rule", "factor"), [("mean", 1 - 1 / 6), ("midpoint", 0.5)])
def test_every_agreement_round_contracts_by_the_proven_factor(rule, factor):
    cfg = config(
        system={"clusters": [2, 1, 2, 1]},
        faults={"pattern": "random", "crashes": 1},
        schedule={"kind": "random"},
        objective={"kind": "double_well", "dim": 1, "sigma": 2.0, "x0": 0.0},
        algorithm={"kind": "gen", "rule": rule, "rounds": 4, "step": "constant", "lr": 0.3},
        run={"iterations": 20, "scenarios": 256, "record_every": 1, "track_contraction": True},
    )
    result = engine.run(cfg)
    worst = result.metrics["contraction_max"]
    measured = worst[np.isfinite(worst)]
    assert measured.size > 1000 and measured.max() <= factor + 1e-3  # float32 rounding of the two diameters


def test_crash_counts_windows_schedules_and_seeds_reuse_one_compiled_program(compiles_once):
    first = config(faults={"pattern": "random", "crashes": 1}, run={"scenarios": 8, "iterations": 10})
    sim = engine.simulation(first)
    assert not hasattr(sim, "config")  # built from the static part alone: nothing run-time to read stale
    for crashes, seed, delay, window in [(0, 1, 0.5, [0, 1]), (5, 2, 2.0, [0.5, 1]), (7, 3, 1.0, [0, 0.1])]:
        cfg = config(
            faults={"pattern": "random", "crashes": crashes, "window": window},
            schedule={"delay_mean": delay},
            run={"scenarios": 8, "iterations": 10, "seed": seed},
        )
        assert engine.simulation(cfg) is sim
        engine.run(cfg)


def test_another_chunk_size_is_another_trace_and_is_caught(compiles_once):
    """The check above can fail: a second batch shape is traced again."""
    engine.run(config(run={"scenarios": 8, "iterations": 10, "chunk": 8}))
    with pytest.raises(AssertionError, match="traced > 1 times"):
        engine.run(config(run={"scenarios": 8, "iterations": 10, "chunk": 4}))


def test_a_chunk_that_cannot_fit_memory_says_the_estimate():
    cfg = config(system={"clusters": [64]}, run={"chunk": 2**20, "scenarios": 2**20})
    with pytest.raises(ConfigError, match=r"run.chunk: 1048576 scenarios need about [\d.]+ GiB but [\d.]+ GiB are free"):
        devices.chunk_size(cfg)


def test_automatic_chunks_bound_memory_whatever_the_scenario_count():
    small, huge = config(run={"scenarios": 100}), config(run={"scenarios": 10**7})
    assert devices.chunk_size(small) == 100
    assert devices.chunk_size(huge) * devices.bytes_per_scenario(huge) < devices.available_memory_bytes()
    # a CPU chunk stays at DEFAULT_CHUNK; an accelerator's fills its share of the device memory
    on_cpu = config(run={"scenarios": 10**7, "device": "cpu"})
    assert devices.chunk_size(on_cpu) <= devices.DEFAULT_CHUNK


# ---- results that never silently lie: crash placement, exact time, honest columns


@pytest.mark.parametrize(("pattern", "crashes", "processes"), [("random", 3, 3), ("clusters", 1, 4)])
def test_every_asked_crash_happens_within_the_run(pattern, crashes, processes):
    cfg = config(
        system={"clusters": [4, 4, 4, 4]},
        faults={"pattern": pattern, "crashes": crashes},
        run={"iterations": 400, "scenarios": 64, "record_every": 400},
    )
    assert np.all(engine.run(cfg).metrics["crashed"][:, -1] == processes)


def test_crashes_fall_in_the_window_of_iterations():
    cfg = config(faults={"pattern": "random", "crashes": 2, "window": [0.5, 1.0]}, run={"iterations": 20, "record_every": 1})
    crashed = engine.run(cfg).metrics["crashed"]
    assert np.all(crashed[:, :9] == 0) and np.all(crashed[:, -1] == 2)


@pytest.mark.parametrize(
    "schedule",
    [{"kind": "partition", "groups": [[0, 1], [2, 3]]}, {"kind": "self_only"}, {"kind": "partition", "groups": [[0, 1, 2], [3]]}],
    ids=["partition-no-majority-side", "self_only", "partition-majority-side"],
)
def test_majority_column_says_when_gen_blocks_row_by_row(schedule):
    cfg = config(schedule=schedule, algorithm={"kind": "gen", "rounds": 2}, run={"iterations": 4, "record_every": 1})
    result = engine.run(cfg)
    blocked = result.metrics["blocked"] > 0
    np.testing.assert_array_equal(result.metrics["majority"], ~blocked)
    assert blocked.all()


def test_majority_column_with_mid_run_crashes_never_contradicts_blocking():
    """Blocked rows never claim the condition; the condition fails only after the crash that
    broke it, and gen blocks from the next round on (every row where the crash is not in the
    record's last iteration)."""
    cfg = config(
        system={"clusters": [3, 1, 1, 2]},
        faults={"pattern": "clusters", "crashes": 2},
        algorithm={"kind": "gen", "rounds": 2},
        run={"iterations": 12, "record_every": 2, "scenarios": 128},
    )
    result = engine.run(cfg)
    blocked, majority = result.metrics["blocked"] > 0, result.metrics["majority"]
    assert not np.any(blocked & majority)
    lag = ~majority[:, :-1] & ~blocked[:, :-1]  # not yet blocked: must be blocked one record later
    assert np.all(blocked[:, 1:][lag])
    assert (~majority).any() and majority.any()


def test_minibatch_counts_as_crashed_only_processes_whose_crash_came():
    cfg = config(
        system={"clusters": [4, 4, 4, 4]},
        faults={"pattern": "random", "crashes": 3},
        algorithm={"kind": "minibatch"},
        run={"iterations": 20, "record_every": 1, "scenarios": 256},
    )
    result = engine.run(cfg)
    crashed, blocked = result.metrics["crashed"][:, -1], result.metrics["blocked"][:, -1]
    assert np.all(crashed + blocked == 16)
    assert np.all(crashed >= 1) and crashed.mean() < 1.5  # the first crash blocks the others before theirs


def test_auto_rounds_say_where_they_were_capped():
    cfg = config(
        system={"clusters": [8, 8, 8, 8]},
        algorithm={"kind": "gen", "rounds": "auto", "max_rounds": 8},
        run={"iterations": 10, "record_every": 5, "scenarios": 4},
    )
    result = engine.run(cfg)
    assert np.all(result.rounds_needed > 8) and np.all(result.rounds_per_iteration == 8)
    assert np.all(result.metrics["rounds_capped"] == 5)
    uncapped = engine.run(config(algorithm={"kind": "gen", "rounds": 2}, run={"iterations": 10, "scenarios": 4}))
    assert np.all(uncapped.metrics["rounds_capped"] == 0)


def test_safe_area_runs_record_their_residual_and_fallbacks():
    cfg = config(
        system={"clusters": [2, 2, 2, 2]},
        objective={"kind": "quadratic", "dim": 3},
        algorithm={"kind": "gen", "rule": "safe_area", "rounds": 2},
        run={"iterations": 4, "record_every": 2, "scenarios": 8},
    )
    metrics = engine.run(cfg).metrics
    residual = metrics["safe_residual_max"]
    assert np.isfinite(residual).any() and np.all(residual[np.isfinite(residual)] <= 1e-5)
    assert metrics["safe_fallbacks"].sum() > 0  # views of fewer than (d + 1) f + 1 = 5 points have no safe area
    mean_cfg = config(algorithm={"kind": "gen", "rounds": 2}, run={"iterations": 4, "scenarios": 4, "record_every": 2})
    mean = engine.run(mean_cfg).metrics
    assert np.all(np.isnan(mean["safe_residual_max"])) and np.all(mean["safe_fallbacks"] == 0)


def test_time_span_is_recorded_and_stays_in_the_exact_range():
    cfg = config(run={"iterations": 40, "scenarios": 16, "record_every": 10})
    span = engine.run(cfg).metrics["time_span"]
    assert np.all((span > 0) & (span < 100)) and np.all(np.diff(span, axis=1) >= 0)


def test_leaving_the_exact_range_stops_the_run_for_every_point_that_shares_a_program():
    """A point whose time stamps would leave float32's exact range stops with a one-line error,
    even when an earlier point of the same compiled program was fine (no stale check)."""
    base = {
        "system": {"clusters": [2, 2, 2, 2]},
        "algorithm": {"kind": "gen", "rounds": 1},
        "run": {"iterations": 4, "scenarios": 4, "record_every": 4},
    }
    fine = config(schedule={"kind": "partition", "groups": [[0, 1, 2], [3]], "until": 50.0}, **base)
    far = config(schedule={"kind": "partition", "groups": [[0, 1, 2], [3]], "until": 6e5}, **base)
    assert engine.simulation(fine) is engine.simulation(far)
    assert np.all(engine.run(fine).metrics["time_span"] < 100)
    with pytest.raises(ConfigError, match=r"schedule.until: scenario 0 .* beyond the exact range of time stamps \(524288"):
        engine.run(far)


def test_a_straggler_that_must_drift_out_of_range_is_refused_before_any_work():
    cfg = config(
        schedule={"kind": "straggler", "slowdown": 100.0},
        run={"iterations": 10_000, "scenarios": 4, "record_every": 10_000},
    )
    with pytest.raises(ConfigError, match=r"schedule.slowdown: stragglers drift about 9.9e\+05 time units"):
        engine.check_exact_time(cfg)


def test_a_held_back_message_beyond_the_exact_range_is_refused_where_gen_may_wait_for_it():
    cfg = config(schedule={"kind": "adversarial", "late": 1e6}, algorithm={"kind": "gen"})
    with pytest.raises(ConfigError, match="schedule.late: 1e\\+06 exceeds the exact range"):
        engine.check_exact_time(cfg)
    engine.check_exact_time(config(schedule={"kind": "adversarial", "late": 1e6}))  # sc never waits for it


def test_the_searched_scheduler_refuses_crash_patterns_it_would_ignore():
    cfg = config(schedule={"kind": "searched"}, faults={"pattern": "initial", "crashes": 1}, run={"iterations": 2, "record_every": 2})
    with pytest.raises(ConfigError, match="faults.pattern: got 'initial', but the 'searched' scheduler"):
        engine.run(cfg)


@pytest.mark.parametrize("seed", [0, 7, 2**31 + 5, 2**32 - 1])
def test_scenario_keys_are_the_eager_fold_ins_of_the_seed_key(seed):
    from ftsgd_jax import rng

    indices = np.array([0, 1, 5, 4095, 2**31 + 3], np.uint32)
    eager = np.stack([np.asarray(rng.fold_in(rng.seed_key(seed), int(i))) for i in indices])
    np.testing.assert_array_equal(np.asarray(engine.scenario_keys(np.uint32(seed), indices)), eager)


def _chunks_of(cfg, size):
    return [engine.Chunk(cfg, np.arange(begin, min(begin + size, cfg.run.scenarios)), size) for begin in range(0, cfg.run.scenarios, size)]


def test_chunks_run_one_ahead_give_the_results_of_one_at_a_time():
    cfg = config(run={"iterations": 10, "scenarios": 12, "record_every": 5, "chunk": 4}, faults={"pattern": "random", "crashes": 1})
    one_by_one = [engine.run(cfg, indices=chunk.indices) for chunk in _chunks_of(cfg, 4)]
    asked = []

    def chunks():
        for chunk in _chunks_of(cfg, 4):
            asked.append(int(chunk.indices[0]))
            yield chunk

    parts = engine.run_chunks(chunks())
    first = next(parts)
    assert asked == [0, 4]  # the next chunk was dispatched before the first was handed over
    joined, expected = engine.join_results([first, *parts]), engine.join_results(one_by_one)
    for name, values in expected.metrics.items():
        np.testing.assert_array_equal(joined.metrics[name], values, err_msg=name)


def test_a_chunk_that_cannot_start_comes_after_the_results_before_it():
    cfg = config(run={"iterations": 10, "scenarios": 8, "record_every": 5})

    def chunks():
        yield from _chunks_of(cfg, 4)
        raise RuntimeError("no third chunk")

    handed = []
    with pytest.raises(RuntimeError, match="no third chunk"):
        for result in engine.run_chunks(chunks()):
            handed.append(result.scenarios)
    assert handed == [4, 4]


def test_a_scenarios_metrics_and_their_nans_do_not_depend_on_the_chunk_size():
    """From 256 scenarios per chunk on, XLA's CPU max dropped NaN: the mean rule's
    safe_residual_max (NaN: it has no residual) read -inf, and a diverged scenario's err_max
    and disagreement read -inf; below 256 both were NaN."""
    raw = {
        "system": {"clusters": [5, 3, 3, 2, 2, 1]},
        "faults": {"pattern": "random", "crashes": 6, "window": [0.2, 0.7]},
        "objective": {"kind": "quadratic", "dim": 3},
        "algorithm": {"kind": "gen", "rule": "mean", "rounds": "auto", "max_rounds": 6},
        "run": {"iterations": 10, "record_every": 5, "seed": 3},
    }
    diverging = {  # a constant step of 2.5 on curvature 1: every scenario overflows to inf, then NaN
        "system": {"clusters": [1] * 8},
        "objective": {"kind": "quadratic", "dim": 1, "sigma": 1.0},
        "algorithm": {"kind": "seq", "step": "constant", "lr": 2.5},
        "run": {"iterations": 260, "record_every": 20, "seed": 0},
    }
    for config, nan_columns in ((raw, ["safe_residual_max"]), (diverging, ["err_mean", "err_max", "disagreement"])):
        small = engine.run(build_config({**config, "run": {**config["run"], "scenarios": 255}})).metrics
        large = engine.run(build_config({**config, "run": {**config["run"], "scenarios": 256}})).metrics
        for name in nan_columns:
            assert np.isnan(large[name]).any(), name
        for name, values in small.items():
            np.testing.assert_allclose(large[name][:255], values, rtol=1e-6, equal_nan=True, err_msg=name)


@pytest.mark.parametrize("algorithm", ["sc", "gen"])
def test_a_cpu_chunk_run_in_blocks_agrees_with_one_batch(algorithm, monkeypatch):
    cfg = config(
        system={"clusters": [2, 1, 2]},
        faults={"pattern": "random", "crashes": 2},
        algorithm={"kind": algorithm, "rounds": 2},
        run={"iterations": 8, "scenarios": 10, "record_every": 4},
    )
    # blocks of 4 scenarios: 10 = 4 + 4 + 2, the last block padded with copies
    monkeypatch.setattr(devices, "CPU_BLOCK_BYTES", 4 * devices.round_bytes(cfg.topology.n, cfg.objective.dim))
    monkeypatch.setattr(devices, "MIN_CPU_BLOCK", 1)
    assert devices.cpu_block(10, cfg.topology.n, cfg.objective.dim) == 4
    sim = engine.Simulation(engine.static_part(cfg))
    inputs = engine.scenario_inputs(cfg, np.arange(10))
    blocked, whole = sim.compiled(inputs)(inputs), sim.batched(inputs)
    assert "while" in sim.compiled(inputs).as_text().split("ENTRY")[-1]  # the chunk ran as a loop over blocks
    # another program, so float reductions may round otherwise (README: within 1e-5 + 1e-6)
    for name, value in whole.records._asdict().items():
        got, want = np.asarray(getattr(blocked.records, name)), np.asarray(value)
        if np.issubdtype(want.dtype, np.floating):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_allclose(np.asarray(blocked.final.x), np.asarray(whole.final.x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(blocked.final.live), np.asarray(whole.final.live))
    # in blocks too, a scenario's bits do not depend on its neighbours or its place in the chunk
    shifted_inputs = engine.scenario_inputs(cfg, np.arange(3, 13))
    shifted = sim.compiled(shifted_inputs)(shifted_inputs)
    for name, value in blocked.records._asdict().items():
        np.testing.assert_array_equal(np.asarray(getattr(shifted.records, name))[:7], np.asarray(value)[3:], err_msg=name)
