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
    import jax

    result = engine.run(cfg)
    alphas = np.asarray(jax.vmap(algorithms.step_size(cfg))(np.arange(cfg.run.iterations)))
    eps = algorithms.eps_schedule(cfg, alphas)
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
    ],
    ids=["sc-random", "sc-heavy_tail", "gen-mean", "gen-midpoint"],
)
def test_engine_equals_the_reference_driven_step_by_step(overrides):
    sections = {"system": {"clusters": [2, 1, 2]}, "run": {"iterations": 6, "scenarios": 4, "record_every": 6}}
    for name, values in overrides.items():
        sections[name] = values
    cfg = config(**sections)
    sim = engine.simulation(cfg)
    out = sim.batched(sim.inputs(cfg, np.arange(4)))
    for index in range(4):
        ref, x_ref = run_algorithm(cfg, index)
        live = np.asarray(out.final.live[index])
        np.testing.assert_array_equal(live, ref.finished[-1])
        np.testing.assert_allclose(np.asarray(out.final.x[index])[live], x_ref[live], rtol=2e-5, atol=2e-6)


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


def test_crash_counts_and_seeds_reuse_one_compiled_program():
    first = config(faults={"pattern": "random", "crashes": 1}, run={"scenarios": 8, "iterations": 10})
    sim = engine.simulation(first)
    traces = sim.traces
    for crashes, seed, delay in [(0, 1, 0.5), (5, 2, 2.0), (7, 3, 1.0)]:
        cfg = config(
            faults={"pattern": "random", "crashes": crashes},
            schedule={"delay_mean": delay},
            run={"scenarios": 8, "iterations": 10, "seed": seed},
        )
        assert engine.simulation(cfg) is sim
        engine.run(cfg)
    assert sim.traces - traces <= 1


def test_a_chunk_that_cannot_fit_memory_says_the_estimate():
    cfg = config(run={"chunk": 10**9, "scenarios": 10**9})
    with pytest.raises(ConfigError, match=r"run.chunk: 1000000000 scenarios need about [\d.]+ GiB but [\d.]+ GiB are free"):
        devices.chunk_size(cfg)


def test_automatic_chunks_bound_memory_whatever_the_scenario_count():
    small, huge = config(run={"scenarios": 100}), config(run={"scenarios": 10**7})
    assert devices.chunk_size(small) == 100
    assert devices.chunk_size(huge) <= devices.DEFAULT_CHUNK
    assert devices.chunk_size(huge) * devices.bytes_per_scenario(huge) < devices.available_memory_bytes()
