"""Where the time of an iteration goes: the library's own parts (schedule draws, views,
gradients, agreement, metrics and the fused algorithm steps), each compiled alone as a
``jit(vmap(...))`` over scenarios and timed.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.measure import repeated_runs
from benchmarks.plan import bench_config, clusters_for
from ftsgd_jax import agreement, algorithms, engine, metrics, rng
from ftsgd_jax.model import NEVER, CrashPoints
from ftsgd_jax.objectives import stochastic_grad_columns
from ftsgd_jax.schedule import ScenarioDraws, draw_round, resolve_round

UNITS = {
    "draws": "scenario-round",
    "draws_threefry": "scenario-round",
    "views_sc": "scenario-round",
    "views_gen": "scenario-round",
    "gradients": "scenario-iteration",
    "averaging_sc": "scenario-iteration",
    "agreement_mean": "scenario-round",
    "agreement_safe_area_d2": "scenario-round",
    "record": "scenario-record",
    "sc_iteration": "scenario-iteration",
    "gen_iteration": "scenario-iteration",
}
SC_PARTS = ("draws", "views_sc", "gradients", "averaging_sc")  # what a fused sc iteration is made of


def breakdown(n: int, d: int, scenarios: int, *, safe_area_scenarios: int = 32, repeats: int = 5) -> dict[str, Any]:
    """Seconds per scenario-iteration (per scenario-round for a ``gen`` round) of each part.

    Each part is its own ``jit(vmap(...))`` over ``scenarios`` (safe_area over at most
    ``safe_area_scenarios``, as it is O(n^5) per round), best of ``repeats`` timed runs:
    ``draws`` (``draw_round``), ``draws_threefry`` (the same count of exponentials from
    JAX's threefry, for comparison), ``views_sc``/``views_gen`` (``resolve_round`` without
    and with the quorum wait), ``gradients`` (the local step's stochastic gradients,
    ``objectives.stochastic_grad_columns``, keys included), ``averaging_sc`` (``algorithms.average_views``, the sc update),
    ``agreement_mean`` (``apply_rule('mean')``, the gen update), ``agreement_safe_area_d2``
    (``apply_rule('safe_area')`` in d = 2, f = 1), ``record`` (``metrics.record``, once per
    record), and the fused ``sc_iteration`` / ``gen_iteration`` (the engine's own steps,
    ``algorithms.ALGORITHMS[...].iteration``, with everything they do). A standalone part
    also writes its outputs to memory, which the fused engine often avoids: the parts need
    not add up to the fused time.
    """
    programs, lanes, count = _programs(n, d, scenarios, safe_area_scenarios)
    parts: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    for name, (fn, args) in programs.items():
        started = time.perf_counter()
        try:
            jax.block_until_ready(fn(*args))  # compile + first run, untimed
        except Exception as error:  # noqa: BLE001 - one broken part must not sink the suite
            failed[name] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
            continue
        compile_seconds = time.perf_counter() - started
        _, calls, seconds = repeated_runs(lambda fn=fn, args=args: jax.block_until_ready(fn(*args)), repeats, 0.02, 2.0)
        best = min(seconds) / calls
        parts[name] = {
            "seconds_per_call": best,
            "calls_per_run": calls,
            "scenarios": lanes[name],
            "unit": UNITS[name],
            "seconds_per_unit": best / lanes[name],
            "first_call_seconds": compile_seconds,
        }
    fused = parts.get("sc_iteration", {}).get("seconds_per_unit")
    for part in parts.values():
        part["share_of_sc_iteration"] = part["seconds_per_unit"] / fused if fused else None
    measured = [name for name in SC_PARTS if name in parts]
    dominant = max(measured, key=lambda name: parts[name]["seconds_per_unit"]) if measured else None
    return {
        "n": n,
        "d": d,
        "scenarios": scenarios,
        "clusters": clusters_for(n),
        "random_numbers_per_round": count,
        "gradient_normals_per_iteration": n * d,
        "parts": parts,
        "failed_parts": failed,
        "dominant_sc_part": dominant,
    }


def _batched_setup(algorithm: str, n: int, d: int, scenarios: int):
    """The engine's plan and per-scenario setup of a benchmark configuration, batched (the
    scheduler's parameters ride as arrays; its kind is put back inside each step)."""
    config = bench_config(algorithm, n, d, scenarios, 1)
    static = engine.static_part(config)
    plan = engine.make_plan(static)
    inputs = engine.scenario_inputs(config, np.arange(scenarios))

    def arrays(lane):
        scenario = engine.scenario_setup(static, plan, lane)
        return scenario._replace(scheduler=scenario.scheduler.params)

    return config, plan, jax.vmap(arrays)(inputs)


