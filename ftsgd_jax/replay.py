"""Replay one scenario of a run or sweep alone, from its derived key.

The scenario's metrics come from the engine run on that scenario only; its interleaving
comes from the plain reference simulator fed the same time stamps: every compute, write,
read, send, receive, end of round and crash in time order, written as ``trace.jsonl``,
with a space-time diagram.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ftsgd_jax import algorithms, engine, reference, results, rng
from ftsgd_jax.config import RunConfig, build_config
from ftsgd_jax.errors import ConfigError
from ftsgd_jax.metrics import METRIC_COLUMNS


def load_point(results_dir: Path, point: str | int = 0) -> tuple[RunConfig, dict[str, Any]]:
    """(configuration, manifest) of a run folder, or of one point of a sweep folder.

    ``point`` names a sweep point by its values, ``"faults.crashes=2,system.quorum=count"``
    (read as TOML values; enough keys to single one point out), or by its index in the
    folder's manifest and summary (see :func:`point_index`).
    """
    manifest = load_manifest(results_dir)
    index = point_index(manifest, point)
    if manifest.get("command") == "sweep":
        return build_config(results.restore_floats(manifest["points"][index]["config"])), manifest
    return build_config(results.restore_floats(manifest["config"])), manifest


def load_manifest(results_dir: Path) -> dict[str, Any]:
    manifest_path = Path(results_dir) / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError("results", f"no results in {results_dir} (no manifest.json: not a results folder, or its run did not finish)")
    manifest = results.read_json(manifest_path)
    if not isinstance(manifest, dict):
        raise ConfigError("results", f"{manifest_path} is not a JSON object")
    drawn_with = results.streams_of(manifest.get("environment"))
    if drawn_with != rng.STREAMS:
        raise ConfigError(
            "results",
            f"{results_dir} was drawn with random streams {drawn_with} (an older ftsgd), this version draws "
            f"streams {rng.STREAMS}: a replay would show other scenarios; re-run it to replay it",
        )
    return manifest


def point_index(manifest: dict[str, Any], point: str | int = 0) -> int:
    """The index in the manifest of the point named by ``point`` (values or index)."""
    text = str(point).strip()
    if manifest.get("command") == "sweep":
        return _find_point(manifest.get("points", []), text)
    if text not in ("0", ""):
        raise ConfigError("--point", "a single run has only point 0")
    return 0


def _find_point(points: list[dict[str, Any]], text: str) -> int:
    if "=" not in text:
        try:
            index = int(text)
        except ValueError:
            raise ConfigError("--point", f"need KEY=VALUE[,KEY=VALUE...] or an index, got {text!r}") from None
        if not 0 <= index < len(points):
            raise ConfigError("--point", f"point {index} out of range: the sweep has points 0..{len(points) - 1}")
        return index
    wanted: dict[str, Any] = {}
    for part in text.split(","):
        key, _, raw = part.partition("=")
        key = key.strip()
        try:
            wanted[key] = tomllib.loads(f"v = {raw.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            wanted[key] = raw.strip()
    swept = sorted({k for p in points for k in p.get("values", {})})
    for key in wanted:
        if key not in swept:
            raise ConfigError("--point", f"{key!r} is not swept here; swept keys: {', '.join(swept)}")
    stored = [results.restore_floats(p.get("values", {})) for p in points]  # "inf" in JSON is inf
    matches = [i for i, values in enumerate(stored) if all(_same(values.get(k), v) for k, v in wanted.items())]
    if not matches:
        raise ConfigError("--point", f"no point has {text}")
    if len(matches) > 1:
        raise ConfigError("--point", f"{len(matches)} points have {text}; add keys from: {', '.join(swept)}")
    return matches[0]


def _same(stored: Any, wanted: Any) -> bool:
    return stored == wanted and type(stored) is type(wanted) or (
        isinstance(stored, (int, float)) and isinstance(wanted, (int, float))
        and not isinstance(stored, bool) and not isinstance(wanted, bool) and stored == wanted
    )


def replay_metrics(config: RunConfig, scenario: int) -> dict[str, np.ndarray]:
    """The metric records of one scenario, run alone: column -> (K,)."""
    sim = engine.simulation(config)
    inputs = jax.tree.map(lambda a: a[0], engine.scenario_inputs(config, np.array([scenario])))
    out = sim.single(inputs)
    return {name: np.asarray(getattr(out.records, name)) for name in METRIC_COLUMNS}


def stored_metrics(results_dir: Path, point: int, scenario: int) -> dict[str, np.ndarray]:
    """The stored records of one scenario; in a sweep, of the point with the manifest's id."""
    table = pq.read_table(results_dir / "metrics.parquet")
    mask = pc.equal(table.column("scenario"), scenario)
    if "point_id" in table.column_names:
        manifest = results.read_json(results_dir / "manifest.json")
        mask = pc.and_(mask, pc.equal(table.column("point_id"), manifest["points"][point]["id"]))
    elif "point" in table.column_names:
        mask = pc.and_(mask, pc.equal(table.column("point"), point))
    rows = table.filter(mask).sort_by("t")
    return {name: rows.column(name).to_numpy(zero_copy_only=False) for name in METRIC_COLUMNS}


RTOL, ATOL = 1e-4, 1e-5


