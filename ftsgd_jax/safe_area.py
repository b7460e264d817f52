"""The convex-hull geometry of agreement, on padded point sets: hulls, Tukey depth, safe areas.

One job: given ONE view as a padded point set ``points: (k, d)`` with a presence mask
``mask: (k,)`` (a multiset: duplicates count), compute ``diameter``, ``project_to_hull``,
``in_hull``, ``tukey_depth`` and ``safe_area_point``. Everything is jit- and vmap-able:
shapes are fixed, masked-out rows never influence a result (their values may be any finite
garbage), and every iterative method runs a fixed number of steps (``lax.fori_loop``), so a
vmapped batch never waits for its slowest lane.

Halfspace form of the safe area (used throughout). With ``h_f(u)`` the (f+1)-th largest of
``u . p`` over the present points (multiset), a point ``x`` has Tukey depth >= f+1 iff
``u . x <= h_f(u)`` for every direction ``u``, so
``Safe_f(V) = {x : u . x <= h_f(u) for all unit u}``. The true depth violation of x,
``max_u (u . x - h_f(u))^+``, equals ``max over |R| = f of dist(x, conv(V minus R))``; a
``SafePoint.residual`` is an upper bound of it built from explicit convex combinations of
those hulls, so residual ~0 certifies x in the safe area (see :func:`safe_area_point`).

The paper's own safe-area procedure is not public (only its abstract is); the methods here
are a reconstruction (README "Safe area and hull operations", docs/reconstruction.md).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

RANK_TOL = 64
"""Singular values below ``RANK_TOL * eps * sigma_max`` count as zero (degenerate views)."""

GENERAL_ITERS = 300
"""Default iterations of the general-d safe-area search (half with a margin, half without)."""

NUM_RANDOM_DIRECTIONS = 256
"""Fixed random unit directions used in d > 2 when the caller passes none."""

MAX_REMOVAL_SETS = 512
"""The f >= 2 certificate projects onto conv(V minus R) for all C(k, f) removal sets up to this many."""

MAX_SUBSET_NORMALS = 2048
"""The general-d safe area adds the normals of all C(k, d) d-point hyperplanes up to this many."""


class SafePoint(NamedTuple):
    """A point of the safe area (or its fallback) with its certificate.

    point: (d,) always exactly ``weights @ points`` (a convex combination of present points).
    weights: (k,) convex weights, zero on masked-out points.
    nonempty: whether the safe area is non-empty (see :func:`safe_area_point` for d > 2).
    residual: an upper bound of the true depth violation ``max_u (u . point - h_f(u))^+``
        (see :func:`safe_area_point`); ``inf`` when fewer than f+1 points are present.
    """

    point: jax.Array
    weights: jax.Array
    nonempty: jax.Array
    residual: jax.Array


# ----------------------------------------------------------------------------- basics


def _float(points):
    points = jnp.asarray(points)
    return points.astype(jnp.promote_types(points.dtype, jnp.float32))


def _clean(points, mask):
    """Float points with masked rows zeroed (garbage such as inf must never reach a product)."""
    points = _float(points)
    mask = jnp.asarray(mask, bool)
    return jnp.where(mask[:, None], points, 0.0), mask


def _count(mask):
    return jnp.sum(mask.astype(jnp.int32))


def _uniform_weights(mask, dtype):
    m = jnp.maximum(_count(mask), 1)
    return jnp.where(mask, 1.0 / m, 0.0).astype(dtype)


def _centroid(points, mask):
    return _uniform_weights(mask, points.dtype) @ points


def _eps(dtype):
    return jnp.finfo(dtype).eps


def _norms(x):
    return jnp.sqrt(jnp.sum(x * x, axis=-1))


def _centered(points, mask):
    """(Q, c, S): points minus their centroid c, masked rows 0, and S = max ||q_i|| (>0)."""
    c = _centroid(points, mask)
    q = jnp.where(mask[:, None], points - c, 0.0)
    radius = jnp.max(_norms(q))
    return q, c, jnp.maximum(radius, jnp.finfo(points.dtype).tiny)


def _float_scale(points, mask):
    """Magnitude that floating-point rounding is relative to: max ||p_i|| over present points."""
    return jnp.maximum(jnp.max(jnp.where(mask, _norms(points), 0.0)), jnp.finfo(points.dtype).tiny)


def diameter(points, mask):
    """Largest pairwise Euclidean distance among present points (0 for at most one point)."""
    points, mask = _clean(points, mask)
    diff = points[:, None, :] - points[None, :, :]
    pair = mask[:, None] & mask[None, :]
    sq = jnp.where(pair, jnp.sum(diff * diff, axis=-1), 0.0)
    return jnp.sqrt(jnp.max(sq))


# ----------------------------------------------------------------------------- simplex / FISTA


def _simplex_projection(v, mask):
    """Euclidean projection of v onto {w >= 0, sum w = 1, w = 0 off mask} (sort-based, exact)."""
    k = v.shape[0]
    m = _count(mask)
    rank = jnp.arange(1, k + 1)
    present = rank <= m
    u = jnp.where(present, -jnp.sort(jnp.where(mask, -v, jnp.inf)), 0.0)
    css = jnp.cumsum(u)
    ok = present & (u - (css - 1.0) / rank > 0)
    # the first sorted entry always satisfies the test, so rho >= 1 whenever m >= 1
    rho = jnp.max(jnp.where(ok, rank, 1))
    theta = (css[rho - 1] - 1.0) / rho
    return jnp.where(mask, jnp.maximum(v - theta, 0.0), 0.0).astype(v.dtype)


def _fista_simplex(objective, w0, mask, lipschitz, iters):
    """Minimise a smooth convex ``objective(w)`` over the masked simplex in ``iters`` fixed steps.

    FISTA with gradient-based adaptive restart (O'Donoghue & Candes 2015) and a lazy
    backtracking step: the global bound ``lipschitz`` is far too pessimistic when only a few
    of many terms are active, so the step starts at 100 / ``lipschitz``; a step that fails the
    sufficient-decrease test is rejected and the step halved, an accepted one grows it by 5 %
    (never beyond the bound's). Every returned iterate is on the simplex.
    """
    value_and_grad = jax.value_and_grad(objective)
    dtype = w0.dtype
    safe_step = 1.0 / jnp.maximum(lipschitz, jnp.finfo(dtype).tiny)
    one = jnp.ones((), dtype)

    def body(_, state):
        w, v, t, step = state
        f_v, g = value_and_grad(v)
        w_new = _simplex_projection(v - step * g, mask)
        move = w_new - v
        model = f_v + jnp.vdot(g, move) + jnp.vdot(move, move) / (2.0 * step)
        accept = (objective(w_new) <= model + 16 * _eps(dtype) * jnp.abs(f_v)) | (step <= safe_step)
        restart = jnp.vdot(v - w_new, w_new - w) > 0
        t_acc = jnp.where(restart, one, t)
        t_new = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t_acc * t_acc))
        v_new = w_new + ((t_acc - 1.0) / t_new) * (w_new - w)
        return (
            jnp.where(accept, w_new, w),
            jnp.where(accept, v_new, w),
            jnp.where(accept, t_new, one),
            jnp.maximum(jnp.where(accept, step * 1.05, step * 0.5), safe_step),
        )

    return lax.fori_loop(0, iters, body, (w0, w0, one, 100.0 * safe_step))[0]


def _gram_bound(a):
    """Upper bound on lambda_max(a^T a): the Frobenius norm of the (small) Gram matrix."""
    g = a.T @ a
    return jnp.sqrt(jnp.sum(g * g))


# ----------------------------------------------------------------------------- hull operations


UNROLLED_RANK = 16
"""Decompositions of at most this many steps are unrolled array ops; larger ones call an SVD."""

JACOBI_SWEEPS = 3
"""Sweeps of one-sided Jacobi after a pivoted QR (:func:`_jacobi_orthogonalise`)."""


def _orthonormalize(vectors, rank_tol):
    """Orthonormal basis of the span of the rows of ``vectors (m, n)``, with coefficients.

    Returns ``(basis (r, n), coeffs (r, m))``, ``r = min(m, n)``, with ``basis = coeffs @
    vectors`` (so least squares on the rows needs no triangular solve). Numerical rank: once
    a direction's size is at most ``rank_tol`` times the first (largest) one's, it and all
    later rows of ``basis`` and ``coeffs`` are 0, so a numerically degenerate set (repeated,
    collinear, coplanar points) gets the smaller span it has. Up to ``UNROLLED_RANK`` steps:
    :func:`_pivoted_gram_schmidt` (array ops; a batched SVD of a tiny matrix is a slow custom
    call on CPU and GPU); beyond, an SVD, so that compile time stays bounded.
    """
    if min(vectors.shape) <= UNROLLED_RANK:
        return _pivoted_gram_schmidt(vectors, rank_tol)
    u, sv, vt = jnp.linalg.svd(vectors.T, full_matrices=False)
    keep = (sv > rank_tol * sv[0]) & (sv > jnp.finfo(vectors.dtype).tiny)
    return jnp.where(keep[:, None], u.T, 0.0), jnp.where(keep[:, None], vt / jnp.where(keep, sv, 1.0)[:, None], 0.0)


def _pivoted_gram_schmidt(vectors, rank_tol):
    """:func:`_orthonormalize` by modified Gram-Schmidt with pivoting and re-orthogonalisation.

    Each step takes the remaining row of largest residual norm (so the norms fall like
    singular values, and the first is within sqrt(m) of sigma_max), orthogonalises it once
    more against the basis so far ("twice is enough": orthogonality to ~eps even for nearly
    dependent rows) and removes its direction from the other rows. The residual norm that
    decides the rank is measured, not downdated, so it is accurate to ~eps times the largest
    norm, like a singular value from an SVD. Unrolled over the static ``min(m, n)`` steps.
    """
    m, n = vectors.shape
    dtype = vectors.dtype
    tiny = jnp.finfo(dtype).tiny
    work, track = vectors, jnp.eye(m, dtype=dtype)
    free = jnp.ones(m, bool)
    basis, coeffs = [], []
    kept, first = jnp.array(True), None
    for _ in range(min(m, n)):
        pivot = jnp.argmax(jnp.where(free, jnp.sum(work * work, axis=1), -1.0))
        free = free.at[pivot].set(False)
        row, coeff = work[pivot], track[pivot]
        for q, c in zip(basis, coeffs):
            overlap = q @ row
            row, coeff = row - overlap * q, coeff - overlap * c
        norm = _norms(row)
        first = norm if first is None else first
        kept = kept & (norm > rank_tol * first) & (norm > tiny)
        scale = jnp.where(kept, 1.0 / jnp.maximum(norm, tiny), 0.0)
        q, c = row * scale, coeff * scale
        overlap = work @ q
        work = work - overlap[:, None] * q[None, :]
        track = track - overlap[:, None] * c[None, :]
        basis.append(q)
        coeffs.append(c)
    return jnp.stack(basis), jnp.stack(coeffs)


def _affine_minimizer(p, corral, lam):
    """argmin ||sum_i a_i p_i|| over sum a = 1, a = 0 off ``corral``.

    Least squares on the differences to an anchor point of the corral (the one of largest
    weight), by :func:`_orthonormalize`: unlike the bordered Gram (KKT) system this does not
    square the condition number, which matters in float32 for the thin corrals met near the
    hull's boundary. If the corral is (numerically) affinely dependent, the dependent points
    get weight 0 (a basic solution), and the next minor step drops them.
    """
    k = p.shape[0]
    anchor = jnp.argmax(jnp.where(corral, lam, -1.0))
    diff = jnp.where(corral[:, None], p - p[anchor], 0.0)  # (k, d); row anchor is 0
    basis, coeffs = _orthonormalize(diff, k * float(_eps(p.dtype)))
    # the projection of -p_anchor onto span(diff) is sum_j (q_j . -p_anchor) q_j, and each
    # q_j = coeffs_j @ diff, so these are its coefficients on the differences
    beta = (basis @ -p[anchor]) @ coeffs
    beta = jnp.where(corral, beta, 0.0)
    return beta.at[anchor].add(1.0 - jnp.sum(beta))


def _wolfe_step(p, mask, tol):
    """One step of Wolfe's minimum-norm-point algorithm as a fixed-shape state update.

    A "major" step (when the weights are the affine minimiser of the corral) adds the point
    most in the direction of decrease, or stops; a "minor" step moves the weights toward the
    affine minimiser of the corral until a weight hits zero, and drops that point. The weights
    stay on the simplex throughout.
    """
    k, d = p.shape
    dtype = p.dtype

    def step(_, state):
        lam, corral, settled, done, last = state
        x = lam @ p
        norm = jnp.sqrt(x @ x)
        score = jnp.where(mask, p @ x, jnp.inf)
        j = jnp.argmin(score)
        # The gap test is relative to ||x|| (a separating-hyperplane test): an absolute one
        # stops early near the hull's boundary. A full corral (d+1 points) or a repeat only
        # happen through rounding once the answer is found. ||x|| falls strictly from one
        # major step to the next in exact arithmetic; when rounding stalls it, stop, not cycle.
        stop = (x @ x - score[j] <= tol * norm) | (norm <= tol) | corral[j] | (jnp.sum(corral) > d)
        stop = stop | (x @ x >= last)
        major = settled & ~done
        last = jnp.where(major, x @ x, last)
        done = done | (major & stop)
        grow = major & ~stop
        corral = corral.at[j].set(corral[j] | grow)

        alpha = _affine_minimizer(p, corral, lam)
        finite = jnp.all(jnp.isfinite(alpha))
        minor = ~settled & ~done & finite
        done = done | (~settled & ~finite)
        inside = jnp.all(jnp.where(corral, alpha > 0, True))
        neg = corral & (alpha <= 0)
        ratio = jnp.where(neg, lam / jnp.maximum(lam - alpha, jnp.finfo(dtype).tiny), jnp.inf)
        theta = jnp.clip(jnp.min(ratio), 0.0, 1.0)
        moved = lam + theta * (alpha - lam)
        drop = corral & ((moved <= 0) | (neg & (ratio <= theta)))
        moved = jnp.where(drop, 0.0, jnp.maximum(moved, 0.0))
        moved = moved / jnp.maximum(jnp.sum(moved), jnp.finfo(dtype).tiny)
        lam = jnp.where(minor, jnp.where(inside, alpha, moved), lam)
        corral = jnp.where(minor & ~inside, corral & ~drop, corral)
        settled = jnp.where(minor, inside, settled & ~grow)
        return lam, corral, settled, done, last

    return step


def project_to_hull(points, mask, y, iters: int | None = None):
    """Euclidean projection of ``y`` onto conv(present points), as convex weights.

    Wolfe's minimum-norm-point algorithm on the points ``p_i - y`` (scaled to radius 1), run
    for a fixed ``iters`` steps (default ``2k + 2d``; it usually finishes in far fewer and then
    idles). It is an active-set method, so it ends on the exact face (accuracy ~ float
    rounding) rather than converging slowly near the hull's boundary as gradient methods do.
    Returns ``(proj, weights)``: ``weights`` are convex (>= 0, sum 1, 0 on masked points) at
    every step and ``proj = weights @ points``, so ``proj`` is always a convex combination.
    The minimiser is unique in ``proj``, not in ``weights``. With no present point: zero
    weights and ``proj = 0``.
    """
    points, mask = _clean(points, mask)
    k, d = points.shape
    dtype = points.dtype
    iters = 2 * k + 2 * d if iters is None else iters
    y = jnp.asarray(y, dtype)
    p = jnp.where(mask[:, None], points - y, 0.0)
    p = p / jnp.maximum(jnp.max(_norms(p)), jnp.finfo(dtype).tiny)
    first = jnp.argmin(jnp.where(mask, _norms(p), jnp.inf))
    lam = jnp.zeros(k, dtype).at[first].set(1.0)
    corral = jnp.zeros(k, bool).at[first].set(True)
    state = (lam, corral, jnp.array(True), jnp.array(False), jnp.array(jnp.inf, dtype))
    lam = lax.fori_loop(0, iters, _wolfe_step(p, mask, 16 * _eps(dtype)), state)[0]
    lam = jnp.where(mask, lam, 0.0)
    return lam @ points, lam


def in_hull(points, mask, y, tol: float = 1e-4, iters: int | None = None):
    """Whether ``y`` is in conv(present points): ``(inside, residual)``.

    ``residual = ||y - project_to_hull(y)||``; ``inside`` iff ``residual <= tol * s`` with
    ``s = max ||p_i||`` over present points (the magnitude floating-point rounding is relative
    to). No present point: ``(False, inf)``.
    """
    points, mask = _clean(points, mask)
    y = jnp.asarray(y, points.dtype)
    proj, _ = project_to_hull(points, mask, y, iters)
    residual = _norms(y - proj)
    residual = jnp.where(_count(mask) > 0, residual, jnp.inf)
    return residual <= tol * _float_scale(points, mask), residual


# ----------------------------------------------------------------------------- Tukey depth


def random_directions(num: int, d: int, seed: int = 0):
    """``num`` fixed pseudo-random unit vectors in R^d (NumPy at trace time: a constant)."""
    g = np.random.default_rng(seed).standard_normal((num, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def _default_directions(points, mask, normals=False, num_random=NUM_RANDOM_DIRECTIONS):
    """Directions for d > 2: fixed random ones, +-axes, the pairwise differences of the points
    and, with ``normals`` and at most ``MAX_SUBSET_NORMALS`` d-subsets, their hyperplane normals.

    Returns ``(dirs (K, d), valid (K,))``; invalid rows (masked or degenerate) are 0.
    """
    k, d = points.shape
    rand = jnp.asarray(random_directions(num_random, d), points.dtype)
    eye = jnp.eye(d, dtype=points.dtype)
    fixed = jnp.concatenate([rand, eye, -eye])
    diff = (points[None, :, :] - points[:, None, :]).reshape(k * k, d)
    pair = (mask[:, None] & mask[None, :]).reshape(k * k)
    dirs = [fixed, diff]
    valid = [jnp.ones(fixed.shape[0], bool), pair]
    if normals and k >= d and math.comb(k, d) <= MAX_SUBSET_NORMALS:
        normal, ok = _subset_normals(points, mask)
        dirs.append(normal)
        valid.append(ok)
    return _unit_rows(jnp.concatenate(dirs), jnp.concatenate(valid))


def _subset_normals(points, mask):
    """Both unit normals of every hyperplane through d present points (``(2 C(k, d), d)``).

    The facets of a Tukey depth region lie on such hyperplanes, so with these normals the
    halfspace description of Safe_f is complete for points in general position. The normal is
    the vector of signed (d-1)-minors of the d-1 edge vectors (the generalised cross product).
    """
    k, d = points.shape
    subsets = np.array(list(itertools.combinations(range(k), d)))
    corners = points[subsets]  # (C, d, d)
    edges = corners[:, 1:, :] - corners[:, :1, :]  # (C, d-1, d)
    minors = [jnp.linalg.det(jnp.delete(edges, i, axis=2)) * (-1.0) ** i for i in range(d)]
    normal = jnp.stack(minors, axis=1)
    valid = jnp.all(mask[subsets], axis=1)
    return jnp.concatenate([normal, -normal]), jnp.concatenate([valid, valid])


def _unit_rows(dirs, valid):
    norm = _norms(dirs)
    valid = valid & (norm > 0)
    return jnp.where(valid[:, None], dirs / jnp.where(valid, norm, 1.0)[:, None], 0.0), valid


def _depth_1d(points, mask, y, tol):
    v = points[:, 0] - y[0]
    slack = tol * _float_scale(points, mask)
    below = jnp.sum(mask & (v <= slack))
    above = jnp.sum(mask & (v >= -slack))
    return jnp.minimum(below, above).astype(jnp.int32)


def _depth_2d(points, mask, y, tol):
    """Exact depth in the plane by the closed-halfplane counts just after each critical angle.

    The count of points in the closed halfplane {u . (p - y) >= 0} is constant on the open arcs
    between critical directions u (those perpendicular to some v_i = p_i - y) and at least as
    large at an arc's end, so the minimum is the count just after (counter-clockwise of) some
    critical direction. There a point with u . v_j = 0 is inside iff it lies ahead in the
    rotation, which for u = +-R90 v_i is the sign of -+ v_i . v_j. Points equal to y are in every
    halfplane. ``tol`` (relative) snaps near-collinear triples and near-coincident points to
    exact ones, for points computed with rounding.
    """
    v = points - y
    norm = _norms(v)
    slack = tol * _float_scale(points, mask)
    at_y = mask & (norm <= slack)
    away = mask & ~at_y
    cross = v[:, None, 0] * v[None, :, 1] - v[:, None, 1] * v[None, :, 0]
    # antisymmetrise: a fused multiply-add under jit may otherwise give a point a nonzero
    # cross product with itself, which flips its side of its own critical direction
    cross = 0.5 * (cross - cross.T)
    dot = v @ v.T
    collinear = jnp.abs(cross) <= slack * (norm[:, None] + norm[None, :])
    inside_ccw = jnp.where(collinear, -dot > 0, cross > 0)
    inside_cw = jnp.where(collinear, dot > 0, cross < 0)
    base = _count(at_y)
    count_ccw = base + jnp.sum(inside_ccw & away[None, :], axis=1)
    count_cw = base + jnp.sum(inside_cw & away[None, :], axis=1)
    big = points.shape[0] + 1
    best = jnp.minimum(jnp.where(away, count_ccw, big), jnp.where(away, count_cw, big))
    return jnp.minimum(jnp.min(best), _count(mask)).astype(jnp.int32)


def _depth_directions(points, mask, y, dirs, valid, tol):
    proj = (points - y) @ dirs.T  # (k, K)
    slack = tol * _float_scale(points, mask)
    up = jnp.sum(mask[:, None] & (proj >= -slack), axis=0)
    down = jnp.sum(mask[:, None] & (proj <= slack), axis=0)
    per_dir = jnp.where(valid, jnp.minimum(up, down), points.shape[0] + 1)
    return jnp.minimum(jnp.min(per_dir), _count(mask)).astype(jnp.int32)


def tukey_depth(points, mask, y, directions=None, tol: float = 0.0):
    """Tukey (halfspace) depth of ``y``: the least number of present points in a closed
    halfspace whose boundary passes through ``y`` (duplicates counted; points on the boundary
    are inside).

    Exact for d = 1 and d = 2 (up to floating-point signs; ``tol`` > 0 treats coordinates within
    ``tol * max ||p_i||`` as ties, for points computed with rounding). For d > 2 it is the
    minimum over ``directions: (num_dirs, d)`` (both signs of each; default: fixed random unit
    vectors, +-axes and the pairwise differences of the points), an UPPER bound on the true
    depth. Returns int32.
    """
    points, mask = _clean(points, mask)
    y = jnp.asarray(y, points.dtype)
    d = points.shape[1]
    if d == 1:
        return _depth_1d(points, mask, y, tol)
    if d == 2:
        return _depth_2d(points, mask, y, tol)
    if directions is None:
        dirs, valid = _default_directions(points, mask)
    else:
        directions = jnp.asarray(directions, points.dtype)
        dirs, valid = _unit_rows(directions, jnp.ones(directions.shape[0], bool))
    return _depth_directions(points, mask, y, dirs, valid, tol)


# ----------------------------------------------------------------------------- safe area


def _trimmed_support(q, mask, dirs, valid, f):
    """h_f(u) = (f+1)-th largest u . q_i over present points, per direction; ``valid`` is False
    where the direction is unusable or fewer than f+1 points are present (then h = 0)."""
    k = q.shape[0]
    proj = jnp.where(mask[None, :], dirs @ q.T, -jnp.inf)  # (K, k)
    ordered = -jnp.sort(-proj, axis=1)
    idx = jnp.clip(f, 0, k - 1)
    h = lax.dynamic_index_in_dim(ordered, idx, axis=1, keepdims=False)
    valid = valid & (_count(mask) >= f + 1) & jnp.isfinite(h)
    return jnp.where(valid, h, 0.0), valid


def _violation(x, dirs, h, valid):
    """max_u (u . x - h(u)) over valid directions (-inf when none); x may be a batch (..., d)."""
    return jnp.max(jnp.where(valid, x @ dirs.T - h, -jnp.inf), axis=-1)


def _finish(points, mask, f, weights, nonempty, dirs, h, valid, c):
    """Fall back to the centroid when empty; measure the residual of the returned point."""
    weights = jnp.where(nonempty, weights, _uniform_weights(mask, points.dtype))
    point = weights @ points
    residual = jnp.maximum(_violation(point - c, dirs, h, valid), 0.0)
    residual = jnp.where(_count(mask) >= f + 1, residual, jnp.inf)
    return SafePoint(point, weights, nonempty, residual)


def _safe_area_1d(points, mask, f):
    """Exact: the interval [v_(f+1), v_(m-f)] of order statistics; its midpoint. It is
    non-empty iff m >= 2f+1 or, for f+1 <= m <= 2f, the two order statistics tie."""
    k = points.shape[0]
    m = _count(mask)
    order = jnp.argsort(jnp.where(mask, points[:, 0], jnp.inf))
    lo = order[jnp.clip(f, 0, k - 1)]
    hi = order[jnp.clip(m - 1 - f, 0, k - 1)]
    weights = jnp.zeros(k, points.dtype).at[lo].add(0.5).at[hi].add(0.5)
    nonempty = (m >= f + 1) & (m > 0) & (points[lo, 0] <= points[hi, 0])
    q, c, _ = _centered(points, mask)
    dirs = jnp.array([[1.0], [-1.0]], points.dtype)
    h, valid = _trimmed_support(q, mask, dirs, jnp.ones(2, bool), f)
    return _finish(points, mask, f, weights, nonempty, dirs, h, valid, c)


def _plane_constraints(q, mask, f):
    """The exact halfplane description of Safe_f in the plane.

    h_f(u) follows one fixed point on each open arc between critical directions (those
    perpendicular to some p_j - p_i), and a constraint u . (x - p) <= 0 holding at both ends of
    an arc shorter than pi holds on all of it; so the normals +-R90(p_j - p_i) suffice, plus
    the +-axes, which cover the arcs of length pi left when all points are collinear or equal.
    """
    k = q.shape[0]
    diff = (q[None, :, :] - q[:, None, :]).reshape(k * k, 2)
    normal = jnp.stack([-diff[:, 1], diff[:, 0]], axis=1)
    pair = (mask[:, None] & mask[None, :]).reshape(k * k)
    eye = jnp.eye(2, dtype=q.dtype)
    dirs = jnp.concatenate([normal, eye, -eye])
    dirs, valid = _unit_rows(dirs, jnp.concatenate([pair, jnp.ones(4, bool)]))
    h, valid = _trimmed_support(q, mask, dirs, valid, f)
    return dirs, h, valid


def _safe_area_2d(points, mask, f, iters, tol):
    """Exact: vertices of the halfplane polygon, by clipping every constraint line to the others.

    On the line of constraint c (``u_c . x = h_c``) the other constraints cut an interval; the
    ends of the intervals that satisfy all constraints (within ``tol``) are the polygon's
    vertices (with repeats), whatever its dimension. Their mean is in the polygon because it is
    convex. Feasibility is tested by the perpendicular violation, which stays well conditioned
    where two constraint lines are nearly parallel. The mean is then written as convex weights
    by :func:`project_to_hull`; ``residual`` reports what that leaves.
    """
    q, c, radius = _centered(points, mask)
    dirs, h, valid = _plane_constraints(q, mask, f)
    ux, uy = dirs[:, 0], dirs[:, 1]
    # [c, e] = u_e . along_c and h_e - u_e . foot_c, written elementwise (not as matmuls) so
    # that XLA fuses them into the reductions instead of storing K x K arrays per lane
    slope = ux[:, None] * uy[None, :] - uy[:, None] * ux[None, :]
    room = h[None, :] - h[:, None] * (ux[:, None] * ux[None, :] + uy[:, None] * uy[None, :])
    cut = valid[None, :] & (jnp.abs(slope) > 64 * _eps(q.dtype))
    bound = room / jnp.where(cut, slope, 1.0)
    reach = 2.0 * radius
    t_hi = jnp.min(jnp.where(cut & (slope > 0), bound, reach), axis=1)
    t_lo = jnp.max(jnp.where(cut & (slope < 0), bound, -reach), axis=1)
    t = jnp.concatenate([t_lo, t_hi])
    hh, uxx, uyy = jnp.tile(h, 2), jnp.tile(ux, 2), jnp.tile(uy, 2)
    ends = jnp.stack([hh * uxx - t * uyy, hh * uyy + t * uxx], axis=1)
    excess = ends[:, 0, None] * ux[None, :] + ends[:, 1, None] * uy[None, :] - h[None, :]
    worst = jnp.max(jnp.where(valid[None, :], excess, -jnp.inf), axis=1)
    slack = tol * (radius + _float_scale(points, mask))
    ok = jnp.tile(valid, 2) & (worst <= slack)
    n_ok = jnp.sum(ok)
    nonempty = n_ok > 0
    target = jnp.sum(jnp.where(ok[:, None], ends, 0.0), axis=0) / jnp.maximum(n_ok, 1) + c
    _, weights = project_to_hull(points, mask, target, iters)
    return _finish(points, mask, f, weights, nonempty, dirs, h, valid, c)


def _safe_area_general(points, mask, f, iters, tol, directions):
    """Approximate, any d: FISTA on the convex weights w, minimising the squared violations
    ``sum_u ((u . (w @ p) - h_f(u)) + margin)^+ ^2`` over a finite direction set.

    Half the iterations use a margin (2 % of the radius) to pull the point into the interior,
    the other half none, so the result sits inside when there is room and on the region's
    edge when it is thin. Every iterate is a convex combination, so validity is exact; depth
    is approximate (finite iterations, and possibly an incomplete direction set).
    """
    q, c, radius = _centered(points, mask)
    if directions is None:
        dirs, valid = _default_directions(q, mask, normals=True)
    else:
        directions = jnp.asarray(directions, points.dtype)
        dirs, valid = _unit_rows(directions, jnp.ones(directions.shape[0], bool))
    h, valid = _trimmed_support(q, mask, dirs, valid, f)
    qs, hs = q / radius, h / radius
    lipschitz = 2.0 * _gram_bound(dirs) * _gram_bound(qs)

    def penalty(margin):
        def objective(w):
            over = jnp.where(valid, dirs @ (w @ qs) - hs + margin, 0.0)
            return jnp.sum(jnp.maximum(over, 0.0) ** 2)

        return objective

    w = _uniform_weights(mask, points.dtype)
    w = _fista_simplex(penalty(0.02), w, mask, lipschitz, iters // 2)
    w = _fista_simplex(penalty(0.0), w, mask, lipschitz, iters - iters // 2)
    d = points.shape[1]
    m = _count(mask)
    found = _violation((w @ q)[None, :], dirs, h, valid)[0] <= tol * (radius + _float_scale(points, mask))
    nonempty = (m >= f + 1) & ((m >= (d + 1) * f + 1) | found)
    return _finish(points, mask, f, w, nonempty, dirs, h, valid, c)


def _pairwise_sum(x, axis):
    """Sum over ``axis`` by pairwise halving. The adds are elementwise, so XLA fuses them with
    the operands; on CPU a reduce over the short axes met here (the points of a view) is a
    kernel of its own and several times slower (benchmarks/README.md, "Safe area")."""
    axis = axis % x.ndim
    while x.shape[axis] > 1:
        n = x.shape[axis]
        half = n // 2
        pair = lax.slice_in_dim(x, 0, half, axis=axis) + lax.slice_in_dim(x, half, 2 * half, axis=axis)
        x = jnp.concatenate([pair, lax.slice_in_dim(x, 2 * half, n, axis=axis)], axis=axis) if n % 2 else pair
    return jnp.squeeze(x, axis)


def _range_basis(qt):
    """Orthonormal rows ``U^T (min(d, k), k)`` spanning the row space of ``qt`` (the centred
    points as columns, masked columns 0).

    Rows whose singular value is below ``RANK_TOL * sigma_max`` are returned as zeros, so
    numerically degenerate views (repeated, collinear, coplanar points) get the larger null
    space they have. d >= 3: :func:`_singular_basis`. d <= 2: closed forms (cheaper still):
    the right singular vectors from the 2x2 Gram matrix, then ``u_j = q v_j`` normalised and
    re-orthogonalised, so the singular values are measured as ``||q v_j||`` (accurate to
    ~eps sigma_max, like an SVD's) rather than as square roots of Gram eigenvalues (accurate
    only to ~sqrt(eps) sigma_max). Coordinates are the leading axis so that each product
    below runs along the points, the axis XLA vectorises.
    """
    d, k = qt.shape
    dtype = qt.dtype
    tiny = jnp.finfo(dtype).tiny
    rank_tol = RANK_TOL * float(jnp.finfo(dtype).eps)
    if d == 1:
        sigma = _norms(qt)
        return jnp.where(sigma > tiny, qt / jnp.maximum(sigma, tiny), 0.0)
    if d == 2:
        x, y = qt[0], qt[1]
        a, b, c = jnp.sum(x * x), jnp.sum(x * y), jnp.sum(y * y)
        big = 0.5 * (a + c) + jnp.sqrt(0.25 * (a - c) ** 2 + b * b)
        v0, v1 = jnp.where(a >= c, big - c, b), jnp.where(a >= c, b, big - a)
        nv = jnp.sqrt(v0 * v0 + v1 * v1)
        v0 = jnp.where(nv > tiny, v0 / jnp.maximum(nv, tiny), 1.0)
        v1 = jnp.where(nv > tiny, v1 / jnp.maximum(nv, tiny), 0.0)
        u1 = x * v0 + y * v1
        u2 = y * v0 - x * v1
        s1, s2 = _norms(u1), _norms(u2)
        u1 = u1 / jnp.maximum(s1, tiny)
        u2 = u2 - jnp.sum(u1 * u2) * u1
        u2 = u2 / jnp.maximum(_norms(u2), tiny)
        keep1 = s1 > tiny
        keep2 = keep1 & (s2 > rank_tol * s1)
        return jnp.stack([jnp.where(keep1, u1, 0.0), jnp.where(keep2, u2, 0.0)])
    return _singular_basis(qt, rank_tol)


def _singular_basis(vectors, rank_tol):
    """Orthonormal rows spanning the singular directions of ``vectors (m, n)`` whose singular
    value exceeds ``rank_tol * sigma_max`` (the others are 0 rows): ``(min(m, n), n)``.

    The decision is an SVD's, made without one when ``min(m, n) <= UNROLLED_RANK``:
    :func:`_pivoted_gram_schmidt` gives an orthonormal basis ``B`` of the span, then
    one-sided Jacobi (:func:`_jacobi_orthogonalise`) rotates the small coordinate matrix
    ``C = vectors B^T`` until its columns are orthogonal, turning the same rotations on ``B``;
    the column norms are then the singular values (to ~eps sigma_max, as from LAPACK's SVD,
    measured against float64), and the rotated rows of ``B`` the singular vectors. A pivoted
    QR's own diagonal is no substitute: it can overstate sigma_min several times, and on
    matrices with singular values spread over 1e-7..1 it changed the rank of 14 % of them
    (the Jacobi-refined test: none of 4,500 in d = 3, 5, 8; float32 LAPACK: 2).
    """
    if min(vectors.shape) > UNROLLED_RANK:
        return _orthonormalize(vectors, rank_tol)[0]  # an SVD, its own singular values
    tiny = jnp.finfo(vectors.dtype).tiny
    # the QR drops only directions the SVD's test would drop too (a residual r <= 4 eps r_1
    # bounds sigma by sqrt(m) r <= 16 eps sigma_max): their normalised rounding noise would
    # not be orthogonal to the basis, and Jacobi would mix it in
    basis, _ = _pivoted_gram_schmidt(vectors, 4 * float(jnp.finfo(vectors.dtype).eps))
    coords, basis = _jacobi_orthogonalise(vectors @ basis.T, basis)
    sigma = _norms(coords.T)
    keep = (sigma > rank_tol * jnp.max(sigma)) & (sigma > tiny)
    return jnp.where(keep[:, None], basis, 0.0)


def _jacobi_orthogonalise(coords, basis):
    """One-sided Jacobi: rotate pairs of columns of ``coords (m, r)`` until all are orthogonal,
    applying each rotation to the rows of ``basis (r, n)`` too (so ``coords = vectors
    basis^T`` is kept). After a pivoted QR the columns are nearly orthogonal already and
    ``JACOBI_SWEEPS`` sweeps converge to rounding (singular values measured against float64:
    error ~3e-7 sigma_max in float32, d = 3 and 5, singular values spread over 1e-7..1).
    A pair already orthogonal to ~eps is not rotated (its angle would be rounding noise).

    The pairs of a sweep follow the circle method: the columns sit in two rows, column i of
    the top row paired with column i of the bottom row, all pairs rotated at once as array
    ops; then every column but the first moves one seat round the table, so r - 1 rounds
    meet every pair once, and each move is a static shuffle of slices (no gather).
    """
    m, r = coords.shape
    if r % 2:  # an idle zero column pads the table; it is never rotated
        coords = jnp.concatenate([coords, jnp.zeros((m, 1), coords.dtype)], axis=1)
        basis = jnp.concatenate([basis, jnp.zeros((1, basis.shape[1]), basis.dtype)])
    eps = jnp.finfo(coords.dtype).eps
    half = coords.shape[1] // 2
    cols = coords.T  # (r, m): one column of coords per row
    top, bottom = (cols[:half], basis[:half]), (cols[half:], basis[half:])
    for _ in range(JACOBI_SWEEPS * (2 * half - 1)):
        (a, qa), (b, qb) = top, bottom
        alpha, beta, gamma = jnp.sum(a * a, 1), jnp.sum(b * b, 1), jnp.sum(a * b, 1)
        rotate = jnp.abs(gamma) > eps * jnp.sqrt(alpha * beta)
        zeta = (beta - alpha) / (2.0 * jnp.where(rotate, gamma, 1.0))
        t = jnp.where(zeta >= 0, 1.0, -1.0) / (jnp.abs(zeta) + jnp.sqrt(1.0 + zeta * zeta))
        t = jnp.where(rotate, t, 0.0)[:, None]
        c = 1.0 / jnp.sqrt(1.0 + t * t)
        s = c * t
        top = (c * a - s * b, c * qa - s * qb)
        bottom = (s * a + c * b, s * qa + c * qb)
        if half > 1:
            top, bottom = _circle_move(top, bottom)
    cols = jnp.concatenate([top[0], bottom[0]])
    rows = jnp.concatenate([top[1], bottom[1]])
    return cols[:r].T, rows[:r]


def _circle_move(top, bottom):
    """Seat moves of the circle method: the top row's first column stays, the others move one
    seat clockwise (top row rightwards, down the end, bottom row leftwards, up the start)."""
    moved_top, moved_bottom = [], []
    for t, b in zip(top, bottom):
        moved_top.append(jnp.concatenate([t[:1], b[:1], t[1:-1]]))
        moved_bottom.append(jnp.concatenate([b[1:], t[-1:]]))
    return tuple(moved_top), tuple(moved_bottom)


def _null_projector(qt, mask):
    """The orthogonal projector onto the affine dependences of the present points:
    ``{a : a = 0 off mask, sum a = 0, sum a_i q_i = 0}`` (``qt (d, k)`` the centred points as
    columns, masked columns 0), as a (k, k) matrix ``I_V - 1_V 1_V^T / m - U U^T``."""
    dtype = qt.dtype
    ut = _range_basis(qt)
    ones = mask.astype(dtype) / jnp.sqrt(jnp.maximum(_count(mask), 1).astype(dtype))
    eye = jnp.diag(mask.astype(dtype))
    return eye - ones[:, None] * ones[None, :] - jnp.sum(ut[:, :, None] * ut[:, None, :], axis=0)


def _safe_area_radon(points, mask):
    """f = 1, any d: a weighted mean of Radon points of the present points.

    An affine dependence ``a`` (``sum a_i = 0``, ``sum a_i p_i = 0``, ``a != 0``) splits the
    points into ``A = {a_i > 0}`` and ``B = {a_i < 0}`` with a common point
    ``x_A = sum_A a_i p_i / sum_A a_i = x_B = sum_B |a_i| p_i / sum_B |a_i|`` (Radon).
    Removing any ONE point leaves A or B whole, so that point is in every conv(V minus v_i),
    i.e. in Safe_1(V). Conversely Safe_1(V) is empty when the present points are affinely
    independent (a simplex: the facets opposite the vertices have no common point). So
    Safe_1(V) is non-empty iff the multiset V has an affine dependence.

    The dependences used are the rows ``a_j = e_j^T Pi`` of the orthogonal projector ``Pi``
    onto all of them (:func:`_null_projector`; one row per present point, so permuting the
    points permutes the rows and leaves the result unchanged). Row j gives the Radon
    point ``x_j = (x_{A_j} + x_{B_j}) / 2``; the point returned is ``sum_j c_j x_j`` with
    ``c_j`` proportional to ``Pi_jj = ||a_j||^2`` (rows with ``Pi_jj < 1e-3 max Pi_jj``
    are dropped: their sign pattern would be rounding noise). A mean of points of the convex
    set Safe_1(V) is in it, and the returned weights (the same mean of the sides' convex
    weights) make it exactly a convex combination of present points.

    Certificate (an upper bound of the true violation, not an estimate): for each i,
    ``y_i = sum_j c_j (x_{A_j} if v_i not in A_j else x_{B_j})`` is a point of
    conv(V minus v_i), and ``||x - y_i|| <= sum_j c_j ||x_{A_j} - x_{B_j}|| / 2``, which is
    ``residual``; the sides' points are summed from the very weights the point is made of.
    It is rounding only (~1e-7 of the points' scale in float32) when the projector is
    accurate, hence the singular (QR and Jacobi) or closed-form, re-orthogonalised basis of
    :func:`_range_basis`.
    Returns ``(weights, residual, found)``.

    Cost: O(k^2 d + k d^2), no iterations, no batched small matrix products (on CPU each is a
    slow kernel of its own): the sums along the points are pairwise adds that XLA fuses, or
    products with a shared vector (benchmarks/README.md, "Safe area").
    """
    k, d = points.shape
    dtype = points.dtype
    tiny = jnp.finfo(dtype).tiny
    q, c, radius = _centered(points, mask)
    # coordinates first, so that every sum below runs along the points; built from strided
    # reads, since a transpose of each view's copy of the points was the slowest kernel
    qc = jnp.stack([q[:, a] for a in range(d)])
    qt = qc / radius
    proj = _null_projector(qt, mask)
    diag = jnp.where(mask, jnp.diagonal(proj), 0.0)
    # (k, k): row j = dependence j; column i = point i, masked points (rounding of the SVD
    # basis used beyond UNROLLED_RANK) cleared so that they never get weight
    pos = jnp.where(mask[None, :], jnp.maximum(proj, 0.0), 0.0)
    neg = jnp.where(mask[None, :], jnp.maximum(-proj, 0.0), 0.0)
    # a product with a shared vector of ones is one GEMV over the whole batch, computed once
    # (XLA would fuse a sum into, and recompute it in, each of the masses' consumers)
    pos_mass, neg_mass = pos @ jnp.ones(k, dtype), neg @ jnp.ones(k, dtype)
    # trace(Pi) = the number of independent dependences, so a real one puts max Pi_jj >= 1/m;
    # without any, Pi is rounding (~1e-8) whose rows are no dependences at all
    has_dependence = jnp.max(diag) > 0.25 / jnp.maximum(_count(mask), 1).astype(dtype)
    # a one-sided row has no Radon point, and its empty side would enter the certificate as
    # the origin of the centred frame
    two_sided = (pos_mass > tiny) & (neg_mass > tiny)
    use = mask & two_sided & has_dependence & (diag > 1e-3 * jnp.max(diag))
    col = jnp.where(use, diag, 0.0)
    col = col / jnp.maximum(jnp.sum(col), tiny)
    inv_pos, inv_neg = 1.0 / jnp.maximum(pos_mass, tiny), 1.0 / jnp.maximum(neg_mass, tiny)
    # x_{A_j} - x_{B_j} = sum_i (pos_ji / pos_mass_j - neg_ji / neg_mass_j) q_i, summed along i
    apart = pos * inv_pos[:, None] - neg * inv_neg[:, None]
    between = _pairwise_sum(apart[None, :, :] * qc[:, None, :], 2)  # (d, k)
    gap = 0.5 * jnp.sqrt(_pairwise_sum(between * between, 0))  # (k,): half the sides' distance
    weights = 0.5 * _pairwise_sum(pos * (col * inv_pos)[:, None] + neg * (col * inv_neg)[:, None], 0)
    residual = jnp.sum(jnp.where(use, col * gap, 0.0))
    m = _count(mask)
    nonempty = (m >= 2) & jnp.any(use)
    return weights, residual, nonempty


def _static_int(f):
    """``int(f)`` when ``f`` is concrete (a Python int or a non-traced array), else None."""
    try:
        return int(f)
    except (TypeError, jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError):
        return None


def _centroid_bound(q, mask, f):
    """Upper bound of the centroid's depth violation: the centroid of V minus R (|R| = f) is in
    conv(V minus R) and differs from the centroid by ``sum_R q_i / (m - f)``."""
    norms = jnp.where(mask, _norms(q), 0.0)
    if f == 1:  # top_k is a sort on a CPU, several times a max's cost
        top = jnp.max(norms)
    else:
        top = jnp.sum(lax.top_k(norms, min(f, q.shape[0]))[0]) if f > 0 else jnp.zeros((), q.dtype)
    return top / jnp.maximum(_count(mask) - f, 1).astype(q.dtype)


def _traced_centroid_bound(q, mask, f):
    """:func:`_centroid_bound` for a traced f (sorts all k norms)."""
    norms = -jnp.sort(-jnp.where(mask, _norms(q), 0.0))
    top = jnp.sum(jnp.where(jnp.arange(q.shape[0]) < f, norms, 0.0))
    return top / jnp.maximum(_count(mask) - f, 1).astype(q.dtype)


def _removal_certificate(points, mask, x, f, iters=None):
    """``max over R of dist(x, conv(V minus R))``, |R| = f, from above: x's distance to the
    :func:`project_to_hull` point of each conv(V minus R), itself a point of that hull.

    This IS the true depth violation ``max_u (u . x - h_f(u))^+`` up to the projection's
    accuracy, and never below it. Removal sets are enumerated over the k slots (a set with
    masked slots removes fewer points: a larger hull, a redundant bound). Above
    ``MAX_REMOVAL_SETS`` sets the cheaper, looser bound ``||x - c|| + ``
    :func:`_centroid_bound` is used instead.
    """
    k = points.shape[0]
    q, c, _ = _centered(points, mask)
    crude = _norms(x - c) + _centroid_bound(q, mask, f)
    if f == 0:
        return _norms(x - project_to_hull(points, mask, x, iters)[0])
    if math.comb(k, f) > MAX_REMOVAL_SETS:
        return crude
    sets = np.array(list(itertools.combinations(range(k), f)))
    keep = np.ones((len(sets), k), bool)
    keep[np.arange(len(sets))[:, None], sets] = False
    sub = mask[None, :] & jnp.asarray(keep)
    proj = jax.vmap(lambda sm: project_to_hull(points, sm, x, iters)[0])(sub)
    dist = jnp.where(jnp.any(sub, axis=1), _norms(proj - x[None, :]), 0.0)
    return jnp.minimum(jnp.max(dist), crude)


def _safe_area_static(points, mask, f: int, iters, tol, directions):
    """:func:`safe_area_point` for a static ``f`` (points already cleaned)."""
    k, d = points.shape
    dtype = points.dtype
    m = _count(mask)
    q, c, radius = _centered(points, mask)
    slack = tol * (radius + _float_scale(points, mask))
    uniform = _uniform_weights(mask, dtype)
    enough = m >= f + 1
    if d == 1:
        return _safe_area_1d(points, mask, f)
    static = not isinstance(f, jax.Array)
    if static and (f == 0 or f >= k):
        # Safe_0(V) = conv(V): the centroid, exactly; f >= k: never enough points
        nonempty = enough & (f == 0)
        residual = jnp.where(nonempty, 0.0, jnp.inf).astype(dtype)
        return SafePoint(uniform @ points, uniform, nonempty, residual)
    if static and f == 1:
        weights, residual, found = _safe_area_radon(points, mask)
        nonempty = found & (residual <= slack)
        weights = jnp.where(nonempty, weights, uniform)
        residual = jnp.where(nonempty, residual, _centroid_bound(q, mask, f))
    else:
        if d == 2:
            old = _safe_area_2d(points, mask, f, iters, tol)
        else:
            old = _safe_area_general(points, mask, f, GENERAL_ITERS if iters is None else iters, tol, directions)
        if static:
            residual = _removal_certificate(points, mask, old.point, f)
        else:  # traced f >= 2: the centroid-based bound (looser, still an upper bound)
            residual = _norms(old.point - c) + _traced_centroid_bound(q, mask, f)
        nonempty = old.nonempty | (residual <= slack)
        if d > 2 and static:  # the general method's own test is over its direction set only
            nonempty = nonempty & (residual <= slack)
        weights = jnp.where(nonempty, old.weights, uniform)
        bound = _centroid_bound(q, mask, f) if static else _traced_centroid_bound(q, mask, f)
        residual = jnp.where(nonempty, residual, bound)
    nonempty = nonempty & enough
    residual = jnp.where(enough, residual, jnp.inf)
    return SafePoint(weights @ points, weights, nonempty, residual)


def safe_area_point(points, mask, f, iters: int | None = None, tol: float | None = None, directions=None):
    """A point of ``Safe_f(V) = intersection of conv(T) over T in V with |T| = |V| - f``.

    ``V`` = the present points (a multiset). Safe_f(V) is the set of points of Tukey depth
    >= f+1; it is non-empty when |V| >= (d+1) f + 1 (Tverberg) and may be empty below (e.g.
    the d+1 vertices of a simplex, each f times).

    - f = 0, d >= 2: the centroid (Safe_0 = conv V), exactly.
    - d = 1, any f (exact): the midpoint of [v_(f+1), v_(|V|-f)]; non-empty iff |V| >= 2f+1 or
      those two order statistics tie.
    - f = 1, d >= 2 (exact, any d, O(k^2 d + k d^2) work): a weighted mean of the Radon
      points of the views' affine dependences (:func:`_safe_area_radon`); non-empty iff the
      present points are affinely dependent (numerically: singular values below
      ``RANK_TOL * eps * sigma_max`` count as zero).
    - f >= 2, d = 2 (exact polygon, O(k^4) work) and d >= 3 (approximate: ``iters``
      projected-gradient steps over a direction set, see :func:`_safe_area_general`),
      followed by the certificate of :func:`_removal_certificate` (C(k, f) hull projections).

    ``residual`` is an UPPER BOUND of the returned point's true depth violation
    ``max_u (u . point - h_f(u))^+ = max over |R| = f of dist(point, conv(V minus R))``,
    computed from explicit convex combinations of each conv(V minus R), so
    ``residual <= tol * scale`` certifies the point in Safe_f up to that distance. Measured
    against float64 LPs (tests/test_agreement.py, benchmarks/README.md), float32 views:
    f <= 1 and d <= 2: true violation <= ~1e-7 of the views' scale, badly scaled views
    included; f >= 2, d >= 3: the point is approximate (see the README for its measured
    violations) and ``residual`` says how far it is.

    ``nonempty``: the safe area was found non-empty (for f >= 2, d >= 3: a point with
    ``residual <= tol * scale`` was found, or |V| >= (d+1) f + 1 and the point found is
    within that tolerance). When it is False the point is the centroid of V and
    ``residual`` bounds the centroid's violation. Fewer than f+1 present points:
    ``residual = inf``. Validity is exact in every case: ``point = weights @ points`` with
    convex weights, zero on masked rows. ``tol`` (relative to the points' magnitude) is the
    slack of the feasibility tests (default 1000 machine eps). ``f`` may be traced: then
    f = 0, f = 1 and the f >= 2 method are all compiled and selected, and for f >= 2 the
    residual is the looser bound ``||point - c|| +`` the centroid's bound (still an upper
    bound, but not 0 inside Safe_f).
    """
    points, mask = _clean(points, mask)
    k = points.shape[0]
    tol = 1000 * float(jnp.finfo(points.dtype).eps) if tol is None else tol
    fs = _static_int(f)
    if fs is not None:
        return _safe_area_static(points, mask, max(fs, 0), iters, tol, directions)
    f = jnp.clip(jnp.asarray(f, jnp.int32), 0, k)
    branches = [lambda p, m, i=i: _safe_area_static(p, m, i, iters, tol, directions) for i in range(2)]
    branches.append(lambda p, m: _safe_area_static(p, m, f, iters, tol, directions))
    return lax.switch(jnp.minimum(f, 2), branches, points, mask)
