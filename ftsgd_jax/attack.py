"""Adversarial schedule search: the interleavings and crash points that hurt most.

A schedule of the ``searched`` scheduler is a real vector, its *genome*
(:func:`~ftsgd_jax.schedulers.genome_size`: every process's computation, every read offset,
send offset and delay, and a crash score, place and fraction per process). Each gene goes
through a ``sigmoid`` into its bounded range and then onto the time grid like every draw
of every scheduler, and the crash genes place at most ``faults.crashes`` crashes inside
the crash window, so every genome is an execution the model allows: positive
computations, finite delays, no message lost between live processes.

The search is black-box: a separable CMA-ES (evosax's ``Sep_CMA_ES``, or ``CMA_ES`` /
``Open_ES``) proposes a generation of genomes, the engine scores them as one vmapped
batch (one compiled program for every generation: the genome is run-time data), and the
strategy moves towards the worst. All candidates share scenario 0's key (the same
gradient noise), so scores differ only by the schedule. The search's keys derive from
``attack.seed``; the same spec, objective, budget and seed give the same search.

Objectives (larger is worse):

* ``error``: ``err_max`` at the last record (squared distance of the worst live process);
* ``disagreement``: for ``gen``, the largest ``disagreement / eps_t`` over the records (> 1:
  the agreement rounds missed their target); otherwise the final disagreement;
* ``contraction``: the worst per-round diameter ratio of an agreement round;
* ``rounds``: the rounds the worst measured contraction would need to shrink one
  iteration's spread ``eps_{t-1} + 2 alpha_t G_max`` to ``eps_t`` (the ``auto`` count with
  the measured factor in place of the proven one);
* ``view``: the view-size shortfall ``n - smallest view``;
* ``view_mean``: the shortfall of the mean view, ``n - mean view size`` of the live
  processes: every process must be starved at once, so it rewards coordinating many genes;
* ``blocked``: processes that wait forever.

An objective the configuration cannot measure is refused before any work
(:func:`check_objective`): ``contraction`` and ``rounds`` need an algorithm with agreement
rounds (``algorithms.ALGORITHMS[kind].agreement``), ``error`` an objective that knows x*.

The worst schedules found are the worst over every method (the search, random sampling
and the ``random`` and ``adversarial`` schedulers), each a :class:`Finding` that names its
method and reruns exactly.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import algorithms, engine, theory
from ftsgd_jax.agreement import RULES, contraction_factor
from ftsgd_jax.config import RunConfig, build_config
from ftsgd_jax.errors import ConfigError, choice
from ftsgd_jax.metrics import CONTRACTION_ROUNDING
from ftsgd_jax.schedulers import genome_size

OBJECTIVES = ("error", "disagreement", "contraction", "rounds", "view", "view_mean", "blocked")
STRATEGIES = ("sep_cma_es", "cma_es", "open_es")
UNSEARCHABLE = {
    "sync": "lockstep has no freedom to search",
    "self_only": "every message is lost to the views, so no interleaving matters",
    "partition": "the cut is fixed by the spec, not searched; use random or adversarial",
}
MAX_BUDGET = 10**8
MAX_POPULATION = 65536
WORST = 1.0e6  # a score that is infinite (a contraction >= 1 needs rounds forever) counts as this


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    objective: str
    budget: int  # scored schedules of the search (and of each comparison)
    population: int = 256  # schedules per generation, scored as one batch
    strategy: str = "sep_cma_es"
    seed: int = 0
    sigma: float = 2.0  # the search's initial spread of every gene (and the random sampling's)
    keep: int = 3  # best schedules written as replayable runs


def check_spec(spec: AttackSpec) -> AttackSpec:
    choice("--objective", spec.objective, OBJECTIVES)
    choice("--strategy", spec.strategy, STRATEGIES)
    for field, value, low, high in (
        ("--budget", spec.budget, 1, MAX_BUDGET),
        ("--population", spec.population, 2, MAX_POPULATION),
        ("--keep", spec.keep, 1, 100),
        ("--seed", spec.seed, 0, 2**32 - 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(field, f"need an integer in [{low}, {high}], got {value!r}")
    if not (isinstance(spec.sigma, (int, float)) and 0 < spec.sigma <= 100):
        raise ConfigError("--sigma", f"need a number in (0, 100], got {spec.sigma!r}")
    return spec


def inapplicable_objectives(config: RunConfig) -> dict[str, str]:
    """Objective -> why ``config`` cannot measure it (every scenario would score NaN)."""
    kind = config.algorithm.kind
    why: dict[str, str] = {}
    if not algorithms.ALGORITHMS[kind].agreement:
        for objective in ("contraction", "rounds"):
            why[objective] = f"measures agreement rounds and algorithm {kind!r} runs none"
    if config.objective.x_star is None:
        why["error"] = f"measures the distance to x*, which objective {config.objective.kind!r} does not know"
    return why


def check_objective(config: RunConfig, objective: str) -> str:
    """``objective`` if ``config`` can measure it, else one line naming what is allowed."""
    choice("--objective", objective, OBJECTIVES)
    why = inapplicable_objectives(config)
    if objective in why:
        allowed = ", ".join(o for o in OBJECTIVES if o not in why)
        raise ConfigError(
            "--objective",
            f"{objective!r} {why[objective]}; allowed for algorithm {config.algorithm.kind!r} "
            f"on objective {config.objective.kind!r}: {allowed}",
        )
    return objective


def searched_config(config: RunConfig, crashes: int | None = None, genome: Any = None, scenarios: int = 1) -> RunConfig:
    """The configuration with the ``searched`` scheduler, crash budget ``crashes`` and ``genome``,
    recording every iteration: a per-round score (contraction, views) holds only its record's
    last iteration, so a coarser record would leave the other iterations' rounds unscored.

    Refuses a spec the attack cannot search, and a crash budget above n.
    """
    kind = config.scheduler.kind
    if kind in UNSEARCHABLE:
        raise ConfigError("schedule.kind", f"cannot attack {kind!r}: {UNSEARCHABLE[kind]}")
    if config.crash_pattern.kind not in ("none", "random"):
        raise ConfigError(
            "faults.pattern",
            f"the attack places crashes itself (pattern 'random' with faults.crashes as its budget), got {config.crash_pattern.kind!r}",
        )
    budget = config.crashes if crashes is None else crashes
    n = config.topology.n
    if isinstance(budget, bool) or not isinstance(budget, int) or not 0 <= budget <= n:
        raise ConfigError("--crashes", f"need a crash budget in [0, {n}] (n = {n} processes), got {budget!r}")
    raw = _raw(config)
    raw["schedule"].update(kind="searched", genome=None if genome is None else [float(g) for g in np.asarray(genome, np.float32)])
    raw["faults"].update(pattern="random" if budget else "none", crashes=budget)
    raw["run"].update(scenarios=scenarios, chunk=0, record_every=1, track_contraction=algorithms.ALGORITHMS[config.algorithm.kind].agreement)
    return build_config(raw)


def compared_config(config: RunConfig, kind: str, crashes: int, scenarios: int) -> RunConfig:
    """The same configuration under scheduler ``kind`` with ``crashes`` random crashes, recording
    every iteration (as :func:`searched_config`)."""
    raw = _raw(config)
    raw["schedule"].update(kind=kind, genome=None)
    raw["faults"].update(pattern="random" if crashes else "none", crashes=crashes)
    raw["run"].update(scenarios=scenarios, chunk=0, record_every=1, track_contraction=algorithms.ALGORITHMS[config.algorithm.kind].agreement)
    return build_config(raw)


def _raw(config: RunConfig) -> dict[str, Any]:
    raw = {section: dict(values) for section, values in config.resolved.items()}
    raw["algorithm"] = {k: v for k, v in raw["algorithm"].items() if v is not None}
    return raw


# --- scores -----------------------------------------------------------------------------


def scores(config: RunConfig, metrics: dict[str, np.ndarray], objective: str) -> np.ndarray:
    """(S,) the objective of every scenario from its records (column -> (S, K)); larger is worse.

    NaN where it does not apply (e.g. no live process left to measure an error).
    """
    n = config.topology.n
    with np.errstate(all="ignore"), _quiet():
        if objective == "error":
            return metrics["err_max"][:, -1].astype(np.float64)
        if objective == "view":
            return (n - np.nanmin(metrics["view_min"], axis=1)).astype(np.float64)
        if objective == "view_mean":
            return (n - np.nanmin(metrics["view_mean"], axis=1)).astype(np.float64)
        if objective == "blocked":
            return np.max(metrics["blocked"], axis=1).astype(np.float64)
        if objective == "contraction":
            return np.nanmax(metrics["contraction_max"], axis=1).astype(np.float64)
        eps, spread = _targets(config)
        if objective == "disagreement":
            if not algorithms.ALGORITHMS[config.algorithm.kind].agreement:
                return metrics["disagreement"][:, -1].astype(np.float64)
            return np.nanmax(metrics["disagreement"] / eps[None, :], axis=1)
        if objective == "rounds":
            c = metrics["contraction_max"].astype(np.float64)
            needed = np.log(eps / spread)[None, :] / np.log(np.clip(c, 1e-12, None))
            needed = np.where(c >= 1.0, WORST, np.clip(needed, 0.0, WORST))
            return np.nanmax(needed, axis=1)
    raise ConfigError("--objective", f"got {objective!r}, allowed: {', '.join(OBJECTIVES)}")


def _targets(config: RunConfig) -> tuple[np.ndarray, np.ndarray]:
    """(K,) eps_t and one iteration's spread eps_{t-1} + 2 alpha_t G_max at every recorded iteration."""
    spec = config.algorithm
    T = config.run.iterations
    alphas = algorithms.step_sizes(spec, config.objective, T).astype(np.float64)
    eps = algorithms.eps_schedule(spec, alphas)
    spread = np.concatenate([[0.0], eps[:-1]]) + 2 * alphas * algorithms.gradient_bound(spec, config.objective)
    last = np.arange(config.run.record_every, T + 1, config.run.record_every) - 1
    return eps[last], spread[last]


