"""Metrics of one scenario at a recorded iteration, over its live processes only.

A process is live at iteration t when it completed iteration t; crashed and blocked
processes are masked out of every metric. Where no process is live, or the objective
has no known optimum, a metric is NaN rather than a misleading number.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ftsgd_jax.objectives import Objective

class Record(NamedTuple):
    """The metrics of one scenario at one recorded iteration (README "What the columns mean")."""

    err_mean: jax.Array  # mean |x - x*|^2 over live processes
    err_max: jax.Array  # largest |x - x*|^2 over live processes
    loss_mean: jax.Array  # mean Q(x) over live processes
    grad_sq_mean: jax.Array  # mean |grad Q(x)|^2 over live processes
    disagreement: jax.Array  # largest distance between two live processes
    view_min: jax.Array  # smallest view of a live process in the last iteration
    view_mean: jax.Array  # mean view size of the live processes in the last iteration
    rounds: jax.Array  # agreement rounds of the last iteration
    rounds_capped: jax.Array  # iterations since the last record whose auto rounds hit max_rounds
    contraction_max: jax.Array  # worst per-round diameter ratio of the last iteration
    contraction_mean: jax.Array  # mean per-round diameter ratio of the last iteration
    safe_residual_max: jax.Array  # worst depth residual of a safe-area point (fallbacks aside) since the last record
    safe_fallbacks: jax.Array  # safe-area centroid fallbacks (process-rounds) since the last record
    crashed: jax.Array  # processes that have reached their crash point
    blocked: jax.Array  # processes waiting forever (not crashed)
    majority: jax.Array  # every process not crashed can still hear from a quorum of clusters
    time_span: jax.Array  # latest step so far relative to its round's origin (exact below EXACT_SPAN)


METRIC_COLUMNS = Record._fields


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    count = mask.sum()
    total = jnp.where(mask, values, 0.0).sum()
    return jnp.where(count > 0, total / jnp.maximum(count, 1), jnp.nan)


def max_keeping_nan(values: jax.Array, axis=None) -> jax.Array:
    """``jnp.max``, NaN wherever a reduced value is NaN.

    XLA's CPU reductions drop NaN once a vmapped batch is large (jax 0.10.2: a max over
    16 values from 256 lanes on; over 3 from 4,096), as a vector max returns its other
    operand when one is NaN: a max over NaN read -inf and max(1, NaN) read 1, so results
    depended on the chunk size.
    """
    return jnp.where(jnp.isnan(values).any(axis=axis), jnp.nan, jnp.max(values, axis=axis))


def min_keeping_nan(values: jax.Array, axis=None) -> jax.Array:
    """``jnp.min``, NaN wherever a reduced value is NaN (see :func:`max_keeping_nan`)."""
    return jnp.where(jnp.isnan(values).any(axis=axis), jnp.nan, jnp.min(values, axis=axis))


def masked_max(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask.any(), max_keeping_nan(jnp.where(mask, values, -jnp.inf)), jnp.nan)


def masked_min(values: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.where(mask.any(), min_keeping_nan(jnp.where(mask, values, jnp.inf)), jnp.nan)


def disagreement(x: jax.Array, live: jax.Array) -> jax.Array:
    """Largest distance between the parameters of two live processes (0 for one process).

    The pairs' differences are laid out (d, n, n), so that the sum over the coordinates
    runs along the pairs (the axis XLA vectorises on a CPU, where a sum along d = 10 ran
    scalar), and one square root is taken, of the largest squared distance (the same
    number: sqrt is monotone); measured 2.5x faster at n = 16, d = 10.
    """
    columns = x.T
    diff = columns[:, :, None] - columns[:, None, :]
    squared = jnp.sum(diff * diff, axis=0)
    pair = live[:, None] & live[None, :]
    return jnp.where(live.any(), jnp.sqrt(max_keeping_nan(jnp.where(pair, squared, 0.0))), jnp.nan)


MEASURABLE_SPREAD = 1e-3
"""A round's contraction is measured only where its inputs' diameter exceeds this times
1 + their largest magnitude: below, the ratio is one of rounding errors."""

CONTRACTION_ROUNDING = 8 * 2.0**-24 / MEASURABLE_SPREAD
"""How far float32 rounding can move a measured contraction ratio: the outputs' diameter is
good to a few ulps of the values' scale (at most 8 2**-24 (1 + scale)), the inputs' at
least ``MEASURABLE_SPREAD (1 + scale)``. A ratio within this above a bound is consistent
with it (the midpoint rule, which reaches its 1/2, measured 0.50005)."""


def contraction(before: jax.Array, wrote: jax.Array, after: jax.Array, finished: jax.Array) -> jax.Array:
    """Diameter of a round's outputs over the diameter of its inputs.

    Inputs are the values of every process that wrote in the round (all that any view can
    hold); outputs those of the processes that finished it. NaN when the inputs already
    agree to float32 precision: a ratio of rounding errors says nothing about the rule.
    """
    spread = disagreement(before, wrote)
    scale = jnp.max(jnp.where(wrote[:, None], jnp.abs(before), 0.0))
    measurable = spread > MEASURABLE_SPREAD * (1.0 + scale)
    return jnp.where(measurable, disagreement(after, finished) / jnp.where(measurable, spread, 1.0), jnp.nan)


def record(objective: Objective, state, majority: jax.Array, rounds_capped: jax.Array) -> Record:
    """Every metric of one scenario from the engine's state (``algorithms.State``)."""
    x, live, timeline = state.x, state.live, state.timeline
    if objective.x_star is not None:
        err = jnp.sum((x - objective.x_star) ** 2, axis=1)
        err_mean, err_max = masked_mean(err, live), masked_max(err, live)
    else:
        err_mean = err_max = jnp.float32(jnp.nan)
    loss = jax.vmap(objective.loss)(x)
    grad = jax.vmap(objective.grad)(x)
    sizes = state.view_size.astype(jnp.float32)
    return Record(
        err_mean=err_mean,
        err_max=err_max,
        loss_mean=masked_mean(loss, live),
        grad_sq_mean=masked_mean(jnp.sum(grad * grad, axis=1), live),
        disagreement=disagreement(x, live),
        view_min=masked_min(sizes, live),
        view_mean=masked_mean(sizes, live),
        rounds=state.rounds.astype(jnp.int32),
        rounds_capped=jnp.asarray(rounds_capped, jnp.int32),
        contraction_max=state.contraction_max,
        contraction_mean=state.contraction_mean,
        safe_residual_max=state.safe_residual,
        safe_fallbacks=state.fallbacks,
        crashed=timeline.crashed.sum().astype(jnp.int32),
        blocked=(jnp.isinf(timeline.clock) & ~timeline.crashed).sum().astype(jnp.int32),
        majority=majority,
        time_span=timeline.latest,
    )
