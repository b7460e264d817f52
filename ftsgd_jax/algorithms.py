"""The algorithms as pure per-iteration step functions, one registry entry each.

Every algorithm is an :class:`Algorithm`: a pure ``iteration(plan, scenario, state, t) ->
state`` that plays iteration ``t`` of one scenario (its rounds through
:func:`~ftsgd_jax.schedule.play_round`, its local steps and its rule), in the manner of
gymnax's ``step_env``. The engine scans it over iterations and vmaps it over scenarios; the
benchmark times the same function. :data:`ALGORITHMS` is the registry (name ->
:class:`Algorithm`: its iteration, whether it waits or agrees, its plain NumPy twin for the
event simulator), :data:`STEP_SIZES` that of step-size schedules.

``sc``/``nowait``: ``y = x - alpha_t G(x)``; write, collect, send, no waiting;
``x <- mean{y_q : q in V_p}``. ``gen``: the same local step, then ``R_t`` rounds of
multidimensional approximate agreement, each ending at the quorum wait, each applying an
agreement rule to the view. ``seq``: every process runs sequential SGD alone (views of
size one). ``minibatch``: synchronous parallel SGD averaging all ``n`` gradients: an
iteration ends when the last process has ended its round, and the first crash blocks
everyone.

What the theory fixes before a run (step sizes, eps_t, rounds per iteration) is computed
here on the host, once per configuration, from its static part.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ftsgd_jax import agreement, rng
from ftsgd_jax.errors import ConfigError
from ftsgd_jax.metrics import contraction, masked_max
from ftsgd_jax.model import CrashPoints, Topology
from ftsgd_jax.objectives import Objective, stochastic_grad_columns
from ftsgd_jax.schedule import PlayedRound, Timeline, happens, play_round, round_key, start_timeline
from ftsgd_jax.schedulers import ScenarioDraws, Scheduler


def _inverse(spec: Any, objective: Objective, iterations: int) -> optax.Schedule:
    scale = spec.step_scale / objective.mu
    return lambda count: scale / (count + spec.step_offset)


STEP_SIZES: dict[str, Callable[[Any, Objective, int], optax.Schedule]] = {
    "inverse": _inverse,
    "constant": lambda spec, objective, iterations: optax.constant_schedule(spec.lr),
    "cosine": lambda spec, objective, iterations: optax.cosine_decay_schedule(spec.lr, decay_steps=iterations),
}
"""``algorithm.step`` -> ``(spec, objective, iterations) -> optax schedule`` of alpha_t."""


def step_size(spec: Any, objective: Objective, iterations: int) -> optax.Schedule:
    """alpha_t for t = 0, 1, ... as an optax schedule.

    ``inverse``: ``step_scale / (mu (t + step_offset))``, the strongly convex rate;
    ``constant``: ``lr`` (``optax.constant_schedule``); ``cosine``: ``lr`` decayed to 0
    over the run (``optax.cosine_decay_schedule``).
    """
    return STEP_SIZES[spec.step](spec, objective, iterations)


def step_sizes(spec: Any, objective: Objective, iterations: int) -> np.ndarray:
    """(T,) float32 alpha_t of every iteration."""
    schedule = step_size(spec, objective, iterations)
    return np.asarray(jax.vmap(schedule)(jnp.arange(iterations)), np.float32)


def eps_schedule(spec: Any, alphas: np.ndarray) -> np.ndarray:
    """eps_t = eps0 * alpha_t ** eps_power: the disagreement the agreement rounds aim for."""
    return spec.eps0 * np.asarray(alphas, np.float64) ** spec.eps_power


def gradient_bound(spec: Any, objective: Objective) -> float:
    """G_max for the round count: the user's ``g_max``, else the objective's bound near x0.

    The objective bound is taken on the ball of radius ``1 + |x0 - x*|`` (``|x0|`` when x*
    is unknown) and, for Gaussian noise, holds per draw with probability 1 - 1e-6.
    """
    if spec.g_max is not None:
        return spec.g_max
    x0 = np.asarray(objective.x0, np.float64)
    centre = x0 if objective.x_star is None else x0 - np.asarray(objective.x_star, np.float64)
    return float(objective.grad_bound(1.0 + float(np.linalg.norm(centre)), tail=1e-6))


UNBOUNDED_ROUNDS = np.iinfo(np.int64).max
"""``RoundPlan.needed`` of an iteration whose eps_t is 0: no finite number of rounds reaches it."""


class RoundPlan(NamedTuple):
    """Agreement rounds per iteration: what runs, and what the theory asked for."""

    rounds: np.ndarray  # (T,) int32 rounds that run (>= 1)
    needed: np.ndarray  # (T,) int64 rounds the proven factor needs to reach eps_t (more than rounds where capped)


def rounds_schedule(spec: Any, objective: Objective, topology: Topology, iterations: int) -> RoundPlan:
    """Agreement rounds per iteration (1 for the algorithms without agreement).

    ``auto``: the fewest rounds R with ``c**R (eps_{t-1} + 2 alpha_t G_max) <= eps_t`` for
    the rule's proven contraction factor c, with eps_{-1} = 0 (all start at x0), capped
    at ``max_rounds``; ``needed`` keeps the uncapped count.
    """
    if not ALGORITHMS[spec.kind].agreement:
        ones = np.ones(iterations, np.int32)
        return RoundPlan(ones, ones.astype(np.int64))
    if spec.rounds != "auto":
        fixed = np.full(iterations, spec.rounds, np.int32)
        return RoundPlan(fixed, fixed.astype(np.int64))
    alphas = step_sizes(spec, objective, iterations).astype(np.float64)
    eps = eps_schedule(spec, alphas)
    spread = np.concatenate([[0.0], eps[:-1]]) + 2 * alphas * gradient_bound(spec, objective)
    factor = agreement.contraction_factor(spec.rule, topology.n, objective.dim)
    if not factor < 1:
        raise ConfigError(
            "algorithm.rounds", f"'auto' needs a contraction factor below 1, rule {spec.rule!r} has {factor:g} for n = {topology.n}; give a number of rounds"
        )
    needed = np.ones(iterations, np.int64)
    if factor > 0:  # else one round makes every view agree (a single process)
        with np.errstate(divide="ignore", invalid="ignore"):
            count = np.ceil(np.log(eps / spread) / math.log(factor))
        # eps_t = 0 (a step size that is 0 in float32, as a long cosine schedule ends) asks for
        # exact agreement, which no number of rounds reaches; spread 0 agrees already
        count = np.where(spread == 0, 1.0, np.where(eps == 0, np.inf, count))
        finite = np.isfinite(count)
        needed[finite] = np.maximum(count[finite], 1).astype(np.int64)
        needed[~finite] = UNBOUNDED_ROUNDS
    return RoundPlan(np.minimum(needed, spec.max_rounds).astype(np.int32), needed)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What is fixed for every scenario of a configuration (static: it shapes the program)."""

    topology: Topology
    quorum: str
    objective: Objective
    spec: Any  # config.AlgorithmSpec
    alphas: np.ndarray  # (T,) float32
    rounds: np.ndarray  # (T,) int32 rounds that run
    rounds_needed: np.ndarray  # (T,) rounds the proven factor asked for (more than ``rounds`` where capped)
    first_round: np.ndarray  # (T,) int32: global index of each iteration's first round
    track_contraction: bool
    crashes: bool  # the crash pattern can crash a process (False: compiled without crash logic)

    @property
    def max_rounds(self) -> int:
        return int(self.rounds.max())


