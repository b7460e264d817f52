"""The `ftsgd` command line: run, sweep, figures, replay, attack.

Bad input of any kind ends with one line on stderr naming the field and what is allowed,
and exit status 2, before any simulation work; never a traceback. Ctrl-C stops after the
current chunk with exit status 130 and says what is kept.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from ftsgd_jax import __version__
from ftsgd_jax.api import Interrupted
from ftsgd_jax.errors import ConfigError


class Progress:
    """Progress on stderr: done/total, rate and ETA.

    On a terminal one line redrawn in place; otherwise (a log file) a plain line every
    ``every`` seconds and at the end. The rate counts only the work done by this process,
    so a resumed sweep does not claim the skipped chunks as speed.
    """

    def __init__(self, label: str, unit: str = "scenarios", stream=None, every: float = 10.0, header: str | None = None):
        self.label, self.unit, self.every, self.header = label, unit, every, header
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self.last_line = -float("inf")

    def __call__(self, done: int, total: int, fresh: int | None = None) -> None:
        fresh = done if fresh is None else fresh
        now = time.perf_counter()
        elapsed = max(now - self.started, 1e-9)
        rate = fresh / elapsed
        eta = f"ETA {(total - done) / rate:.0f}s" if rate > 0 else "ETA -"
        text = f"{self.label}: {done}/{total} {self.unit} ({done / max(total, 1):.0%}) {rate:,.0f} {self.unit}/s {eta}"
        finished = done >= total
        if self.header is not None:  # said once work is under way, so a refusal stays the only line
            self.stream.write(self.header + "\n")
            self.header = None
        if self.tty:
            self.stream.write(f"\r{text:<100}" + ("\n" if finished else ""))
        elif finished or now - self.last_line >= self.every:
            self.stream.write(text + "\n")
            self.last_line = now
        self.stream.flush()


class StopRequest:
    """Ctrl-C as a request: the first SIGINT asks the work to stop after the current chunk
    (nothing is torn down while XLA runs); a second one ends the process at once."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self) -> bool:
        return self.requested

    def handle(self, signum, frame) -> None:
        if self.requested:
            sys.stderr.write("\nftsgd: stopped at once; chunks finished before the first Ctrl-C are kept\n")
            sys.stderr.flush()
            os._exit(130)
        self.requested = True
        sys.stderr.write("\nftsgd: stopping after the current chunk (Ctrl-C again to stop at once)\n")
        sys.stderr.flush()


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[StopRequest]:
    request = StopRequest()
    try:
        previous = signal.signal(signal.SIGINT, request.handle)
    except ValueError:  # not the main thread: leave Ctrl-C alone
        yield request
        return
    try:
        yield request
    finally:
        signal.signal(signal.SIGINT, previous)


def command_run(args: argparse.Namespace) -> int:
    from ftsgd_jax import api, results

    with stop_on_interrupt() as stop:
        try:
            result = api.run(
                args.config, args.set, out=args.out, force=args.force, yes=args.yes, progress=Progress("run"), stop=stop
            )
        except api.Interrupted as stopped:
            raise Interrupted(f"{stopped.message}; `ftsgd run` writes only when it finishes") from None
    print(results.format_summary(result.summary))
    for warning in result.warnings:
        print(warning, file=sys.stderr)
    print(f"wrote {result.out}/metrics.parquet, summary.json, manifest.json")
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    from ftsgd_jax import api, processes
    from ftsgd_jax import sweep as sweeps

    resume_command = shlex.join(["ftsgd", "sweep", str(args.spec), "--out", str(args.out), "--resume"])

    def progress(parsed: list[sweeps.Sweep], number: int, estimate: str) -> Progress:
        sweep = parsed[number - 1]
        header = f"{len(parsed)} sweep(s), {sum(len(s.points) for s in parsed)} points: {estimate}"
        label = f"sweep {sweep.name} ({number}/{len(parsed)}, {len(sweep.points)} points)"
        return Progress(label, header=header if number == 1 else None)

    def finished(result: api.SweepResult) -> None:
        print(f"== {result.name}: {result.out}")
        print(sweeps.format_points(result.summary.to_pylist(), result.manifest["swept"]))

    group = None
    if processes.check_flags(args.coordinator, args.num_processes, args.process_id):
        group = processes.join(args.coordinator, args.num_processes, args.process_id)
        resume_command += " " + shlex.join(["--coordinator", args.coordinator, "--num-processes", str(args.num_processes), "--process-id", "I"])
    with stop_on_interrupt() as stop:
        try:
            api.run_sweep(
                args.spec, args.out, resume=args.resume, force=args.force, yes=args.yes,
                progress=progress, stop=stop, finished=finished, group=group,
            )
        except api.Interrupted as stopped:
            raise Interrupted(f"{stopped.message}; resume with: {resume_command}") from None
    print(f"results in {Path(args.out)}")
    return 0


