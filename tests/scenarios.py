"""Test helper: batches of schedule-level scenarios, one compile per configuration."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ftsgd_jax import rng
from ftsgd_jax.model import CrashPattern, Topology, draw_crash_times
from ftsgd_jax.schedule import make_scheduler, nominal_round_time, run_rounds


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
    ((2, 2, 2), "heavy_tail", "none", "count"),
]


@functools.cache
def batched_runner(sizes: tuple[int, ...], kind: str, pattern: str, rounds: int, wait: bool, quorum: str, **settings):
    """jit(vmap) of crash draw + ``run_rounds`` over scenario indices; cached per configuration."""
    topology = Topology(sizes)
    scheduler = make_scheduler(kind, topology, **dict(settings))
    crash_pattern = CrashPattern(pattern)
    horizon = rounds * nominal_round_time(scheduler.params)

    def one(key, crashes):
        crash_key, run_key = rng.split(key, 2)
        crash_time = draw_crash_times(crash_key, topology, crash_pattern, crashes, horizon)
        draws, outcomes = run_rounds(run_key, topology, scheduler, crash_time, rounds, wait=wait, quorum=quorum)
        return crash_time, draws, outcomes

    batched = jax.jit(jax.vmap(one, in_axes=(0, None)))

    def run(seed: int, scenarios: int, crashes: int):
        keys = jax.vmap(lambda i: rng.fold_in(rng.seed_key(seed), i))(jnp.arange(scenarios))
        return batched(keys, crashes)

    run.one = jax.jit(one)
    run.topology = topology
    return run
