"""The theory record equals what the library computes, and every manifest carries it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ftsgd_jax import agreement, algorithms, sweep, theory
from ftsgd_jax.config import build_config
from ftsgd_jax.results import expand_run_lengths

RUN = {"iterations": 60, "record_every": 6, "scenarios": 2}
RECORDS = np.arange(6, 61, 6)  # t of every record


def record_of(**sections) -> tuple:
    config = build_config({"run": RUN, **sections})
    return config, json.loads(json.dumps(theory.record(config)))  # as a manifest holds it


@pytest.mark.parametrize("step", [
    {"step": "inverse", "step_scale": 2.0, "step_offset": 8.0},
    {"step": "cosine", "lr": 0.1},
    {"step": "constant", "lr": 0.03, "eps0": 2.0, "eps_power": 0.5},
])
def test_step_sizes_and_eps_are_the_engines_at_every_record(step):
    config, record = record_of(algorithm={"kind": "gen", "rounds": "auto", **step}, objective={"mu": 0.5, "L": 2.0})
    alphas = algorithms.step_sizes(config.algorithm, config.objective, RUN["iterations"])
    np.testing.assert_array_equal(expand_run_lengths(record["step_size"]), alphas[RECORDS - 1])
    np.testing.assert_array_equal(
        expand_run_lengths(record["eps"]), algorithms.eps_schedule(config.algorithm, alphas[RECORDS - 1])
    )
    plan = algorithms.rounds_schedule(config.algorithm, config.objective, config.topology, RUN["iterations"])
    np.testing.assert_array_equal(expand_run_lengths(record["rounds_per_iteration"]), plan.rounds)
    np.testing.assert_array_equal(expand_run_lengths(record["rounds_needed"]), plan.needed)
    assert record["contraction"]["gradient_bound"] == algorithms.gradient_bound(config.algorithm, config.objective)


def test_a_constant_step_is_one_run():
    _, record = record_of(algorithm={"step": "constant", "lr": 0.03})
    assert record["step_size"] == [[pytest.approx(0.03), RECORDS.size]]
    assert record["eps"] is None and record["contraction"] is None  # sc runs no agreement


@pytest.mark.parametrize("rule, clusters, dim, proven", [
    ("mean", [2, 2, 3], 2, True), ("midpoint", [1, 4], 1, True), ("safe_area", [4, 4], 2, False),
])
def test_contraction_factor_is_the_rules(rule, clusters, dim, proven):
    _, record = record_of(
        system={"clusters": clusters}, algorithm={"kind": "gen", "rule": rule, "rounds": 2}, objective={"dim": dim}
    )
    n = sum(clusters)
    assert record["contraction"] == {"rule": rule, "factor": agreement.contraction_factor(rule, n, dim), "proven": proven}


def test_double_well_facts_match_a_fine_grid():
    _, record = record_of(objective={"kind": "double_well", "dim": 3}, algorithm={"step": "constant"})
    x = np.linspace(0.0, 2.0, 2_000_001)
    q = -np.exp(-((x - 1) ** 2)) - np.exp(-((x + 1) ** 2))
    facts = record["objective"]
    assert facts["minimizer"] == pytest.approx(x[np.argmin(q)], abs=2e-6)
    assert facts["q_star"] == pytest.approx(3 * q.min(), abs=1e-9)
    assert facts["x_star"] is None and facts["mu"] is None
    assert record["sc_bound"] is None  # no x*, no mu: no sc bound


def test_quadratic_facts_and_sc_bound():
    config, record = record_of(objective={"dim": 4, "mu": 0.5, "L": 2.0, "sigma": 3.0, "x_star": [1.0, 1.0, 2.0, 1.0]})
    facts = record["objective"]
    np.testing.assert_array_equal(expand_run_lengths(facts["x_star"]), np.asarray(config.objective.x_star))
    assert (facts["q_star"], facts["mu"], facts["L"], facts["sigma"]) == (0.0, 0.5, 2.0, 3.0)
    assert record["sc_bound"] == {"formula": theory.SC_BOUND, "coefficient": 9.0 / 0.25, "applies": True,
                                  "applies_to": theory.SC_BOUND_APPLIES}  # the default step: inverse, step_scale 1


@pytest.mark.parametrize("objective, step", [
    ({"mu": 1.0, "L": 1.0}, {"step": "inverse", "step_scale": 1.0, "step_offset": 1.0}),  # sigma^2 / (mu^2 t) exactly
    ({"mu": 0.5, "L": 2.0}, {"step": "inverse", "step_scale": 1.0, "step_offset": 8.0}),  # below it
    ({"mu": 1.0, "L": 1.0}, {"step": "inverse", "step_scale": 2.0, "step_offset": 2.0}),  # 4/3 of it
    ({"mu": 1.0, "L": 1.0}, {"step": "inverse", "step_scale": 0.75, "step_offset": 1.0}),  # 9/8 of it
    ({"mu": 1.0, "L": 1.0}, {"step": "constant", "lr": 0.05}),  # a noise floor, no 1/t
])
def test_sc_bound_applies_where_it_is_the_asymptotic_rate_of_the_step(objective, step):
    """E||x_t - x*||^2 from x0 = x*, per direction of curvature h exactly: v <- (1 - alpha h)^2 v
    + alpha^2 sigma^2 / d; its t -> infinity limit times t is at most sigma^2 / mu^2 (k = 1)
    exactly where the record says the bound applies."""
    iterations = 20_000
    config = build_config({
        "run": {"iterations": iterations},
        "objective": {"kind": "quadratic", "dim": 4, "sigma": 1.5, "x0": 0.0, "x_star": 0.0, **objective},
        "algorithm": {"kind": "sc", **step},
    })
    bound = theory.sc_bound(config)
    curvature = np.asarray(config.objective.data["h"], np.float64)
    variance = np.zeros_like(curvature)
    for alpha in algorithms.step_sizes(config.algorithm, config.objective, iterations).astype(np.float64):
        variance = (1 - alpha * curvature) ** 2 * variance + alpha**2 * config.objective.sigma**2 / curvature.size
    ratio = iterations * variance.sum() / bound["coefficient"]
    assert bound["applies"] is bool(ratio <= 1.001), ratio
    assert bound["applies_to"] == theory.SC_BOUND_APPLIES


def test_every_sweep_point_manifest_carries_its_theory(tmp_path):
    spec = {
        "run": RUN,
        "algorithm": {"kind": "gen", "rounds": "auto"},
        "objective": {"dim": 2},
        "sweep": {"name": "th", "grid": {"system.clusters": [[2, 2], [1, 1, 1]]}},
    }
    manifest = sweep.run_sweep(sweep.Sweep(spec, tmp_path / "spec.toml"), tmp_path / "out")
    stored = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for point, entry in zip(manifest["points"], stored["points"], strict=True):
        config = build_config({"run": RUN, "algorithm": spec["algorithm"], "objective": spec["objective"],
                               "system": {"clusters": point["values"]["system.clusters"]}})
        assert entry["theory"] == json.loads(json.dumps(theory.record(config)))
    factors = [entry["theory"]["contraction"]["factor"] for entry in stored["points"]]
    assert factors == [pytest.approx(0.75), pytest.approx(2 / 3)]


def test_sc_error_bound_is_its_formula_and_says_when_its_step_applies():
    config = build_config({
        "run": {"iterations": 50},
        "objective": {"kind": "quadratic", "dim": 2, "mu": 0.5, "L": 2.0, "sigma": 3.0, "x0": 1.0, "x_star": 0.0},
        "algorithm": {"kind": "sc", "step": "inverse", "step_scale": 2.0, "step_offset": 8.0},
    })
    bound = theory.sc_error_bound(config, 4)
    # gamma |x0 - x*|^2 = 8 * 2 = 16 and 4 sigma^2 / (mu^2 k) = 4 * 9 / (0.25 * 4) = 36: the noise term wins
    assert bound["bound"] == pytest.approx(36.0 / (50 + 8)) and bound["applies"] is True
    assert theory.sc_error_bound(config, 100)["bound"] == pytest.approx(16.0 / 58)  # the start term wins
    short = build_config({**{k: dict(v) for k, v in config.resolved.items() if k in ("run", "objective")},
                          "algorithm": {"kind": "sc", "step": "inverse", "step_scale": 2.0, "step_offset": 7.0}})
    assert theory.sc_error_bound(short, 4)["applies"] is False  # gamma < 2 L / mu = 8
    assert theory.sc_error_bound(build_config({"objective": {"kind": "logistic"}, "algorithm": {"step": "constant"}}), 4) is None


@pytest.mark.parametrize("kind, applies", [("sc", True), ("nowait", True), ("seq", True), ("minibatch", True), ("gen", False)])
def test_the_sc_rate_is_not_said_to_apply_to_an_algorithm_with_agreement_rounds(kind, applies):
    """gen's agreement rounds change its error, so the averaging algorithms' rate is not its."""
    config = build_config({"objective": {"kind": "quadratic", "dim": 2}, "algorithm": {"kind": kind}})
    assert theory.sc_bound(config)["applies"] is applies
