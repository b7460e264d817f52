"""What the theory says about one run configuration, as a record for its manifest.

:func:`record` gathers, from the functions that compute them for the engine, the numbers
a configuration fixes before any scenario runs: its step sizes and its agreement targets
eps_t (at the recorded iterations), its rounds per iteration, the contraction factor of
its agreement rule, its objective's known facts and the constants of the sc error bound.
``ftsgd run`` and ``ftsgd sweep`` write it into every manifest (``theory``); figures and
reports read it there and derive none of it again.

Per-record lists hold one value per record ``t = record_every, 2 record_every, ...,
iterations``: the value of iteration ``t - 1``, the last one finished at that record.
Every list is run-length encoded (``[[value, count], ...]``), so a constant step size or
a fixed round count stays one pair however long the run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ftsgd_jax import agreement, algorithms
from ftsgd_jax.config import RunConfig
from ftsgd_jax.objectives import Objective
from ftsgd_jax.results import run_lengths

SC_BOUND = "sigma^2 / (mu^2 k t)"  # E||x_t - x*||^2 of sc with views of at least k processes, as t -> infinity
SC_BOUND_APPLIES = "asymptotic (t -> infinity) rate of the averaging algorithms (no agreement rounds) with step = inverse, step_scale = 1, any step_offset"
SC_ERROR_BOUND = "max(4 sigma^2 / (mu^2 k), gamma |x0 - x*|^2) / (T + gamma)"  # sc's final error, its constants kept


def record(config: RunConfig) -> dict[str, Any]:
    """The theory record of ``config`` (plain JSON values)."""
    spec, objective, iterations = config.algorithm, config.objective, config.run.iterations
    alphas = algorithms.step_sizes(spec, objective, iterations)
    last_finished = np.arange(config.run.record_every, iterations + 1, config.run.record_every) - 1
    rounds = algorithms.rounds_schedule(spec, objective, config.topology, iterations)
    agrees = algorithms.ALGORITHMS[spec.kind].agreement
    return {
        "step_size": run_lengths(alphas[last_finished]),
        "eps": run_lengths(algorithms.eps_schedule(spec, alphas[last_finished])) if agrees else None,
        "rounds_per_iteration": run_lengths(rounds.rounds),
        "rounds_needed": run_lengths(rounds.needed),
        "contraction": contraction(config) if agrees else None,
        "objective": objective_facts(objective),
        "sc_bound": sc_bound(config),
    }


def contraction(config: RunConfig) -> dict[str, Any]:
    """The agreement rule's per-round factor (the one ``rounds = "auto"`` counts with)."""
    spec = config.algorithm
    factor = {
        "rule": spec.rule,
        "factor": agreement.contraction_factor(spec.rule, config.topology.n, config.objective.dim),
        "proven": agreement.RULES[spec.rule].proven,
    }
    if spec.rounds == "auto":
        factor["gradient_bound"] = algorithms.gradient_bound(spec, config.objective)
    return factor


def objective_facts(objective: Objective) -> dict[str, Any]:
    """x*, Q*, mu, L, sigma (None where the objective does not know them) and its kind's facts,
    such as the double well's minimizer."""
    x_star = None if objective.x_star is None else run_lengths(np.asarray(objective.x_star, np.float64))
    return {
        "kind": objective.kind,
        "dim": objective.dim,
        "x_star": x_star,
        "q_star": objective.q_star,
        "mu": objective.mu,
        "L": objective.L,
        "sigma": objective.sigma,
        **objective.facts,
    }