def compare(replayed: dict[str, np.ndarray], stored: dict[str, np.ndarray]) -> dict[str, float]:
    """Per metric, the largest difference in units of the tolerance ``RTOL |stored| + ATOL``.

    A scenario run alone is a different XLA program from its batched lane, so floats may
    differ in the last bits (summation order); a value <= 1 means they agree. NaN
    matches NaN.
    """
    excess = {}
    for name in METRIC_COLUMNS:
        a = replayed[name].astype(np.float64)
        b = stored[name].astype(np.float64)
        both_nan = np.isnan(a) & np.isnan(b)
        ratio = np.abs(a - b) / (RTOL * np.abs(b) + ATOL)
        ratio = np.where(both_nan, 0.0, np.where(np.isnan(ratio), np.inf, ratio))
        excess[name] = float(ratio.max()) if ratio.size else 0.0
    return excess


def trace_events(
    config: RunConfig, scenario: int, iterations: int, start: int = 0
) -> tuple[list[dict[str, Any]], list[int]]:
    """The interleaving of iterations ``[start, iterations)`` as a list of step records.

    The run is simulated from time 0 (a window late in a run replays what leads up to it);
    steps of rounds before ``start`` are left out, every crash is kept (one outside the
    window is drawn as an annotation), with the iteration and round it falls in.
    """
    schedule = engine.scenario_schedule(config, scenario)
    rounds = int(np.searchsorted(schedule.iteration, iterations))
    first = int(np.searchsorted(schedule.iteration, start))
    draws = jax.tree.map(lambda a: a[:rounds], schedule.draws)
    spec = config.algorithm
    small = config.objective.dim <= 4
    waits = algorithms.ALGORITHMS[spec.kind].waits
    if algorithms.reference_combine(spec) is not None and rounds == len(schedule.iteration):
        run, _ = reference.run_algorithm(config, scenario, schedule)
    else:
        run = reference.simulate(config.topology, schedule.crash, draws, wait=waits, quorum=config.quorum, heal=schedule.heal)
    cluster_of = config.topology.cluster_of
    events = []
    for time, step, process, round_index, detail in run.trace:
        if round_index is not None and not first <= round_index < rounds:
            continue
        if round_index is None and step == "crash":
            crash_round = int(schedule.crash.round[process])
            round_index = crash_round if crash_round < len(schedule.iteration) else None
        event = {
            "time": time,
            "step": step,
            "process": process,
            "cluster": int(cluster_of[process]),
            "iteration": None if round_index is None else int(schedule.iteration[round_index]),
            "round": None if round_index is None else int(schedule.round[round_index]),
            "peer": detail if step in ("read", "send", "receive") else None,
        }
        if step == "end":
            event["view"] = detail
        if step == "write" and small and run.values and round_index is not None:
            value = run.values[round_index][process]
            if value is not None:
                event["value"] = np.asarray(value).round(6).tolist()
        events.append(event)
    starts = [e for e in _compute_starts(run, draws, cluster_of, rounds, schedule) if e["iteration"] >= start]
    events = sorted(events + starts, key=lambda e: e["time"])
    blocked = [int(p) for p in np.flatnonzero(run.blocked[rounds - 1])] if rounds else []
    last = max((e["time"] for e in events), default=0.0)
    events += [
        {"time": last, "step": "blocked", "process": p, "cluster": int(cluster_of[p]), "iteration": None, "round": None, "peer": None}
        for p in blocked
    ]
    return events, blocked


def _compute_starts(run, draws, cluster_of, rounds: int, schedule) -> list[dict[str, Any]]:
    """A compute step begins each round a process started: at its write time minus the duration."""
    starts = []
    for event_time, step, process, round_index, _ in run.trace:
        if step == "write" and round_index < rounds:
            duration = float(draws.compute[round_index, process])
            starts.append(
                {
                    "time": event_time - duration,
                    "step": "compute",
                    "process": process,
                    "cluster": int(cluster_of[process]),
                    "iteration": int(schedule.iteration[round_index]),
                    "round": int(schedule.round[round_index]),
                    "peer": None,
                }
            )
    return starts


def trace_window(config: RunConfig, scenario: int, window: str | None, width: int) -> tuple[int, int]:
    """Iterations [start, stop) to trace: ``START:STOP``, ``crash`` (``width`` iterations
    around the scenario's first crash) or None (the first ``width``)."""
    T = config.run.iterations
    if width < 1:
        raise ConfigError("--trace-iterations", f"need an integer >= 1, got {width}")
    if window is None:
        return 0, min(width, T)
    text = str(window).strip()
    if text == "crash":
        schedule = engine.scenario_schedule(config, scenario)
        rounds = schedule.crash.round[schedule.crash.round < len(schedule.iteration)]
        if rounds.size == 0:
            raise ConfigError("--window", f"scenario {scenario} has no crash within its {T} iterations")
        at = int(schedule.iteration[int(rounds.min())])
        start = max(0, min(at - width // 2, T - width))
        return start, min(T, start + width)
    start_text, sep, stop_text = text.partition(":")
    try:
        start, stop = int(start_text), int(stop_text)
    except ValueError:
        raise ConfigError("--window", f"need START:STOP (iterations) or 'crash', got {text!r}") from None
    if not sep or not 0 <= start < stop <= T:
        raise ConfigError("--window", f"need 0 <= START < STOP <= {T} (iterations), got {text!r}")
    return start, stop


def later_crashes(config: RunConfig, scenario: int, stop: int) -> list[str]:
    """One line per crash after iteration ``stop`` (outside a trace of iterations before it)."""
    schedule = engine.scenario_schedule(config, scenario)
    first_after = int(np.searchsorted(schedule.iteration, stop))
    lines = []
    for p in np.argsort(schedule.crash.round, kind="stable"):
        r = int(schedule.crash.round[p])
        if first_after <= r < len(schedule.iteration):
            lines.append(f"p{p} crashes later: iteration {int(schedule.iteration[r])}, round {int(schedule.round[r])}")
    return lines
