"""Tests of ftsgd_jax.agreement against plain NumPy / SciPy references (LPs in float64)."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog, nnls

from ftsgd_jax import agreement as ag
from ftsgd_jax import safe_area
from ftsgd_jax.errors import ConfigError

K = 8  # padded capacity of every point set below: one compile per (K, d)
GARBAGE = 3.0e29  # finite junk in masked rows; it must never reach a result
FAST = settings(max_examples=25, deadline=None)

diameter = jax.jit(ag.diameter)
project = jax.jit(ag.project_to_hull)
in_hull = jax.jit(ag.in_hull)
depth = jax.jit(ag.tukey_depth)
depth_tol = jax.jit(lambda p, m, y: ag.tukey_depth(p, m, y, tol=1e-4))
safe = jax.jit(ag.safe_area_point, static_argnums=2)  # f static, as the engine passes it
apply_rule = jax.jit(ag.apply_rule, static_argnums=0)
K_SIMPLEX = 12  # capacity of the repeated-simplex cases (up to 4 vertices x 2 + 1)


# ----------------------------------------------------------------------------- references


def pad(points, capacity=K, seed=0):
    """Scatter ``points`` into ``capacity`` rows at random positions; the rest is garbage."""
    points = np.asarray(points, float)
    k, d = points.shape
    rng = np.random.default_rng(seed)
    rows = rng.permutation(capacity)[:k]
    out = rng.choice([-1.0, 1.0], size=(capacity, d)) * GARBAGE
    out[rows] = points
    mask = np.zeros(capacity, bool)
    mask[rows] = True
    return out, mask


def hull_distance_inf(points, y):
    """L-infinity distance from y to conv(points) by an LP (0 iff y is in the hull)."""
    points = np.asarray(points, float)
    k, d = points.shape
    # variables: w (k), s; minimise s with -s <= P^T w - y <= s, w >= 0, sum w = 1
    c = np.r_[np.zeros(k), 1.0]
    a_ub = np.block([[points.T, -np.ones((d, 1))], [-points.T, -np.ones((d, 1))]])
    b_ub = np.r_[y, -np.asarray(y, float)]
    a_eq = np.r_[np.ones(k), 0.0][None, :]
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=[(0, None)] * (k + 1), method="highs")
    assert res.status == 0
    return res.fun


def safe_area_gap(points, f):
    """min over x of the largest L-inf distance from x to conv(T), T of size m - f: 0 iff Safe_f
    is non-empty (one LP with a copy of the weights per subset)."""
    points = np.asarray(points, float)
    m, d = points.shape
    subsets = list(itertools.combinations(range(m), m - f))
    nw = len(subsets) * (m - f)
    # variables: x (d), weights per subset, s
    nv = d + nw + 1
    rows, rhs, eq_rows = [], [], []
    for t, subset in enumerate(subsets):
        base = d + t * (m - f)
        for sign in (1.0, -1.0):
            for axis in range(d):
                row = np.zeros(nv)
                row[axis] = -sign
                row[base : base + m - f] = sign * points[list(subset), axis]
                row[-1] = -1.0
                rows.append(row)
                rhs.append(0.0)
        eq = np.zeros(nv)
        eq[base : base + m - f] = 1.0
        eq_rows.append(eq)
    c = np.zeros(nv)
    c[-1] = 1.0
    bounds = [(None, None)] * d + [(0, None)] * (nw + 1)
    res = linprog(c, A_ub=np.array(rows), b_ub=rhs, A_eq=np.array(eq_rows), b_eq=np.ones(len(subsets)), bounds=bounds, method="highs")
    assert res.status == 0
    return res.fun


def project_reference(points, y):
    """Projection onto conv(points) by NNLS with a heavily weighted sum-to-one row."""
    points = np.asarray(points, float)
    big = 1e5
    a = np.vstack([points.T, big * np.ones(len(points))])
    w, _ = nnls(a, np.r_[y, big], maxiter=10_000)
    return w @ points


def depth_reference_2d(points, y):
    """Exact planar Tukey depth: closed-halfplane counts at the middle of every open arc between
    critical angles (independent of the library's lexicographic method)."""
    v = np.asarray(points, float) - np.asarray(y, float)
    away = np.linalg.norm(v, axis=1) > 0
    at_y = int(np.sum(~away))
    if not away.any():
        return at_y
    ang = np.arctan2(v[away, 1], v[away, 0])
    crit = np.sort(np.mod(np.r_[ang + np.pi / 2, ang - np.pi / 2], 2 * np.pi))
    crit = crit[np.r_[True, np.diff(crit) > 1e-9]]
    nxt = np.r_[crit[1:], crit[0] + 2 * np.pi]
    mids = 0.5 * (crit + nxt)
    u = np.stack([np.cos(mids), np.sin(mids)], axis=1)
    counts = at_y + np.sum(v[away] @ u.T >= -1e-9, axis=0)
    return int(counts.min())


def depth_reference_1d(points, y):
    x = np.asarray(points, float)[:, 0]
    return int(min(np.sum(x <= y[0]), np.sum(x >= y[0])))


def grid_points(d, min_size=1, max_size=K, lo=-3, hi=3):
    """Small integer point sets: many ties, duplicates and collinear triples."""
    return st.lists(st.tuples(*[st.integers(lo, hi)] * d), min_size=min_size, max_size=max_size).map(
        lambda rows: np.array(rows, float)
    )


def gauss_points(d, min_size=1, max_size=K):
    return st.tuples(st.integers(min_size, max_size), st.integers(0, 2**31 - 1), st.sampled_from([0.01, 1.0, 100.0])).map(
        lambda a: np.random.default_rng(a[1]).standard_normal((a[0], d)) * a[2]
    )


def simplex(d):
    return np.vstack([np.zeros(d), np.eye(d)])


def scale_of(points):
    return max(1.0, float(np.max(np.abs(points))))


# ----------------------------------------------------------------------------- diameter / hull


@FAST
@given(st.sampled_from([1, 2, 3]).flatmap(lambda d: st.one_of(grid_points(d), gauss_points(d))), st.integers(0, 99))
def test_diameter_matches_bruteforce(points, seed):
    padded, mask = pad(points, seed=seed)
    want = max(np.linalg.norm(a - b) for a in points for b in points)
    got = float(diameter(jnp.asarray(padded, jnp.float32), mask))
    assert got == pytest.approx(want, rel=1e-5, abs=1e-6 * scale_of(points))


def test_diameter_of_one_point_or_none_is_zero():
    padded, mask = pad([[2.0, -1.0]])
    assert float(diameter(padded, mask)) == 0.0
    assert float(diameter(padded, np.zeros(K, bool))) == 0.0


@FAST
@given(st.sampled_from([1, 2, 3]).flatmap(lambda d: gauss_points(d)), st.integers(0, 2**31 - 1), st.sampled_from([0.0, 0.3, 1.0, 3.0]))
def test_project_to_hull_matches_reference(points, seed, spread):
    d = points.shape[1]
    rng = np.random.default_rng(seed)
    s = float(np.max(np.abs(points)))
    y = points[rng.integers(len(points))] * (1 - spread) + spread * s * rng.standard_normal(d)
    padded, mask = pad(points, seed=seed)
    proj, w = project(jnp.asarray(padded, jnp.float32), mask, jnp.asarray(y, jnp.float32))
    w = np.asarray(w, float)
    assert np.all(w >= 0) and np.all(w[~mask] == 0)
    assert w.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(np.asarray(proj), w @ np.where(mask[:, None], padded, 0), atol=1e-5 * s)
    np.testing.assert_allclose(np.asarray(proj), project_reference(points, y), atol=1e-4 * (s + np.abs(y).max()))


def test_project_to_hull_float64_is_tight():
    rng = np.random.default_rng(7)
    with jax.enable_x64(True):
        for _ in range(10):
            points = rng.standard_normal((7, 3))
            y = rng.standard_normal(3) * 2
            padded, mask = pad(points)
            proj, w = project(jnp.asarray(padded), mask, jnp.asarray(y))
            assert proj.dtype == jnp.float64
            np.testing.assert_allclose(np.asarray(proj), project_reference(points, y), atol=1e-8)


def test_project_to_hull_degenerate_sets():
    line = np.array([[0, 0], [1, 1], [2, 2], [2, 2], [3, 3], [0, 0]], float)
    padded, mask = pad(line)
    for y, want in [([1.5, 1.5], [1.5, 1.5]), ([5, 5], [3, 3]), ([1, 2], [1.5, 1.5]), ([-1, 0], [0, 0])]:
        proj, _ = project(padded, mask, np.array(y, float))
        np.testing.assert_allclose(np.asarray(proj), want, atol=1e-5)
    same, mask = pad(np.ones((4, 2)))
    np.testing.assert_allclose(np.asarray(project(same, mask, np.array([0.0, 3.0]))[0]), [1, 1])
    proj, w = project(same, np.zeros(K, bool), np.array([0.0, 3.0]))
    assert np.all(np.asarray(w) == 0) and np.all(np.isfinite(np.asarray(proj)))


@FAST
@given(st.sampled_from([1, 2, 3]).flatmap(lambda d: st.one_of(grid_points(d), gauss_points(d))), st.integers(0, 2**31 - 1))
def test_in_hull_agrees_with_lp(points, seed):
    d = points.shape[1]
    rng = np.random.default_rng(seed)
    s = scale_of(points)
    candidates = [points[rng.integers(len(points), size=3)].mean(axis=0), points.mean(axis=0) + s * rng.standard_normal(d)]
    padded, mask = pad(points, seed=seed)
    for y in candidates:
        inside, residual = in_hull(jnp.asarray(padded, jnp.float32), mask, jnp.asarray(y, jnp.float32))
        gap = hull_distance_inf(points, y)
        if gap <= 1e-9:
            assert bool(inside), (y, float(residual))
        elif gap > 1e-3 * s:
            assert not bool(inside)
            want = np.linalg.norm(y - project_reference(points, y))
            assert float(residual) == pytest.approx(want, rel=1e-3, abs=1e-4 * s)


def test_in_hull_without_points_is_false():
    inside, residual = in_hull(np.zeros((K, 2)), np.zeros(K, bool), np.zeros(2))
    assert not bool(inside) and math.isinf(float(residual))


# ----------------------------------------------------------------------------- Tukey depth


@settings(max_examples=60, deadline=None)
@given(grid_points(2), st.tuples(st.integers(-6, 6), st.integers(-6, 6)), st.integers(0, 99))
def test_tukey_depth_2d_is_exact(points, y2, seed):
    y = np.array(y2, float) / 2  # half-integers too: points on segments between grid points
    padded, mask = pad(points, seed=seed)
    assert int(depth(padded, mask, y)) == depth_reference_2d(points, y)


@FAST
@given(grid_points(1), st.integers(-6, 6), st.integers(0, 99))
def test_tukey_depth_1d_is_exact(points, y2, seed):
    y = np.array([y2 / 2])
    padded, mask = pad(points, seed=seed)
    assert int(depth(padded, mask, y)) == depth_reference_1d(points, y)


def test_tukey_depth_small_cases():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    padded, mask = pad(square)
    assert int(depth(padded, mask, np.array([0.5, 0.5]))) == 2
    assert int(depth(padded, mask, np.array([0.5, 0.0]))) == 1
    assert int(depth(padded, mask, np.array([0.0, 0.0]))) == 1
    assert int(depth(padded, mask, np.array([2.0, 0.0]))) == 0
    assert int(depth(padded, np.zeros(K, bool), np.array([0.0, 0.0]))) == 0
    segment, mask = pad(np.array([[0.0, 0.0], [2.0, 0.0]]))
    assert int(depth(segment, mask, np.array([1.0, 0.0]))) == 1  # closed: the line y = 0 holds both
    same, mask = pad(np.ones((3, 2)))
    assert int(depth(same, mask, np.array([1.0, 1.0]))) == 3


def test_tukey_depth_with_directions_is_an_upper_bound_in_3d():
    rng = np.random.default_rng(3)
    points = rng.standard_normal((K, 3))
    mask = np.ones(K, bool)
    y = points.mean(axis=0)
    few = ag.random_directions(8, 3, seed=1)
    many = np.vstack([few, ag.random_directions(500, 3, seed=2)])
    directed = jax.jit(lambda p, m, y, u: ag.tukey_depth(p, m, y, directions=u))
    d_few = int(directed(points, mask, y, few))
    d_many = int(directed(points, mask, y, many))
    proj = (points - y) @ many.T
    want = int(np.min(np.minimum(np.sum(proj >= 0, axis=0), np.sum(proj <= 0, axis=0))))
    assert d_many == want <= d_few
    assert int(depth(points, mask, y + 100.0)) == 0
    vertices, mask = pad(simplex(3))
    assert int(depth(vertices, mask, simplex(3).mean(axis=0))) == 1


# ----------------------------------------------------------------------------- safe area


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("f", [1, 2])
def test_safe_area_empty_for_repeated_simplex(d, f):
    points = np.repeat(simplex(d), f, axis=0)
    padded, mask = pad(points, capacity=K_SIMPLEX)
    out = safe(jnp.asarray(padded, jnp.float32), mask, f)
    assert not bool(out.nonempty)
    np.testing.assert_allclose(np.asarray(out.point), points.mean(axis=0), atol=1e-6)
    assert float(out.residual) > 0.05
    # one more point anywhere in the hull makes it non-empty: |V| = (d+1) f + 1
    more = np.vstack([points, simplex(d).mean(axis=0)])
    padded, mask = pad(more, capacity=K_SIMPLEX)
    out = safe(jnp.asarray(padded, jnp.float32), mask, f)
    assert bool(out.nonempty)


def check_safe_point(points, f, out, atol):
    """Non-emptiness against the subset LP; a non-empty answer lies in every conv(T)."""
    m = len(points)
    gap = safe_area_gap(points, f) if m > f else math.inf
    if gap <= 1e-9:
        assert bool(out.nonempty)
    elif gap > 1e-3 * scale_of(points):
        assert not bool(out.nonempty)
    if bool(out.nonempty):
        y = np.asarray(out.point, float)
        for subset in itertools.combinations(range(m), m - f):
            assert hull_distance_inf(points[list(subset)], y) <= atol, subset
    w = np.asarray(out.weights, float)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-5)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([1, 2]).flatmap(lambda d: st.one_of(grid_points(d, 1, 7), gauss_points(d, 1, 7))), st.integers(0, 3), st.integers(0, 99))
