"""Run one configuration over several hosts with jax.distributed.

Scenarios are independent, so each process (one per host) takes an interleaved share of
the scenario indices, runs them on its local devices (sharded over them), and writes its
own part; any scenario still reruns alone from its index. Run two processes on one
machine to try it:

    python examples/multihost.py sweeps/run_example.toml --out results/mh \\
        --coordinator localhost:8476 --num-processes 2 --process-id 0 &
    python examples/multihost.py sweeps/run_example.toml --out results/mh \\
        --coordinator localhost:8476 --num-processes 2 --process-id 1

On a cluster, start one process per host with the same coordinator address (or leave the
three flags out where jax.distributed detects the cluster, e.g. SLURM or Cloud TPU).
Then merge: `pyarrow.parquet.read_table("results/mh")` reads every part.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", required=True)
    parser.add_argument("--coordinator")
    parser.add_argument("--num-processes", type=int)
    parser.add_argument("--process-id", type=int)
    args = parser.parse_args()
    jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)

    from ftsgd_jax import engine, results
    from ftsgd_jax.config import load_config

    config = load_config(args.config)
    rank, world = jax.process_index(), jax.process_count()
    indices = np.arange(config.run.scenarios)[rank::world]
    result = engine.run(config, indices=indices)
    out = Path(args.out)
    results.write_table(out / f"part-{rank:04d}.parquet", results.metrics_table(result, indices))
    print(f"process {rank}/{world}: {len(indices)} scenarios on {len(jax.local_devices())} local devices -> {out}")


if __name__ == "__main__":
    main()