class Scenario(NamedTuple):
    """What one scenario fixes before its first step (run-time values, traced)."""

    scheduler: Scheduler
    fixtures: ScenarioDraws
    crash: CrashPoints
    rounds_key: jax.Array
    gradient_key: jax.Array


class State(NamedTuple):
    """One scenario between two iterations."""

    x: jax.Array  # (n, d)
    timeline: Timeline
    live: jax.Array  # (n,) bool: completed the last iteration
    view_size: jax.Array  # (n,) int32: smallest view of the last iteration (0 if unfinished)
    rounds: jax.Array  # int32: agreement rounds of the last iteration
    contraction_max: jax.Array  # worst diameter ratio of the last iteration's agreement rounds
    contraction_mean: jax.Array  # their mean ratio
    safe_residual: jax.Array  # worst safe-area residual of a point not fallen back, since the last record (NaN: none)
    fallbacks: jax.Array  # int32: safe-area centroid fallbacks since the last record


def initial_state(plan: Plan, crash: CrashPoints) -> State:
    n, d = plan.topology.n, plan.objective.dim
    nan = jnp.float32(jnp.nan)
    return State(
        x=jnp.broadcast_to(plan.objective.x0.astype(jnp.float32), (n, d)),
        timeline=start_timeline(crash),
        live=jnp.ones((n,), bool),
        view_size=jnp.zeros((n,), jnp.int32),
        rounds=jnp.int32(0),
        contraction_max=nan,
        contraction_mean=nan,
        safe_residual=nan,
        fallbacks=jnp.int32(0),
    )


