"""Scaling curves: the compiled engine's throughput against the scenarios per call, the
number of processes and the dimension, for sc and gen, measured and drawn as one figure.

    python -m benchmarks.scaling [--out DIR] [--device cpu|gpu|tpu] [--quick] [--factors scenarios n d]
                                 [--budget-seconds S]
    python -m benchmarks.scaling --plot FIGURE RESULT.json [RESULT.json ...]

Three one-factor sweeps around the headline (n = 16 in clusters [4, 4, 4, 4], d = 10,
random schedule, quadratic objective, gen with rule ``mean`` and 3 rounds):

* scenarios S = 16, 64, ..., up to 65,536 on a CPU and 1,048,576 on an accelerator;
* processes n = 8, 16, 32, 64, 128 (four equal clusters) at d = 10;
* dimension d = 2, 10, 100, 1000 at n = 16;

the n and d sweeps at a fixed S (1,024 on a CPU, 65,536 on an accelerator: on the
saturated part of the S curve). Each point is :func:`benchmarks.measure.bench_engine`:
compiled once, chunks as ``ftsgd run`` sizes them, best of timed runs. Points are measured
cheapest first within each sweep; once ``--budget-seconds`` is spent the rest are recorded
as skipped with the reason. ``scaling.json`` (rows and machine) is rewritten after every
point, so an interrupted run keeps what it measured; ``scaling.png`` draws it. ``--plot``
draws several result files (say a CPU and a GPU run) into one figure and prints their
rates as one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks.__main__ import OneLineParser, resolve_device
from benchmarks.plan import ALGORITHMS, HEADLINE, CostModel, skipped_row
from ftsgd_jax.errors import ConfigError, real

PROG = "python -m benchmarks.scaling"
FACTORS = ("scenarios", "n", "d")
N_VALUES = (8, 16, 32, 64, 128)
D_VALUES = (2, 10, 100, 1000)
QUICK_N_VALUES = (8, 16, 32)
QUICK_D_VALUES = (2, 10, 100)
TARGET_CALL_SECONDS = 0.3  # iterations are chosen so that one call lasts about this long
MAX_ITERATIONS = 200
MIN_ITERATIONS = 10
"""Fewer iterations leave a chunk's fixed costs (its scenarios' setup and final record)
unamortised: timed at T = 1, S = 65,536 on 2 CPU cores read 161k where T = 10 reads the
rate of S = 4,096."""


def scenario_values(accelerator: bool, quick: bool) -> tuple[int, ...]:
    """Powers of four from 16: to 65,536 on a CPU (4,096 quick), 1,048,576 on an accelerator."""
    top = 1 << 20 if accelerator else (1 << 12 if quick else 1 << 16)
    values, s = [], 16
    while s <= top:
        values.append(s)
        s *= 4
    return tuple(values)


def sweep_points(accelerator: bool, quick: bool, factors: Sequence[str] = FACTORS) -> list[dict[str, Any]]:
    """Every (factor, algorithm, n, d, S) to measure: factor by factor (the costly d sweep last),
    sc then gen within each, each sweep in increasing cost."""
    fixed_s = 65536 if accelerator else 1024
    n0, d0 = HEADLINE["n"], HEADLINE["d"]
    ns = QUICK_N_VALUES if quick else N_VALUES
    ds = QUICK_D_VALUES if quick else D_VALUES
    sweeps = {
        "scenarios": [dict(n=n0, d=d0, scenarios=s) for s in scenario_values(accelerator, quick)],
        "n": [dict(n=n, d=d0, scenarios=fixed_s) for n in ns],
        "d": [dict(n=n0, d=d, scenarios=fixed_s) for d in ds],
    }
    return [dict(factor=factor, algorithm=algorithm, **values) for factor in FACTORS if factor in factors for algorithm in ALGORITHMS for values in sweeps[factor]]


def iterations_for(cost: CostModel, point: Mapping[str, Any]) -> int:
    """Enough iterations for a call of about ``TARGET_CALL_SECONDS`` (estimated),
    MIN_ITERATIONS..MAX_ITERATIONS."""
    per_iteration = cost.call_seconds(point["algorithm"], "mean", point["n"], point["d"], point["scenarios"], 1)
    return int(max(MIN_ITERATIONS, min(MAX_ITERATIONS, TARGET_CALL_SECONDS / max(per_iteration, 1e-9))))


def run_scaling(
    out: Path,
    *,
    device=None,
    quick: bool = False,
    factors: Sequence[str] = FACTORS,
    budget_seconds: float = 1800.0,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Measure every point (the first always; the rest are skipped once the budget is spent), write
    ``scaling.json`` after each and ``scaling.png`` at the end; returns the payload."""
    import jax

    from benchmarks.measure import bench_engine
    from benchmarks.report import machine_info
    from ftsgd_jax import results

    device = device or jax.devices()[0]
    accelerator = device.platform != "cpu"
    payload: dict[str, Any] = {"machine": machine_info(device), "quick": quick, "factors": list(factors), "rows": []}
    cost = CostModel()
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with jax.default_device(device):
        for point in sweep_points(accelerator, quick, factors):
            iterations = iterations_for(cost, point)
            spent = time.perf_counter() - started
            if payload["rows"] and spent > budget_seconds:
                reason = f"the budget of {budget_seconds:.0f} s was spent ({spent:.0f} s)"
                row = skipped_row("engine", point["algorithm"], point["n"], point["d"], point["scenarios"], iterations, reason)
            else:
                row = bench_engine(
                    point["algorithm"], point["n"], point["d"], point["scenarios"], iterations,
                    repeats=3, min_run_seconds=0.2, device=device,
                )
                cost.learn(row)
                progress(
                    f"{PROG}: {point['algorithm']} {point['factor']:>9}: n = {point['n']}, d = {point['d']}, "
                    f"S = {point['scenarios']:,}: {row['best_scenario_iterations_per_second']:,.0f} "
                    f"scenario-iterations/s ({time.perf_counter() - started:.0f} s so far)"
                )
            payload["rows"].append({**row, "factor": point["factor"]})
            results.write_json(out / "scaling.json", payload)
    draw([payload], out / "scaling.png")
    return payload