def command_replay(args: argparse.Namespace) -> int:
    import json

    from ftsgd_jax import figures, replay, results

    if args.trace_iterations < 1:
        raise ConfigError("--trace-iterations", f"need an integer >= 1, got {args.trace_iterations}")
    source = Path(args.results)
    config, manifest = replay.load_point(source, args.point)
    point = replay.point_index(manifest, args.point)
    if not 0 <= args.scenario < config.run.scenarios:
        raise ConfigError("--scenario", f"scenario {args.scenario} out of range: 0..{config.run.scenarios - 1}")
    out = Path(args.out)
    results.check_folder(out)
    replayed = replay.replay_metrics(config, args.scenario)
    stored = replay.stored_metrics(source, point, args.scenario)
    differences = replay.compare(replayed, stored)
    start, iterations = replay.trace_window(config, args.scenario, args.window, args.trace_iterations)
    events, blocked = replay.trace_events(config, args.scenario, iterations, start=start)
    results.write_atomic(out / "trace.jsonl", "".join(json.dumps(results.json_safe(e)) + "\n" for e in events).encode())
    results.write_json(
        out / "replay.json",
        {
            "results": str(source.resolve()),
            "point": point,
            "scenario": args.scenario,
            "traced_iterations": [start, iterations],
            "replayed": replayed,
            "stored": stored,
            "difference_over_tolerance": differences,
            "tolerance": {"rtol": replay.RTOL, "atol": replay.ATOL},
        },
    )
    figures.spacetime(
        events, config.topology.cluster_sizes, out / "spacetime.png", blocked=blocked,
        title=f"scenario {args.scenario}, iterations {start}-{iterations - 1}",
        notes=replay.later_crashes(config, args.scenario, iterations),
    )
    worst = max(differences.values())
    print(f"scenario {args.scenario}: {len(events)} steps traced over iterations {start}-{iterations - 1}; blocked: {blocked or 'none'}")
    verdict = "equal" if worst <= 1 else "DIFFERENT"
    print(f"replayed metrics vs stored: {verdict} (largest difference {worst:.2g} x tolerance rtol {replay.RTOL}, atol {replay.ATOL})")
    print(f"wrote {out}/trace.jsonl, replay.json, spacetime.png")
    return 0 if worst <= 1 else 1


def command_attack(args: argparse.Namespace) -> int:
    from ftsgd_jax import attack
    from ftsgd_jax.config import load_config

    spec = attack.check_spec(
        attack.AttackSpec(args.objective, args.budget, args.population, args.strategy, args.seed)
    )
    config = load_config(args.spec, args.set)
    attack.searched_config(config, args.crashes)  # refuses what cannot be searched, before any work
    attack.check_objective(config, spec.objective)
    out = Path(args.out)

    def report(point: dict) -> None:
        print(
            f"generation {point['generation']}: {point['evaluations']}/{spec.budget} schedules, "
            f"worst of generation {point['best']:.5g}, worst so far {point['best_so_far']:.5g} ({point['seconds']:.1f}s)",
            file=sys.stderr,
            flush=True,
        )

    comparison = attack.run_attack(config, spec, args.crashes, out, report, force=args.force)
    for name, stats in comparison["methods"].items():
        print(f"{name:>22}: worst {stats['max']:.5g}, median {stats['median']:.5g} over {stats['count']} schedules")
    for check in comparison["checks"]:
        print(attack.format_check(check))
    print(f"search took {comparison['search_seconds']:.1f}s; wrote {out}/attack.json, scores.parquet, attack_scores.png, best/")
    worst = comparison["best"][0]
    print(f"worst found by {worst['method']}: {worst['score']:.5g}")
    print(f"replay the worst: ftsgd replay {out}/best/0 --scenario {worst['scenario']} --out {out}/best/0/replay")
    return 0


def command_figures(args: argparse.Namespace) -> int:
    from ftsgd_jax import figures, results

    results.check_folder(Path(args.out))
    paths = figures.draw_suite(Path(args.results), Path(args.out))
    for path in paths:
        if path.suffix == ".png":
            print(path)
    print(f"{len(paths)} files (PNG and PDF) in {args.out}")
    return 0