def test_safe_area_exact_in_low_dimension(points, f, seed):
    padded, mask = pad(points, seed=seed)
    out = safe(jnp.asarray(padded, jnp.float32), mask, f)
    check_safe_point(points, f, out, atol=2e-4 * scale_of(points))
    if bool(out.nonempty):
        assert float(out.residual) <= 2e-4 * scale_of(points)
        if points.shape[1] == 2:
            assert int(depth_tol(jnp.asarray(padded, jnp.float32), mask, out.point)) >= f + 1


def test_safe_area_exact_float64():
    rng = np.random.default_rng(11)
    with jax.enable_x64(True):
        for trial in range(6):
            points = rng.integers(-3, 4, size=(7, 2)).astype(float) if trial % 2 else rng.standard_normal((7, 2))
            padded, mask = pad(points, seed=trial)
            out = safe(jnp.asarray(padded), mask, 2)
            assert out.point.dtype == jnp.float64
            check_safe_point(points, 2, out, atol=1e-9 * scale_of(points))


@FAST
@given(grid_points(1, 1, K), st.integers(0, 4), st.integers(0, 99))
def test_safe_area_1d_is_order_statistic_interval(points, f, seed):
    padded, mask = pad(points, seed=seed)
    out = safe(jnp.asarray(padded, jnp.float32), mask, f)
    v = np.sort(points[:, 0])
    m = len(v)
    tie = f + 1 <= m <= 2 * f and v[f] == v[m - 1 - f]  # [v_(f+1), v_(m-f)] is one point
    assert bool(out.nonempty) == (m >= 2 * f + 1 or tie)
    if m >= 2 * f + 1 or tie:
        assert float(out.point[0]) == pytest.approx(0.5 * (v[f] + v[m - 1 - f]))
        assert float(out.residual) == 0.0