class _quiet:
    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)


def ranked(values: np.ndarray) -> np.ndarray:
    """Scores for ranking: NaN (not applicable) is the least bad."""
    return np.where(np.isnan(values), -np.inf, values)


# --- evaluation -------------------------------------------------------------------------


class Evaluator:
    """Scores batches of genomes of one searched configuration with one compiled program."""

    def __init__(self, config: RunConfig, objective: str, batch: int):
        self.config, self.objective, self.batch = config, objective, batch
        engine.check_exact_time(config)
        self.sim = engine.simulation(config)
        template = engine.scenario_inputs(config, np.zeros(batch, np.int64))  # every lane: scenario 0's key
        self.template = template
        self.evaluations = 0

    def metrics(self, genomes: np.ndarray) -> dict[str, np.ndarray]:
        count = genomes.shape[0]
        padded = np.concatenate([genomes, np.repeat(genomes[-1:], self.batch - count, axis=0)]) if count < self.batch else genomes
        schedule = dataclasses.replace(self.template.schedule, genome=jnp.asarray(padded, jnp.float32))
        inputs = self.template._replace(schedule=schedule)
        out = jax.block_until_ready(self.sim.compiled(inputs)(inputs))
        records = {name: np.asarray(getattr(out.records, name))[:count] for name in out.records._fields}
        engine._check_time_span(self.config, records["time_span"], np.zeros(count, np.int64))
        self.evaluations += count
        return records

    def __call__(self, genomes: np.ndarray) -> np.ndarray:
        return scores(self.config, self.metrics(genomes), self.objective)


