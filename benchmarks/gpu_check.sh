#!/usr/bin/env bash
# The GPU check of the README's Performance section: on one GPU, the headline sc
# configuration (n = 16 in clusters [4, 4, 4, 4], d = 10, random schedule) timed at
# S = 4,096, 65,536 and 1,048,576 scenarios as `python -m benchmarks` times it (compiled
# once, chunks sized by the device, best of repeated runs), then a 65,536-scenario sweep
# end to end through `ftsgd sweep` (chunk files, Parquet, summary), written as one
# Markdown throughput table. Meant to take under 5 minutes on one GPU.
#
#   benchmarks/gpu_check.sh [--out FILE] [--dry-run]
#
# --out FILE   where the table goes (default benchmarks/results/gpu-check.md)
# --dry-run    print what would run and stop; needs no GPU
#
# Without a visible GPU it stops at once with one line and exit status 2.
set -euo pipefail

usage() { sed -n '9,12p' "$0" | sed 's/^# \{0,1\}//'; }

out="benchmarks/results/gpu-check.md"
dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "gpu_check: --out needs a file name" >&2; exit 2; }
      out="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1'; allowed: --out FILE, --dry-run, --help" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"

if [ "$dry_run" = 1 ]; then
  echo "would time sc, n = 16 (clusters [4, 4, 4, 4]), d = 10, random schedule, 100 iterations, at S = 4096, 65536, 1048576"
  echo "would run a sweep of 2 points (faults.crashes = 0, 3) x 32768 scenarios, 200 iterations, through ftsgd sweep"
  echo "would write the table to $out, with $python"
  exit 0
fi

if ! gpu="$("$python" -c 'import jax; print(jax.devices("gpu")[0].device_kind)' 2>/dev/null)"; then
  echo "gpu_check: no GPU visible to JAX ($python): run it on a machine with an NVIDIA GPU and jax's CUDA wheels (pip install -e '.[gpu]')" >&2
  exit 2
fi
echo "gpu_check: on $gpu" >&2

mkdir -p "$(dirname "$out")"
"$python" - "$out" "$gpu" <<'PYTHON'
import json
import sys
import tempfile
import time
from pathlib import Path

import jax

from benchmarks.measure import bench_engine
from ftsgd_jax import api

out, gpu = Path(sys.argv[1]), sys.argv[2]
started = time.perf_counter()
ITERATIONS = 100
rows = []
for scenarios in (4096, 65536, 1048576):
    row = bench_engine("sc", 16, 10, scenarios, ITERATIONS, repeats=3 if scenarios < 1048576 else 2, device=jax.devices("gpu")[0])
    rows.append(
        f"| engine (compiled program) | {scenarios:,} | {ITERATIONS} | {row['chunk']:,} | {row['compile_seconds']:.1f} "
        f"| {row['best_scenario_iterations_per_second']:,.0f} |"
    )
    print(f"gpu_check: S = {scenarios:,}: {row['best_scenario_iterations_per_second']:,.0f} scenario-iterations/s "
          f"(chunk {row['chunk']:,}; {time.perf_counter() - started:.0f} s so far)", file=sys.stderr, flush=True)

SWEEP_ITERATIONS, PER_POINT = 200, 32768
spec = {
    "sweep": {"name": "gpu-check", "grid": {"faults.crashes": [0, 3]}},
    "system": {"clusters": [4, 4, 4, 4]},
    "faults": {"pattern": "random"},
    "schedule": {"kind": "random"},
    "objective": {"kind": "quadratic", "dim": 10, "sigma": 1.0},
    "algorithm": {"kind": "sc"},
    "run": {"iterations": SWEEP_ITERATIONS, "scenarios": PER_POINT, "record_every": 10},
}
with tempfile.TemporaryDirectory() as folder:
    begun = time.perf_counter()
    result = api.run_sweep(spec, Path(folder) / "sweep")
    wall = time.perf_counter() - begun
timings = result.manifest["timings"]
compile_seconds = sum(t["compile_seconds"] for t in timings)
chunks = sorted({t["chunk"] for t in timings})
rows.append(
    f"| `ftsgd sweep`, 2 points (crashes 0, 3), end to end | {2 * PER_POINT:,} | {SWEEP_ITERATIONS} | "
    f"{', '.join(f'{c:,}' for c in chunks)} | {compile_seconds:.1f} | {2 * PER_POINT * SWEEP_ITERATIONS / wall:,.0f} |"
)
table = "\n".join(
    [
        f"GPU check on {gpu} (jax {jax.__version__}), {time.strftime('%Y-%m-%d')}: sc, n = 16 in clusters [4, 4, 4, 4], "
        "d = 10, random schedule. Engine rows: best of repeated runs of the compiled program; the sweep row: its "
        "whole wall time (compile, chunk files, Parquet, summary).",
        "",
        "| what | scenarios | iterations | chunk | compile s | scenario-iterations/s |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
    ]
)
out.write_text(table + "\n", encoding="utf-8")
print(table)
print(f"gpu_check: wrote {out} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
PYTHON