def test_safe_area_square_is_the_crossing_of_diagonals():
    padded, mask = pad(np.array([[0, 0], [2, 0], [2, 2], [0, 2]], float))
    out = safe(padded, mask, 1)
    assert bool(out.nonempty)
    np.testing.assert_allclose(np.asarray(out.point), [1, 1], atol=1e-6)


def test_safe_area_general_d_is_valid_and_deep():
    rng = np.random.default_rng(5)
    points = rng.standard_normal((K_SIMPLEX, 3))
    out = safe(jnp.asarray(points, jnp.float32), np.ones(K_SIMPLEX, bool), 1)
    assert bool(out.nonempty)
    check_safe_point(points, 1, out, atol=1e-4)
    # tight: |V| = (d+1) f + 1, where the safe area is typically tiny
    for seed in range(3):
        points = np.random.default_rng(seed).standard_normal((9, 3))
        padded, mask = pad(points, capacity=K_SIMPLEX, seed=seed)
        out = safe(jnp.asarray(padded, jnp.float32), mask, 2)
        assert bool(out.nonempty) and float(out.residual) < 1e-3
        check_safe_point(points, 2, out, atol=1e-3)
    # the general method on planar data: compare with the exact planar depth
    general_2d = jax.jit(lambda p: safe_area._safe_area_general(p, jnp.ones(K, bool), jnp.int32(2), 400, 1e-4, None))
    for seed in range(3):
        planar = np.random.default_rng(seed).standard_normal((K, 2))
        general = general_2d(jnp.asarray(planar, jnp.float32))
        assert bool(general.nonempty)
        assert depth_reference_2d(planar, np.asarray(general.point, float)) >= 3


