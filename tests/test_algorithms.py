"""Tests of ftsgd_jax.algorithms: step sizes, eps_t and the rounds schedule against their
closed forms, and the entries of the ALGORITHMS registry."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftsgd_jax import agreement, algorithms
from ftsgd_jax.config import build_config
from ftsgd_jax.errors import ConfigError


def configured(algorithm: dict, clusters=(2, 2), iterations: int = 40, dim: int = 2):
    return build_config(
        {
            "system": {"clusters": list(clusters)},
            "objective": {"kind": "quadratic", "dim": dim, "mu": 0.5, "L": 2.0},
            "algorithm": algorithm,
            "run": {"iterations": iterations, "record_every": 1, "scenarios": 1},
        }
    )


STEPS = st.fixed_dictionaries(
    {
        "step": st.sampled_from(["inverse", "constant", "cosine"]),
        "step_scale": st.floats(0.1, 10),
        "step_offset": st.floats(0.5, 100),
        "lr": st.floats(1e-3, 1.0),
    }
)


@settings(max_examples=25)  # each example builds a configuration
@given(STEPS, st.integers(1, 60))
def test_step_sizes_are_the_closed_forms(step, iterations):
    config = configured({"kind": "sc", **step}, iterations=iterations)
    t = np.arange(iterations, dtype=np.float64)
    expected = {
        "inverse": step["step_scale"] / (0.5 * (t + step["step_offset"])),
        "constant": np.full(iterations, step["lr"]),
        "cosine": step["lr"] * 0.5 * (1 + np.cos(np.pi * t / iterations)),
    }[step["step"]]
    alphas = algorithms.step_sizes(config.algorithm, config.objective, iterations)
    assert alphas.dtype == np.float32 and alphas.shape == (iterations,)
    np.testing.assert_allclose(alphas, expected, rtol=2e-6, atol=1e-7 * step["lr"])


@given(st.lists(st.floats(1e-4, 10), min_size=1, max_size=20), st.floats(1e-3, 1e3), st.floats(0.1, 3))
def test_eps_is_eps0_times_alpha_to_the_power(alphas, eps0, power):
    spec = configured({"kind": "gen", "eps0": eps0, "eps_power": power}).algorithm
    expected = [eps0 * a**power for a in alphas]
    np.testing.assert_allclose(algorithms.eps_schedule(spec, np.array(alphas)), expected, rtol=1e-12)


@settings(max_examples=25)  # each example builds a configuration
@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=5),
    STEPS,
    st.fixed_dictionaries(
        {
            "eps0": st.floats(1e-3, 10),
            "eps_power": st.floats(0.5, 2),
            "g_max": st.floats(0.1, 100),
            "max_rounds": st.integers(1, 64),
        }
    ),
    st.integers(1, 40),
)
def test_auto_rounds_are_the_fewest_that_reach_eps_capped_at_max_rounds(clusters, step, targets, iterations):
    config = configured({"kind": "gen", "rounds": "auto", **step, **targets}, clusters=clusters, iterations=iterations)
    spec, objective, topology = config.algorithm, config.objective, config.topology
    plan = algorithms.rounds_schedule(spec, objective, topology, iterations)
    alphas = algorithms.step_sizes(spec, objective, iterations).astype(np.float64)
    factor = agreement.contraction_factor("mean", topology.n, objective.dim)
    eps_before = 0.0  # every process starts at x0
    for t in range(iterations):
        eps = targets["eps0"] * alphas[t] ** targets["eps_power"]
        spread = eps_before + 2 * alphas[t] * targets["g_max"]
        needed = int(plan.needed[t])
        assert needed >= 1 and factor**needed * spread <= eps * (1 + 1e-9)
        assert needed == 1 or factor ** (needed - 1) * spread > eps * (1 - 1e-9)
        assert plan.rounds[t] == min(needed, targets["max_rounds"])
        eps_before = eps


def test_a_step_size_of_zero_asks_for_exact_agreement_and_is_capped_and_flagged():
    """A cosine schedule over 20,000 iterations ends on alpha = 0 in float32, so eps_t = 0:
    no number of rounds reaches exact agreement. Those iterations run max_rounds and count
    as capped (the cast of an infinite count made them run 0 rounds, unflagged)."""
    iterations = 20_000
    config = configured({"kind": "gen", "rounds": "auto", "step": "cosine", "lr": 0.05, "max_rounds": 16}, iterations=iterations)
    spec, objective, topology = config.algorithm, config.objective, config.topology
    zero = algorithms.step_sizes(spec, objective, iterations) == 0
    assert zero.any() and not zero.all()
    plan = algorithms.rounds_schedule(spec, objective, topology, iterations)
    assert plan.rounds.min() >= 1 and plan.needed.min() >= 1
    assert (plan.rounds[zero] == 16).all() and (plan.needed[zero] == algorithms.UNBOUNDED_ROUNDS).all()
    assert (plan.needed[~zero] < algorithms.UNBOUNDED_ROUNDS).all()


def test_one_process_agrees_in_one_round_and_a_rule_that_cannot_contract_is_refused(monkeypatch):
    """mean's factor 1 - 1/n is 0 for one process (one round makes every view agree); a
    factor of 1 could never reach eps_t, which ``auto`` must say instead of planning 1 round."""
    alone = configured({"kind": "gen", "rounds": "auto"}, clusters=[1], iterations=5)
    plan = algorithms.rounds_schedule(alone.algorithm, alone.objective, alone.topology, 5)
    assert plan.rounds.tolist() == [1] * 5 and plan.needed.tolist() == [1] * 5
    stuck = dataclasses.replace(agreement.RULES["mean"], factor=lambda n: 1.0)
    monkeypatch.setitem(agreement.RULES, "stuck", stuck)
    config = configured({"kind": "gen", "rounds": "auto"}, iterations=5)
    spec = dataclasses.replace(config.algorithm, rule="stuck")
    with pytest.raises(ConfigError, match="algorithm.rounds"):
        algorithms.rounds_schedule(spec, config.objective, config.topology, 5)


def test_fixed_rounds_and_algorithms_without_agreement():
    fixed = configured({"kind": "gen", "rounds": 5}, iterations=7)
    plan = algorithms.rounds_schedule(fixed.algorithm, fixed.objective, fixed.topology, 7)
    assert plan.rounds.tolist() == [5] * 7 and plan.needed.tolist() == [5] * 7
    for kind in ("sc", "seq", "minibatch", "nowait"):
        config = configured({"kind": kind, "rounds": 5}, iterations=7)
        plan = algorithms.rounds_schedule(config.algorithm, config.objective, config.topology, 7)
        assert plan.rounds.tolist() == [1] * 7 and plan.needed.tolist() == [1] * 7, kind


def test_gradient_bound_is_the_users_else_grows_with_the_distance_from_x0_to_the_optimum():
    given_bound = configured({"kind": "gen", "g_max": 3.5})
    assert algorithms.gradient_bound(given_bound.algorithm, given_bound.objective) == 3.5
    bounds = []
    for x0 in (1.0, 3.0, 10.0):  # x* = 1
        config = build_config({"objective": {"kind": "quadratic", "dim": 2, "x0": x0}, "algorithm": {"kind": "gen"}})
        bounds.append(algorithms.gradient_bound(config.algorithm, config.objective))
    assert 0 < bounds[0] < bounds[1] < bounds[2] < math.inf


def test_the_registry_says_which_algorithms_wait_and_agree():
    flags = {name: (entry.waits, entry.agreement) for name, entry in algorithms.ALGORITHMS.items()}
    assert flags == {
        "sc": (False, False),
        "gen": (True, True),
        "seq": (False, False),
        "minibatch": (False, False),
        "nowait": (False, False),
    }
    for name, entry in algorithms.ALGORITHMS.items():
        assert callable(entry.iteration) and entry.summary, name
        assert configured({"kind": name}).algorithm.kind == name  # every entry is a valid algorithm.kind
    with pytest.raises(ConfigError, match="algorithm.kind"):
        configured({"kind": "not_registered"})


def test_every_step_size_schedule_is_configurable_and_unknown_ones_are_refused():
    for name in algorithms.STEP_SIZES:
        config = configured({"kind": "sc", "step": name})
        assert math.isfinite(float(algorithms.step_sizes(config.algorithm, config.objective, 40)[0]))
    with pytest.raises(ConfigError, match="algorithm.step"):
        configured({"kind": "sc", "step": "linear"})


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 7), d=st.integers(1, 4))
def test_averaging_the_columns_is_the_view_mean_of_the_finished(seed, n, d):
    gen = np.random.default_rng(seed)
    y = gen.standard_normal((n, d)).astype(np.float32)
    x = gen.standard_normal((n, d)).astype(np.float32)
    finished = gen.random(n) < 0.7
    view = (gen.random((n, n)) < 0.5) | np.eye(n, dtype=bool)
    view &= finished[:, None]
    outside = ~view.any(axis=0)
    y[outside] = np.inf  # values nobody sees must not leak in
    averaged = np.asarray(algorithms.average_views(y.T, view, finished, x))
    expected = np.where(finished[:, None], agreement.view_mean(y, view), x)
    np.testing.assert_allclose(averaged, expected, rtol=1e-6, atol=1e-6)


def test_safe_residual_keeps_the_certified_residuals_of_a_round_where_some_process_is_not():
    """A crashed or unfinished process is not certified; its NaN used to make the round's max
    NaN, which fmax then dropped with every certified residual of that round (105 of 164
    records with a crash read NaN here). In d = 1 with f = 1 no view falls back, so every
    record has a certified residual."""
    from ftsgd_jax import api

    config = {
        "system": {"clusters": [2, 2, 1, 2, 1]},
        "faults": {"pattern": "random", "crashes": 1},
        "objective": {"kind": "double_well", "dim": 1, "sigma": 2.0, "x0": 0.0},
        "algorithm": {"kind": "gen", "rule": "safe_area", "rounds": 3, "step": "constant", "lr": 0.1, "safe_f": 1},
        "run": {"iterations": 20, "scenarios": 64, "record_every": 5},
    }
    result = api.run(config)
    residual = result.metrics.column("safe_residual_max").to_numpy()
    crashed = result.metrics.column("crashed").to_numpy()
    assert result.metrics.column("safe_fallbacks").to_numpy().sum() == 0
    assert (crashed > 0).sum() > 50
    assert not np.isnan(residual).any()
    assert (residual >= 0).all() and residual.max() < 1e-5
