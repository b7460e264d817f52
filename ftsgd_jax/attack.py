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

from ftsgd_jax import algorithms, engine
from ftsgd_jax.agreement import RULES, contraction_factor
from ftsgd_jax.config import RunConfig, build_config
from ftsgd_jax.errors import ConfigError, choice
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


def searched_config(config: RunConfig, crashes: int | None = None, genome: Any = None, scenarios: int = 1) -> RunConfig:
    """The configuration with the ``searched`` scheduler, crash budget ``crashes`` and ``genome``.

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
    raw["run"].update(scenarios=scenarios, chunk=0, track_contraction=config.algorithm.kind == "gen")
    return build_config(raw)


def compared_config(config: RunConfig, kind: str, crashes: int, scenarios: int) -> RunConfig:
    """The same configuration under scheduler ``kind`` with ``crashes`` random crashes."""
    raw = _raw(config)
    raw["schedule"].update(kind=kind, genome=None)
    raw["faults"].update(pattern="random" if crashes else "none", crashes=crashes)
    raw["run"].update(scenarios=scenarios, chunk=0, track_contraction=config.algorithm.kind == "gen")
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
            smallest = np.where(np.isnan(metrics["view_min"]), np.nan, metrics["view_min"])
            return (n - np.nanmin(smallest, axis=1)).astype(np.float64)
        if objective == "view_mean":
            return (n - np.nanmin(metrics["view_mean"], axis=1)).astype(np.float64)
        if objective == "blocked":
            return np.max(metrics["blocked"], axis=1).astype(np.float64)
        if objective == "contraction":
            return np.nanmax(metrics["contraction_max"], axis=1).astype(np.float64)
        eps, spread = _targets(config)
        if objective == "disagreement":
            if config.algorithm.kind != "gen":
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
        pool_genomes = np.concatenate([pool_genomes, candidates[:take]])
        pool_scores = np.concatenate([pool_scores, ranked(values)])
        order = np.argsort(-pool_scores, kind="stable")[: spec.keep]
        pool_genomes, pool_scores = pool_genomes[order], pool_scores[order]
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


def random_sampling(config: RunConfig, spec: AttackSpec) -> np.ndarray:
    """(budget,) scores of genomes drawn from the search's initial distribution N(0, sigma^2)."""
    size = genome_size(config.topology.n)
    population = min(spec.population, spec.budget)
    evaluate = Evaluator(config, spec.objective, population)
    key = jax.random.fold_in(jax.random.key(spec.seed), 1)
    out = []
    for begin in range(0, spec.budget, population):
        take = min(population, spec.budget - begin)
        genomes = spec.sigma * jax.random.normal(jax.random.fold_in(key, begin), (take, size))
        out.append(evaluate(np.asarray(genomes, np.float32)))
    return np.concatenate(out)


def scheduler_scores(config: RunConfig, kind: str, crashes: int, spec: AttackSpec) -> np.ndarray:
    """(budget,) scores of the first ``budget`` scenarios of ``config`` under scheduler ``kind``."""
    compared = compared_config(config, kind, crashes, spec.budget)
    result = engine.run(compared)
    return scores(compared, result.metrics, spec.objective)


# --- checks against the theory ----------------------------------------------------------