def device_label(machine: Mapping[str, Any]) -> str:
    """'CPU (k cores)' for a CPU run, else the accelerator's kind (e.g. 'NVIDIA H200')."""
    if str(machine.get("backend", "")).lower() == "cpu":
        return f"CPU ({machine.get('usable_cores') or machine.get('cores')} cores)"
    return str(machine.get("device_kind") or machine.get("backend") or "device")


def draw(payloads: Sequence[Mapping[str, Any]], figure_path: Path) -> None:
    """Three log-log panels (throughput vs S, vs n, vs d): one line per algorithm and device."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    titles = {"scenarios": "scenarios per call S (n = 16, d = 10)", "n": "processes n (d = 10)", "d": "dimension d (n = 16)"}
    figure, axes = plt.subplots(1, 3, figsize=(11.0, 3.4), sharey=True, constrained_layout=True)
    styles = {"sc": "-", "gen": "--"}
    markers = ("o", "s", "^", "D")
    for index, payload in enumerate(payloads):
        label = device_label(payload["machine"])
        for axis, factor in zip(axes, FACTORS):
            for algorithm in ALGORITHMS:
                rows = [r for r in payload["rows"] if r["factor"] == factor and r["algorithm"] == algorithm and r["status"] == "ok"]
                if not rows:
                    continue
                fixed_s = f", S = {rows[0]['scenarios']:,}" if factor != "scenarios" else ""
                axis.plot(
                    [r[factor] for r in rows], [r["best_scenario_iterations_per_second"] for r in rows],
                    linestyle=styles[algorithm], marker=markers[index % len(markers)], markersize=4,
                    label=f"{algorithm}, {label}{fixed_s}",
                )
    for axis, factor in zip(axes, FACTORS):
        axis.set_xscale("log", base=2 if factor != "d" else 10)
        axis.set_yscale("log")
        axis.set_xlabel(titles[factor])
        axis.grid(True, which="major", alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=6.5)
    axes[0].set_ylabel("scenario-iterations / s")
    figure.savefig(figure_path, dpi=150)
    plt.close(figure)


def markdown_table(payloads: Sequence[Mapping[str, Any]]) -> str:
    """One row per (factor, value): the rate of sc and gen on each device, in millions or
    thousands of scenario-iterations/s as the magnitude asks; S of the n and d sweeps is
    each device's fixed size, in the order of the columns."""
    labels = [device_label(p["machine"]) for p in payloads]
    header = "| factor | n | d | S | " + " | ".join(f"{a}, {label}" for label in labels for a in ALGORITHMS) + " |"
    lines = [header, "|" + "---|" * 4 + "---:|" * (len(labels) * len(ALGORITHMS))]
    for factor in FACTORS:
        keys: list[tuple[int, int, int | None]] = []
        for payload in payloads:
            for r in payload["rows"]:
                key = (r["n"], r["d"], r["scenarios"] if factor == "scenarios" else None)
                if r["factor"] == factor and key not in keys:
                    keys.append(key)
        for n, d, s in sorted(keys, key=lambda k: (k[0], k[1], k[2] or 0)):
            cells, fixed_sizes = [], []
            for payload in payloads:
                for algorithm in ALGORITHMS:
                    hit = [r for r in payload["rows"] if r["factor"] == factor and r["algorithm"] == algorithm
                           and (r["n"], r["d"]) == (n, d) and (s is None or r["scenarios"] == s) and r["status"] == "ok"]
                    cells.append(_rate(hit[0]["best_scenario_iterations_per_second"]) if hit else "-")
                    fixed_sizes += [f"{r['scenarios']:,}" for r in hit if f"{r['scenarios']:,}" not in fixed_sizes]
            fixed = f"{s:,}" if s is not None else " / ".join(fixed_sizes)
            lines.append(f"| {factor} | {n} | {d} | {fixed} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _rate(value: float) -> str:
    return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Throughput of the compiled engine against S, n and d, for sc and gen.")
    parser.add_argument("--out", default="results/scaling", help="output folder (default: results/scaling)")
    parser.add_argument("--device", default=None, metavar="cpu|gpu|tpu", help="run on this kind of device")
    parser.add_argument("--quick", action="store_true", help="shorter sweeps (S to 4,096 on a CPU, n to 32, d to 100)")
    parser.add_argument("--budget-seconds", type=float, default=None, metavar="S", help="soft time limit (default 1800)")
    parser.add_argument("--factors", nargs="+", default=list(FACTORS), choices=FACTORS,
                        help="which sweeps to measure (default: scenarios n d)")
    parser.add_argument("--plot", nargs="+", default=None, metavar="FILE",
                        help="draw FIGURE from RESULT.json files instead of measuring: --plot FIGURE RESULT.json ...")
    return parser


def load_payload(path: Path) -> dict[str, Any]:
    """A scaling.json written by this module; ConfigError naming the file otherwise."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError("--plot", f"cannot read {path}: {error}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("rows"), list) or "machine" not in payload:
        raise ConfigError("--plot", f"{path} is not a scaling.json (it needs 'machine' and 'rows')")
    return payload


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.plot is not None:
            if len(args.plot) < 2:
                raise ConfigError("--plot", "needs a figure path and at least one scaling.json")
            figure, *sources = (Path(p) for p in args.plot)
            payloads = [load_payload(p) for p in sources]
            draw(payloads, figure)
            print(markdown_table(payloads))
            print(f"{PROG}: wrote {figure}", file=sys.stderr)
            return 0
        budget = 1800.0 if args.budget_seconds is None else real("--budget-seconds", args.budget_seconds, low=0.0, low_open=True)
        device = resolve_device(args.device)
        from ftsgd_jax.results import check_folder

        check_folder(Path(args.out))
        payload = run_scaling(
            Path(args.out), device=device, quick=args.quick, factors=args.factors, budget_seconds=budget,
            progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
    except ConfigError as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    measured = sum(row["status"] == "ok" for row in payload["rows"])
    print(f"{PROG}: {measured} of {len(payload['rows'])} points measured; wrote {Path(args.out) / 'scaling.json'} and scaling.png",
          file=sys.stderr)
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
