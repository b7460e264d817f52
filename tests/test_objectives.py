"""Tests of ftsgd_jax.objectives: gradients, noise statistics, optima, config validation, LIBSVM."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ftsgd_jax import rng
from ftsgd_jax.datasets import read_libsvm
from ftsgd_jax.errors import ConfigError
from ftsgd_jax.objectives import (
    OBJECTIVES,
    Objective,
    ObjectiveKind,
    gaussian_stochastic_grad,
    gaussian_variance,
    make_objective,
    objective_defaults,
    stochastic_grad_columns,
)

DATA = Path(__file__).parent / "data"

# Small instances of the built-in kinds, so that every test compiles and runs in milliseconds.
SMALL = {
    "quadratic": {"kind": "quadratic", "dim": 5, "mu": 0.5, "L": 4.0, "sigma": 0.7, "x_star": "random"},
    "logistic": {"kind": "logistic", "dim": 6, "samples": 64, "batch": 4, "lam": 0.05},
    "double_well": {"kind": "double_well", "dim": 3, "sigma": 0.5},
    "mlp": {"kind": "mlp", "inputs": 3, "hidden": 4, "samples": 48, "batch": 4},
}
KINDS = tuple(OBJECTIVES)


def _point(obj: Objective, seed: int = 0, scale: float = 0.5) -> jax.Array:
    rng = np.random.default_rng(seed)
    return jnp.asarray(np.asarray(obj.x0) + scale * rng.standard_normal(obj.dim), obj.x0.dtype)


# Jitted: an eager jax.hessian dispatches op by op and costs ~0.4 s a call.
_hessian = jax.jit(jax.hessian(lambda obj, x: obj.loss(x), argnums=1))


def _q_ref(x):
    """The 1-d double well, written out independently of the module."""
    return -np.exp(-((x - 1) ** 2)) - np.exp(-((x + 1) ** 2))


# ------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("kind", KINDS)
def test_grad_matches_autodiff_and_finite_differences(kind):
    with jax.enable_x64(True):
        obj = make_objective(SMALL[kind])
        assert obj.x0.dtype == jnp.float64
        x = _point(obj, seed=1)
        g = np.asarray(obj.grad(x))
        np.testing.assert_allclose(g, np.asarray(jax.grad(obj.loss)(x)), rtol=1e-12, atol=1e-14)
        h = 1e-6
        steps = h * np.eye(obj.dim)
        # Central differences: truncation ~h^2, round-off ~1e-16/h, both far below 1e-7.
        fd = (np.asarray(jax.vmap(obj.loss)(x + steps)) - np.asarray(jax.vmap(obj.loss)(x - steps))) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_default_dtype_is_float32(kind):
    obj = make_objective(SMALL[kind])
    x = _point(obj)
    assert obj.x0.dtype == jnp.float32
    assert obj.loss(x).dtype == jnp.float32
    assert obj.stochastic_grad(x, rng.seed_key(0)).dtype == jnp.float32


def test_wrong_shape_of_x_is_a_clear_error():
    obj = make_objective(SMALL["quadratic"])
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        obj.loss(jnp.zeros(4))


# --------------------------------------------------------------------- noise statistics

DRAWS = 20_000


def _keys(seed: int, count: int) -> jax.Array:
    return jax.vmap(lambda i: rng.fold_in(rng.seed_key(seed), i))(jnp.arange(count))


# One jitted function for all tests: the objective is an argument, so tests that draw from
# the same objective share one compilation.
_draw_many = jax.jit(lambda obj, x, keys: jax.vmap(obj.stochastic_grad, in_axes=(None, 0))(x, keys))


def _draws(obj: Objective, x: jax.Array) -> np.ndarray:
    keys = _keys(11, DRAWS)
    return np.asarray(_draw_many(obj, x, keys), np.float64)


@pytest.mark.parametrize("kind", KINDS)
def test_stochastic_gradient_is_unbiased(kind):
    obj = make_objective(SMALL[kind])
    x = _point(obj, seed=2)
    G = _draws(obj, x)
    g = np.asarray(obj.grad(x), np.float64)
    standard_error = G.std(axis=0, ddof=1) / math.sqrt(DRAWS)
    # 5 standard errors per coordinate; 1e-5 absorbs float32 rounding where the noise is 0.
    assert np.all(np.abs(G.mean(axis=0) - g) <= 5 * standard_error + 1e-5)


@pytest.mark.parametrize("kind", ["quadratic", "double_well"])
def test_gaussian_noise_has_total_variance_sigma_squared(kind):
    obj = make_objective(SMALL[kind])
    x = _point(obj, seed=3)
    G = _draws(obj, x)
    g = np.asarray(obj.grad(x), np.float64)
    # sum ||G - g||^2 * d / sigma^2 is chi-square with DRAWS * d degrees of freedom.
    statistic = np.sum((G - g) ** 2) * obj.dim / obj.sigma**2
    dof = DRAWS * obj.dim
    assert stats.chi2.ppf(1e-6, dof) < statistic < stats.chi2.isf(1e-6, dof)
    assert float(obj.noise_variance(x)) == pytest.approx(obj.sigma**2)


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_minibatch_noise_variance_matches_monte_carlo(kind):
    obj = make_objective(SMALL[kind])
    x = _point(obj, seed=4)
    G = _draws(obj, x)
    sq = np.sum((G - np.asarray(obj.grad(x), np.float64)) ** 2, axis=1)
    assert abs(sq.mean() - float(obj.noise_variance(x))) <= 6 * sq.std(ddof=1) / math.sqrt(DRAWS)


def test_logistic_noise_variance_matches_numpy_formula():
    with jax.enable_x64(True):
        obj = make_objective(SMALL["logistic"])
        x = np.asarray(_point(obj, seed=5))
        A, b = np.asarray(obj.data["A"]), np.asarray(obj.data["b"])
        per_sample = (-b / (1 + np.exp(b * (A @ x))))[:, None] * A
        expected = np.mean(np.sum((per_sample - per_sample.mean(0)) ** 2, axis=1)) / obj.batch
        assert float(obj.noise_variance(jnp.asarray(x))) == pytest.approx(expected, rel=1e-12)


def test_zero_sigma_gives_the_exact_gradient():
    obj = make_objective({"kind": "quadratic", "dim": 4, "sigma": 0.0})
    x = _point(obj)
    np.testing.assert_array_equal(obj.stochastic_grad(x, rng.seed_key(0)), obj.grad(x))


# ------------------------------------------------------------------ vmap, keys, pytree


# vmap over scenarios (outer) and processes (inner), as the engine does; jitted once per kind.
_batched = jax.jit(
    lambda obj, xs, keys: (
        jax.vmap(jax.vmap(obj.loss))(xs),
        jax.vmap(jax.vmap(obj.grad))(xs),
        jax.vmap(jax.vmap(obj.stochastic_grad))(xs, keys),
    )
)


@pytest.mark.parametrize("kind", KINDS)
def test_vmap_over_x_and_key_equals_loop(kind):
    obj = make_objective(SMALL[kind])
    keys = _keys(3, 6).reshape(2, 3, 2)
    xs = jnp.stack([_point(obj, seed=s) for s in range(6)]).reshape(2, 3, obj.dim)
    losses, grads, sgrads = _batched(obj, xs, keys)
    assert sgrads.shape == (2, 3, obj.dim)
    for s in range(2):
        for p in range(3):
            x = xs[s, p]
            np.testing.assert_allclose(losses[s, p], obj.loss(x), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(grads[s, p], obj.grad(x), rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(sgrads[s, p], obj.stochastic_grad(x, keys[s, p]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_gradient_columns_are_the_per_process_gradients_side_by_side(kind):
    obj = make_objective(SMALL[kind])
    keys = _keys(4, 5)
    xs = jnp.stack([_point(obj, seed=s) for s in range(5)])
    columns = np.asarray(jax.jit(stochastic_grad_columns)(obj, xs, keys))
    assert columns.shape == (obj.dim, 5)
    for p in range(5):
        np.testing.assert_allclose(columns[:, p], obj.stochastic_grad(xs[p], keys[p]), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", KINDS)
def test_objective_is_a_pytree_that_passes_through_jit(kind):
    obj = make_objective(SMALL[kind])
    x = _point(obj)
    leaves, treedef = jax.tree_util.tree_flatten(obj)
    rebuilt = jax.tree_util.tree_unflatten(treedef, leaves)
    assert rebuilt.kind == obj.kind and rebuilt.dim == obj.dim
    jitted = jax.jit(lambda o, x, k: (o.loss(x), o.grad(x), o.stochastic_grad(x, k)))
    loss, grad, sgrad = jitted(obj, x, rng.seed_key(1))
    np.testing.assert_allclose(loss, obj.loss(x), rtol=1e-5)
    np.testing.assert_allclose(grad, obj.grad(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sgrad, obj.stochastic_grad(x, rng.seed_key(1)), rtol=1e-5, atol=1e-6)


# -------------------------------------------------------------------------- quadratic


@settings(max_examples=8, deadline=None)
@given(
    dim=st.integers(1, 8),
    mu=st.floats(0.01, 10.0),
    ratio=st.floats(1.0, 100.0),
    fill=st.floats(-5.0, 5.0),
)
def test_quadratic_optimum_and_spectrum(dim, mu, ratio, fill):
    L = mu if dim == 1 else mu * ratio
    with jax.enable_x64(True):
        obj = make_objective({"kind": "quadratic", "dim": dim, "mu": mu, "L": L, "x_star": fill})
        np.testing.assert_array_equal(obj.x_star, np.full(dim, fill))
        assert float(obj.loss(obj.x_star)) == 0.0 == obj.q_star
        np.testing.assert_array_equal(obj.grad(obj.x_star), np.zeros(dim))
        hessian = np.asarray(_hessian(obj, obj.x0))
        np.testing.assert_allclose(np.linalg.eigvalsh(hessian), np.linspace(mu, L, dim), rtol=1e-12)
        assert (obj.mu, obj.L) == (mu, L)


def test_quadratic_isotropic_and_explicit_vectors():
    obj = make_objective({"kind": "quadratic", "dim": 3, "mu": 2.0, "L": 2.0, "x0": [1, 2, 3], "x_star": [0, 0, 1]})
    np.testing.assert_array_equal(obj.data["h"], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(obj.x0, [1.0, 2.0, 3.0])
    assert float(obj.loss(obj.x0)) == pytest.approx(0.5 * 2.0 * (1 + 4 + 4))


def test_quadratic_random_x_star_is_reproducible_from_data_seed():
    a = make_objective({"kind": "quadratic", "x_star": "random", "data_seed": 4})
    b = make_objective({"kind": "quadratic", "x_star": "random", "data_seed": 4}, seed=99)
    c = make_objective({"kind": "quadratic", "x_star": "random", "data_seed": 5})
    np.testing.assert_array_equal(a.x_star, b.x_star)
    assert not np.array_equal(a.x_star, c.x_star)


def test_quadratic_grad_bound_holds_on_the_ball():
    obj = make_objective({"kind": "quadratic", "dim": 4, "mu": 0.5, "L": 3.0, "x_star": "random"})
    rng = np.random.default_rng(0)
    radius = 2.0
    directions = rng.standard_normal((200, 4))
    xs = np.asarray(obj.x0) + radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)
    norms = np.linalg.norm(np.asarray(jax.vmap(obj.grad)(jnp.asarray(xs, jnp.float32))), axis=1)
    assert norms.max() <= obj.grad_bound(radius) * (1 + 1e-6)
    assert obj.g_max is None  # the gradient of a quadratic is unbounded on R^d


def test_gaussian_tail_bound_holds_with_the_stated_probability():
    obj = make_objective({"kind": "quadratic", "dim": 4, "sigma": 2.0})
    x = obj.x0
    G = _draws(obj, x)
    bound = obj.grad_bound(0.0, tail=0.05)
    assert bound > obj.grad_bound(0.0)
    assert np.mean(np.linalg.norm(G, axis=1) > bound) <= 0.05


# ------------------------------------------------------------------------- double well


def test_double_well_minima_q_star_and_critical_point():
    with jax.enable_x64(True):
        obj = make_objective({"kind": "double_well", "dim": 3})
        assert obj.x_star is None
        x_m = obj.facts["minimizer"]
        assert 0.9 < x_m < 1.0
        grid = np.linspace(-3.0, 3.0, 600_001)
        values = _q_ref(grid)
        # The grid step is 1e-5: q varies by ~q''/2 * 1e-10 near the minimum.
        assert abs(abs(grid[np.argmin(values)]) - x_m) < 2e-5
        assert obj.q_star == pytest.approx(3 * values.min(), abs=1e-9)
        for signs in ([1, 1, 1], [1, -1, 1], [-1, -1, 1]):
            x = jnp.asarray(signs, jnp.float64) * x_m
            assert float(obj.loss(x)) == pytest.approx(obj.q_star, abs=1e-14)
            np.testing.assert_allclose(obj.grad(x), 0.0, atol=1e-14)
        zero = jnp.zeros(3)
        np.testing.assert_array_equal(obj.x0, zero)
        np.testing.assert_array_equal(obj.grad(zero), np.zeros(3))
        hessian = np.asarray(_hessian(obj, zero))
        np.testing.assert_allclose(hessian, -4 / math.e * np.eye(3), rtol=1e-12)  # a maximum


def test_double_well_1d_is_the_design_function():
    obj = make_objective({"kind": "double_well"})
    xs = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(jax.vmap(obj.loss)(jnp.asarray(xs[:, None], jnp.float32)), _q_ref(xs), rtol=1e-6, atol=1e-7)


def test_double_well_constants_bound_the_derivatives():
    obj = make_objective({"kind": "double_well", "dim": 2})
    grid = np.linspace(-6, 6, 120_001)
    dq = 2 * (grid - 1) * np.exp(-((grid - 1) ** 2)) + 2 * (grid + 1) * np.exp(-((grid + 1) ** 2))
    d2q = np.gradient(dq, grid)
    assert np.abs(d2q).max() <= obj.L <= np.abs(d2q).max() * 1.001
    assert math.sqrt(2) * np.abs(dq).max() <= obj.g_max <= math.sqrt(2) * np.abs(dq).max() * 1.001
    assert obj.grad_bound(100.0) == obj.g_max


# ---------------------------------------------------------------------------- logistic


def _logistic_ref(A, b, lam, x):
    return np.mean(np.logaddexp(0.0, -b * (A @ x))) + 0.5 * lam * x @ x


def test_libsvm_round_trip_matches_numpy_reference(tmp_path):
    text = "# comment\n1 3:0.5 1:-1.25\n\n0 2:2e-1   # trailing comment\n1\n0 1:3 3:-0.75 2:1\n"
    path = tmp_path / "tiny.svm"
    path.write_text(text)
    A, b = read_libsvm(path)
    expected = np.array([[-1.25, 0, 0.5], [0, 0.2, 0], [0, 0, 0], [3, 1, -0.75]])
    np.testing.assert_array_equal(A, expected)
    np.testing.assert_array_equal(b, [1, -1, 1, -1])
    with jax.enable_x64(True):
        obj = make_objective({"kind": "logistic", "path": str(path), "lam": 0.1, "dim": 5})
        assert obj.dim == 5 and obj.config["samples"] == 4 and obj.config["dim"] == 5
        padded = np.pad(expected, ((0, 0), (0, 2)))
        x = np.random.default_rng(0).standard_normal(5)
        assert float(obj.loss(jnp.asarray(x))) == pytest.approx(_logistic_ref(padded, b, 0.1, x), rel=1e-13)
        weights = -b / (1 + np.exp(b * (padded @ x)))
        np.testing.assert_allclose(obj.grad(jnp.asarray(x)), padded.T @ weights / 4 + 0.1 * x, rtol=1e-12)


def test_bundled_libsvm_file_loads():
    obj = make_objective({"kind": "logistic", "path": str(DATA / "tiny.libsvm"), "samples": 3})
    assert obj.dim == 4 and obj.data["A"].shape == (3, 4)
    np.testing.assert_array_equal(obj.data["b"], [1, -1, 1])


@pytest.mark.parametrize(
    "labels, expected",
    [(["-1", "+1"], [-1, 1]), (["0", "1"], [-1, 1]), (["1", "2"], [-1, 1]), (["2", "1"], [1, -1]), (["1", "1"], [1, 1])],
)
def test_libsvm_label_sets_map_to_plus_minus_one(tmp_path, labels, expected):
    path = tmp_path / "labels.svm"
    path.write_text("".join(f"{lab} 1:1\n" for lab in labels))
    np.testing.assert_array_equal(read_libsvm(path)[1], expected)


@settings(max_examples=15, deadline=None)
@given(
    matrix=st.integers(1, 6).flatmap(
        lambda d: st.lists(
            st.lists(st.sampled_from([0.0, 1.5, -2.25, 1e-3, 7.0]), min_size=d, max_size=d), min_size=1, max_size=6
        )
    ),
    data=st.data(),
)
def test_libsvm_write_then_read_is_identity(tmp_path_factory, matrix, data):
    A = np.asarray(matrix)
    b = np.asarray(data.draw(st.lists(st.sampled_from([-1, 1]), min_size=len(A), max_size=len(A))))
    lines = []
    for row, label in zip(A, b):
        entries = [f"{j + 1}:{float(v)!r}" for j, v in enumerate(row) if v != 0]
        lines.append(" ".join([f"{label:+d}", *data.draw(st.permutations(entries))]))
    path = tmp_path_factory.mktemp("svm") / "m.svm"
    path.write_text("\n".join(lines) + "\n")
    A_read, b_read = read_libsvm(path)
    # Trailing all-zero columns are invisible in the file format.
    width = A_read.shape[1]
    np.testing.assert_array_equal(A_read, A[:, :width])
    assert not A[:, width:].any()
    np.testing.assert_array_equal(b_read, b)


def test_logistic_constants():
    with jax.enable_x64(True):
        obj = make_objective({"kind": "logistic", "samples": 200, "dim": 5, "lam": 0.02})
        A = np.asarray(obj.data["A"])
        a_max = np.linalg.norm(A, axis=1).max()
        assert obj.mu == 0.02 and obj.x_star is None and obj.q_star is None
        assert obj.facts["a_max"] == pytest.approx(a_max)
        assert obj.L <= a_max**2 / 4 + 0.02
        for seed in range(3):
            eig = np.linalg.eigvalsh(np.asarray(_hessian(obj, _point(obj, seed, scale=2.0))))
            assert 0.02 - 1e-12 <= eig.min() and eig.max() <= obj.L + 1e-12
        # Minibatch gradients are bounded surely on the ball around x0.
        keys = _keys(0, 500)
        x = obj.x0 + 3.0 / math.sqrt(5)
        norms = np.linalg.norm(np.asarray(_draw_many(obj, x, keys)), axis=1)
        assert norms.max() <= obj.grad_bound(3.0) + 1e-12


def test_logistic_synthetic_data_is_planted_and_reproducible():
    a = make_objective({"kind": "logistic"})
    b = make_objective({"kind": "logistic", "data_seed": 0}, seed=7)
    assert a.data["A"].shape == (512, 10)
    np.testing.assert_array_equal(a.data["A"], b.data["A"])
    np.testing.assert_array_equal(a.data["b"], b.data["b"])
    assert set(np.unique(np.asarray(a.data["b"]))) == {-1.0, 1.0}
    # Gradient descent from 0 fits the planted separator well despite 10% label noise.
    x = a.x0
    for _ in range(200):
        x = x - 2.0 * a.grad(x)
    accuracy = np.mean(np.sign(np.asarray(a.data["A"] @ x)) == np.asarray(a.data["b"]))
    assert accuracy > 0.8


def test_data_seed_run_uses_the_run_seed():
    by_run = make_objective({"kind": "logistic", "data_seed": "run"}, seed=3)
    explicit = make_objective({"kind": "logistic", "data_seed": 3})
    np.testing.assert_array_equal(by_run.data["A"], explicit.data["A"])
    assert by_run.config["data_seed"] == 3
    with pytest.raises(ConfigError) as err:
        make_objective({"kind": "logistic", "data_seed": "run"}, seed=-1)
    assert err.value.field == "seed"


# --------------------------------------------------------------------------------- mlp


def test_mlp_shape_init_and_descent():
    obj = make_objective({"kind": "mlp", "inputs": 3, "hidden": 5, "samples": 128})
    assert obj.dim == 5 * (3 + 2) + 1 == obj.config["dim"]
    assert obj.x_star is None and obj.q_star is None and obj.grad_bound(1.0) is None
    again = make_objective({"kind": "mlp", "inputs": 3, "hidden": 5, "samples": 64, "dim": 26})
    np.testing.assert_array_equal(obj.x0, again.x0)  # the init does not depend on samples
    assert np.any(np.asarray(obj.x0) != 0)
    x = obj.x0
    step = jax.jit(lambda x: x - 0.2 * obj.grad(x))
    for _ in range(100):
        x = step(x)
    assert float(obj.loss(x)) < 0.5 * float(obj.loss(obj.x0))


# ----------------------------------------------------------------------- config surface


@pytest.mark.parametrize("kind", KINDS)
def test_defaults_are_complete_and_round_trip(kind):
    defaults = objective_defaults(kind)
    assert list(defaults) == ["kind", *OBJECTIVES[kind].defaults] and defaults["kind"] == kind
    obj = make_objective(defaults)
    again = make_objective(obj.config)
    assert again.config == obj.config
    for a, b in zip(jax.tree_util.tree_leaves(obj), jax.tree_util.tree_leaves(again)):
        np.testing.assert_array_equal(a, b)


def test_kind_defaults_to_quadratic():
    assert make_objective({}).kind == "quadratic"


@pytest.mark.parametrize(
    "spec, field, words",
    [
        ({"kind": "quadratic", "dim": 0}, "objective.dim", "in [1, "),
        ({"kind": "quadratic", "dim": -3}, "objective.dim", "in [1, "),
        ({"kind": "quadratic", "dim": 2.5}, "objective.dim", "integer"),
        ({"kind": "quadratic", "dim": True}, "objective.dim", "integer"),
        ({"kind": "quadratic", "mu": 2.0, "L": 1.0}, "objective.L", "objective.mu"),
        ({"kind": "quadratic", "mu": 0.0}, "objective.mu", "> 0"),
        ({"kind": "quadratic", "sigma": -1.0}, "objective.sigma", ">= 0"),
        ({"kind": "double_well", "sigma": -0.1}, "objective.sigma", ">= 0"),
        ({"kind": "quadratic", "sigma": float("nan")}, "objective.sigma", "finite"),
        ({"kind": "quadratic", "sigma": "1"}, "objective.sigma", "number"),
        ({"kind": "quadratic", "simga": 1.0}, "objective.simga", "did you mean 'sigma'"),
        ({"kind": "logistic", "sigma": 1.0}, "objective.sigma", "allowed: kind, dim"),
        ({"kind": "quadratc"}, "objective.kind", "did you mean 'quadratic'"),
        ({"kind": "quadratic", "dim": 3, "x0": [1, 2]}, "objective.x0", "3 entries"),
        ({"kind": "quadratic", "x0": [1, "a"]}, "objective.x0[1]", "number"),
        ({"kind": "quadratic", "x_star": "origin"}, "objective.x_star", "'random'"),
        ({"kind": "quadratic", "dim": 1, "mu": 1.0, "L": 2.0}, "objective.L", "dim = 1"),
        ({"kind": "logistic", "batch": 0}, "objective.batch", "in [1, "),
        ({"kind": "logistic", "label_noise": 0.5}, "objective.label_noise", "in [0, 0.5)"),
        ({"kind": "logistic", "lam": -1}, "objective.lam", ">= 0"),
        ({"kind": "logistic", "dim": -1}, "objective.dim", "0 (automatic)"),
        ({"kind": "logistic", "samples": 1.5}, "objective.samples", "0 (automatic)"),
        ({"kind": "logistic", "path": 3}, "objective.path", "path"),
        ({"kind": "logistic", "dim": 4, "x0": [0.0] * 5}, "objective.x0", "4 entries"),
        ({"kind": "mlp", "dim": 5}, "objective.dim", "hidden * (inputs + 2) + 1 = 97"),
        ({"kind": "mlp", "init_scale": 0}, "objective.init_scale", "> 0"),
        ({"kind": "mlp", "hidden": 0}, "objective.hidden", "in [1, "),
        ({"kind": "mlp", "data_seed": -1}, "objective.data_seed", ">= 0"),
        ({"kind": "mlp", "data_seed": "abc"}, "objective.data_seed", "'run'"),
        ({"kind": "mlp", 3: 1}, "objective", "strings"),
        ("quadratic", "objective", "table"),
    ],
)
def test_bad_config_raises_config_error_naming_the_field(spec, field, words):
    with pytest.raises(ConfigError) as err:
        make_objective(spec)
    assert err.value.field == field
    assert words in str(err.value)


def test_objective_defaults_rejects_unknown_kind():
    with pytest.raises(ConfigError, match="objective.kind"):
        objective_defaults("quad")


def test_every_kind_has_a_small_instance():
    assert set(SMALL) == set(OBJECTIVES)


@pytest.mark.parametrize(
    "defaults, words",
    [({"dim": 2, "radius": 1.0}, "radius"), ({"kind": "ball", "dim": 2}, "'kind'")],
)
def test_a_kind_with_an_unchecked_key_or_its_own_kind_key_is_refused_at_registration(defaults, words):
    def build(cfg):
        raise AssertionError("never built")

    with pytest.raises(ValueError, match=words):
        ObjectiveKind(defaults, build, lambda obj, x: x, lambda obj, x: x, gaussian_stochastic_grad, gaussian_variance)


@pytest.mark.parametrize(
    "content, lineno, words",
    [
        ("1 1:0.5\n1 2-0.5\n", 2, "index:value"),
        ("1 1:0.5\n\n-1 0:1\n", 3, "1-based"),
        ("x 1:1\n", 1, "label 'x'"),
        ("1 1:a\n", 1, "index:value"),
        ("1 1.5:1\n", 1, "index:value"),
        ("1 1:1 1:2\n", 1, "repeats"),
        ("1 1:inf\n", 1, "not finite"),
        ("1 1:1\n3 1:1\n", 2, "label 3"),
    ],
)
def test_malformed_libsvm_line_names_file_and_line(tmp_path, content, lineno, words):
    path = tmp_path / "bad.svm"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        make_objective({"kind": "logistic", "path": str(path)})
    assert err.value.field == "objective.path"
    assert f"{path}:{lineno}:" in str(err.value) and words in str(err.value)


def test_libsvm_file_level_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        make_objective({"kind": "logistic", "path": str(tmp_path / "missing.svm")})
    assert err.value.field == "objective.path" and "missing.svm" in str(err.value)
    empty = tmp_path / "empty.svm"
    empty.write_text("# nothing\n\n")
    with pytest.raises(ConfigError, match="no samples"):
        read_libsvm(empty)
    mixed = tmp_path / "mixed.svm"
    mixed.write_text("-1 1:1\n0 1:1\n1 1:1\n")
    with pytest.raises(ConfigError, match=r"one of \{-1, \+1\}"):
        read_libsvm(mixed)
    wide = tmp_path / "wide.svm"
    wide.write_text("1 7:1\n0 1:1\n")
    with pytest.raises(ConfigError) as err:
        make_objective({"kind": "logistic", "path": str(wide), "dim": 3})
    assert err.value.field == "objective.dim" and "7" in str(err.value)
    with pytest.raises(ConfigError) as err:
        make_objective({"kind": "logistic", "path": str(wide), "samples": 3})
    assert err.value.field == "objective.samples" and "only 2" in str(err.value)
