"""ftsgd-jax: fault-tolerant asynchronous SGD in the cluster-based model as JAX array programs.

Layers, each a module with one job:
model (topology, quorum rules, crash patterns) -> schedule (schedulers -> time stamps ->
views) -> agreement / objectives / algorithms -> engine (scan over iterations, vmap over
scenarios) -> sweep / figures / replay / cli. ``reference`` is a plain event-driven
simulator used as the oracle in tests and as the benchmark baseline.

From a script or a notebook (``api``, what the ``ftsgd`` command calls)::

    import ftsgd_jax
    result = ftsgd_jax.run("sweeps/run_example.toml", {"faults.crashes": 8})
    result.summary["metrics"]["err_mean"]["median"], result.metrics  # a pyarrow table
    faults = ftsgd_jax.run_sweep("sweeps/faults.toml", "results/faults", resume=True)
    faults.summary  # one row per point
"""

from ftsgd_jax.api import Interrupted, Result, SweepResult, load, run, run_sweep
from ftsgd_jax.errors import ConfigError

__version__ = "0.1.0"

__all__ = ["ConfigError", "Interrupted", "Result", "SweepResult", "load", "run", "run_sweep", "__version__"]
