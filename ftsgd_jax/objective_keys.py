"""The checks of the ``[objective]`` section's keys, by key name.

One job: ``KEY_CHECKS[key](field, value)`` returns the checked value or raises
:class:`ConfigError` naming ``field`` and what is allowed. A key of an objective kind is
checked here by its name unless the kind's ``ObjectiveKind.checks`` holds its own.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftsgd_jax.datasets import MAX_ENTRIES
from ftsgd_jax.errors import ConfigError, integer, real

Check = Callable[[str, Any], Any]
"""``(field, value) -> checked value``, raising ConfigError naming ``field``."""

_MAX_DIM = 1 << 24
_MAX_BATCH = 1 << 20


def _fill(field: str, value: Any) -> float | tuple[float, ...]:
    """A scalar fill or an explicit list of numbers (its length is checked against dim later)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ConfigError(field, "need a number or a non-empty list of numbers, got []")
        return tuple(real(f"{field}[{i}]", v) for i, v in enumerate(value))
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(field, f"need a finite number or a list of numbers, got {value!r}")
    return float(value)


def _x_star(field: str, value: Any) -> float | tuple[float, ...] | str:
    if isinstance(value, str):
        if value != "random":
            raise ConfigError(field, f"need a number, a list of numbers or 'random', got {value!r}")
        return value
    return _fill(field, value)


def _data_seed(field: str, value: Any) -> int | str:
    if isinstance(value, str):
        if value != "run":
            raise ConfigError(field, f"need an integer >= 0 or 'run' (use the run seed), got {value!r}")
        return value
    return integer(field, value, 0)


def _path(field: str, value: Any) -> str:
    if not isinstance(value, (str, Path)):
        raise ConfigError(field, f"need a file path string ('' for synthetic data), got {value!r}")
    return str(value)


KEY_CHECKS: dict[str, Check] = {
    "dim": lambda f, v: integer(f, v, 1, _MAX_DIM),
    "samples": lambda f, v: integer(f, v, 1, MAX_ENTRIES),
    "batch": lambda f, v: integer(f, v, 1, _MAX_BATCH),
    "inputs": lambda f, v: integer(f, v, 1, _MAX_DIM),
    "hidden": lambda f, v: integer(f, v, 1, _MAX_DIM),
    "mu": lambda f, v: real(f, v, low=0.0, low_open=True),
    "L": lambda f, v: real(f, v, low=0.0, low_open=True),
    "sigma": lambda f, v: real(f, v, low=0.0),
    "lam": lambda f, v: real(f, v, low=0.0),
    "label_noise": lambda f, v: real(f, v, low=0.0, high=0.5, high_open=True),
    "target_noise": lambda f, v: real(f, v, low=0.0),
    "init_scale": lambda f, v: real(f, v, low=0.0, low_open=True),
    "x0": _fill,
    "x_star": _x_star,
    "data_seed": _data_seed,
    "path": _path,
}
"""The check of every key of the built-in kinds, by key name."""
