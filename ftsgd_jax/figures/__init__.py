"""Paper-quality figures from the results of a sweep (``ftsgd sweep``), and space-time diagrams.

:func:`draw_all` draws every figure a sweep's manifest names and saves each as PNG
(200 dpi) and PDF; :func:`draw_suite` does the same for a folder of sweeps. Every figure
kind is a module with a ``draw(sweep) -> Figure`` registered in :data:`FIGURES`:

- ``error_vs_iteration``: ‖x − x*‖² vs t, log-log, theory σ²/(μ² k t) (panels per swept
  key when there are more than eight points);
- ``loss_vs_iteration``: Q(x) vs t, a panel per objective kind, Q* where known;
- ``speedup``: σ²/(μ² T) over the final error vs n, theory n (ideal) and k (min view size);
- ``faults``: final error (or loss) and blocked fraction vs crashes, where the majority
  condition first fails per quorum rule;
- ``agreement``: disagreement vs t with the target ε_t of GEN, and rounds per iteration;
- ``impossibility``: final x per partition group (``points/<id>/final.npz``);
- ``contraction``: per-round diameter ratios per agreement rule vs the proven factors.

The theory a figure draws (ε_t, σ²/μ², Q*, the minima, the proven factors) is read from
each point's theory record in the manifest (:mod:`ftsgd_jax.theory`), never derived here.
:mod:`~ftsgd_jax.figures.data` reads the folder, :mod:`~ftsgd_jax.figures.labels` writes
the legends, :mod:`~ftsgd_jax.figures.style` holds the shared look, and
:func:`spacetime` (:mod:`~ftsgd_jax.figures.diagram`) draws a replayed trace.
"""

from __future__ import annotations

# imported in the order FIGURES lists them (the order of every "allowed: ..." message)
from ftsgd_jax.figures import error_vs_iteration, loss_vs_iteration, speedup, faults, agreement, impossibility, contraction
from ftsgd_jax.figures.data import Point, SweepData, load_sweep
from ftsgd_jax.figures.diagram import spacetime, spacetime_figure
from ftsgd_jax.figures.labels import point_label, shorten
from ftsgd_jax.figures.style import DOUBLE_COLUMN, FIGURES, SINGLE_COLUMN, THEORY
from ftsgd_jax.figures.suite import draw_all, draw_suite, draw_sweep

__all__ = [
    "DOUBLE_COLUMN",
    "FIGURES",
    "SINGLE_COLUMN",
    "THEORY",
    "Point",
    "SweepData",
    "agreement",
    "contraction",
    "draw_all",
    "draw_suite",
    "draw_sweep",
    "error_vs_iteration",
    "faults",
    "impossibility",
    "load_sweep",
    "loss_vs_iteration",
    "point_label",
    "shorten",
    "spacetime",
    "spacetime_figure",
    "speedup",
]
