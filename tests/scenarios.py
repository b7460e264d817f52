"""Test helper: batches of schedule-level scenarios, one compile per configuration."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import rng
from ftsgd_jax.model import CrashPattern, Topology, draw_crash_points, window_iterations
from ftsgd_jax.schedule import TICKS_PER_UNIT, absolute_end_time, genome_size, make_scheduler, run_rounds


# (cluster sizes, scheduler, crash pattern, quorum): every scheduler, every crash pattern,
# both quorum rules, uneven clusters; each compiles once and is reused by every property.
CONFIGS = [
    ((3, 2, 1), "sync", "random", "weighted"),
    ((2, 5, 1, 3), "random", "random", "count"),
    ((1, 1, 1, 1, 1), "random", "initial", "weighted"),
    ((3, 2, 1), "heavy_tail", "clusters", "weighted"),
    ((4,), "straggler", "random", "count"),
    ((2, 2), "partition", "random", "weighted"),
    ((3, 2, 1), "self_only", "random", "weighted"),
    ((2, 5, 1, 3), "adversarial", "random", "count"),
    ((2, 3, 1), "searched", "random", "weighted"),
    ((2, 2, 2), "heavy_tail", "none", "count"),
]


@functools.cache
def batched_runner(sizes: tuple[int, ...], kind: str, pattern: str, rounds: int, wait: bool, quorum: str, **settings):
    """jit(vmap) of crash points + ``run_rounds`` over scenario indices; cached per configuration.

    A run returns (crash points, played rounds) with a leading scenario axis; crashes fall
    in any of the ``rounds`` rounds (each its own iteration).
    """
    topology = Topology(sizes)
    settings = dict(settings)
    if kind == "searched" and "genome" not in settings:  # a fixed genome spread over its whole range
        settings["genome"] = np.random.default_rng(len(sizes)).normal(0.0, 3.0, genome_size(topology.n)).tolist()
    scheduler = make_scheduler(kind, topology, **settings)
    per_iteration = np.ones(rounds, np.int32)
    window = window_iterations(CrashPattern(pattern).window, rounds)

    def one(key, crashes):
        crash_key, run_key = rng.split(key, 2)
        crash = draw_crash_points(crash_key, topology, pattern, crashes, window, per_iteration)
        return crash, run_rounds(run_key, topology, scheduler, crash, rounds, wait=wait, quorum=quorum)

    batched = jax.jit(jax.vmap(one, in_axes=(0, None)))

    def run(seed: int, scenarios: int, crashes: int):
        keys = jax.vmap(lambda i: rng.fold_in(rng.seed_key(seed), i))(jnp.arange(scenarios))
        return batched(keys, crashes)

    run.one = jax.jit(one)
    run.topology = topology
    run.scheduler = scheduler
    return run


def heal_of(scheduler) -> float:
    """The absolute healing time of a scheduler's partition (inf: never)."""
    until = scheduler.settings["until"]
    return float(np.round(until * TICKS_PER_UNIT) / TICKS_PER_UNIT) if np.isfinite(until) else float("inf")


def absolute(played, scheduler) -> np.ndarray:
    """A played round's end times as absolute float64 time units, per round."""
    return absolute_end_time(jax.tree.map(np.asarray, played), heal_of(scheduler))
