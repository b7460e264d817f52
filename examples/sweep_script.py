"""Sweep the number of crashes for sc from Python: print the summary, plot the final error.

sc never waits for anyone, so its error should stay near the crash-free one however many
of the 16 processes crash (up to n - 1 = 15). The sweep runs 6 points that share one
compiled program (crash counts are run-time values), about 20 s of CPU time on 2 cores:

    python examples/sweep_script.py --out results/crashes
    python examples/sweep_script.py --out results/crashes --resume   # after an interruption, or again

A second run into a folder that holds this sweep's results needs ``--resume`` (which keeps
them) or another folder: nothing finished is deleted.

It writes what ``ftsgd sweep`` writes (``metrics.parquet``, ``summary.parquet``,
``manifest.json``) and ``error_vs_crashes.png``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402

import ftsgd_jax  # noqa: E402

CRASHES = [0, 2, 4, 8, 12, 15]


def crash_sweep(scenarios: int, iterations: int) -> dict:
    """The spec as a dict: what a TOML file with these tables would say."""
    return {
        "sweep": {"name": "crashes", "grid": {"faults.crashes": CRASHES}},
        "system": {"clusters": [4, 4, 4, 4]},
        "faults": {"pattern": "random"},
        "schedule": {"kind": "random"},
        "objective": {"kind": "quadratic", "dim": 10, "sigma": 1.0},
        "algorithm": {"kind": "sc", "step": "inverse"},
        "run": {"iterations": iterations, "scenarios": scenarios, "record_every": math.gcd(iterations, 10)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="results folder")
    parser.add_argument("--scenarios", type=int, default=256, help="scenarios per point (default 256)")
    parser.add_argument("--iterations", type=int, default=200, help="iterations per scenario (default 200)")
    parser.add_argument("--resume", action="store_true", help="keep the chunks an earlier run finished and run what is missing")
    args = parser.parse_args()

    try:
        result = ftsgd_jax.run_sweep(crash_sweep(args.scenarios, args.iterations), args.out, resume=args.resume)
    except ftsgd_jax.ConfigError as error:  # the library's one-line message, as the command line prints it
        print(f"{Path(__file__).name}: error: {error}", file=sys.stderr)
        sys.exit(2)

    summary = result.summary.to_pylist()  # one row per point; result.summary.to_pandas() with pandas
    print(f"{'crashes':>8} {'error (median)':>15} {'10%':>10} {'90%':>10} {'blocked':>8}")
    for row in summary:
        print(
            f"{row['faults.crashes']:>8} {row['err_mean_median']:>15.4g} {row['err_mean_q10']:>10.4g} "
            f"{row['err_mean_q90']:>10.4g} {row['blocked_fraction']:>8.0%}"
        )

    crashes = [row["faults.crashes"] for row in summary]
    figure, axes = plt.subplots(figsize=(4, 3), layout="constrained")
    axes.fill_between(crashes, [r["err_mean_q10"] for r in summary], [r["err_mean_q90"] for r in summary], alpha=0.3)
    axes.plot(crashes, [r["err_mean_median"] for r in summary], marker="o")
    axes.set(xlabel="crashed processes (of 16)", ylabel="final mean |x - x*|^2", yscale="log", xticks=crashes, title="sc")
    path = Path(result.out) / "error_vs_crashes.png"
    figure.savefig(path, dpi=150)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
