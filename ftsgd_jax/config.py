"""Run configuration: TOML in, a validated and fully resolved ``RunConfig`` out.

Sections: ``[system]``, ``[faults]``, ``[schedule]``, ``[objective]``, ``[algorithm]``,
``[run]``. Every key has a default; ``RunConfig.resolved`` holds every value actually
used (defaults included), which is what manifests record. Every mistake raises
``ConfigError`` naming ``section.key`` and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ftsgd_jax.agreement import check_dimension
from ftsgd_jax.algorithms import ALGORITHMS, STEP_SIZES
from ftsgd_jax.errors import ConfigError, choice, flag, integer, known_keys, real
from ftsgd_jax.model import CRASH_PATTERNS, QUORUM_RULES, CrashPattern, Topology, validate_crash_count
from ftsgd_jax.objectives import Objective, make_objective
from ftsgd_jax.schedulers import SCHEDULE_DEFAULTS, Scheduler, make_scheduler

DEVICE_KINDS = ("auto", "cpu", "gpu", "tpu")

DEFAULTS: dict[str, dict[str, Any]] = {
    "system": {"clusters": [4, 4, 4, 4], "quorum": "weighted"},
    "faults": {"pattern": "none", "crashes": 0, "window": [0.0, 1.0]},
    "schedule": {"kind": "random", **SCHEDULE_DEFAULTS},
    "objective": {"kind": "quadratic"},
    "algorithm": {
        "kind": "sc",
        "rule": "mean",
        "rounds": 3,
        "step": "inverse",
        "step_scale": 1.0,
        "step_offset": 1.0,
        "lr": 0.05,
        "eps0": 1.0,
        "eps_power": 1.0,
        "g_max": None,
        "max_rounds": 64,
        "safe_f": 1,
    },
    "run": {"iterations": 200, "scenarios": 256, "seed": 0, "record_every": 10, "chunk": 0, "track_contraction": False, "device": "auto"},
}


@dataclasses.dataclass(frozen=True)
class AlgorithmSpec:
    kind: str
    rule: str
    rounds: int | str
    step: str
    step_scale: float
    step_offset: float
    lr: float
    eps0: float
    eps_power: float
    g_max: float | None
    max_rounds: int
    safe_f: int


@dataclasses.dataclass(frozen=True)
class RunSpec:
    iterations: int
    scenarios: int
    seed: int
    record_every: int
    chunk: int
    track_contraction: bool
    device: str


@dataclasses.dataclass(frozen=True)
class RunConfig:
    topology: Topology
    quorum: str
    crash_pattern: CrashPattern
    crashes: int
    scheduler: Scheduler
    objective: Objective
    algorithm: AlgorithmSpec
    run: RunSpec
    resolved: Mapping[str, Mapping[str, Any]]


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; unreadable, non-UTF-8 or malformed files raise ConfigError naming the file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(str(path), f"cannot read the config file: {error.strerror or error}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            str(path), f"not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); TOML files must be UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(str(path), f"malformed TOML: {error}") from None


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` -> (section, key, value); the value is read as TOML, else as a string."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError("--set", f"expected section.key=value, got {text!r}")
    name, raw = text.split("=", 1)
    section, key = name.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key, value


def apply_overrides(raw: Mapping[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``raw`` with ``section.key=value`` overrides applied."""
    return set_values(raw, {f"{section}.{key}": value for section, key, value in map(parse_override, overrides)})