def theory_checks(config: RunConfig, best: RunConfig, spec: AttackSpec, noise_draws: int = 64) -> list[dict[str, Any]]:
    """What the theory says about the worst schedule found, and whether it holds.

    ``best``: the searched configuration of the worst schedule. Each entry: ``claim``,
    ``measured``, ``bound``, ``holds`` (None where the claim does not apply).
    """
    spec_alg = config.algorithm
    checks: list[dict[str, Any]] = []
    result = engine.run(dataclasses.replace(best, run=dataclasses.replace(best.run, scenarios=noise_draws)))
    m = result.metrics
    majority = bool(np.all(m["majority"][:, -1]))
    blocked = int(np.max(m["blocked"]))
    if spec_alg.kind == "sc" and config.objective.kind == "quadratic" and config.objective.x_star is not None:
        obj = config.objective
        gamma = spec_alg.step_offset
        k = float(np.nanmin(m["view_min"]))
        sigma2 = float(obj.config.get("sigma", 1.0)) ** 2
        mu = float(obj.mu)
        gap = float(np.sum((np.asarray(obj.x0) - np.asarray(obj.x_star)) ** 2))
        T = config.run.iterations
        bound = max(4 * sigma2 / (mu**2 * k), gamma * gap) / (T + gamma)
        measured = float(np.nanmean(m["err_max"][:, -1]))
        applies = spec_alg.step == "inverse" and spec_alg.step_scale == 2.0 and gamma >= 2 * float(obj.config.get("L", 1.0)) / mu
        checks.append({
            "claim": f"sc: mean final error over {noise_draws} noise draws <= max(4 sigma^2/(mu^2 k), gamma |x0-x*|^2)/(T+gamma), k = smallest view",
            "measured": measured, "bound": bound, "smallest_view": k,
            "holds": (measured <= bound) if applies else None,
            "note": None if applies else "bound stated for step inverse, step_scale 2, step_offset >= 2L/mu",
        })
    if spec_alg.kind == "gen":
        if majority and spec_alg.rounds == "auto":
            eps, _ = _targets(config)
            ratio = float(np.nanmax(m["disagreement"] / eps[None, :]))
            checks.append({"claim": "gen with the majority condition: disagreement <= eps_t", "measured": ratio, "bound": 1.0,
                           "holds": ratio <= 1.0 + 1e-5})
        if majority and RULES[spec_alg.rule].proven:
            factor = contraction_factor(spec_alg.rule, config.topology.n, config.objective.dim)
            worst = float(np.nanmax(m["contraction_max"]))
            checks.append({"claim": f"gen {spec_alg.rule} with the majority condition: per-round contraction <= {factor:.4g}",
                           "measured": worst, "bound": factor, "holds": worst <= factor + 1e-5})
        if not majority:
            checks.append({"claim": "gen without the majority condition may block", "measured": blocked, "bound": None,
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
        right.axhline(bound, color="black", linestyle="--", linewidth=1)
    right.set_xlabel("scored schedules")
    right.set_ylabel(objective)
    right.legend(fontsize=7)
    return fig


# --- the whole attack, as `ftsgd attack` runs it ----------------------------------------


def write_best_run(config: RunConfig, folder, score: float, objective: str) -> None:
    """A searched schedule as the results folder of a one-scenario `ftsgd run`: `ftsgd replay` reruns it."""
    from pathlib import Path

    from ftsgd_jax import results

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result = engine.run(config)
    summary = results.summarize(result, config.topology.n)
    results.write_table(folder / "metrics.parquet", results.metrics_table(result, np.arange(config.run.scenarios)))
    results.write_json(folder / "summary.json", summary)
    results.write_json(folder / "manifest.json", {
        "command": "run",
        "config": config.resolved,
        "seed": config.run.seed,
        "scenario_keys": "fold_in(seed_key(seed), scenario)",
        "attack": {"objective": objective, "score": score},
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


def run_attack(config: RunConfig, spec: AttackSpec, crashes: int | None, out, progress=None) -> dict[str, Any]:
    """Search, compare and write everything to ``out``; return the comparison."""
    from pathlib import Path

    import pyarrow as pa

    from ftsgd_jax import figures, replay, results

    out = Path(out)
    check_spec(spec)
    budget = config.crashes if crashes is None else crashes
    searched = searched_config(config, budget)
    started = time.perf_counter()
    found = search(searched, spec, progress)
    search_seconds = time.perf_counter() - started
    sampled = random_sampling(searched, spec)
    distributions = {"random sampling": sampled, "random scheduler": scheduler_scores(config, "random", budget, spec),
                     "adversarial scheduler": scheduler_scores(config, "adversarial", budget, spec), "search": found.scores}
    best_configs = [searched_config(config, budget, genome) for genome in found.best_genomes]
    for rank, (best, score) in enumerate(zip(best_configs, found.best_scores)):
        write_best_run(best, out / "best" / str(rank), float(score), spec.objective)
    checks = theory_checks(config, best_configs[0], spec)
    # the worst schedule's interleaving around its worst record
    metrics = replay.replay_metrics(best_configs[0], 0)
    window = worst_window(best_configs[0], {k: v[None] for k, v in metrics.items()}, spec.objective, 4)
    events, blocked = replay.trace_events(best_configs[0], 0, window[1], start=window[0])
    trace_dir = out / "best" / "0" / "trace"
    trace_dir.mkdir(parents=True, exist_ok=True)
    import json

    results.write_atomic(trace_dir / "trace.jsonl", "".join(json.dumps(results.json_safe(e)) + "\n" for e in events).encode())
    figures.spacetime(events, config.topology.cluster_sizes, trace_dir / "spacetime.png", blocked=blocked,
                      title=f"worst schedule found ({spec.objective} {found.best_scores[0]:.4g}), iterations {window[0]}-{window[1] - 1}")
    bound = None
    if spec.objective == "contraction" and config.algorithm.kind == "gen" and RULES[config.algorithm.rule].proven:
        bound = contraction_factor(config.algorithm.rule, config.topology.n, config.objective.dim)
    if spec.objective == "disagreement" and config.algorithm.kind == "gen":
        bound = 1.0
    fig = score_figure(distributions, found.curve, spec.objective, bound)
    fig.savefig(out / "attack_scores.png", dpi=150)
    fig.savefig(out / "attack_scores.pdf")
    import matplotlib.pyplot as plt

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
        "best": [{"score": float(s), "folder": f"best/{i}"} for i, s in enumerate(found.best_scores)],
        "checks": checks,
        "curve": found.curve,
        "trace_window": list(window),
        "search_seconds": search_seconds,
        "total_seconds": time.perf_counter() - started,
        "environment": results.environment(),
    }
    results.write_json(out / "attack.json", comparison)
    return comparison
