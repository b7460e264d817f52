"""User-facing errors: one class that names the offending field and what is allowed.

Every validation in the package raises :class:`ConfigError`; the CLI turns it into one
line on stderr and exit status 2, so a user never sees a traceback for bad input.
"""

from __future__ import annotations

import difflib
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


def choice(field: str, value: object, allowed: Iterable[str]) -> str:
    """Check that ``value`` is one of ``allowed``; return it or raise naming the options."""
    allowed = list(allowed)
    if value not in allowed:
        hint = closest(str(value), allowed) if isinstance(value, str) else ""
        raise ConfigError(field, f"got {value!r}, allowed: {', '.join(map(repr, allowed))}{hint}")
    return value