def test_safe_area_without_enough_points():
    padded, mask = pad(np.array([[0.0, 1.0], [2.0, 3.0]]))
    out = safe(padded, mask, 2)
    assert not bool(out.nonempty) and math.isinf(float(out.residual))
    np.testing.assert_allclose(np.asarray(out.point), [1.0, 2.0], atol=1e-6)


# ----------------------------------------------------------------------------- rules


def views(n, seed, common=True):
    """Random views; with ``common`` every view holds process 0, so views pairwise intersect."""
    rng = np.random.default_rng(seed)
    v = rng.random((n, n)) < 0.5
    if common:
        v[:, 0] = True
    return v


@FAST
@given(st.sampled_from(["mean", "midpoint", "safe_area"]), st.sampled_from([1, 2, 3]), st.integers(0, 2**31 - 1), st.integers(0, 2))
def test_rules_are_valid(rule, d, seed, f):
    if rule == "midpoint":
        d = 1
    n = 6
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((n, d)) * 3
    view = views(n, seed, common=False)
    view[rng.integers(n)] = False  # a crashed / blocked process
    out = np.asarray(apply_rule(rule, jnp.asarray(values, jnp.float32), view, f), float)
    assert np.all(np.isfinite(out))
    for p in range(n):
        if not view[p].any():
            np.testing.assert_array_equal(out[p], np.float32(values[p]))
        else:
            assert hull_distance_inf(values[view[p]], out[p]) <= 1e-5 * scale_of(values)


