"""Time the safe-area methods on the engine's shape of work and print the comparison.

The case of issue 11: n = 8 processes, each applying the rule ``safe_area`` (f = 1) to its view
of the n values, vmapped over 64 scenarios, 3 agreement rounds per iteration. A method's rate
is ``64 / (time of 3 rounds)`` scenario-iterations per second of agreement work alone (the
engine adds its schedule, gradient and bookkeeping costs on top; see benchmarks/README.md).

Candidates (each jit(vmap) over scenarios and processes, float32):
  radon       the method now used for f = 1 (safe_area._safe_area_radon)
  polygon     the previous exact planar method (safe_area._safe_area_2d), d = 2
  fista       the previous general-d method (safe_area._safe_area_general, 300 steps), d > 2
  hulls       the k hull projections behind the f = 1 certificate of a given point
              (safe_area._removal_certificate): the floor of any method that works per
              subset hull conv(V minus v_i)
  qpax        the projection of the centroid onto Safe_1 as one QP per view (qpax interior
              point solver; variables x and one weight vector per removed point), if
              qpax is installed

Usage: .venv/bin/python benchmarks/safe_area.py [--dims 2 5] [--repeats 5] [--skip qpax]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from ftsgd_jax import agreement as ag
from ftsgd_jax import safe_area

SCENARIOS, N, ROUNDS = 64, 8, 3


def machine() -> str:
    cpu = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, jax {jax.__version__} ({jax.default_backend()})"


def inputs(d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((SCENARIOS, N, d)).astype(np.float32)
    view = rng.random((SCENARIOS, N, N)) < 0.8
    view |= np.eye(N, dtype=bool)[None]
    return jnp.asarray(values), jnp.asarray(view)


def per_view(method):
    """(values (n, d), view (n, n)) -> (n, d) new values by ``method(points, mask) -> point``."""
    return jax.jit(jax.vmap(lambda v, w: jax.vmap(lambda row: method(v, row))(w)))


def qpax_point(points, mask):
    """Projection of the centroid onto Safe_1 by one QP: min ||x - c||^2 over x and weights
    l_i >= 0 (i = 1..k) with sum l_i = 1, l_i = 0 on point i and on masked points, x = P^T l_i."""
    import qpax

    k, d = points.shape
    points = jnp.where(mask[:, None], points, 0.0)
    c = ag.mean_rule(points, mask)
    nv = d + k * k
    hess = jnp.diag(jnp.concatenate([jnp.ones(d), 1e-6 * jnp.ones(k * k)]))
    lin = jnp.concatenate([-c, jnp.zeros(k * k)])
    eq_x = jnp.concatenate([jnp.tile(jnp.eye(d), (k, 1)), -jnp.kron(jnp.eye(k), points.T)], axis=1)
    eq_sum = jnp.concatenate([jnp.zeros((k, d)), jnp.kron(jnp.eye(k), jnp.ones((1, k)))], axis=1)
    off = (jnp.eye(k, dtype=bool) | ~mask[None, :]).reshape(-1)
    eq_off = jnp.concatenate([jnp.zeros((k * k, d)), jnp.diag(off.astype(points.dtype))], axis=1)
    a = jnp.concatenate([eq_x, eq_sum, eq_off])
    b = jnp.concatenate([jnp.zeros(k * d), jnp.ones(k), jnp.zeros(k * k)])
    g = jnp.concatenate([jnp.zeros((k * k, d)), -jnp.eye(k * k)], axis=1)
    h = jnp.zeros(k * k)
    z = qpax.solve_qp(hess, lin, a, b, g, h)[0]
    del nv
    return z[:d]


def candidates(d: int):
    f = 1
    out = {
        "radon (chosen)": lambda p, m: ag.safe_area_point(p, m, f).point,
    }
    if d == 2:
        out["polygon (before)"] = lambda p, m: safe_area._safe_area_2d(*ag._clean(p, m), jnp.int32(f), None, 1.2e-4).point
    else:
        out["fista (before)"] = lambda p, m: safe_area._safe_area_general(*ag._clean(p, m), jnp.int32(f), ag.GENERAL_ITERS, 1.2e-4, None).point
    out["hulls (k projections)"] = lambda p, m: p[0] + safe_area._removal_certificate(*ag._clean(p, m), ag.mean_rule(p, m), f)
    out["qpax QP"] = qpax_point
    return out


def time_three_rounds(fn, values, view, repeats):
    def three(v):
        for _ in range(ROUNDS):
            v = fn(v, view)
        return v

    start = time.perf_counter()
    jax.block_until_ready(three(values))
    compile_s = time.perf_counter() - start
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(three(values))
        best = min(best, time.perf_counter() - start)
    return best, compile_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 5])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip", nargs="*", default=[])
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"case: n = {N}, f = 1, {SCENARIOS} scenarios x {ROUNDS} rounds (x {N} views each)")
    print("| d | method | 3 rounds (ms) | per view (us) | scenario-iterations/s | compile (s) |")
    print("|---|---|---|---|---|---|")
    for d in args.dims:
        values, view = inputs(d)
        for name, method in candidates(d).items():
            if any(name.startswith(s) for s in args.skip):
                continue
            try:
                fn = per_view(method)
                best, compile_s = time_three_rounds(fn, values, view, args.repeats)
            except ImportError as err:
                print(f"| {d} | {name} | not installed ({err.name}) | | | |")
                continue
            views = SCENARIOS * N * ROUNDS
            print(f"| {d} | {name} | {best * 1e3:.2f} | {best / views * 1e6:.2f} | {SCENARIOS / best:,.0f} | {compile_s:.1f} |", flush=True)


if __name__ == "__main__":
    main()