def _strategy(name: str, population: int, size: int, sigma: float):
    from evosax.algorithms import CMA_ES, Open_ES, Sep_CMA_ES

    cls = {"sep_cma_es": Sep_CMA_ES, "cma_es": CMA_ES, "open_es": Open_ES}[name]
    es = cls(population_size=population, solution=jnp.zeros(size))
    params = es.default_params
    if hasattr(params, "std_init"):
        params = params.replace(std_init=sigma)
    return es, params


def keep_worst(genomes: np.ndarray, values: np.ndarray, more_genomes: np.ndarray, more_values: np.ndarray, keep: int):
    """The ``keep`` worst of two pools of (genome, score), worst first; earlier entries win ties."""
    genomes, values = np.concatenate([genomes, more_genomes]), np.concatenate([values, ranked(more_values)])
    order = np.argsort(-values, kind="stable")[:keep]
    return genomes[order], values[order]


@dataclasses.dataclass
class Search:
    best_genomes: np.ndarray  # (keep, G) the worst schedules found, worst first
    best_scores: np.ndarray  # (keep,)
    scores: np.ndarray  # (budget,) every evaluation in order
    curve: list[dict[str, float]]  # per generation: evaluations, best of the generation, best so far, median
    seconds: float


def search(config: RunConfig, spec: AttackSpec, report: Callable[[dict[str, float]], None] | None = None) -> Search:
    """Black-box search of ``spec.budget`` schedules of ``config`` (a searched configuration)."""
    size = genome_size(config.topology.n)
    population = min(spec.population, spec.budget)
    evaluate = Evaluator(config, spec.objective, population)
    es, params = _strategy(spec.strategy, population, size, spec.sigma)
    key = jax.random.key(spec.seed)
    key, init_key = jax.random.split(key)
    state = es.init(init_key, jnp.zeros(size), params)
    ask, tell = jax.jit(es.ask), jax.jit(es.tell)
    started = time.perf_counter()
    all_scores: list[np.ndarray] = []
    pool_genomes = np.zeros((0, size), np.float32)
    pool_scores = np.zeros((0,), np.float64)
    curve: list[dict[str, float]] = []
    done, generation = 0, 0
    while done < spec.budget:
        key, ask_key, tell_key = jax.random.split(key, 3)
        candidates, state = ask(ask_key, state, params)
        candidates = np.asarray(candidates, np.float32)
        take = min(population, spec.budget - done)
        values = evaluate(candidates[:take])
        full = np.concatenate([values, np.full(population - take, np.nan)])
        fitness = -np.clip(ranked(full), -WORST, WORST)  # evosax minimises
        fitness = np.where(np.isfinite(fitness), fitness, WORST)
        state, _ = tell(tell_key, jnp.asarray(candidates), jnp.asarray(fitness, jnp.float32), state, params)
        done += take
        generation += 1
        all_scores.append(values)
        pool_genomes, pool_scores = keep_worst(pool_genomes, pool_scores, candidates[:take], values, spec.keep)
        finite = values[np.isfinite(values)]
        point = {
            "generation": generation,
            "evaluations": done,
            "best": float(np.max(ranked(values))),
            "median": float(np.median(finite)) if finite.size else float("nan"),
            "best_so_far": float(pool_scores[0]),
            "seconds": time.perf_counter() - started,
        }
        curve.append(point)
        if report is not None:
            report(point)
    return Search(pool_genomes, pool_scores, np.concatenate(all_scores), curve, time.perf_counter() - started)