@FAST
@given(st.sampled_from([3, 7]), st.sampled_from([1, 3]), st.integers(0, 2**31 - 1))
def test_mean_contracts_by_one_minus_one_over_n(n, d, seed):
    values = np.random.default_rng(seed).standard_normal((n, d))
    view = views(n, seed)
    out = np.asarray(apply_rule("mean", jnp.asarray(values, jnp.float32), view, 0), float)
    before = max(np.linalg.norm(a - b) for a in values for b in values)
    after = max(np.linalg.norm(a - b) for a in out for b in out)
    assert after <= ag.contraction_factor("mean", n, d) * before + 1e-5

def test_the_compiled_midpoint_stays_finite_where_the_range_does_not():
    """0.5 lo + 0.5 hi is finite for every pair of finite floats; XLA rewrote it into
    (lo + hi) 0.5, which overflows above 1.7e38 (and differed from the NumPy reference)."""
    values = jnp.asarray([[2e38], [3e38], [1.0]], jnp.float32)
    view = jnp.asarray([[True, True, False]] * 3)
    compiled = np.asarray(jax.jit(lambda v, w: apply_rule("midpoint", v, w, 0))(values, view), np.float64)
    np.testing.assert_allclose(compiled, 2.5e38, rtol=1e-6)
    wide = jnp.asarray([[-3e38], [3e38], [0.0]], jnp.float32)
    assert np.all(np.asarray(jax.jit(lambda v, w: apply_rule("midpoint", v, w, 0))(wide, view)) == 0.0)



@FAST
@given(st.sampled_from([3, 7]), st.integers(0, 2**31 - 1))
def test_midpoint_halves_the_range(n, seed):
    values = np.random.default_rng(seed).standard_normal((n, 1))
    out = np.asarray(apply_rule("midpoint", jnp.asarray(values, jnp.float32), views(n, seed), 0), float)
    assert np.ptp(out) <= ag.contraction_factor("midpoint", n, 1) * np.ptp(values) + 1e-5


def test_rule_names_and_factors():
    values, view = jnp.zeros((3, 2)), jnp.ones((3, 3), bool)
    with pytest.raises(ConfigError) as err:
        ag.apply_rule("median", values, view)
    assert err.value.field == "algorithm.rule" and "safe_area" in str(err.value)
    with pytest.raises(ConfigError, match="d = 1"):
        ag.apply_rule("midpoint", values, view)
    with pytest.raises(ConfigError):
        ag.contraction_factor("midpoint", 4, 2)
    with pytest.raises(ConfigError):
        ag.contraction_factor("mean", 0, 1)
    assert ag.contraction_factor("mean", 4, 3) == pytest.approx(0.75)
    assert ag.contraction_factor("midpoint", 4, 1) == 0.5
    assert 0 < ag.contraction_factor("safe_area", 4, 2) < 1


def test_empty_views_keep_their_value():
    values = jnp.asarray([[1.0, 2.0], [3.0, 5.0], [-1.0, 0.0]])
    view = jnp.asarray([[True, True, False], [False, False, False], [True, True, True]])
    for rule in ("mean", "safe_area"):
        out = np.asarray(apply_rule(rule, values, view, 0))
        np.testing.assert_array_equal(out[1], [3.0, 5.0])
        assert np.all(np.isfinite(out))


# ----------------------------------------------------------------------------- masking / batching


