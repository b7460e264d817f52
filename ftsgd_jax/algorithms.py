"""The algorithms as pure per-iteration step functions driven by the schedule's views.

``sc``/``nowait``: ``y = x - alpha_t G(x)``; write, collect, send, no waiting;
``x <- mean{y_q : q in V_p}``. ``gen``: the same local step, then ``R_t`` rounds of
multidimensional approximate agreement, each ending at the quorum wait, each applying an
agreement rule to the view. ``seq``: every process runs sequential SGD alone (views of
size one). ``minibatch``: synchronous parallel SGD averaging all ``n`` gradients: an
iteration ends when the last process has written, and the first crash blocks everyone.

Step sizes are optax schedules; the number of agreement rounds per iteration is a
static array computed on the host (``rounds_schedule``) so that every scenario of a run
shares one compiled program.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ftsgd_jax import agreement
from ftsgd_jax.config import RunConfig
from ftsgd_jax.schedule import RoundOutcome


def step_size(config: RunConfig) -> optax.Schedule:
    """alpha_t for t = 0, 1, ... as an optax schedule.

    ``inverse``: ``step_scale / (mu (t + step_offset))``, the strongly convex rate;
    ``constant``: ``lr`` (``optax.constant_schedule``); ``cosine``: ``lr`` decayed to 0
    over the run (``optax.cosine_decay_schedule``).
    """
    spec = config.algorithm
    if spec.step == "constant":
        return optax.constant_schedule(spec.lr)
    if spec.step == "cosine":
        return optax.cosine_decay_schedule(spec.lr, decay_steps=config.run.iterations)
    scale = spec.step_scale / config.objective.mu
    return lambda count: scale / (count + spec.step_offset)


def eps_schedule(config: RunConfig, alphas: np.ndarray) -> np.ndarray:
    """eps_t = eps0 * alpha_t ** eps_power: the disagreement the agreement rounds aim for."""
    return config.algorithm.eps0 * alphas**config.algorithm.eps_power


def gradient_bound(config: RunConfig) -> float:
    """G_max for the round count: the user's ``g_max``, else the objective's bound near x0.

    The objective bound is taken on the ball of radius ``1 + |x0 - x*|`` (``|x0|`` when x*
    is unknown) and, for Gaussian noise, holds per draw with probability 1 - 1e-6.
    """
    if config.algorithm.g_max is not None:
        return config.algorithm.g_max
    objective = config.objective
    x0 = np.asarray(objective.x0, np.float64)
    centre = x0 if objective.x_star is None else x0 - np.asarray(objective.x_star, np.float64)
    return float(objective.grad_bound(1.0 + float(np.linalg.norm(centre)), tail=1e-6))


def rounds_schedule(config: RunConfig) -> np.ndarray:
    """(T,) agreement rounds per iteration (1 for the algorithms without agreement).

    ``auto``: the fewest rounds R with ``c**R (eps_{t-1} + 2 alpha_t G_max) <= eps_t`` for
    the rule's proven contraction factor c, with eps_{-1} = 0 (all start at x0), capped
    at ``max_rounds``.
    """
    spec = config.algorithm
    iterations = config.run.iterations
    if spec.kind != "gen":
        return np.ones(iterations, np.int32)
    if spec.rounds != "auto":
        return np.full(iterations, spec.rounds, np.int32)
    alphas = np.asarray(jax.vmap(step_size(config))(jnp.arange(iterations)), np.float64)
    eps = eps_schedule(config, alphas)
    spread = np.concatenate([[0.0], eps[:-1]]) + 2 * alphas * gradient_bound(config)
    factor = agreement.contraction_factor(spec.rule, config.topology.n, config.objective.dim)
    needed = np.ceil(np.log(eps / spread) / math.log(factor))
    return np.clip(needed, 1, spec.max_rounds).astype(np.int32)


class RoundResult(NamedTuple):
    """What one iteration hands to the metrics."""

    values: jax.Array  # (n, d)
    clock: jax.Array  # (n,)
    finished: jax.Array  # (n,) bool: completed the whole iteration
    blocked: jax.Array  # (n,) bool
    view_size: jax.Array  # (n,) smallest view over the iteration's rounds (0 if unfinished)


def seq_view(outcome: RoundOutcome) -> jax.Array:
    """Sequential SGD: every process sees only itself."""
    return jnp.diag(outcome.finished)


def minibatch_outcome(outcome: RoundOutcome, n: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(view, end time, finished) of a synchronous barrier over all n gradients.

    The iteration ends for everyone when the last process has ended its round; if any
    process failed to write its gradient, every live process waits forever.
    """
    everyone_finished = jnp.all(outcome.finished)
    end = jnp.where(everyone_finished, jnp.max(outcome.end_time), jnp.inf) * jnp.ones(n)
    finished = jnp.full((n,), everyone_finished)
    view = jnp.where(everyone_finished, jnp.ones((n, n), bool), jnp.zeros((n, n), bool))
    return view, end, finished


def agreement_update(rule: str, values: jax.Array, outcome: RoundOutcome, safe_f: int) -> jax.Array:
    return agreement.apply_rule(rule, values, outcome.view, safe_f)


def view_sizes(view: jax.Array) -> jax.Array:
    return view.sum(axis=1).astype(jnp.int32)
