"""User-facing errors: one class that names the offending field and what is allowed.

Every validation in the package raises :class:`ConfigError`; the CLI turns it into one
line on stderr and exit status 2, so a user never sees a traceback for bad input.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable


class ConfigError(ValueError):
    """Bad user input. ``field`` is the dotted name of what was wrong (e.g. ``system.clusters``)."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def closest(name: str, allowed: Iterable[str]) -> str:
    """A ' (did you mean X?)' hint for a misspelt name, or '' when nothing is close."""
    match = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def known_keys(section: str, given: Iterable[object], allowed: Iterable[str]) -> None:
    """Refuse a key of ``given`` that is not in ``allowed``, naming ``section.key`` and the allowed keys."""
    allowed = list(allowed)
    for key in given:
        if key not in allowed:
            raise ConfigError(f"{section}.{key}", f"unknown key; allowed: {', '.join(allowed)}{closest(str(key), allowed)}")


def choice(field: str, value: object, allowed: Iterable[str]) -> str:
    """Check that ``value`` is one of ``allowed``; return it or raise naming the options."""
    allowed = list(allowed)
    if value not in allowed:
        hint = closest(str(value), allowed) if isinstance(value, str) else ""
        raise ConfigError(field, f"got {value!r}, allowed: {', '.join(map(repr, allowed))}{hint}")
    return value


def real(
    field: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    note: str = "",
) -> float:
    """A finite number in the given range, as a float, or ConfigError naming the range.

    Booleans, strings, NaN and infinities are refused: every float setting has a finite
    range, so a run never starts from a value that turns into NaN or a zero step later.
    ``note`` follows the range in the message (e.g. " or inf (never heals)").
    """
    allowed = range_text(low, high, low_open, high_open) + note
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(field, f"need a number {allowed}, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ConfigError(field, f"need a finite number {allowed}, got {value!r}")
    below = low is not None and (number <= low if low_open else number < low)
    above = high is not None and (number >= high if high_open else number > high)
    if below or above:
        raise ConfigError(field, f"need a number {allowed}, got {value!r}")
    return number


def integer(field: str, value: object, low: int, high: int | None = None) -> int:
    """An integer (not a boolean) in ``[low, high]``, as an int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ConfigError(field, f"need an integer {bound}, got {value!r}")
    return int(value)


def flag(field: str, value: object) -> bool:
    """A boolean (TOML true or false)."""
    if not isinstance(value, bool):
        raise ConfigError(field, f"need true or false, got {value!r}")
    return value


def range_text(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    """'in (0, 1e+06]', '>= 0', ... for error messages."""
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "(finite)"
