"""Space-time diagrams of a replayed trace: what ``ftsgd replay`` and ``ftsgd attack`` draw.

One horizontal line per process, grouped and coloured by cluster, with its computations,
writes, reads, round ends, crashes and blocked waits, and its messages as arrows (bundled
per cluster pair and round when there are many).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch

from ftsgd_jax.errors import ConfigError
from ftsgd_jax.figures.style import DOUBLE_COLUMN, STYLE, colour, new_figure, save

STEPS = ("compute", "write", "read", "send", "receive", "end", "crash", "blocked")


MAX_ARROWS = 240  # above this many messages in the window, messages are bundled per cluster pair and round
MAX_HEIGHT = 7.5  # inches, about a page: beyond, the rows get thinner instead of the figure taller


def spacetime_figure(
    trace: Sequence[Mapping[str, Any]],
    topology_cluster_sizes: Sequence[int],
    blocked: Iterable[int] | Mapping[int, float] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> Figure:
    """A space-time diagram: one horizontal line per process, grouped and coloured by cluster.

    The time axis spans the traced steps (compute to round end), not the crashes: a crash
    outside that window is an annotation at the edge it lies beyond (time, iteration and
    round), one inside is a red ×. Writes are dots, reads small open circles, computations
    grey squares, round ends ticks, a blocked process a dashed line to the right edge
    labelled "blocked" (``blocked`` adds processes, ids or id -> time blocked, to those with
    a ``blocked`` event). Messages are arrows from (sender, send time) to (receiver, receive
    time) (``gid == "message"``, one per receive event) while there are at most
    :data:`MAX_ARROWS`; beyond, one band per sender cluster, receiver cluster and round
    (``gid == "bundle"``) from the mean send to the mean receive time, as wide as the
    logarithm of its message count, so that n = 64 stays readable. ``notes``: extra lines
    under the axis (e.g. crashes after the traced window).
    """
    sizes = [int(size) for size in topology_cluster_sizes]
    n = sum(sizes)
    cluster_of = np.repeat(np.arange(len(sizes)), sizes)
    for event in trace:
        if event.get("step") not in STEPS:
            raise ConfigError("trace", f"unknown step {event.get('step')!r}, allowed: {', '.join(STEPS)}")
        if not 0 <= int(event["process"]) < n:
            raise ConfigError("trace", f"process {event['process']} outside 0..{n - 1}")
    # y position: processes top to bottom by cluster, a gap between clusters
    y = {p: -(p + 0.6 * cluster_of[p]) for p in range(n)}
    steps = [e for e in trace if e["step"] not in ("crash", "blocked") and math.isfinite(float(e["time"]))]
    times = [float(e["time"]) for e in steps] or [float(e["time"]) for e in trace if math.isfinite(float(e["time"]))]
    t_start, t_end = (min(times), max(times)) if times else (0.0, 1.0)
    width = max(t_end - t_start, 1e-6)
    left, right = t_start - 0.02 * width, t_end + 0.06 * width
    last_time = {p: t_start for p in range(n)}
    first_time = {p: t_end for p in range(n)}
    for event in steps:
        p = int(event["process"])
        last_time[p] = max(last_time[p], float(event["time"]))
        first_time[p] = min(first_time[p], float(event["time"]))
    crashes = {int(e["process"]): e for e in trace if e["step"] == "crash"}
    crash_time = {p: float(e["time"]) for p, e in crashes.items()}
    inside = {p for p, t in crash_time.items() if left <= t <= right}
    # a blocked process waits from its last step on (a "blocked" record may carry the trace's end time)
    stuck = {int(e["process"]): last_time[int(e["process"])] for e in trace if e["step"] == "blocked"}
    if isinstance(blocked, Mapping):
        stuck.update({int(p): float(t) for p, t in blocked.items()})
    elif blocked is not None:
        stuck.update({int(p): last_time[int(p)] for p in blocked})
    frame = 1.1 + 0.15 * len(sizes) + 0.12 * len(notes)  # inches of title, legend, axis and notes
    per_process = min(0.24, (MAX_HEIGHT - frame) / max(n, 1))
    marker = min(1.0, 24.0 / max(n, 1)) ** 0.5
    # a process name every few rows, so that the names stay about 9 points apart
    labelled = range(0, n, max(1, math.ceil(9.0 / (72.0 * per_process))))

    with matplotlib.rc_context(STYLE | {"axes.grid": False}):
        fig, axes = new_figure(DOUBLE_COLUMN, frame + per_process * n)
        ax = axes[0, 0]
        for p in range(n):
            colour_p = colour(int(cluster_of[p]))
            if p in crash_time and crash_time[p] < left:
                continue  # crashed before the window: only its annotation
            stop = min(crash_time.get(p, math.inf), stuck.get(p, math.inf), right)
            ax.plot([left, stop], [y[p], y[p]], color=colour_p, linewidth=0.8 if n > 24 else 1.0, zorder=1, gid="process")
            if p in stuck:
                ax.plot([stuck[p], right], [y[p], y[p]], color=colour_p, linestyle="--", linewidth=1.0, gid="blocked")
                ax.text(right, y[p], " blocked", va="center", ha="left", fontsize=6, color=colour_p)
        draw_events(ax, [e for e in trace if e["step"] != "crash" or int(e["process"]) in inside], y, cluster_of, marker)
        for p, event in crashes.items():
            if p in inside:
                continue
            where = _crash_label(event)
            before = crash_time[p] < left
            ax.annotate(f"{'✕ ' if before else ''}{where}{'' if before else ' ✕'}", xy=(0.0 if before else 1.0, y[p]),
                        xycoords=("axes fraction", "data"), xytext=(3 if before else -3, 0), textcoords="offset points",
                        ha="left" if before else "right", va="center", fontsize=5.5, color="red", gid="crash_note")
        receives = sum(e["step"] == "receive" for e in trace)
        if receives > MAX_ARROWS:
            draw_bundles(ax, trace, y, cluster_of)
        else:
            draw_messages(ax, trace, y)
        ax.set_yticks([y[p] for p in labelled], [f"p{p}" for p in labelled], fontsize=6)
        for c in range(len(sizes)):
            members = [y[p] for p in range(n) if cluster_of[p] == c]
            if members:  # a bracket and the cluster's name left of the process names
                ax.annotate("", xy=(0, max(members) + 0.3), xytext=(0, min(members) - 0.3),
                            xycoords=("axes fraction", "data"), textcoords=("axes fraction", "data"),
                            arrowprops={"arrowstyle": "-", "color": colour(c), "linewidth": 1.5,
                                        "shrinkA": 0, "shrinkB": 0}, annotation_clip=False)
                ax.annotate(f"C{c}", xy=(0, float(np.mean(members))), xycoords=("axes fraction", "data"),
                            xytext=(-24, 0), textcoords="offset points", ha="right", va="center",
                            fontsize=8, fontweight="bold", color=colour(c), gid="cluster")
        ax.set_xlim(left, right)
        ax.set_ylim(min(y.values()) - 0.7, 0.7)
        ax.spines["left"].set_visible(False)
        ax.tick_params(axis="y", length=0, pad=3)
        ax.set_xlabel("time (units)")
        if title:
            ax.set_title(title, fontsize=8)
        if notes:
            ax.text(0.0, -0.12, "\n".join(notes), transform=ax.transAxes, ha="left", va="top", fontsize=6, color="red")
        present = {e["step"] for e in trace} | ({"blocked"} if stuck else set())
        message_key = (Line2D([], [], color="grey", linewidth=2.0, alpha=0.5, label="messages (bundled per cluster pair and round)")
                       if receives > MAX_ARROWS else Line2D([], [], color="grey", linewidth=0.7, label="message (send → receive)"))
        keys = {
            "compute": Line2D([], [], marker="s", color="grey", linestyle="", markersize=2.5, label="compute"),
            "write": Line2D([], [], marker="o", color="black", linestyle="", markersize=3, label="write"),
            "read": Line2D([], [], marker="o", markerfacecolor="none", color="black", linestyle="", markersize=3,
                           label="read"),
            "end": Line2D([], [], marker="|", color="black", linestyle="", markersize=6, label="round end"),
            "receive": message_key,
            "crash": Line2D([], [], marker="x", color="red", linestyle="", label="crash"),
            "blocked": Line2D([], [], color="black", linestyle="--", linewidth=1.0, label="blocked (waits forever)"),
        }
        handles = [handle for step, handle in keys.items() if step in present]
        if handles:
            fig.legend(handles=handles, loc="outside upper center", ncols=len(handles))
    return fig


def _crash_label(event: Mapping[str, Any]) -> str:
    where = f"crash t={float(event['time']):.6g}"
    if event.get("iteration") is not None:
        where += f" (it. {event['iteration']}, round {event.get('round')})"
    return where


def draw_events(ax, trace: Sequence[Mapping[str, Any]], y: Mapping[int, float], cluster_of: np.ndarray, scale: float = 1.0) -> None:
    def points(step: str) -> tuple[list[float], list[float]]:
        chosen = [e for e in trace if e["step"] == step]
        return [float(e["time"]) for e in chosen], [y[int(e["process"])] for e in chosen]

    t, p = points("compute")
    ax.plot(t, p, linestyle="", marker="s", markersize=2.5 * scale, color="grey", zorder=2, gid="compute")
    t, p = points("write")
    ax.plot(t, p, linestyle="", marker="o", markersize=3.5 * scale, color="black", zorder=3, gid="write")
    t, p = points("read")
    ax.plot(t, p, linestyle="", marker="o", markersize=3 * scale, markerfacecolor="none", color="black",
            markeredgewidth=0.6 * scale, zorder=3, gid="read")
    t, p = points("end")
    ax.plot(t, p, linestyle="", marker="|", markersize=7 * scale, color="black", zorder=3, gid="round_end")
    t, p = points("crash")
    ax.plot(t, p, linestyle="", marker="x", markersize=6, color="red", markeredgewidth=1.3, zorder=4, gid="crash")


def draw_messages(ax, trace: Sequence[Mapping[str, Any]], y: Mapping[int, float]) -> int:
    """One arrow per receive event, from its matching send; returns the number drawn."""
    drawn = 0
    for sender, receiver, start, arrival in _message_pairs(trace):
        arrow = FancyArrowPatch((start, y[sender]), (arrival, y[receiver]), arrowstyle="-|>", mutation_scale=6,
                                color="grey", linewidth=0.6, alpha=0.8, zorder=2, gid="message", shrinkA=1, shrinkB=1)
        ax.add_patch(arrow)
        drawn += 1
    return drawn


def _message_pairs(trace: Sequence[Mapping[str, Any]]) -> Iterable[tuple[int, int, float, float]]:
    """(sender, receiver, send time, receive time) of every receive event, matched to its send."""
    sends: dict[tuple, list[float]] = {}
    pairs: dict[tuple[int, int], list[float]] = {}
    for e in trace:
        if e["step"] == "send" and e.get("peer") is not None:
            key = (int(e["process"]), int(e["peer"]), e.get("iteration"), e.get("round"))
            sends.setdefault(key, []).append(float(e["time"]))
            pairs.setdefault(key[:2], []).append(float(e["time"]))
    for e in trace:
        if e["step"] != "receive" or e.get("peer") is None:
            continue
        sender, receiver, arrival = int(e["peer"]), int(e["process"]), float(e["time"])
        candidates = sends.get((sender, receiver, e.get("iteration"), e.get("round")))
        if not candidates:  # no exact match: the sender's latest send to this receiver before arrival
            candidates = pairs.get((sender, receiver), [])
        earlier = [t for t in candidates if t <= arrival]
        yield sender, receiver, (max(earlier) if earlier else arrival), arrival


def draw_bundles(ax, trace: Sequence[Mapping[str, Any]], y: Mapping[int, float], cluster_of: np.ndarray) -> int:
    """One band per (sender cluster, receiver cluster, iteration, round): mean send -> mean receive."""
    groups: dict[tuple, list[tuple[float, float]]] = {}
    rounds = {}
    for e in trace:
        if e["step"] == "receive" and e.get("peer") is not None:
            rounds[(int(e["peer"]), int(e["process"]), float(e["time"]))] = (e.get("iteration"), e.get("round"))
    for sender, receiver, start, arrival in _message_pairs(trace):
        key = (int(cluster_of[sender]), int(cluster_of[receiver])) + rounds[(sender, receiver, arrival)]
        groups.setdefault(key, []).append((start, arrival))
    centre = {c: float(np.mean([y[p] for p in y if cluster_of[p] == c])) for c in set(cluster_of.tolist())}
    for (source, target, _, _), spans in groups.items():
        start, arrival = float(np.mean([s for s, _ in spans])), float(np.mean([a for _, a in spans]))
        ax.plot([start, arrival], [centre[source], centre[target]], color=colour(source), alpha=0.45,
                linewidth=0.5 + 0.45 * math.log2(len(spans)), solid_capstyle="round", zorder=2, gid="bundle")
    return len(groups)


def spacetime(
    trace: Sequence[Mapping[str, Any]],
    topology_cluster_sizes: Sequence[int],
    path: str | Path,
    blocked: Iterable[int] | Mapping[int, float] | None = None,
    title: str | None = None,
    notes: Sequence[str] = (),
) -> list[Path]:
    """Draw :func:`spacetime_figure` and save it as PNG and PDF next to ``path``; return both paths."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix.lower() in (".png", ".pdf") else path
    return save(spacetime_figure(trace, topology_cluster_sizes, blocked, title, notes), stem)
