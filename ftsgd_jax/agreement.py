"""Agreement rules of one round and the convex-hull geometry they need, on padded point sets.

One job: given ONE view as a padded point set ``points: (k, d)`` with a presence mask
``mask: (k,)`` (a multiset: duplicates count), compute the agreement rule's new value and the
hull / safe-area operations behind it (``diameter``, ``project_to_hull``, ``in_hull``,
``tukey_depth``, ``safe_area_point``). :func:`apply_rule` applies a rule to every process's
view at once. Everything is jit- and vmap-able: shapes are fixed, masked-out rows never
influence a result (their values may be any finite garbage), and every iterative method runs a
fixed number of steps (``lax.fori_loop``), so a vmapped batch never waits for its slowest lane.

Halfspace form of the safe area (used throughout). With ``h_f(u)`` the (f+1)-th largest of
``u . p`` over the present points (multiset), a point ``x`` has Tukey depth >= f+1 iff
``u . x <= h_f(u)`` for every direction ``u``, so
``Safe_f(V) = {x : u . x <= h_f(u) for all unit u}``. A ``SafePoint.residual`` is the largest
violation ``max_u (u . x - h_f(u))^+`` over the directions a method uses: 0 means "in the
safe area" for the exact methods (d <= 2), "in the outer approximation" for general d.

The paper's own safe-area procedure is not public (only its abstract is); the methods here
are a reconstruction (see DESIGN.md §4), and the safe-area contraction factor is a CHOICE
(see :func:`contraction_factor`).
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ftsgd_jax.errors import ConfigError, choice

RULES = ("mean", "midpoint", "safe_area")

GENERAL_ITERS = 300
"""Default iterations of the general-d safe-area search (half with a margin, half without)."""

NUM_RANDOM_DIRECTIONS = 256
"""Fixed random unit directions used in d > 2 when the caller passes none."""

MAX_SUBSET_NORMALS = 2048
"""The general-d safe area adds the normals of all C(k, d) d-point hyperplanes up to this many."""


class SafePoint(NamedTuple):
    """A point of the safe area (or its fallback) with its certificate.

    point: (d,) always exactly ``weights @ points`` (a convex combination of present points).
    weights: (k,) convex weights, zero on masked-out points.
    nonempty: whether the safe area is non-empty (see :func:`safe_area_point` for d > 2).
    residual: ``max_u (u . point - h_f(u))^+`` over the directions used; ``inf`` when fewer
        than f+1 points are present.
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


def _affine_minimizer(p, corral, lam):
    """argmin ||sum_i a_i p_i|| over sum a = 1, a = 0 off ``corral``.

    Least squares on the differences to an anchor point of the corral (the one of largest
    weight), by SVD: unlike the bordered Gram (KKT) system this does not square the condition
    number, which matters in float32 for the thin corrals met near the hull's boundary, and it
    gives the minimum-norm answer if the corral is (numerically) affinely dependent.
    """
    k = p.shape[0]
    anchor = jnp.argmax(jnp.where(corral, lam, -1.0))
    diff = jnp.where(corral[:, None], p - p[anchor], 0.0).T  # (d, k); column anchor is 0
    u, sv, vt = jnp.linalg.svd(diff, full_matrices=False)
    cutoff = jnp.max(sv) * k * _eps(p.dtype)
    inv = jnp.where(sv > cutoff, 1.0 / jnp.where(sv > cutoff, sv, 1.0), 0.0)
    beta = vt.T @ (inv * (u.T @ -p[anchor]))
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
    """Exact: the interval [v_(f+1), v_(m-f)] of order statistics; its midpoint."""
    k = points.shape[0]
    m = _count(mask)
    order = jnp.argsort(jnp.where(mask, points[:, 0], jnp.inf))
    lo = order[jnp.clip(f, 0, k - 1)]
    hi = order[jnp.clip(m - 1 - f, 0, k - 1)]
    weights = jnp.zeros(k, points.dtype).at[lo].add(0.5).at[hi].add(0.5)
    nonempty = (m >= 2 * f + 1) & (m > 0)
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


def safe_area_point(points, mask, f, iters: int | None = None, tol: float | None = None, directions=None):
    """A point of ``Safe_f(V) = intersection of conv(T) over T in V with |T| = |V| - f``.

    ``V`` = the present points (a multiset), ``f`` may be a traced int. Safe_f(V) is the set of
    points of Tukey depth >= f+1; it is non-empty when |V| >= (d+1) f + 1 (Tverberg) and may
    be empty below (e.g. the d+1 vertices of a simplex, each f times).

    - d = 1 (exact): the midpoint of [v_(f+1), v_(|V|-f)]; non-empty iff |V| >= 2f+1.
    - d = 2 (exact, O(k^4) work): the mean of the vertices of the safe polygon (found by
      clipping every constraint line of its halfplane description to the others), written as
      convex weights by ``iters`` steps of :func:`project_to_hull`.
    - d > 2 (approximate): ``iters`` (default ``GENERAL_ITERS``) accelerated projected-gradient
      steps on the convex weights that minimise the squared violations of the halfspace
      constraints of ``directions`` (default: fixed random unit vectors, +-axes, pairwise
      differences and, while C(k, d) <= ``MAX_SUBSET_NORMALS``, the normals of all d-point
      hyperplanes, which make the description complete for points in general position).
      CAVEATS: the iteration count bounds the accuracy (``residual`` reports what is left;
      measured in float32 with k = 12: residual <= ~5e-5 relative for d = 3..8); without the
      subset normals (large C(k, d)) the directions describe an outer approximation, so the
      point can have depth < f+1 even at residual 0; ``nonempty`` is True when
      |V| >= (d+1) f + 1 (Tverberg) or when a point with residual <= tolerance was found (the
      latter can be a false positive when the description is incomplete).

    Validity is exact in every d: ``point = weights @ points`` with convex weights. When the
    safe area is empty (``nonempty`` False) the point is the centroid of V. ``tol`` (relative
    to the points' magnitude) is the slack of feasibility tests (default 1000 machine eps).
    """
    points, mask = _clean(points, mask)
    d = points.shape[1]
    f = jnp.maximum(jnp.asarray(f, jnp.int32), 0)
    tol = 1000 * float(jnp.finfo(points.dtype).eps) if tol is None else tol
    if d == 1:
        return _safe_area_1d(points, mask, f)
    if d == 2:
        return _safe_area_2d(points, mask, f, iters, tol)
    return _safe_area_general(points, mask, f, GENERAL_ITERS if iters is None else iters, tol, directions)