def gradient_key(gradient_root: jax.Array, t, p) -> jax.Array:
    """The key of process p's stochastic gradient at iteration t."""
    return rng.fold_in(rng.fold_in(gradient_root, t), p)


def local_step(plan: Plan, scenario: Scenario, x: jax.Array, t: jax.Array) -> jax.Array:
    """``y_p = x_p - alpha_t G(x_p, xi_{p,t})`` for every process, laid out (d, n): column p is y_p.

    Processes innermost, because XLA on a CPU vectorises a fused loop along its last axis
    only: with d = 10 last, the loop that draws the gradient noise ran scalar, 8-10x slower
    per normal (measured, sc at n = 16). Callers consume the columns in place (a product
    with the view) rather than transpose them back, which would bring that loop back.
    """
    keys = jax.vmap(lambda p: gradient_key(scenario.gradient_key, t, p))(jnp.arange(plan.topology.n))
    gradients = stochastic_grad_columns(plan.objective, x, keys)
    return x.T - jnp.asarray(plan.alphas)[t] * gradients


def average_views(y_columns: jax.Array, view: jax.Array, finished: jax.Array, x: jax.Array) -> jax.Array:
    """(n, d) the mean of each finished process's view of ``y_columns`` ((d, n), see
    :func:`local_step`); an unfinished process keeps ``x``.

    ``agreement.view_mean`` in the columns' layout: values outside every view are zeroed
    first so that ``0 * inf`` cannot leak in, and a finished process always sees itself,
    so its view is never empty.
    """
    seen = jnp.any(view, axis=0)
    weights = view.astype(y_columns.dtype)
    counts = weights.sum(axis=1)
    summed = jnp.where(seen, y_columns, 0.0) @ weights.T
    return jnp.where(finished[:, None], (summed / jnp.maximum(counts, 1.0)).T, x)


def play(
    plan: Plan, scenario: Scenario, timeline: Timeline, round_index: jax.Array, *, wait: bool, barrier: bool = False
) -> tuple[Timeline, PlayedRound]:
    """The scenario's global round ``round_index`` from where its processes stand."""
    return play_round(
        plan.topology,
        scenario.scheduler,
        scenario.fixtures,
        scenario.crash if plan.crashes else None,
        timeline,
        round_key(scenario.rounds_key, round_index),
        wait=wait,
        quorum=plan.quorum,
        barrier=barrier,
    )


def view_sizes(view: jax.Array) -> jax.Array:
    return view.sum(axis=1).astype(jnp.int32)


def _one_round(view_of: Callable[[PlayedRound], jax.Array], barrier: bool = False):
    """An iteration of one no-wait round that averages ``view_of(round)``: sc, seq, minibatch."""

    def iteration(plan: Plan, scenario: Scenario, state: State, t: jax.Array) -> State:
        y_columns = local_step(plan, scenario, state.x, t)
        timeline, played = play(plan, scenario, state.timeline, jnp.asarray(plan.first_round)[t], wait=False, barrier=barrier)
        view, finished = view_of(played), played.outcome.finished
        x = average_views(y_columns, view, finished, state.x)
        return state._replace(x=x, timeline=timeline, live=finished, view_size=view_sizes(view), rounds=jnp.int32(1))

    return iteration


def _own_view(played: PlayedRound) -> jax.Array:
    """Sequential SGD: every process sees only itself."""
    return jnp.diag(played.outcome.finished)


def _everyone_or_no_one(played: PlayedRound) -> jax.Array:
    """Synchronous parallel SGD: all n gradients once everyone has ended the round."""
    finished = played.outcome.finished
    return jnp.broadcast_to(finished[:, None] & jnp.all(finished), (finished.size, finished.size))