def sc_bound(config: RunConfig) -> dict[str, Any] | None:
    """sigma^2 / (mu^2 k t) as its coefficient sigma^2 / mu^2, where x*, mu and sigma are known.

    It is the leading term, as t -> infinity, of E||x_t - x*||^2 for the step
    ``alpha_t = 1 / (mu (t + gamma))`` (``step = "inverse"``, ``step_scale = 1``, any
    ``step_offset`` gamma) of the averaging algorithms (sc and its relatives without
    agreement rounds; gen's rounds change the error), every curvature being at least mu: a
    direction of curvature lambda contributes s^2 sigma^2 / (mu^2 k (2 s lambda / mu - 1) t) for step_scale s,
    which is at most the bound only at s = 1 (4/3 of it at s = 2 with lambda = mu), and a
    constant step settles at a noise floor instead of decaying as 1/t. The start's bias
    decays faster but can dominate early records. ``applies`` says whether ``config`` has
    that step; ``applies_to`` says what it is.
    """
    objective, spec = config.objective, config.algorithm
    if objective.x_star is None or objective.mu is None or objective.sigma is None:
        return None
    applies = sc_bound_applies(spec.kind, spec.step, spec.step_scale)
    return {"formula": SC_BOUND, "coefficient": objective.sigma**2 / objective.mu**2, "applies": applies,
            "applies_to": SC_BOUND_APPLIES}


def sc_bound_applies(kind: str, step: str, step_scale: float) -> bool:
    """Whether :func:`sc_bound` is the asymptotic rate of an algorithm ``kind`` with this step
    (also for results recorded before ``applies`` was, from their configs)."""
    return not algorithms.ALGORITHMS[kind].agreement and step == "inverse" and float(step_scale) == 1.0


def sc_error_bound(config: RunConfig, smallest_view: float) -> dict[str, Any] | None:
    """sc's bound on the mean final error E||x_T - x*||^2 when every view holds at least k processes.

    ``max(4 sigma^2 / (mu^2 k), gamma |x0 - x*|^2) / (T + gamma)`` with k = ``smallest_view``
    and gamma = ``algorithm.step_offset``: the induction behind ``sigma^2 / (mu^2 k t)`` with
    its constants and its start kept, so it holds from the first iteration. It is proven
    for the step ``alpha_t = 2 / (mu (t + gamma))`` (``step = "inverse"``, ``step_scale = 2``)
    with ``gamma >= 2 L / mu``; ``applies`` says whether ``config`` has that step. None
    where the objective does not know x*, mu, L and sigma.
    """
    objective, spec = config.objective, config.algorithm
    if objective.x_star is None or objective.mu is None or objective.L is None or objective.sigma is None:
        return None
    gamma, mu = float(spec.step_offset), float(objective.mu)
    start = float(np.sum((np.asarray(objective.x0, np.float64) - np.asarray(objective.x_star, np.float64)) ** 2))
    bound = max(4 * objective.sigma**2 / (mu**2 * smallest_view), gamma * start) / (config.run.iterations + gamma)
    applies = spec.step == "inverse" and spec.step_scale == 2.0 and gamma >= 2 * float(objective.L) / mu
    return {"formula": SC_ERROR_BOUND, "bound": float(bound), "smallest_view": float(smallest_view), "applies": applies}


def safe_area_shortfall(config: RunConfig) -> str:
    """One line warning that the views of ``config`` are too small for its safe-area rule, or ''.

    Safe_f(V) is sure to be non-empty only when the view holds at least (d+1)f+1 points,
    and is empty below that for points in general position, as a run's noisy values are.
    A view holds at most the n processes (under ``self_only``, the largest cluster), so
    with fewer the rule falls back to the centroid in every round whose values do not
    coincide (after a round of equal views they do), and the results count those rounds
    (``safe_fallbacks``).
    """
    spec = config.algorithm
    if not algorithms.ALGORITHMS[spec.kind].agreement or spec.rule != "safe_area":
        return ""
    needed = (config.objective.dim + 1) * spec.safe_f + 1
    self_only = config.scheduler.kind == "self_only"
    largest = max(config.topology.cluster_sizes) if self_only else config.topology.n
    if largest >= needed:
        return ""
    holder = f"the largest cluster ({largest} processes) under self_only" if self_only else f"the n = {largest} processes"
    return (
        f"algorithm.safe_f: safe_area needs views of (d+1)f+1 = {needed} points (d = {config.objective.dim}, "
        f"f = {spec.safe_f}) but a view holds at most {holder}: rounds fall back to the centroid "
        "unless the view's values coincide (counted in safe_fallbacks)"
    )