def show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning of the library as the one line ``warning: ...`` on stderr, without its source line."""
    print(f"warning: {message}", file=sys.stderr)


DESCRIPTION = (
    "Fault-tolerant asynchronous SGD in the cluster-based model, simulated as JAX array programs: "
    "run one configuration, sweep a grid of them, draw figures, replay one scenario, search the worst schedules."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftsgd", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"ftsgd {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="simulate one configuration over many scenarios")
    run.add_argument("config", help="TOML config file")
    run.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--force", action="store_true", help="replace another kind of results (a sweep's) in --out")
    run.add_argument("--yes", action="store_true", help="start even when the run is very large")
    run.set_defaults(handler=command_run)

    sweep = commands.add_parser("sweep", help="run every point of a sweep spec (or a suite of sweeps)")
    sweep.add_argument("spec", help="TOML sweep spec: a run config with a [sweep] table, or a [suite]")
    sweep.add_argument("--out", required=True, help="results folder")
    sweep.add_argument("--resume", action="store_true", help="skip the chunks an earlier run of this spec finished")
    sweep.add_argument("--force", action="store_true", help="replace the results in --out: of another spec or kind, and of this spec unless --resume")
    sweep.add_argument("--yes", action="store_true", help="start even when the sweep is very large")
    sweep.add_argument("--coordinator", metavar="HOST:PORT", help="split the sweep over processes: process 0's host and a free port")
    sweep.add_argument("--num-processes", type=int, metavar="P", help="how many processes share the sweep (with --coordinator)")
    sweep.add_argument("--process-id", type=int, metavar="I", help="this process's number, 0..P-1 (with --coordinator)")
    sweep.set_defaults(handler=command_sweep)

    figures = commands.add_parser("figures", help="draw the figures of a sweep (or a suite of sweeps)")
    figures.add_argument("results", help="a results folder of `ftsgd sweep`")
    figures.add_argument("--out", required=True, help="folder for the PNG and PDF files")
    figures.set_defaults(handler=command_figures)

    replay = commands.add_parser("replay", help="rerun one scenario alone and write its interleaving")
    replay.add_argument("results", help="a results folder of `ftsgd run` or `ftsgd sweep`")
    replay.add_argument("--scenario", type=int, required=True, help="scenario index")
    replay.add_argument(
        "--point",
        default="0",
        help="point of a sweep: its values as KEY=VALUE[,KEY=VALUE...] (e.g. faults.crashes=2), "
        "or its index in the folder's summary (default 0)",
    )
    replay.add_argument("--trace-iterations", type=int, default=20, help="iterations to trace (default 20)")
    replay.add_argument(
        "--window",
        default=None,
        help="iterations to trace: START:STOP, or 'crash' (--trace-iterations around the first crash); "
        "default: the first --trace-iterations",
    )
    replay.add_argument("--out", required=True, help="output folder for trace.jsonl and the diagram")
    replay.set_defaults(handler=command_replay)

    attack = commands.add_parser("attack", help="search the schedules and crash points that hurt most")
    attack.add_argument("spec", help="TOML run config to attack (its scheduler settings bound the search)")
    attack.add_argument("--objective", required=True, help="error | disagreement | contraction | rounds | view | view_mean | blocked")
    attack.add_argument("--budget", type=int, required=True, help="schedules the search scores (and each comparison)")
    attack.add_argument("--crashes", type=int, default=None, help="crash budget (default faults.crashes)")
    attack.add_argument("--population", type=int, default=256, help="schedules per generation (default 256)")
    attack.add_argument("--strategy", default="sep_cma_es", help="sep_cma_es (default) | cma_es | open_es")
    attack.add_argument("--seed", type=int, default=0, help="seed of the search (default 0)")
    attack.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override a config value")
    attack.add_argument("--out", required=True, help="output folder (an earlier attack's results there are replaced)")
    attack.add_argument("--force", action="store_true", help="replace another kind of results (a run's, a sweep's) in --out")
    attack.set_defaults(handler=command_attack)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN medians etc. are counted in the summaries instead
        warnings.showwarning = show_warning
        try:
            return args.handler(args)
        except ConfigError as error:
            print(f"ftsgd: error: {' '.join(str(error).split())}", file=sys.stderr)
            return 2
        except Interrupted as stopped:
            print(f"ftsgd: {stopped.message}", file=sys.stderr)
            return 130
        except KeyboardInterrupt:
            print("ftsgd: interrupted; finished chunks are kept", file=sys.stderr)
            return 130
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            print(f"ftsgd: error: {where}{error.strerror or error}", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