def _programs(n: int, d: int, scenarios: int, safe_area_scenarios: int):
    """Every part as (jitted program, its arguments), the scenarios each runs over, and the
    count of random numbers one round draws."""
    config, sc_plan, sc_scenario = _batched_setup("sc", n, d, scenarios)
    _, gen_plan, gen_scenario = _batched_setup("gen", n, d, scenarios)
    topology, objective, scheduler = config.topology, config.objective, config.scheduler
    fixtures = ScenarioDraws(slow=jnp.zeros((n,), bool))
    quorum = "weighted"
    keys = jax.vmap(lambda i: rng.fold_in(rng.seed_key(0), i))(jnp.arange(scenarios, dtype=jnp.uint32))
    threefry = jax.random.split(jax.random.PRNGKey(0), scenarios)
    clock = jnp.zeros((scenarios, n), jnp.float32)
    crash = jnp.full((scenarios, n), jnp.inf, jnp.float32)
    x = jnp.broadcast_to(objective.x0.astype(jnp.float32), (scenarios, n, d))
    alpha = jnp.float32(0.5)
    count = n + 3 * n * n

    def draws_of(key):
        return draw_round(key, topology, scheduler, fixtures, quorum)

    def views_of(draws, clk, kappa, wait):
        outcome = resolve_round(topology, clk, kappa, draws, wait=wait, quorum=quorum)
        return outcome.view, outcome.end_time, outcome.finished

    def gradients_of(xs, key):
        point_keys = jax.vmap(lambda p: algorithms.gradient_key(key, 0, p))(jnp.arange(n))
        return xs.T - alpha * stochastic_grad_columns(objective, xs, point_keys)

    def iteration_of(plan):
        step = algorithms.ALGORITHMS[plan.spec.kind].iteration

        def one(scenario, state):
            scenario = scenario._replace(scheduler=dataclasses.replace(scheduler, params=scenario.scheduler))
            return step(plan, scenario, state, jnp.int32(0)).x

        return one

    start = jax.vmap(lambda scenario: algorithms.initial_state(sc_plan, scenario.crash))(sc_scenario)
    never = CrashPoints(jnp.full((n,), NEVER, jnp.int32), jnp.zeros((n,), jnp.float32))

    def record_of(xs):
        state = algorithms.initial_state(sc_plan, never)._replace(x=xs, view_size=jnp.full((n,), n, jnp.int32))
        return metrics.record(objective, state, jnp.bool_(True), jnp.int32(0))

    programs = {
        "draws": (jax.jit(jax.vmap(draws_of)), (keys,)),
        "draws_threefry": (jax.jit(jax.vmap(lambda k: jax.random.exponential(k, (count,)))), (threefry,)),
    }
    draws = jax.block_until_ready(programs["draws"][0](keys))
    programs["views_sc"] = (jax.jit(jax.vmap(lambda dr, c, k: views_of(dr, c, k, False))), (draws, clock, crash))
    programs["views_gen"] = (jax.jit(jax.vmap(lambda dr, c, k: views_of(dr, c, k, True))), (draws, clock, crash))
    view_gen = jax.block_until_ready(programs["views_gen"][0](draws, clock, crash))[0]
    programs["gradients"] = (jax.jit(jax.vmap(gradients_of)), (x, keys))
    values = x + jax.random.normal(jax.random.PRNGKey(1), x.shape)
    columns, everyone = jnp.swapaxes(values, 1, 2), jnp.ones((scenarios, n), bool)
    programs["averaging_sc"] = (jax.jit(jax.vmap(algorithms.average_views)), (columns, view_gen, everyone, values))
    programs["agreement_mean"] = (jax.jit(jax.vmap(lambda v, w: agreement.apply_rule("mean", v, w))), (values, view_gen))
    programs["record"] = (jax.jit(jax.vmap(record_of)), (values,))
    programs["sc_iteration"] = (jax.jit(jax.vmap(iteration_of(sc_plan))), (sc_scenario, start))
    programs["gen_iteration"] = (jax.jit(jax.vmap(iteration_of(gen_plan))), (gen_scenario, start))
    small = min(scenarios, safe_area_scenarios)
    points = jax.random.normal(jax.random.PRNGKey(2), (small, n, 2))
    safe = jax.jit(jax.vmap(lambda v, w: agreement.apply_rule("safe_area", v, w, 1)))
    programs["agreement_safe_area_d2"] = (safe, (points, view_gen[:small]))
    lanes = {name: small if name == "agreement_safe_area_d2" else scenarios for name in programs}
    return programs, lanes, count