def gen_iteration(plan: Plan, scenario: Scenario, state: State, t: jax.Array) -> State:
    """Local step, then ``rounds[t]`` agreement rounds with the quorum wait (a fixed-length
    scan over ``max R_t`` rounds, inactive ones masked)."""
    n = plan.topology.n
    spec = plan.spec
    rounds_now = jnp.asarray(plan.rounds)[t]
    first = jnp.asarray(plan.first_round)[t]
    y = local_step(plan, scenario, state.x, t).T

    def agreement_round(carry, r):
        values, timeline, finished, smallest, worst, total, residual, fallbacks = carry
        active = r < rounds_now
        moved, played = play(plan, scenario, timeline, first + r, wait=True)
        outcome = played.outcome
        step = agreement.rule_step(spec.rule, values, outcome.view, spec.safe_f)
        if plan.track_contraction:
            ratio = contraction(values, happens(outcome.write_time, played.crash_time), step.values, outcome.finished)
        else:
            ratio = jnp.float32(jnp.nan)
        counted = active & outcome.finished
        values = jnp.where(counted[:, None], step.values, values)
        timeline = jax.tree.map(lambda new, old: jnp.where(active, new, old), moved, timeline)
        finished = jnp.where(active, finished & outcome.finished, finished)
        smallest = jnp.where(active, jnp.minimum(smallest, view_sizes(outcome.view)), smallest)
        measured = active & jnp.isfinite(ratio)
        worst = jnp.where(measured, jnp.fmax(worst, ratio), worst)
        total = total + jnp.where(measured, jnp.stack([ratio, 1.0]), 0.0)
        certified = counted & ~step.fallback
        # the uncertified (crashed, unfinished, fallen back) are left out of the max, not NaN,
        # which fmax would have dropped together with every certified residual of the round
        residual = jnp.fmax(residual, masked_max(step.residual, certified))
        fallbacks = fallbacks + jnp.sum(counted & step.fallback).astype(jnp.int32)
        return (values, timeline, finished, smallest, worst, total, residual, fallbacks), None

    start = (
        y,
        state.timeline,
        jnp.ones((n,), bool),
        jnp.full((n,), n, jnp.int32),
        jnp.float32(jnp.nan),
        jnp.zeros(2),
        state.safe_residual,
        state.fallbacks,
    )
    carry, _ = jax.lax.scan(agreement_round, start, jnp.arange(plan.max_rounds))
    values, timeline, finished, smallest, worst, (ratio_sum, measured), residual, fallbacks = carry
    return state._replace(
        x=jnp.where(finished[:, None], values, state.x),
        timeline=timeline,
        live=finished,
        view_size=jnp.where(finished, smallest, 0),
        rounds=rounds_now,
        contraction_max=worst,
        contraction_mean=jnp.where(measured > 0, ratio_sum / jnp.maximum(measured, 1.0), jnp.nan),
        safe_residual=residual,
        fallbacks=fallbacks,
    )


def _plain_mean(spec: Any) -> Callable[[np.ndarray], np.ndarray]:
    return agreement.RULES["mean"].reference


def _agreement_rule(spec: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    return agreement.RULES[spec.rule].reference


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """An algorithm of the registry :data:`ALGORITHMS`: its iteration and how the model runs it.

    iteration: the pure step of one iteration of one scenario (scanned and vmapped by the engine).
    waits: its rounds end at the quorum wait (else right after the last send).
    agreement: it runs agreement rounds, so ``algorithm.rule``, ``rounds`` and eps_t apply.
    summary: one line saying what it does.
    reference: ``spec -> combine``, the plain NumPy combine of a round's view
        (``points (k, d) -> (d,)``) with which the event simulator runs it
        (``reference.run_algorithm``); None, or a None combine: the reference does not run it.
    """

    iteration: Callable[[Plan, Scenario, State, jax.Array], State]
    waits: bool
    agreement: bool
    summary: str
    reference: Callable[[Any], Callable[[np.ndarray], np.ndarray] | None] | None = None


ALGORITHMS: dict[str, Algorithm] = {
    "sc": Algorithm(
        _one_round(lambda played: played.outcome.view), False, False, "strongly convex: average the view, never wait", _plain_mean
    ),
    "gen": Algorithm(
        gen_iteration, True, True, "general: R_t rounds of approximate agreement with the quorum wait", _agreement_rule
    ),
    "seq": Algorithm(_one_round(_own_view), False, False, "sequential SGD in every process alone"),
    "minibatch": Algorithm(
        _one_round(_everyone_or_no_one, barrier=True), False, False, "synchronous parallel SGD over all n gradients"
    ),
    "nowait": Algorithm(_one_round(lambda played: played.outcome.view), False, False, "sc on any objective", _plain_mean),
}
"""Every algorithm by name. Registering one is a dict insertion:
``ALGORITHMS["name"] = Algorithm(iteration, waits, agreement, "summary")`` (see docs/extending.md)."""


def reference_combine(spec: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """The plain NumPy combine with which the event simulator runs ``spec``'s algorithm (None: it does not)."""
    algorithm = ALGORITHMS[spec.kind]
    return None if algorithm.reference is None else algorithm.reference(spec)
