"""Tests of ftsgd_jax.metrics: every metric of a record against a plain NumPy computation
on hand-made states, over live processes only, NaN where nothing is live."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftsgd_jax import metrics
from ftsgd_jax.algorithms import State
from ftsgd_jax.objectives import make_objective
from ftsgd_jax.schedule import Timeline

OBJECTIVES = {
    "quadratic": make_objective({"kind": "quadratic", "dim": 2, "L": 3.0, "x_star": [1.0, -2.0]}, seed=0),
    "logistic": make_objective({"kind": "logistic", "dim": 2}, seed=0),  # no known x*
}
# compiled once per shape: hypothesis draws many small states
RECORD = {name: jax.jit(functools.partial(metrics.record, objective)) for name, objective in OBJECTIVES.items()}
LOSS = {name: jax.jit(objective.loss) for name, objective in OBJECTIVES.items()}
GRAD = {name: jax.jit(objective.grad) for name, objective in OBJECTIVES.items()}
CONTRACTION = jax.jit(metrics.contraction)
MASKED_MEAN, MASKED_MAX, MASKED_MIN = (jax.jit(f) for f in (metrics.masked_mean, metrics.masked_max, metrics.masked_min))


def plain_record(name, x, live, view_size, crashed, clock):
    """The metrics of a state, one process at a time in float64."""
    objective = OBJECTIVES[name]
    x = np.asarray(x, np.float64)
    alive = np.flatnonzero(live)

    def mean(values):
        return float(np.mean(values[alive])) if alive.size else np.nan

    loss = np.array([float(LOSS[name](jnp.asarray(p, jnp.float32))) for p in x])
    grad = np.array([np.asarray(GRAD[name](jnp.asarray(p, jnp.float32)), np.float64) for p in x])
    record = {
        "loss_mean": mean(loss),
        "grad_sq_mean": mean(np.sum(grad**2, axis=1)),
        "view_min": float(np.min(view_size[alive])) if alive.size else np.nan,
        "view_mean": mean(view_size.astype(np.float64)),
        "disagreement": max((np.linalg.norm(x[p] - x[q]) for p in alive for q in alive), default=np.nan),
        "crashed": int(np.sum(crashed)),
        "blocked": int(np.sum(np.isinf(clock) & ~crashed)),
    }
    if objective.x_star is None:
        record["err_mean"] = record["err_max"] = np.nan
    else:
        err = np.sum((x - np.asarray(objective.x_star, np.float64)) ** 2, axis=1)
        record["err_mean"] = mean(err)
        record["err_max"] = float(np.max(err[alive])) if alive.size else np.nan
    return record


def hand_made_state(x, live, view_size, crashed, clock, rounds=3, latest=7.5):
    n = len(live)
    nan = jnp.float32(jnp.nan)
    timeline = Timeline(
        clock=jnp.asarray(clock, jnp.float32),
        crashed=jnp.asarray(crashed),
        to_crash=jnp.zeros((n,), jnp.int32),
        healed=jnp.zeros((n,), bool),
        origin=jnp.zeros((2,), jnp.int32),
        latest=jnp.float32(latest),
    )
    return State(
        x=jnp.asarray(x, jnp.float32),
        timeline=timeline,
        live=jnp.asarray(live),
        view_size=jnp.asarray(view_size, jnp.int32),
        rounds=jnp.int32(rounds),
        contraction_max=jnp.float32(0.5),
        contraction_mean=jnp.float32(0.25),
        safe_residual=nan,
        fallbacks=jnp.int32(2),
    )


@st.composite
def states(draw):
    n = draw(st.integers(1, 6))
    coordinate = st.floats(-10, 10, width=32)
    x = np.array(draw(st.lists(st.lists(coordinate, min_size=2, max_size=2), min_size=n, max_size=n)), np.float32)
    flags = st.lists(st.booleans(), min_size=n, max_size=n)
    crashed = np.array(draw(flags))
    waiting = np.array(draw(flags)) & ~crashed
    live = np.array(draw(flags)) & ~crashed & ~waiting  # completed the iteration
    clock = np.where(crashed | waiting, np.inf, np.array(draw(st.lists(st.floats(0, 100), min_size=n, max_size=n))))
    view_size = np.array(draw(st.lists(st.integers(1, n), min_size=n, max_size=n)))
    return x, live, np.where(live, view_size, 0), crashed, clock


@pytest.mark.parametrize("name", sorted(OBJECTIVES))
@given(state=states())
def test_record_equals_the_plain_computation_over_live_processes(name, state):
    x, live, view_size, crashed, clock = state
    record = RECORD[name](hand_made_state(*state), jnp.bool_(True), jnp.int32(4))
    expected = plain_record(name, x, live, view_size, crashed, clock)
    for field, value in expected.items():
        got = float(getattr(record, field))
        if np.isnan(value):
            assert np.isnan(got), field
        else:
            assert got == pytest.approx(value, rel=1e-4, abs=1e-4), field
    assert int(record.rounds) == 3 and int(record.rounds_capped) == 4 and bool(record.majority)
    assert float(record.contraction_max) == 0.5 and float(record.contraction_mean) == 0.25
    assert int(record.safe_fallbacks) == 2 and np.isnan(float(record.safe_residual_max))
    assert float(record.time_span) == 7.5


def test_nothing_live_gives_nan_not_a_number_that_looks_measured():
    objective = OBJECTIVES["quadratic"]
    state = hand_made_state(np.zeros((3, 2)), [False] * 3, [0] * 3, [True, True, False], [np.inf] * 3)
    record = metrics.record(objective, state, jnp.bool_(False), jnp.int32(0))
    for field in ("err_mean", "err_max", "loss_mean", "grad_sq_mean", "disagreement", "view_min", "view_mean"):
        assert np.isnan(float(getattr(record, field))), field
    assert int(record.crashed) == 2 and int(record.blocked) == 1


values_and_masks = st.integers(1, 8).flatmap(
    lambda k: st.tuples(
        st.lists(st.floats(-1e3, 1e3, width=32), min_size=k, max_size=k),
        st.lists(st.booleans(), min_size=k, max_size=k),
    )
)


@given(values_and_masks)
def test_masked_reductions_are_numpys_over_the_mask(case):
    values, mask = np.array(case[0], np.float32), np.array(case[1])
    kept = values[mask].astype(np.float64)
    for reduce, plain in ((MASKED_MEAN, np.mean), (MASKED_MAX, np.max), (MASKED_MIN, np.min)):
        got = float(reduce(jnp.asarray(values), jnp.asarray(mask)))
        if kept.size:
            assert got == pytest.approx(plain(kept), rel=1e-5, abs=1e-3)
        else:
            assert np.isnan(got)


@given(
    st.integers(2, 6).flatmap(
        lambda n: st.tuples(
            st.lists(st.lists(st.floats(-5, 5, width=32), min_size=2, max_size=2), min_size=n, max_size=n),
            st.lists(st.lists(st.floats(-5, 5, width=32), min_size=2, max_size=2), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
            st.lists(st.booleans(), min_size=n, max_size=n),
        )
    )
)
def test_contraction_is_the_ratio_of_diameters_or_nan_when_the_inputs_agree(case):
    before, after = np.array(case[0], np.float32), np.array(case[1], np.float32)
    wrote, finished = np.array(case[2]), np.array(case[3])

    def diameter(points, mask):
        chosen = points[mask].astype(np.float64)
        return max((np.linalg.norm(p - q) for p in chosen for q in chosen), default=np.nan)

    spread = diameter(before, wrote)
    scale = float(np.max(np.abs(before[wrote]), initial=0.0))
    got = float(CONTRACTION(jnp.asarray(before), jnp.asarray(wrote), jnp.asarray(after), jnp.asarray(finished)))
    if spread > 1e-3 * (1.0 + scale) * (1 + 1e-5):
        expected = diameter(after, finished) / spread  # NaN when no process finished
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-6, nan_ok=True)
    elif not spread > 1e-3 * (1.0 + scale) * (1 - 1e-5):  # NaN when nobody wrote
        assert np.isnan(got)



@pytest.mark.parametrize("scenarios", [1, 255, 256, 1024])
def test_a_nan_value_makes_every_max_and_min_nan_at_any_batch_size(scenarios):
    """XLA's CPU max/min reductions dropped NaN once a vmapped batch held about 256 lanes:
    a max over NaN read -inf, and max(1, NaN) read 1, so a metric depended on the chunk size
    (safe_residual_max of the mean rule -inf from 256 scenarios on, NaN below)."""
    values = jnp.asarray([1.0, jnp.nan, 3.0, 2.0] * 4, jnp.float32)
    mask = jnp.ones((scenarios, 16), bool)
    every = {
        "masked_max": lambda m: metrics.masked_max(values, m),
        "masked_min": lambda m: metrics.masked_min(values, m),
        "disagreement": lambda m: metrics.disagreement(values[:, None], m),
    }
    for name, reduce in every.items():
        out = np.asarray(jax.jit(jax.vmap(reduce))(mask))
        assert np.isnan(out).all(), name
    masked_out = mask & (jnp.arange(16) % 4 != 1)  # the NaN entries are not measured
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(every["masked_max"]))(masked_out)), 3.0)
