"""Extension points from the outside: a rule and a scheduler registered by this file alone
(docs/extending.md) run end to end through config validation and the engine."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ftsgd_jax import agreement, engine, schedulers
from ftsgd_jax.agreement import Rule, per_view
from ftsgd_jax.config import build_config
from ftsgd_jax.errors import ConfigError
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


def test_an_unregistered_name_is_refused_by_the_config():
    with pytest.raises(ConfigError, match="algorithm.rule"):
        _config([2, 2], {"kind": "gen", "rule": "toy_view_size"}, "sync")
    with pytest.raises(ConfigError, match="schedule.kind"):
        _config([2, 2], {"kind": "sc"}, "toy_own_cluster")


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