@dataclasses.dataclass
class Sampling:
    """Random sampling's scores and the worst genomes it drew (replayable like the search's)."""

    scores: np.ndarray  # (budget,) every evaluation in order
    best_genomes: np.ndarray  # (keep, G) the worst genomes drawn, worst first
    best_scores: np.ndarray  # (keep,)


def random_sampling(config: RunConfig, spec: AttackSpec) -> Sampling:
    """``budget`` genomes drawn from the search's initial distribution N(0, sigma^2), scored."""
    size = genome_size(config.topology.n)
    population = min(spec.population, spec.budget)
    evaluate = Evaluator(config, spec.objective, population)
    key = jax.random.fold_in(jax.random.key(spec.seed), 1)
    out = []
    pool_genomes, pool_scores = np.zeros((0, size), np.float32), np.zeros((0,), np.float64)
    for begin in range(0, spec.budget, population):
        take = min(population, spec.budget - begin)
        genomes = np.asarray(spec.sigma * jax.random.normal(jax.random.fold_in(key, begin), (take, size)), np.float32)
        out.append(evaluate(genomes))
        pool_genomes, pool_scores = keep_worst(pool_genomes, pool_scores, genomes, out[-1], spec.keep)
    return Sampling(np.concatenate(out), pool_genomes, pool_scores)