@pytest.mark.parametrize("d", [1, 2, 3])
def test_masked_rows_never_matter(d):
    rng = np.random.default_rng(d)
    points = rng.standard_normal((5, d))
    y = rng.standard_normal(d)
    a, mask_a = pad(points, seed=1)
    b, mask_b = pad(points, seed=2)
    b[~mask_b] = -b[~mask_b]  # different garbage in different rows
    results = []
    for padded, mask in ((a, mask_a), (b, mask_b)):
        padded = jnp.asarray(padded, jnp.float32)
        sp = safe(padded, mask, 1)
        results.append(
            (
                diameter(padded, mask),
                project(padded, mask, y)[0],
                in_hull(padded, mask, y)[1],
                depth(padded, mask, y),
                sp.point,
                sp.nonempty,
                ag.mean_rule(padded, mask),
            )
        )
        assert np.all(np.asarray(sp.weights)[~mask] == 0)
        assert np.all(np.asarray(project(padded, mask, y)[1])[~mask] == 0)
    for x, z in zip(*results):
        np.testing.assert_allclose(np.asarray(x, float), np.asarray(z, float), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_vmap_equals_loop(d):
    rng = np.random.default_rng(9)
    batch = [pad(rng.standard_normal((rng.integers(1, K + 1), d)), seed=s) for s in range(5)]
    pts = jnp.asarray(np.stack([b[0] for b in batch]), jnp.float32)
    masks = jnp.asarray(np.stack([b[1] for b in batch]))
    ys = jnp.asarray(rng.standard_normal((5, d)), jnp.float32)
    fs = jnp.asarray([0, 1, 2, 1, 0])
    batched = jax.jit(jax.vmap(ag.safe_area_point))(pts, masks, fs)
    proj_b = jax.jit(jax.vmap(ag.project_to_hull))(pts, masks, ys)[0]
    depth_b = jax.jit(jax.vmap(ag.tukey_depth))(pts, masks, ys)
    for i in range(5):
        one = safe(pts[i], masks[i], int(fs[i]))
        if d <= 2 or int(fs[i]) <= 1:  # exact methods: the same point
            np.testing.assert_allclose(np.asarray(batched.point[i]), np.asarray(one.point), atol=1e-5)
        else:  # traced f >= 2 reports the looser centroid-based bound: still an upper bound
            assert float(batched.residual[i]) >= float(one.residual) - 1e-6
        assert bool(batched.nonempty[i]) == bool(one.nonempty)
        np.testing.assert_allclose(np.asarray(proj_b[i]), np.asarray(project(pts[i], masks[i], ys[i])[0]), atol=1e-6)
        assert int(depth_b[i]) == int(depth(pts[i], masks[i], ys[i]))


# ----------------------------------------------------------------------------- safe area vs LP
# The certificate contract: whenever ``nonempty``, the point's TRUE depth violation
# max_{|R| = f} dist(point, conv(V minus R)) (float64 LPs) is within 1e-5 of the views'
# scale and never above ``residual``; ``nonempty`` agrees with the LP's verdict.

K_LP = 10  # capacity of the LP-checked views


def hull_distance_2(points, y):
    """Euclidean distance from y to conv(points) (NNLS reference projection)."""
    return float(np.linalg.norm(np.asarray(y, float) - project_reference(points, y)))


def true_violation(points, f, y, norm="inf"):
    """max over (m - f)-subsets T of dist(y, conv(T)) by float64 LPs (``inf``) or NNLS (``2``)."""
    m = len(points)
    dist = hull_distance_inf if norm == "inf" else hull_distance_2
    return max(dist(points[list(t)], y) for t in itertools.combinations(range(m), m - f))


def badly_scaled(rng, m, d):
    """30% of the points x5, the rest x0.05."""
    big = rng.random(m) < 0.3
    return rng.standard_normal((m, d)) * np.where(big, 5.0, 0.05)[:, None]


def degenerate(rng, m, d, kind):
    if kind == "repeated":
        base = rng.standard_normal((max(1, m // 3), d))
        return base[rng.integers(len(base), size=m)]
    if kind == "collinear":
        return rng.standard_normal(d)[None, :] + rng.standard_normal(m)[:, None] * rng.standard_normal(d)[None, :]
    if kind == "coplanar":
        basis = rng.standard_normal((2, d))
        return rng.standard_normal(d)[None, :] + rng.standard_normal((m, 2)) @ basis
    raise ValueError(kind)


LP_CASES = ["random", "badly_scaled", "repeated", "collinear", "coplanar", "simplex", "simplex_plus_one", "few"]

safe_static = jax.jit(ag.safe_area_point, static_argnums=2)


def lp_case(kind, d, f, seed):
    rng = np.random.default_rng(seed)
    if kind == "simplex":
        return np.repeat(simplex(d), max(f, 1), axis=0) * rng.uniform(0.5, 2.0)
    if kind == "simplex_plus_one":
        return np.vstack([np.repeat(simplex(d), max(f, 1), axis=0), simplex(d).mean(axis=0)])
    lo = (d + 1) * f + 1
    if kind == "few":
        m = int(rng.integers(max(1, f), max(lo, max(1, f) + 1)))
        return rng.standard_normal((m, d))
    m = int(rng.integers(max(2, lo), K_LP + 1))
    if kind == "random":
        return rng.standard_normal((m, d)) * rng.choice([0.01, 1.0, 100.0])
    if kind == "badly_scaled":
        return badly_scaled(rng, m, d)
    return degenerate(rng, m, d, kind)


def check_against_lp(points, f, out, exact):
    m, d = points.shape
    scale = float(np.max(np.abs(points)))
    w = np.asarray(out.weights, float)
    assert np.all(w >= 0) and w.sum() == pytest.approx(1.0, abs=1e-5)
    if m <= f:
        assert not bool(out.nonempty) and math.isinf(float(out.residual))
        return
    gap = safe_area_gap(points, f)
    if exact:
        if gap <= 1e-9 * scale:
            assert bool(out.nonempty), (gap, float(out.residual))
        elif gap > 1e-3 * scale:
            assert not bool(out.nonempty), gap
    y = np.asarray(out.point, float)
    if bool(out.nonempty):
        assert true_violation(points, f, y, "inf") <= 1e-5 * scale
        assert float(out.residual) <= 1000 * np.finfo(np.float32).eps * 2 * scale
    # the residual is an upper bound of the true (Euclidean) violation, empty or not
    assert true_violation(points, f, y, "2") <= float(out.residual) + 2e-6 * scale


@pytest.mark.parametrize("kind", LP_CASES)
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 6])
@pytest.mark.parametrize("f", [0, 1])
def test_safe_area_matches_lp(kind, d, f):
    """f <= 1 is exact in every d (centroid / order statistics / Radon points)."""
    for seed in range(4):
        points = lp_case(kind, d, f, seed)
        padded, mask = pad(points, capacity=max(K_LP, len(points)), seed=seed)
        out = safe_static(jnp.asarray(padded, jnp.float32), mask, f)
        check_against_lp(points, f, out, exact=True)


@pytest.mark.parametrize("kind", ["random", "badly_scaled", "repeated", "collinear", "simplex", "simplex_plus_one", "few"])
@pytest.mark.parametrize("d", [1, 2, 3])
def test_safe_area_f2_matches_lp(kind, d):
    """f = 2: exact for d <= 2 (order statistics / polygon); in d >= 3 the point is approximate
    but the residual still bounds its true violation and ``nonempty`` is only claimed with a
    certified point."""
    for seed in range(3):
        points = lp_case(kind, d, 2, seed)
        padded, mask = pad(points, capacity=max(K_LP, len(points)), seed=seed)
        out = safe_static(jnp.asarray(padded, jnp.float32), mask, 2)
        check_against_lp(points, 2, out, exact=d <= 2)


def test_badly_scaled_f1_in_high_dimension_is_certified():
    """The issue-8 case: badly scaled views in d >= 3 (the old method left points outside
    Safe_1 by up to 1.5e-2 while reporting ~0)."""
    rng = np.random.default_rng(8)
    for trial in range(30):
        d = int(rng.integers(3, 7))
        points = badly_scaled(rng, int(rng.integers(d + 2, K_LP + 1)), d)
        padded, mask = pad(points, capacity=K_LP, seed=trial)
        out = safe_static(jnp.asarray(padded, jnp.float32), mask, 1)
        assert bool(out.nonempty)
        scale = float(np.max(np.abs(points)))
        assert true_violation(points, 1, np.asarray(out.point, float)) <= 1e-5 * scale
        assert float(out.residual) <= 1e-5 * scale


@pytest.mark.parametrize("d", [2, 3, 5])
def test_affinely_independent_views_have_no_f1_safe_point(d):
    """Two to d + 1 points in general position have no affine dependence, so Safe_1 is empty.
    Rounding leaves a projector of ~1e-8 entries; its one-sided columns once passed as
    dependences with a zero gap and claimed a point (the mean of B and the origin) outside
    the hull (the CI case: two points in the plane, f = 1)."""
    rng = np.random.default_rng(d)
    cases = [np.array([[-120.68494864, 13.13579179], [-23.09970984, -52.4214951]])] if d == 2 else []
    cases += [rng.standard_normal((m, d)) * 10 ** rng.uniform(-2, 3) for m in range(2, d + 2) for _ in range(3)]
    for points in cases:
        for seed in range(8):
            padded, mask = pad(points, seed=seed)
            out = safe_static(jnp.asarray(padded, jnp.float32), mask, 1)
            assert not bool(out.nonempty)
            w = np.asarray(out.weights, float)
            assert w.sum() == pytest.approx(1.0, abs=1e-5)
            assert true_violation(points, 1, np.asarray(out.point, float), "2") <= float(out.residual) + 1e-5 * scale_of(points)


def test_pairwise_sum_equals_a_plain_sum():
    """The f = 1 safe area sums along the points by pairwise halving: odd lengths included."""
    rng = np.random.default_rng(0)
    for n in range(1, 18):
        x = rng.standard_normal((3, n, 2)).astype(np.float32)
        for axis in (0, 1, 2, -1):
            got = np.asarray(safe_area._pairwise_sum(jnp.asarray(x), axis))
            np.testing.assert_allclose(got, x.astype(float).sum(axis=axis), rtol=1e-5, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([2, 3, 5]).flatmap(lambda d: st.one_of(grid_points(d, 1, K), gauss_points(d, 1, K))), st.sampled_from([0, 1, 2]), st.integers(0, 99))
def test_safe_point_is_a_convex_combination(points, f, seed):
    padded, mask = pad(points, seed=seed)
    out = safe_static(jnp.asarray(padded, jnp.float32), mask, f)
    w = np.asarray(out.weights, float)
    assert np.all(w >= 0) and np.all(w[~mask] == 0) and w.sum() == pytest.approx(1.0, abs=1e-5)
    present = np.where(mask[:, None], padded, 0.0)
    np.testing.assert_allclose(np.asarray(out.point, float), w @ present, atol=1e-5 * scale_of(points))
    assert float(out.residual) >= 0


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([2, 3, 4]).flatmap(lambda d: st.one_of(grid_points(d, 1, K), gauss_points(d, 1, K))), st.integers(0, 2**31 - 1))
def test_safe_area_f1_is_permutation_invariant(points, seed):
    """Membership (and, for f = 1, the point itself: a sum over all points) ignores order."""
    a, mask_a = pad(points, seed=seed)
    perm = np.random.default_rng(seed).permutation(len(points))
    b, mask_b = pad(points[perm], seed=seed + 1)
    out_a = safe_static(jnp.asarray(a, jnp.float32), mask_a, 1)
    out_b = safe_static(jnp.asarray(b, jnp.float32), mask_b, 1)
    scale = scale_of(points)
    if float(out_a.residual) <= 1e-5 * scale or float(out_b.residual) <= 1e-5 * scale:
        assert bool(out_a.nonempty) == bool(out_b.nonempty)
        np.testing.assert_allclose(np.asarray(out_a.point), np.asarray(out_b.point), atol=1e-4 * scale)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([2, 3, 5]).flatmap(lambda d: gauss_points(d, 1, K - 2)), st.sampled_from([1, 2]), st.integers(0, 2**31 - 1))
