"""Run the benchmark suite of ftsgd-jax (the same as ``ftsgd bench``).

    .venv/bin/python benchmarks/run_benchmarks.py --out results/bench [--quick] [--only sc|gen]
                                                  [--device cpu|gpu|tpu] [--budget-seconds S]

Writes ``bench.json`` and ``bench.csv`` to the output folder and prints the Markdown table
(see benchmarks/README.md for what the columns mean).
"""

from __future__ import annotations

import argparse
import sys

from ftsgd_jax import bench
from ftsgd_jax.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="run_benchmarks.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    bench.register(commands)
    args = parser.parse_args(["bench", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"run_benchmarks.py: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