def scheduler_scores(config: RunConfig, kind: str, crashes: int, spec: AttackSpec) -> np.ndarray:
    """(budget,) scores of the first ``budget`` scenarios of ``config`` under scheduler ``kind``."""
    compared = compared_config(config, kind, crashes, spec.budget)
    result = engine.run(compared)
    return scores(compared, result.metrics, spec.objective)


@dataclasses.dataclass(frozen=True)
class Finding:
    """One of the worst schedules found: scenario ``scenario`` of ``config`` reruns it exactly.

    A genome (of the search or of random sampling) is scenario 0 of its searched
    configuration, whose other scenarios differ from it only by the gradient noise; a
    scheduler's schedule is its own scenario, which draws schedule and noise from one key.
    """

    method: str
    score: float
    config: RunConfig
    scenario: int

    @property
    def searched(self) -> bool:
        return self.config.scheduler.kind == "searched"


SEARCHED_METHODS = ("search", "random sampling")
SCHEDULER_METHODS = {"random scheduler": "random", "adversarial scheduler": "adversarial"}


def worst_findings(
    config: RunConfig, crashes: int, spec: AttackSpec, found: Search, sampled: Sampling, compared: dict[str, np.ndarray]
) -> list[Finding]:
    """The ``spec.keep`` worst schedules over every method, worst first (ties: in the order of
    the search, random sampling, then the schedulers)."""
    candidates: list[Finding] = []
    for method, pool in zip(SEARCHED_METHODS, (found, sampled)):
        candidates += [
            Finding(method, float(score), searched_config(config, crashes, genome), 0)
            for genome, score in zip(pool.best_genomes, pool.best_scores)
        ]
    for method, values in compared.items():
        kind_config = compared_config(config, SCHEDULER_METHODS[method], crashes, spec.budget)
        order = np.argsort(-ranked(values), kind="stable")[: spec.keep]
        candidates += [Finding(method, float(ranked(values)[i]), kind_config, int(i)) for i in order]
    order = np.argsort([-c.score for c in candidates], kind="stable")[: spec.keep]
    return [candidates[i] for i in order]


# --- checks against the theory ----------------------------------------------------------