def test_masked_rows_never_matter_for_the_safe_area(points, f, seed):
    a, mask = pad(points, seed=seed)
    b = a.copy()
    b[~mask] = np.random.default_rng(seed).standard_normal(b[~mask].shape) * 1e20
    out_a = safe_static(jnp.asarray(a, jnp.float32), mask, f)
    out_b = safe_static(jnp.asarray(b, jnp.float32), mask, f)
    np.testing.assert_array_equal(np.asarray(out_a.point), np.asarray(out_b.point))
    np.testing.assert_array_equal(np.asarray(out_a.weights), np.asarray(out_b.weights))
    assert bool(out_a.nonempty) == bool(out_b.nonempty)
    assert np.all(np.asarray(out_a.weights)[~mask] == 0)


@pytest.mark.parametrize("d", [2, 5])
def test_rule_step_residual_is_a_certificate(d):
    """Engine-shaped call: every process's view, f = 1; each certified value is in Safe_1 of
    its view, and each fallback is flagged and is the view's centroid."""
    rng = np.random.default_rng(d)
    n = 8
    values = badly_scaled(rng, n, d)
    view = rng.random((n, n)) < 0.8
    view |= np.eye(n, dtype=bool)
    step = jax.jit(ag.rule_step, static_argnums=0)(("safe_area"), jnp.asarray(values, jnp.float32), view, 1)
    scale = float(np.max(np.abs(values)))
    for p in range(n):
        pts = values[view[p]]
        y = np.asarray(step.values[p], float)
        if bool(step.fallback[p]):
            np.testing.assert_allclose(y, pts.mean(axis=0), atol=1e-5 * scale)
            assert safe_area_gap(pts, 1) > 0
        else:
            assert true_violation(pts, 1, y) <= 1e-5 * scale
        assert true_violation(pts, 1, y, "2") <= float(step.residual[p]) + 2e-6 * scale


@pytest.mark.parametrize("n, scenarios", [(3, 1), (3, 4096), (8, 1024), (16, 256)])
def test_the_midpoint_of_a_view_holding_nan_is_nan_at_any_batch_size(n, scenarios):
    """As NumPy's: XLA's CPU min/max dropped NaN from large vmapped batches on (measured:
    n = 16 from 256 lanes, n = 3 from 4,096), so a diverged value vanished from the midpoint
    and the run looked recovered, depending on the chunk size."""
    values = jnp.asarray(np.r_[[1.0, np.nan], np.arange(n - 2) + 3.0][:, None], jnp.float32)
    view = jnp.ones((n, n), bool)
    rule = jax.jit(jax.vmap(lambda v: apply_rule("midpoint", v, view, 0)))
    out = np.asarray(rule(jnp.broadcast_to(values, (scenarios, n, 1))))
    assert np.isnan(out).all()
