"""Agreement rules of one round: a registry of rules applied to every process's view at once.

One job: :data:`RULES` maps a rule's name to its :class:`Rule` (its step over all views,
its per-round contraction factor, whether that factor is proven, and its plain NumPy twin
for the event simulator); :func:`rule_step` applies one to every process's view at once,
and :func:`contraction_factor` gives the factor ``auto`` round counts use. The hull and
safe-area geometry the rules need lives in :mod:`ftsgd_jax.safe_area`; its public functions
are also reachable from here (``agreement.safe_area_point``, ...), the rules' vocabulary.

The safe-area contraction factor is a CHOICE (see :func:`contraction_factor`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax.errors import ConfigError, choice
from ftsgd_jax.metrics import max_keeping_nan, min_keeping_nan

# Besides what the rules use, the geometry's public names, so that they are reachable where
# the rules are (``agreement.tukey_depth``, ...).
from ftsgd_jax.safe_area import (  # noqa: F401
    GENERAL_ITERS,
    SafePoint,
    _centroid,
    _clean,
    _float,
    diameter,
    in_hull,
    project_to_hull,
    random_directions,
    safe_area_point,
    tukey_depth,
)


def mean_rule(points, mask):
    """The centroid of the present points (zeros when none is present)."""
    points, mask = _clean(points, mask)
    return _centroid(points, mask)


def midpoint_rule(points, mask):
    """d = 1 only: the middle of the range of the present points."""
    points, mask = _clean(points, mask)
    if points.shape[1] != 1:
        raise ConfigError("algorithm.rule", f"'midpoint' needs dimension d = 1, got d = {points.shape[1]}")
    lo = min_keeping_nan(jnp.where(mask[:, None], points, jnp.inf), axis=0)
    hi = max_keeping_nan(jnp.where(mask[:, None], points, -jnp.inf), axis=0)
    # halves first, kept apart: XLA rewrote 0.5 lo + 0.5 hi into (lo + hi) 0.5, which overflows
    half_lo, half_hi = jax.lax.optimization_barrier((0.5 * lo, 0.5 * hi))
    return jnp.where(jnp.any(mask), half_lo + half_hi, 0.0)


def view_mean(values, view):
    """Every process's centroid of its view at once, as one matrix product (the mean rule
    for all rows; an empty view keeps the own value). Values outside every view may be
    garbage, even non-finite: they are zeroed first so that ``0 * inf`` cannot leak in."""
    seen = jnp.any(view, axis=0)[:, None]
    weights = view.astype(values.dtype)
    counts = weights.sum(axis=1, keepdims=True)
    averaged = (weights @ jnp.where(seen, values, 0.0)) / jnp.maximum(counts, 1.0)
    return jnp.where(counts > 0, averaged, values)


class RuleStep(NamedTuple):
    """One agreement step of every process, with what the rule could not guarantee.

    values: (n, d) the new values (a row with an empty view keeps its value).
    residual: (n,) the safe-area rule's depth residual of each new value (NaN for the other
        rules and for empty views): 0 means the point is certified in Safe_f.
    fallback: (n,) bool, the safe area of the view was empty (or not found) and the rule
        fell back to the centroid.
    """

    values: jax.Array
    residual: jax.Array
    fallback: jax.Array


def plain_step(values) -> RuleStep:
    """A :class:`RuleStep` of a rule with nothing to report: NaN residuals, no fallback."""
    n = values.shape[0]
    return RuleStep(values, jnp.full((n,), jnp.nan, values.dtype), jnp.zeros((n,), bool))


def per_view(rule_of_one_view):
    """The ``step`` of a rule given for one view, ``rule_of_one_view(points, mask) -> (d,)``:
    vmapped over the processes; a process with an empty view keeps its value."""

    def step(values, view, f, iters):
        new = jax.vmap(lambda row: rule_of_one_view(values, row))(view)
        return plain_step(jnp.where(jnp.any(view, axis=1)[:, None], new, values))

    return step


def _mean_step(values, view, f, iters) -> RuleStep:
    return plain_step(view_mean(values, view))


def _safe_area_step(values, view, f, iters) -> RuleStep:
    seen = jnp.any(view, axis=1)
    safe = jax.vmap(lambda row: safe_area_point(values, row, f, iters=iters))(view)
    return RuleStep(
        jnp.where(seen[:, None], safe.point, values),
        jnp.where(seen, safe.residual, jnp.nan),
        seen & ~safe.nonempty,
    )


def _reference_mean(points: np.ndarray) -> np.ndarray:
    return points.mean(axis=0, dtype=np.float64).astype(np.float32)


def _reference_midpoint(points: np.ndarray) -> np.ndarray:
    return ((points.min(axis=0) + points.max(axis=0)) / 2).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Rule:
    """An agreement rule of the registry :data:`RULES`.

    step: ``(values (n, d), view (n, n) bool, f, iters) -> RuleStep``, the rule applied to
        every process's view at once, jit- and vmap-able; a process with an empty view keeps
        its value (:func:`per_view` builds a step from a rule for one view).
    factor: ``n -> float``, the per-round contraction factor that ``auto`` round counts use.
    proven: ``factor`` is a proven bound when the views of a round pairwise intersect (the
        majority condition); False: a heuristic, and runs must check eps-agreement.
    summary: one line saying what it computes.
    dimension: the only dimension it works in (None: any).
    reference: the same rule in plain NumPy, ``points (k, d) -> (d,)`` float32, for the
        event simulator (``reference.run_algorithm``); None: not implemented there.
    """

    step: Callable[..., RuleStep]
    factor: Callable[[int], float]
    proven: bool
    summary: str
    dimension: int | None = None
    reference: Callable[[np.ndarray], np.ndarray] | None = None


RULES: dict[str, Rule] = {
    "mean": Rule(_mean_step, lambda n: 1.0 - 1.0 / n, True, "the centroid of the view", reference=_reference_mean),
    "midpoint": Rule(
        per_view(midpoint_rule), lambda n: 0.5, True, "the middle of the view's range", 1, reference=_reference_midpoint
    ),
    # CHOICE: the paper's factor is not public, and 1 - 1/n is NOT a proven bound here: with
    # views that share fewer than f+1 values the trimmed safe areas of two views can be
    # disjoint points (e.g. f = 1, views {0,0,0,1} and {0,1,1,1} give 0 and 1).
    "safe_area": Rule(_safe_area_step, lambda n: 1.0 - 1.0 / n, False, "a point of the view's safe area (Tukey depth > f)"),
}
"""Every agreement rule by name. Registering one is a dict insertion:
``RULES["name"] = Rule(step, factor, proven, "summary")`` (see docs/extending.md)."""


def rule_step(rule: str, values, view, f=0, iters: int | None = None) -> RuleStep:
    """One agreement step for every process: row p of the result is ``rule`` applied to the
    points ``values[q]`` with ``view[p, q]`` True. A row with no True entry (a crashed or
    blocked process) keeps ``values[p]``. ``values: (n, d)``, ``view: (n, n)`` bool."""
    choice("algorithm.rule", rule, RULES)
    return RULES[rule].step(_float(values), jnp.asarray(view, bool), f, iters)


def apply_rule(rule: str, values, view, f=0, iters: int | None = None):
    """The new values of :func:`rule_step` alone."""
    return rule_step(rule, values, view, f, iters).values


def check_dimension(rule: str, d: int) -> None:
    """Refuse an unknown rule, or a rule in a dimension it does not work in."""
    needed = RULES[choice("algorithm.rule", rule, RULES)].dimension
    if needed is not None and int(d) != needed:
        raise ConfigError("algorithm.rule", f"{rule!r} needs dimension d = {needed}, got d = {d}")


def contraction_factor(rule: str, n: int, d: int) -> float:
    """Per-round factor by which the diameter of the values shrinks, for ``auto`` round counts.

    The rule's entry of :data:`RULES` holds it: mean 1 - 1/n and midpoint (d = 1) 1/2, both
    proven when the views of a round pairwise intersect (each new value puts weight >= 1/n
    on a common value, resp. every range holds a common value); safe_area 1 - 1/n, a CHOICE
    and no proven bound (``Rule.proven`` is False): runs must check eps-agreement rather than
    rely on it.
    """
    choice("algorithm.rule", rule, RULES)
    if int(n) < 1:
        raise ConfigError("system.n", f"needs at least one process, got {n}")
    check_dimension(rule, d)
    return RULES[rule].factor(int(n))