def theory_checks(config: RunConfig, worst: Finding, noise_draws: int = 64) -> list[dict[str, Any]]:
    """What the theory says about the worst schedule found, and whether it holds.

    A searched genome is run under ``noise_draws`` gradient noise draws; a scheduler's
    scenario alone (its key draws the schedule and the noise together). Each entry:
    ``claim``, ``measured``, ``bound``, ``holds`` (None where the claim does not apply).
    """
    spec_alg = config.algorithm
    checks: list[dict[str, Any]] = []
    scenarios = np.arange(noise_draws) if worst.searched else np.array([worst.scenario])
    rerun = dataclasses.replace(worst.config, run=dataclasses.replace(worst.config.run, scenarios=max(worst.config.run.scenarios, scenarios.size)))
    m = engine.run(rerun, scenarios).metrics
    majority = bool(np.all(m["majority"][:, -1]))
    blocked = int(np.max(m["blocked"]))
    bound = theory.sc_error_bound(config, float(np.nanmin(m["view_min"]))) if spec_alg.kind == "sc" else None
    if bound is not None:
        measured = float(np.nanmean(m["err_max"][:, -1]))
        applies = bound["applies"] and worst.searched
        note = None
        if not bound["applies"]:
            note = "bound stated for step inverse, step_scale 2, step_offset >= 2L/mu"
        elif not worst.searched:
            note = f"the bound is on the mean over noise draws, and a {worst.method} scenario is one draw"
        checks.append({
            "claim": f"sc: mean final error over {scenarios.size} noise draws <= {theory.SC_ERROR_BOUND}, k = smallest view",
            "measured": measured, "bound": bound["bound"], "smallest_view": bound["smallest_view"],
            "holds": (measured <= bound["bound"]) if applies else None,
            "note": note,
        })
    if algorithms.ALGORITHMS[spec_alg.kind].agreement:
        if majority and spec_alg.rounds == "auto":
            # the rerun records every iteration (searched_config, compared_config), so its
            # targets, not the spec's records, line up with its rows
            eps, _ = _targets(rerun)
            ratio = float(np.nanmax(m["disagreement"] / eps[None, :]))
            checks.append({"claim": f"{spec_alg.kind} with the majority condition: disagreement <= eps_t", "measured": ratio, "bound": 1.0,
                           "holds": ratio <= 1.0 + 1e-5})
        if majority and RULES[spec_alg.rule].proven:
            factor = contraction_factor(spec_alg.rule, config.topology.n, config.objective.dim)
            largest = float(np.nanmax(m["contraction_max"]))
            checks.append({"claim": f"{spec_alg.kind} {spec_alg.rule} with the majority condition: per-round contraction <= {factor:.4g}",
                           "measured": largest, "bound": factor, "holds": largest <= factor + CONTRACTION_ROUNDING})
        if not majority:
            checks.append({"claim": f"{spec_alg.kind} without the majority condition may block", "measured": blocked, "bound": None,
                           "holds": None, "note": f"{blocked} processes blocked"})
    return checks


def format_check(check: dict[str, Any]) -> str:
    verdict = {True: "holds", False: "VIOLATED", None: "n/a"}[check["holds"]]
    bound = "" if check.get("bound") is None else f" (bound {check['bound']:.4g})"
    return f"{check['claim']}: measured {check['measured']:.4g}{bound}: {verdict}"


def summary_stats(values: np.ndarray) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"max": math.nan, "median": math.nan, "q90": math.nan, "count": int(values.size), "finite": 0}
    return {
        "max": float(finite.max()),
        "median": float(np.median(finite)),
        "q90": float(np.quantile(finite, 0.9)),
        "count": int(values.size),
        "finite": int(finite.size),
    }


