"""The ``ftsgd`` command line: run, sweep, figures, replay, bench.

Bad input of any kind ends with one line on stderr naming the field and what is allowed,
and exit status 2; never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ftsgd_jax.errors import ConfigError


class Progress:
    """A one-line progress report on stderr: done/total, rate and ETA."""

    def __init__(self, label: str, unit: str = "scenarios", stream=sys.stderr):
        self.label, self.unit, self.stream = label, unit, stream
        self.started = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 else float("inf")
        end = "\n" if done >= total else ""
        self.stream.write(
            f"\r{self.label}: {done}/{total} {self.unit} ({done / total:.0%}) {rate:,.0f} {self.unit}/s ETA {eta:.0f}s {end}"
        )
        self.stream.flush()


def command_run(args: argparse.Namespace) -> int:
    import numpy as np

    from ftsgd_jax import engine, results
    from ftsgd_jax.config import load_config

    config = load_config(args.config, args.set)
    out = Path(args.out)
    started = time.perf_counter()
    result = engine.run(config, progress=Progress("run"))
    summary = results.summarize(result, config.topology.n)
    indices = np.arange(config.run.scenarios)
    results.write_table(out / "metrics.parquet", results.metrics_table(result, indices))
    results.write_json(out / "summary.json", summary)
    results.write_json(
        out / "manifest.json",
        {
            "command": "run",
            "config_file": str(Path(args.config).resolve()),
            "overrides": list(args.set),
            "config": config.resolved,
            "seed": config.run.seed,
            "scenario_keys": "fold_in(seed_key(seed), scenario)",
            "rounds_per_iteration": result.rounds_per_iteration,
            "environment": results.environment(),
            "timings": {
                "compile_seconds": result.compile_seconds,
                "run_seconds": result.run_seconds,
                "total_seconds": time.perf_counter() - started,
                "scenario_iterations_per_second": config.run.scenarios * config.run.iterations / max(result.run_seconds, 1e-9),
                "chunk": result.chunk,
                "peak_rss_bytes": results.peak_rss_bytes(),
            },
        },
    )
    print(results.format_summary(summary))
    nonfinite = summary["nonfinite"]
    if nonfinite["count"]:
        print(f"warning: {nonfinite['count']} scenarios produced NaN/Inf: {nonfinite['scenarios'][:20]}", file=sys.stderr)
    print(f"wrote {out}/metrics.parquet, summary.json, manifest.json")
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    from ftsgd_jax import sweep as sweeps
    from ftsgd_jax.config import load_toml

    path = Path(args.spec)
    spec = load_toml(path)
    out = Path(args.out)
    if sweeps.is_suite(spec):
        members = sweeps.suite_members(spec, path)
        parsed = [sweeps.Sweep(load_toml(member), member, overrides) for member, overrides in members]
    else:
        parsed = [sweeps.Sweep(spec, path)]
    for number, sweep in enumerate(parsed, 1):
        target = out / sweep.name if sweeps.is_suite(spec) else out
        label = f"sweep {sweep.name} ({number}/{len(parsed)}, {len(sweep.points)} points)"
        manifest = sweeps.run_sweep(sweep, target, resume=args.resume, force=args.force, progress=Progress(label))
        summary = _read_summary(target)
        print(f"== {sweep.name}: {target}")
        print(sweeps.format_points(summary, manifest["swept"]))
    if sweeps.is_suite(spec):
        results_index = {"suite": str(path.resolve()), "sweeps": [s.name for s in parsed]}
        from ftsgd_jax.results import write_json

        write_json(out / "suite.json", results_index)
    print(f"results in {out}")
    return 0


def command_replay(args: argparse.Namespace) -> int:
    import json

    from ftsgd_jax import figures, replay, results

    source = Path(args.results)
    config, manifest = replay.load_point(source, args.point)
    if not 0 <= args.scenario < config.run.scenarios:
        raise ConfigError("--scenario", f"scenario {args.scenario} out of range: 0..{config.run.scenarios - 1}")
    out = Path(args.out)
    replayed = replay.replay_metrics(config, args.scenario)
    stored = replay.stored_metrics(source, args.point, args.scenario)
    differences = replay.compare(replayed, stored)
    iterations = min(args.trace_iterations, config.run.iterations)
    events, blocked = replay.trace_events(config, args.scenario, iterations)
    out.mkdir(parents=True, exist_ok=True)
    results.write_atomic(out / "trace.jsonl", "".join(json.dumps(e) + "\n" for e in events).encode())
    results.write_json(
        out / "replay.json",
        {
            "results": str(source.resolve()),
            "point": args.point,
            "scenario": args.scenario,
            "traced_iterations": iterations,
            "replayed": replayed,
            "stored": stored,
            "difference_over_tolerance": differences,
            "tolerance": {"rtol": replay.RTOL, "atol": replay.ATOL},
        },
    )
    figures.spacetime(events, config.topology.cluster_sizes, out / "spacetime.png", blocked=blocked)
    worst = max(differences.values())
    print(f"scenario {args.scenario}: {len(events)} steps traced over {iterations} iterations; blocked: {blocked or 'none'}")
    verdict = "equal" if worst <= 1 else "DIFFERENT"
    print(f"replayed metrics vs stored: {verdict} (largest difference {worst:.2g} x tolerance rtol {replay.RTOL}, atol {replay.ATOL})")
    print(f"wrote {out}/trace.jsonl, replay.json, spacetime.png")
    return 0 if worst <= 1 else 1


def command_figures(args: argparse.Namespace) -> int:
    from ftsgd_jax import figures

    paths = figures.draw_suite(Path(args.results), Path(args.out))
    for path in paths:
        if path.suffix == ".png":
            print(path)
    print(f"{len(paths)} files (PNG and PDF) in {args.out}")
    return 0


def _read_summary(folder: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(folder / "summary.parquet").to_pylist()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftsgd", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="simulate one configuration over many scenarios")
    run.add_argument("config", help="TOML config file")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    run.add_argument("--out", required=True, help="output folder")
    run.set_defaults(handler=command_run)

    sweep = commands.add_parser("sweep", help="run every point of a sweep spec (or a suite of sweeps)")
    sweep.add_argument("spec", help="TOML sweep spec: a run config with a [sweep] table, or a [suite]")
    sweep.add_argument("--out", required=True, help="results folder")
    sweep.add_argument("--resume", action="store_true", help="skip the chunks an earlier run of this spec finished")
    sweep.add_argument("--force", action="store_true", help="replace results of a different spec in --out")
    sweep.set_defaults(handler=command_sweep)

    figures = commands.add_parser("figures", help="draw the figures of a sweep (or a suite of sweeps)")
    figures.add_argument("results", help="a results folder of `ftsgd sweep`")
    figures.add_argument("--out", required=True, help="folder for the PNG and PDF files")
    figures.set_defaults(handler=command_figures)

    replay = commands.add_parser("replay", help="rerun one scenario alone and write its interleaving")
    replay.add_argument("results", help="a results folder of `ftsgd run` or `ftsgd sweep`")
    replay.add_argument("--scenario", type=int, required=True, help="scenario index")
    replay.add_argument("--point", type=int, default=0, help="grid point of a sweep (default 0)")
    replay.add_argument("--trace-iterations", type=int, default=20, help="iterations to trace (default 20)")
    replay.add_argument("--out", required=True, help="output folder for trace.jsonl and the diagram")
    replay.set_defaults(handler=command_replay)

    from ftsgd_jax import bench

    bench.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"ftsgd: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ftsgd: interrupted; finished results are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