def set_values(raw: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with the ``section.key`` entries of ``values`` set."""
    merged = copy.deepcopy(dict(raw))
    for name, value in values.items():
        if not isinstance(name, str) or "." not in name:
            raise ConfigError(str(name), "need section.key (e.g. faults.crashes)")
        section, key = name.split(".", 1)
        table = merged.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(section, f"must be a table ([{section}]), got {table!r}")
        table[key] = value
    return merged


MAX_ITERATIONS = 10**7  # per-iteration host arrays (step sizes, round counts) stay below 100 MB
MAX_SCENARIOS = 2**32  # scenario indices are uint32 counters of the random generator
MAX_CHUNK = 2**20


def divisors(number: int, count: int = 8) -> list[int]:
    """The smallest ``count`` divisors of ``number``, in O(sqrt(number)) steps at most."""
    small, large = [], []
    k = 1
    while k * k <= number and len(small) < count:
        if number % k == 0:
            small.append(k)
            if k * k != number:
                large.append(number // k)
        k += 1
    return sorted(small + large)[:count]


def _window(value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ConfigError("faults.window", f"need [start, end] as fractions of the run in [0, 1], got {value!r}")
    start = real("faults.window", value[0], low=0.0, high=1.0)
    end = real("faults.window", value[1], low=0.0, high=1.0)
    if start > end:
        raise ConfigError("faults.window", f"need start <= end, got {value!r}")
    return start, end


def build_config(raw: Mapping[str, Any], base_dir: str | Path | None = None) -> RunConfig:
    """Validate a parsed TOML document and resolve every default."""
    known_keys("config", raw, DEFAULTS)
    for section, value in raw.items():
        if not isinstance(value, Mapping):
            raise ConfigError(section, f"must be a table ([{section}]), got {value!r}")
    sections = {name: {**defaults, **raw.get(name, {})} for name, defaults in DEFAULTS.items() if name != "objective"}
    for name in sections:
        known_keys(name, raw.get(name, {}), DEFAULTS[name])

    system = sections["system"]
    clusters = system["clusters"]
    if not isinstance(clusters, list):
        raise ConfigError("system.clusters", f"need a list of positive integers, got {clusters!r}")
    topology = Topology(tuple(clusters))
    quorum = choice("system.quorum", system["quorum"], QUORUM_RULES)

    faults = sections["faults"]
    window = _window(faults["window"])
    pattern = CrashPattern(choice("faults.pattern", faults["pattern"], CRASH_PATTERNS), window)
    crashes = validate_crash_count(pattern, faults["crashes"], topology)

    schedule = dict(sections["schedule"])
    kind = schedule.pop("kind")
    user_schedule = {k: v for k, v in raw.get("schedule", {}).items() if k != "kind"}
    scheduler = make_scheduler(kind, topology, **user_schedule)

    run = sections["run"]
    run_spec = RunSpec(
        iterations=integer("run.iterations", run["iterations"], 1, MAX_ITERATIONS),
        scenarios=integer("run.scenarios", run["scenarios"], 1, MAX_SCENARIOS),
        seed=integer("run.seed", run["seed"], 0, 2**32 - 1),
        record_every=integer("run.record_every", run["record_every"], 1, MAX_ITERATIONS),
        chunk=integer("run.chunk", run["chunk"], 0, MAX_CHUNK),
        track_contraction=flag("run.track_contraction", run["track_contraction"]),
        device=choice("run.device", run["device"], DEVICE_KINDS),
    )
    if run_spec.iterations % run_spec.record_every:
        raise ConfigError(
            "run.record_every",
            f"must divide run.iterations ({run_spec.iterations}); e.g. {', '.join(map(str, divisors(run_spec.iterations)))}",
        )

    objective_spec = dict(raw.get("objective", {}))
    if base_dir is not None and objective_spec.get("path"):
        objective_spec["path"] = str((Path(base_dir) / objective_spec["path"]).resolve())
    objective = make_objective(objective_spec, seed=run_spec.seed)

    algorithm = _build_algorithm(sections["algorithm"], topology, objective)
    resolved = {
        "system": {"clusters": list(topology.cluster_sizes), "quorum": quorum},
        "faults": {"pattern": pattern.kind, "crashes": crashes, "window": list(pattern.window)},
        "schedule": {"kind": kind, **scheduler.settings},
        "objective": dict(objective.config),
        "algorithm": dataclasses.asdict(algorithm),
        "run": dataclasses.asdict(run_spec),
    }
    return RunConfig(topology, quorum, pattern, crashes, scheduler, objective, algorithm, run_spec, resolved)


# Finite ranges of the algorithm's float keys (open at 0: a zero step or target means nothing).
ALGORITHM_RANGES: dict[str, dict[str, Any]] = {
    "step_scale": {"low": 0.0, "high": 1e6, "low_open": True},
    "step_offset": {"low": 0.0, "high": 1e9, "low_open": True},
    "lr": {"low": 0.0, "high": 1e6, "low_open": True},
    "eps0": {"low": 0.0, "high": 1e12, "low_open": True},
    "eps_power": {"low": 0.0, "high": 10.0, "low_open": True},
    "g_max": {"low": 0.0, "high": 1e12, "low_open": True},
}


def _build_algorithm(section: Mapping[str, Any], topology: Topology, objective: Objective) -> AlgorithmSpec:
    kind = choice("algorithm.kind", section["kind"], ALGORITHMS)
    rule = section["rule"]
    check_dimension(rule, objective.dim)
    rounds = section["rounds"]
    if rounds != "auto":
        if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 4096:
            raise ConfigError("algorithm.rounds", f"need an integer in [1, 4096] or 'auto', got {rounds!r}")
    step = choice("algorithm.step", section["step"], STEP_SIZES)
    if step == "inverse" and not objective.mu:
        raise ConfigError(
            "algorithm.step", f"'inverse' needs a strong-convexity constant mu; objective {objective.kind!r} has none: use 'constant'"
        )
    g_max = section["g_max"]
    if g_max is not None:
        g_max = real("algorithm.g_max", g_max, **ALGORITHM_RANGES["g_max"])
    spec = AlgorithmSpec(
        kind=kind,
        rule=rule,
        rounds=rounds,
        step=step,
        step_scale=real("algorithm.step_scale", section["step_scale"], **ALGORITHM_RANGES["step_scale"]),
        step_offset=real("algorithm.step_offset", section["step_offset"], **ALGORITHM_RANGES["step_offset"]),
        lr=real("algorithm.lr", section["lr"], **ALGORITHM_RANGES["lr"]),
        eps0=real("algorithm.eps0", section["eps0"], **ALGORITHM_RANGES["eps0"]),
        eps_power=real("algorithm.eps_power", section["eps_power"], **ALGORITHM_RANGES["eps_power"]),
        g_max=g_max,
        max_rounds=integer("algorithm.max_rounds", section["max_rounds"], 1, 4096),
        safe_f=integer("algorithm.safe_f", section["safe_f"], 0, topology.n),
    )
    if ALGORITHMS[kind].agreement and rounds == "auto" and g_max is None and objective.grad_bound(1.0) is None:
        raise ConfigError(
            "algorithm.g_max", f"rounds = 'auto' needs a gradient bound, and objective {objective.kind!r} gives none: set g_max"
        )
    return spec


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read, override and validate a run config file."""
    raw = apply_overrides(load_toml(path), overrides)
    return build_config(raw, base_dir=Path(path).parent)
