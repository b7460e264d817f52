"""The shared checks of errors.py: each names the field and what is allowed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ftsgd_jax.errors import ConfigError, choice, flag, integer, known_keys, real


def test_choice_returns_the_value_or_names_the_options_with_a_hint():
    assert choice("schedule.kind", "sync", {"sync": 1, "random": 2}) == "sync"
    with pytest.raises(ConfigError, match=r"schedule.kind: got 'rnadom', allowed: 'sync', 'random' \(did you mean 'random'\?\)"):
        choice("schedule.kind", "rnadom", {"sync": 1, "random": 2})


def test_known_keys_names_the_section_key_and_the_closest():
    known_keys("run", ["seed"], ["seed", "scenarios"])
    with pytest.raises(ConfigError, match=r"run.sede: unknown key; allowed: seed, scenarios \(did you mean 'seed'\?\)"):
        known_keys("run", ["seed", "sede"], ["seed", "scenarios"])


@pytest.mark.parametrize(
    "value, kwargs, message",
    [
        (0.0, {"low": 0.0, "low_open": True}, "need a number > 0, got 0.0"),
        (0.5, {"low": 0.0, "high": 0.5, "high_open": True}, r"need a number in \[0, 0.5\), got 0.5"),
        (math.nan, {"low": 0.0}, "need a finite number >= 0, got nan"),
        (True, {}, r"need a number \(finite\), got True"),
        ("1", {"high": 2.0}, "need a number <= 2, got '1'"),
        (-1.0, {"low": 0.0, "note": " or inf (never heals)"}, r"need a number >= 0 or inf \(never heals\), got -1.0"),
    ],
)
def test_real_refuses_with_the_range(value, kwargs, message):
    with pytest.raises(ConfigError, match=f"x.y: {message}"):
        real("x.y", value, **kwargs)


def test_real_and_integer_accept_numpy_scalars_as_plain_python_numbers():
    assert real("x", np.float32(0.25), low=0.0) == 0.25 and type(real("x", np.float32(0.25))) is float
    assert integer("x", np.int64(3), 1, 4) == 3 and type(integer("x", np.int64(3), 1)) is int


@pytest.mark.parametrize("value", [0, 5, 2.0, True, "3"])
def test_integer_refuses_outside_the_range_and_non_integers(value):
    with pytest.raises(ConfigError, match=r"n: need an integer in \[1, 4\]"):
        integer("n", value, 1, 4)


def test_flag_takes_booleans_only():
    assert flag("run.track_contraction", False) is False
    with pytest.raises(ConfigError, match="run.track_contraction: need true or false, got 1"):
        flag("run.track_contraction", 1)