# ----------------------------------------------------------------------------- rules


def mean_rule(points, mask):
    """The centroid of the present points (zeros when none is present)."""
    points, mask = _clean(points, mask)
    return _centroid(points, mask)


def midpoint_rule(points, mask):
    """d = 1 only: the middle of the range of the present points."""
    points, mask = _clean(points, mask)
    if points.shape[1] != 1:
        raise ConfigError("algorithm.rule", f"'midpoint' needs dimension d = 1, got d = {points.shape[1]}")
    lo = jnp.min(jnp.where(mask[:, None], points, jnp.inf), axis=0)
    hi = jnp.max(jnp.where(mask[:, None], points, -jnp.inf), axis=0)
    return jnp.where(jnp.any(mask), 0.5 * lo + 0.5 * hi, 0.0)


def safe_area_rule(points, mask, f, iters: int | None = None):
    """The point of :func:`safe_area_point` (its centroid fallback when the safe area is empty)."""
    return safe_area_point(points, mask, f, iters=iters).point


def view_mean(values, view):
    """Every process's centroid of its view at once, as one matrix product (the mean rule
    for all rows; an empty view keeps the own value). Values outside every view may be
    garbage, even non-finite: they are zeroed first so that ``0 * inf`` cannot leak in."""
    seen = jnp.any(view, axis=0)[:, None]
    weights = view.astype(values.dtype)
    counts = weights.sum(axis=1, keepdims=True)
    averaged = (weights @ jnp.where(seen, values, 0.0)) / jnp.maximum(counts, 1.0)
    return jnp.where(counts > 0, averaged, values)


class RuleStep(NamedTuple):
    """One agreement step of every process, with what the rule could not guarantee.

    values: (n, d) the new values (a row with an empty view keeps its value).
    residual: (n,) the safe-area rule's depth residual of each new value (NaN for the other
        rules and for empty views): 0 means the point is certified in Safe_f.
    fallback: (n,) bool, the safe area of the view was empty (or not found) and the rule
        fell back to the centroid.
    """

    values: jax.Array
    residual: jax.Array
    fallback: jax.Array


def rule_step(rule: str, values, view, f=0, iters: int | None = None) -> RuleStep:
    """One agreement step for every process: row p of the result is ``rule`` applied to the
    points ``values[q]`` with ``view[p, q]`` True. A row with no True entry (a crashed or
    blocked process) keeps ``values[p]``. ``values: (n, d)``, ``view: (n, n)`` bool."""
    choice("algorithm.rule", rule, RULES)
    values = _float(values)
    view = jnp.asarray(view, bool)
    n = values.shape[0]
    seen = jnp.any(view, axis=1)
    no_residual = jnp.full((n,), jnp.nan, values.dtype)
    no_fallback = jnp.zeros((n,), bool)
    if rule == "mean":
        return RuleStep(view_mean(values, view), no_residual, no_fallback)
    if rule == "midpoint":
        new = jax.vmap(lambda row: midpoint_rule(values, row))(view)
        return RuleStep(jnp.where(seen[:, None], new, values), no_residual, no_fallback)
    safe = jax.vmap(lambda row: safe_area_point(values, row, f, iters=iters))(view)
    return RuleStep(
        jnp.where(seen[:, None], safe.point, values),
        jnp.where(seen, safe.residual, jnp.nan),
        seen & ~safe.nonempty,
    )


def apply_rule(rule: str, values, view, f=0, iters: int | None = None):
    """The new values of :func:`rule_step` alone."""
    return rule_step(rule, values, view, f, iters).values


def contraction_factor(rule: str, n: int, d: int) -> float:
    """Per-round factor by which the diameter of the values shrinks, for ``auto`` round counts.

    - mean: 1 - 1/n (proven when the views of a round pairwise intersect: each new value puts
      weight >= 1/n on a common value).
    - midpoint (d = 1): 1/2 (proven under the same condition).
    - safe_area: 1 - 1/n. CHOICE: the paper's value is not public, and this is NOT a proven
      bound: with views that share fewer than f+1 values the trimmed safe areas of two views
      can be disjoint points (e.g. f = 1, views {0,0,0,1} and {0,1,1,1} give 0 and 1), so no
      factor < 1 holds in general; runs must check eps-agreement rather than rely on it.
    """
    choice("algorithm.rule", rule, RULES)
    if int(n) < 1:
        raise ConfigError("system.n", f"needs at least one process, got {n}")
    if rule == "midpoint":
        if int(d) != 1:
            raise ConfigError("algorithm.rule", f"'midpoint' needs dimension d = 1, got d = {d}")
        return 0.5
    return 1.0 - 1.0 / int(n)