def score_figure(distributions: dict[str, np.ndarray], curve: list[dict[str, float]], objective: str, bound: float | None = None):
    """Left: the score distributions (ECDF) of each method; right: the search's score curve."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.2), layout="constrained")
    for i, (label, values) in enumerate(distributions.items()):
        finite = np.sort(values[np.isfinite(values)])
        if finite.size:
            left.step(finite, np.arange(1, finite.size + 1) / finite.size, where="post", color=f"C{i}",
                      label=f"{label} (max {finite[-1]:.3g})")
    if bound is not None:
        left.axvline(bound, color="black", linestyle="--", linewidth=1, label=f"proven bound {bound:.3g}")
    left.set_xlabel(f"score: {objective} (larger is worse)")
    left.set_ylabel("fraction of schedules ≤ score")
    left.legend(fontsize=7, loc="upper left")
    evaluations = [p["evaluations"] for p in curve]
    right.plot(evaluations, [p["best_so_far"] for p in curve], color="C3", label="search: worst so far")
    right.plot(evaluations, [p["median"] for p in curve], color="C3", alpha=0.5, linestyle=":", label="search: generation median")
    if "random sampling" in distributions:
        rs = distributions["random sampling"]
        running = np.maximum.accumulate(ranked(rs))
        right.plot(np.arange(1, rs.size + 1), running, color="C0", label="random sampling: worst so far")
    if bound is not None:
        right.axhline(bound, color="black", linestyle="--", linewidth=1, label=f"proven bound {bound:.3g}")
    # a few thousands-separated ticks: five-digit counts side by side ran together
    right.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    right.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    right.set_xlabel("scored schedules")
    right.set_ylabel(objective)
    right.legend(fontsize=7)
    return fig


# --- the whole attack, as `ftsgd attack` runs it ----------------------------------------


def write_best_run(finding: Finding, folder, objective: str) -> None:
    """A schedule found as the results folder of an `ftsgd run` holding its one scenario:
    `ftsgd replay FOLDER --scenario S` reruns it (S = ``finding.scenario``)."""
    from pathlib import Path

    from ftsgd_jax import results

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config, scenario = finding.config, np.array([finding.scenario])
    result = engine.run(config, scenario)
    summary = results.summarize(result, config.topology.n)
    results.write_table(folder / "metrics.parquet", results.metrics_table(result, scenario))
    results.write_json(folder / "summary.json", summary)
    results.write_json(folder / "manifest.json", {
        "command": "run",
        "config": config.resolved,
        "seed": config.run.seed,
        "scenario_keys": "fold_in(seed_key(seed), scenario)",
        "attack": {"objective": objective, "score": finding.score, "method": finding.method, "scenario": finding.scenario},
        "theory": theory.record(config),
        "rounds_per_iteration": result.rounds_per_iteration,
        "environment": results.environment(),
        "timings": {"compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds, "chunk": result.chunk},
    })


def worst_window(config: RunConfig, metrics: dict[str, np.ndarray], objective: str, width: int) -> tuple[int, int]:
    """Iterations [start, stop) around the record where the objective is worst (for the diagram)."""
    per_record = {
        "error": metrics["err_max"], "disagreement": metrics["disagreement"], "contraction": metrics["contraction_max"],
        "rounds": metrics["contraction_max"], "view": -metrics["view_min"].astype(np.float64),
        "view_mean": -metrics["view_mean"].astype(np.float64), "blocked": metrics["blocked"],
    }[objective][0].astype(np.float64)
    record = int(np.argmax(ranked(per_record))) if np.any(np.isfinite(per_record)) else 0
    T, every = config.run.iterations, config.run.record_every
    stop = min(T, (record + 1) * every)
    start = max(0, stop - width)
    return start, stop


ATTACK_FILES = ("scores.parquet", "attack_scores.png", "attack_scores.pdf")


def is_attack_folder(folder) -> bool:
    """Whether ``folder`` holds the results of an earlier `ftsgd attack` (its ``attack.json``)."""
    import json

    try:
        return json.loads((folder / "attack.json").read_text(encoding="utf-8")).get("command") == "attack"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return False


def prepare_folder(out, force: bool) -> None:
    """Under the folder's lock, before any work: clear an earlier attack's results; refuse
    another kind (a run's, a sweep's, other files) unless ``force``, which clears ftsgd's."""
    import shutil

    from ftsgd_jax import results

    if not is_attack_folder(out):
        kind = results.folder_kind(out)
        if kind is not None:
            if not force:
                what = {"run": "the results of `ftsgd run`", "sweep": "a sweep's results", "suite": "a suite of sweeps"}
                raise ConfigError("--out", f"{out} holds {what.get(kind, 'other files')}; use another folder or --force to replace them")
            results.clear_results(out)
    (out / "attack.json").unlink(missing_ok=True)  # the marker of finished results goes first
    for name in ATTACK_FILES:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / "best", ignore_errors=True)
    results.remove_temporaries(out)


