"""Extension points from the outside: a rule, a scheduler and an objective registered by this
file alone (docs/extending.md) run end to end through config validation and the engine."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import ftsgd_jax
from ftsgd_jax import agreement, engine, objectives, schedulers
from ftsgd_jax.agreement import Rule, per_view
from ftsgd_jax.config import build_config
from ftsgd_jax.errors import ConfigError, real
from ftsgd_jax.objectives import (
    Objective,
    ObjectiveKind,
    float_array,
    gaussian_stochastic_grad,
    gaussian_variance,
    spec_of,
    vector_of,
)
from ftsgd_jax.schedulers import RoundDraws, SchedulerKind


def _view_size(points, mask):
    """Toy rule: every coordinate of the new value is the number of points in the view."""
    return jnp.full(points.shape[1:], jnp.sum(mask), points.dtype)


def _own_cluster_in_lockstep(key, topology, params, scenario, quorum):
    """Toy scheduler: lockstep writes and reads, and no message ever arrives."""
    n = topology.n
    zeros = jnp.zeros((n, n), jnp.float32)
    never = jnp.full((n, n), jnp.inf, jnp.float32)
    return RoundDraws(jnp.full((n,), params.compute_mean), zeros, zeros, never, jnp.zeros((n, n), bool))


def _build_shifted_sphere(cfg):
    """Toy objective: Q(x) = |x - center|^2 / 2, with a key of its own (``center``)."""
    dim = cfg["dim"]
    x0 = vector_of("objective.x0", cfg["x0"], dim)
    x_star = np.full(dim, cfg["center"])
    return Objective(
        kind="toy_shifted_sphere", dim=dim, noise="gaussian", sigma=cfg["sigma"], batch=None,
        mu=1.0, L=1.0, q_star=0.0, bound=(float(np.linalg.norm(x0 - x_star)), 1.0),
        info=(), spec=spec_of(cfg), x0=float_array(x0), x_star=float_array(x_star), data={},
    )


@pytest.fixture
def shifted_sphere_objective(monkeypatch):
    kind = ObjectiveKind(
        {"dim": 2, "center": 1.0, "sigma": 1.0, "x0": 0.0},
        _build_shifted_sphere,
        lambda obj, x: 0.5 * jnp.sum((x - obj.x_star) ** 2),
        lambda obj, x: x - obj.x_star,
        gaussian_stochastic_grad,
        gaussian_variance,
        checks={"center": lambda field, value: real(field, value, low=-100.0, high=100.0)},
    )
    monkeypatch.setitem(objectives.OBJECTIVES, "toy_shifted_sphere", kind)


@pytest.fixture
def view_size_rule(monkeypatch):
    monkeypatch.setitem(agreement.RULES, "toy_view_size", Rule(per_view(_view_size), lambda n: 0.5, False, "the view's size"))


@pytest.fixture
def own_cluster_scheduler(monkeypatch):
    def no_message(topology, params):
        return jnp.zeros((topology.n, topology.n), bool)

    family = SchedulerKind(_own_cluster_in_lockstep, "the own cluster in lockstep", delivers=no_message)
    monkeypatch.setitem(schedulers.SCHEDULERS, "toy_own_cluster", family)


def _config(clusters, algorithm, schedule_kind):
    return build_config(
        {
            "system": {"clusters": clusters},
            "schedule": {"kind": schedule_kind},
            "objective": {"kind": "quadratic", "dim": 2, "sigma": 0.5},
            "algorithm": algorithm,
            "run": {"iterations": 4, "record_every": 2, "scenarios": 3},
        }
    )


def _sphere_run(objective, **run):
    return {
        "system": {"clusters": [2, 2, 2]},
        "schedule": {"kind": "sync"},
        "objective": {"kind": "toy_shifted_sphere", **objective},
        "algorithm": {"kind": "sc", "step": "constant", "lr": 0.5},
        "run": {"iterations": 4, "record_every": 2, "scenarios": 3, **run},
    }


def test_an_unregistered_name_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="algorithm.rule"):
        _config([2, 2], {"kind": "gen", "rule": "toy_view_size"}, "sync")
    with pytest.raises(ConfigError, match="schedule.kind"):
        _config([2, 2], {"kind": "sc"}, "toy_own_cluster")
    with pytest.raises(ConfigError, match="objective.kind"):
        build_config(_sphere_run({"center": 3.0}))


def test_a_registered_objective_runs_end_to_end_to_its_own_optimum(shifted_sphere_objective, tmp_path):
    result = ftsgd_jax.run(_sphere_run({"center": 3.0, "sigma": 0.0}), out=tmp_path)
    # noiseless gradient steps of 1/2 from 0 halve the distance to x* = (3, 3) every iteration
    errors = np.asarray(result.metrics["err_mean"]).reshape(3, 2)
    np.testing.assert_array_equal(errors, np.tile([2 * 0.75**2, 2 * 0.1875**2], (3, 1)))
    np.testing.assert_array_equal(np.asarray(result.metrics["loss_mean"]).reshape(3, 2), errors / 2)
    assert result.manifest["config"]["objective"] == {"kind": "toy_shifted_sphere", "dim": 2, "center": 3.0, "sigma": 0.0, "x0": 0.0}


def test_a_registered_objectives_own_key_is_checked_by_its_own_check(shifted_sphere_objective):
    with pytest.raises(ConfigError, match=r"objective.center: need a number in \[-100, 100\]"):
        build_config(_sphere_run({"center": 1000.0}))
    with pytest.raises(ConfigError, match="objective.radius: unknown key for kind 'toy_shifted_sphere'; allowed: kind, dim, center"):
        build_config(_sphere_run({"radius": 1.0}))


def test_a_registered_rule_runs_in_gen_and_its_values_are_the_result(view_size_rule):
    config = _config([2, 2, 2], {"kind": "gen", "rule": "toy_view_size", "rounds": 2}, "sync")
    result = engine.run(config, keep_final=True)
    # sync views hold all 6 processes, so every value becomes 6 in every coordinate; x* = 1
    assert np.all(result.final["x"] == 6.0)
    np.testing.assert_array_equal(result.metrics["err_mean"], np.full((3, 2), 2 * (6.0 - 1.0) ** 2, np.float32))


def test_a_registered_rules_factor_sets_the_auto_rounds(view_size_rule):
    config = _config([2, 2, 2], {"kind": "gen", "rule": "toy_view_size", "rounds": "auto"}, "sync")
    assert agreement.contraction_factor("toy_view_size", 6, 2) == 0.5
    result = engine.run(config)
    mean = _config([2, 2, 2], {"kind": "gen", "rule": "mean", "rounds": "auto"}, "sync")
    assert np.all(result.rounds_per_iteration < engine.run(mean).rounds_per_iteration)  # 1/2 contracts faster than 5/6


def test_a_registered_scheduler_dictates_the_views(own_cluster_scheduler):
    config = _config([3, 2, 1], {"kind": "sc"}, "toy_own_cluster")
    metrics = engine.run(config).metrics
    # each process sees exactly its cluster: sizes 3, 3, 3, 2, 2, 1
    assert np.all(metrics["view_min"] == 1.0)
    np.testing.assert_allclose(metrics["view_mean"], (3 * 3 + 2 * 2 + 1) / 6, rtol=1e-6)
    # its delivers() says no message ever arrives: no process can hear a quorum
    assert not np.any(metrics["majority"])
