"""The benchmark command line: ``python -m benchmarks`` from the repository root.

    python -m benchmarks [--out DIR] [--quick] [--only sc|gen] [--device cpu|gpu|tpu] [--budget-seconds S]

Writes ``bench.json`` and ``bench.csv`` to the output folder, prints the Markdown table to
stdout and progress to stderr (see benchmarks/README.md for the columns). Bad flags end
with one line naming the flag and what is allowed, and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.plan import suite_plan
from ftsgd_jax.errors import ConfigError

PROG = "python -m benchmarks"


class OneLineParser(argparse.ArgumentParser):
    """argparse whose refusals are one line (no usage block), with exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Time the compiled engine over a grid of sizes, the event-driven reference and a plain "
        "NumPy sc baseline, and break one iteration into parts; writes bench.json and bench.csv.",
    )
    parser.add_argument("--out", default="results/bench", help="output folder (default: results/bench)")
    parser.add_argument("--quick", action="store_true", help="a small grid (~1-2 minutes on 2 CPU cores)")
    parser.add_argument("--only", default=None, metavar="sc|gen", help="benchmark one algorithm only")
    parser.add_argument("--device", default=None, metavar="cpu|gpu|tpu", help="run on this kind of device")
    parser.add_argument(
        "--budget-seconds", type=float, default=None, metavar="S",
        help="soft time limit of the suite: later grid points are skipped (default: 110 quick, 3600 full)",
    )
    return parser


def resolve_device(kind: str | None):
    """The first device of ``kind`` ('cpu', 'gpu' or 'tpu'); ConfigError naming what exists."""
    if kind is None:
        return None
    from ftsgd_jax.devices import select_devices

    return select_devices(str(kind).lower(), field="--device")[0]


def print_progress(message: str) -> None:
    """Progress lines to stderr; the Markdown table (multi-line) to stdout."""
    stream = sys.stdout if "\n" in message else sys.stderr
    print(message, file=stream, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        plan = suite_plan(args.quick, args.only, args.budget_seconds)
        device = resolve_device(args.device)
        from benchmarks.suite import run_suite  # loads jax and the library: only once the flags are good
        from ftsgd_jax.results import check_folder

        check_folder(Path(args.out))  # before minutes of timing, not when writing them

        payload = run_suite(args.out, plan, progress=print_progress, device=device)
    except ConfigError as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return 0 if payload["measurements"] else 1


if __name__ == "__main__":
    sys.exit(main())
