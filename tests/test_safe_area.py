"""The small decompositions behind the hull operations (ftsgd_jax.safe_area), against
numpy.linalg in float64: the pivoted Gram-Schmidt, the Jacobi-refined singular basis that
decides the rank of a view, and Wolfe's affine minimiser, on random, rank-deficient
(repeated, collinear, coplanar points) and badly scaled inputs."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftsgd_jax import safe_area

EPS32 = float(np.finfo(np.float32).eps)
RANK_TOL = safe_area.RANK_TOL * EPS32
singular_basis = jax.jit(safe_area._singular_basis, static_argnums=1)
orthonormalize = jax.jit(safe_area._orthonormalize, static_argnums=1)


def centred_view(kind, rng, k, d):
    """A view's centred points as columns ``(d, k)``, the layout of ``_range_basis``."""
    if kind == "random":
        points = rng.standard_normal((k, d))
    elif kind == "badly_scaled":  # 30% of the points x5, the rest x0.05
        points = rng.standard_normal((k, d)) * np.where(rng.random(k) < 0.3, 5.0, 0.05)[:, None]
    elif kind == "repeated":
        points = rng.standard_normal((max(1, k // 3), d))[rng.integers(max(1, k // 3), size=k)]
    elif kind == "collinear":
        points = rng.standard_normal(d) + rng.standard_normal(k)[:, None] * rng.standard_normal(d)
    elif kind == "coplanar":
        points = rng.standard_normal(d) + rng.standard_normal((k, 2)) @ rng.standard_normal((2, d))
    else:
        raise ValueError(kind)
    points = points * 10.0 ** rng.uniform(-3, 3)
    return (points - points.mean(axis=0)).T


def reference_projector(vectors, rank_tol=RANK_TOL):
    """Projector onto the row space of ``vectors`` kept by the SVD's rank test, in float64."""
    _, sv, vt = np.linalg.svd(np.asarray(vectors, float), full_matrices=False)
    rank = int(np.sum(sv > rank_tol * sv[0])) if sv[0] > 0 else 0
    return vt[:rank].T @ vt[:rank], sv


def relative_gap(sv, rank_tol=RANK_TOL):
    """How far the singular values keep from the rank threshold (the projector's accuracy is
    ~eps sigma_max / the gap between kept and dropped singular values); 1 for a zero matrix."""
    if sv[0] == 0:
        return 1.0
    rank = int(np.sum(sv > rank_tol * sv[0]))
    dropped = sv[rank] if rank < len(sv) else 0.0
    return (sv[rank - 1] - dropped) / sv[0]


def check_orthonormal_rows(basis):
    kept = np.linalg.norm(basis, axis=1) > 0
    gram = basis @ basis.T
    np.testing.assert_allclose(gram, np.diag(kept.astype(float)), atol=1e-5)
    return kept


KINDS = ["random", "badly_scaled", "repeated", "collinear", "coplanar"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("d, k", [(3, 8), (5, 8), (6, 4), (8, 10), (16, 20)])
def test_singular_basis_matches_numpy_svd(kind, d, k):
    """Same rank as float64's SVD under the same test, and the same span (to ~eps / gap)."""
    rng = np.random.default_rng(d * 100 + k)
    for _ in range(6):
        qt = np.asarray(jnp.asarray(centred_view(kind, rng, k, d), jnp.float32), float)
        basis = np.asarray(singular_basis(jnp.asarray(qt, jnp.float32), RANK_TOL), float)
        kept = check_orthonormal_rows(basis)
        projector, sv = reference_projector(qt)
        assert kept.sum() == np.trace(projector).round()
        err = np.max(np.abs(basis.T @ basis - projector))
        assert err * relative_gap(sv) <= 1e-5


@pytest.mark.parametrize("kind", KINDS)
def test_orthonormalize_spans_the_rows_with_coefficients(kind):
    """basis = coeffs @ vectors, orthonormal, spanning the rows (the Wolfe step's least squares)."""
    rng = np.random.default_rng(1)
    for d, k in [(2, 8), (5, 8), (3, 3), (8, 5)]:
        # rows = points minus an anchor point, as in the affine minimiser: (k, d)
        vectors = centred_view(kind, rng, k, d).T
        vectors = np.asarray(jnp.asarray(vectors - vectors[0], jnp.float32), float)
        basis, coeffs = (np.asarray(a, float) for a in orthonormalize(jnp.asarray(vectors, jnp.float32), k * EPS32))
        kept = check_orthonormal_rows(basis)
        scale = np.max(np.abs(vectors))
        np.testing.assert_allclose(coeffs @ vectors, basis, atol=1e-4 * max(1.0, np.max(np.abs(coeffs)) * scale))
        projector, sv = reference_projector(vectors, k * EPS32)
        if relative_gap(sv, k * EPS32) > 1e-3:
            assert kept.sum() == np.trace(projector).round()
            np.testing.assert_allclose(basis.T @ basis, projector, atol=1e-3)


def test_orthonormalize_falls_back_to_an_svd_beyond_the_unrolled_rank():
    rng = np.random.default_rng(2)
    n = safe_area.UNROLLED_RANK + 2
    vectors = rng.standard_normal((n + 3, 2)) @ rng.standard_normal((2, n))  # rank 2
    basis, coeffs = (np.asarray(a, float) for a in orthonormalize(jnp.asarray(vectors, jnp.float32), 64 * EPS32))
    assert check_orthonormal_rows(basis).sum() == 2
    np.testing.assert_allclose(coeffs @ vectors, basis, atol=1e-4)
    np.testing.assert_allclose(basis.T @ basis, reference_projector(vectors, 64 * EPS32)[0], atol=1e-5)
    qt = rng.standard_normal((n, n + 2))
    np.testing.assert_allclose(
        np.asarray(singular_basis(jnp.asarray(qt, jnp.float32), RANK_TOL), float).T @ np.asarray(singular_basis(jnp.asarray(qt, jnp.float32), RANK_TOL), float),
        reference_projector(qt)[0],
        atol=1e-4,
    )


@pytest.mark.parametrize("r", [2, 4, 6, 16])
def test_circle_method_meets_every_pair_once_per_sweep_and_comes_home(r):
    top, bottom = (np.arange(r // 2),), (np.arange(r // 2, r),)
    met = []
    for _ in range(r - 1):
        met += [frozenset(p) for p in zip(top[0].tolist(), bottom[0].tolist())]
        if r > 2:
            top, bottom = (tuple(np.asarray(a) for a in side) for side in safe_area._circle_move(top, bottom))
    assert sorted(met, key=sorted) == sorted(map(frozenset, itertools.combinations(range(r), 2)), key=sorted)
    assert np.concatenate([top[0], bottom[0]]).tolist() == list(range(r))


@pytest.mark.parametrize("kind", KINDS)
def test_affine_minimizer_matches_least_squares(kind):
    """argmin ||a @ p|| over sum a = 1 on the corral: the same point as numpy's lstsq."""
    rng = np.random.default_rng(3)
    minimizer = jax.jit(safe_area._affine_minimizer)
    for d in (2, 3, 5):
        for _ in range(5):
            p = centred_view(kind, rng, 8, d).T + rng.standard_normal(d) * 10.0 ** rng.uniform(-3, 3)
            p = np.asarray(jnp.asarray(p, jnp.float32), float)
            corral = np.zeros(8, bool)  # at most d + 1 points, as in Wolfe's method
            corral[rng.permutation(8)[: rng.integers(1, d + 2)]] = True
            lam = np.where(corral, rng.random(8), 0.0)
            alpha = np.asarray(minimizer(jnp.asarray(p, jnp.float32), jnp.asarray(corral), jnp.asarray(lam, jnp.float32)), float)
            assert np.all(alpha[~corral] == 0)
            assert alpha.sum() == pytest.approx(1.0, abs=1e-5 * max(1.0, np.abs(alpha).max()))
            anchor = int(np.argmax(np.where(corral, lam, -1.0)))
            diff = (p[corral] - p[anchor]).T
            beta = np.linalg.lstsq(diff, -p[anchor], rcond=8 * EPS32)[0]  # the same rank test
            expected = p[anchor] + diff @ beta
            scale = np.max(np.abs(p[corral]))
            assert np.linalg.norm(alpha @ p - expected) <= 1e-5 * scale * max(1.0, np.abs(alpha).max())


@settings(max_examples=60, deadline=None)
@given(
    st.integers(3, 9),
    st.integers(2, 10),
    st.integers(0, 9),
    st.floats(-4, 4),
    st.floats(1e-3, 1.0),
    st.integers(0, 2**31 - 1),
)
def test_singular_basis_property(d, k, rank, log_scale, smallest, seed):
    """Any shape, rank and scale, singular values spread down to ``smallest`` (kept) or exact
    zeros (dropped): the rank of float64's SVD, orthonormal rows, the same span."""
    rng = np.random.default_rng(seed)
    r = min(d, k)
    rank = min(rank, r)
    u = np.linalg.qr(rng.standard_normal((d, r)))[0]
    v = np.linalg.qr(rng.standard_normal((k, r)))[0]
    sv = np.zeros(r)
    sv[:rank] = np.sort(np.exp(rng.uniform(np.log(smallest), 0, rank)))[::-1]
    if rank:
        sv[0] = 1.0
    qt = np.asarray(jnp.asarray((u * sv) @ v.T * 10.0**log_scale, jnp.float32), float)
    basis = np.asarray(singular_basis(jnp.asarray(qt, jnp.float32), RANK_TOL), float)
    kept = check_orthonormal_rows(basis)
    assert kept.sum() == rank
    if rank:
        projector = v[:, :rank] @ v[:, :rank].T
        assert np.max(np.abs(basis.T @ basis - projector)) <= 1e-5 / smallest