def run_attack(config: RunConfig, spec: AttackSpec, crashes: int | None, out, progress=None, force: bool = False) -> dict[str, Any]:
    """Search, compare and write everything to ``out`` (under its lock); return the comparison."""
    from pathlib import Path

    from ftsgd_jax import results

    out = Path(out)
    check_spec(spec)
    check_objective(config, spec.objective)
    budget = config.crashes if crashes is None else crashes
    searched = searched_config(config, budget)
    with results.FolderLock(out, "attack"):
        prepare_folder(out, force)
        return _attack(config, spec, budget, searched, out, progress)


def _attack(config: RunConfig, spec: AttackSpec, budget: int, searched: RunConfig, out, progress) -> dict[str, Any]:
    import json

    import matplotlib.pyplot as plt
    import pyarrow as pa

    from ftsgd_jax import figures, replay, results

    started = time.perf_counter()
    found = search(searched, spec, progress)
    search_seconds = time.perf_counter() - started
    sampled = random_sampling(searched, spec)
    compared = {method: scheduler_scores(config, kind, budget, spec) for method, kind in SCHEDULER_METHODS.items()}
    distributions = {"random sampling": sampled.scores, **compared, "search": found.scores}
    findings = worst_findings(config, budget, spec, found, sampled, compared)
    for rank, finding in enumerate(findings):
        write_best_run(finding, out / "best" / str(rank), spec.objective)
    worst = findings[0]
    checks = theory_checks(config, worst)
    # the worst schedule's interleaving around its worst record
    metrics = replay.replay_metrics(worst.config, worst.scenario)
    window = worst_window(worst.config, {k: v[None] for k, v in metrics.items()}, spec.objective, 4)
    events, blocked = replay.trace_events(worst.config, worst.scenario, window[1], start=window[0])
    trace_dir = out / "best" / "0" / "trace"
    trace_dir.mkdir(parents=True, exist_ok=True)
    results.write_atomic(trace_dir / "trace.jsonl", "".join(json.dumps(results.json_safe(e)) + "\n" for e in events).encode())
    figures.spacetime(events, config.topology.cluster_sizes, trace_dir / "spacetime.png", blocked=blocked,
                      title=f"worst schedule found ({worst.method}, {spec.objective} {worst.score:.4g}), iterations {window[0]}-{window[1] - 1}")
    agrees = algorithms.ALGORITHMS[config.algorithm.kind].agreement
    bound = None
    if spec.objective == "contraction" and agrees and RULES[config.algorithm.rule].proven:
        bound = contraction_factor(config.algorithm.rule, config.topology.n, config.objective.dim)
    if spec.objective == "disagreement" and agrees:
        bound = 1.0
    fig = score_figure(distributions, found.curve, spec.objective, bound)
    fig.savefig(out / "attack_scores.png", dpi=150)
    fig.savefig(out / "attack_scores.pdf")
    plt.close(fig)
    rows = [(method, i, float(v)) for method, values in distributions.items() for i, v in enumerate(values)]
    table = pa.table({"method": [r[0] for r in rows], "evaluation": [r[1] for r in rows], "score": [r[2] for r in rows]})
    results.write_table(out / "scores.parquet", table)
    comparison = {
        "command": "attack",
        "objective": spec.objective,
        "spec": dataclasses.asdict(spec),
        "crash_budget": budget,
        "config": searched.resolved | {"schedule": {k: v for k, v in searched.resolved["schedule"].items() if k != "genome"}},
        "methods": {name: summary_stats(values) for name, values in distributions.items()},
        "best": [{"score": f.score, "method": f.method, "scenario": f.scenario, "folder": f"best/{i}"} for i, f in enumerate(findings)],
        "checks": checks,
        "curve": found.curve,
        "trace_window": list(window),
        "search_seconds": search_seconds,
        "total_seconds": time.perf_counter() - started,
        "environment": results.environment(),
    }
    results.write_json(out / "attack.json", comparison)
    return comparison
