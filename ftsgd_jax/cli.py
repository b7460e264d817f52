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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftsgd", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="simulate one configuration over many scenarios")
    run.add_argument("config", help="TOML config file")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    run.add_argument("--out", required=True, help="output folder")
    run.set_defaults(handler=command_run)
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
