"""ftsgd-jax: fault-tolerant asynchronous SGD in the cluster-based model as JAX array programs.

Layers, each a module with one job:
model (topology, quorum rules, crash patterns) -> schedule (schedulers -> time stamps ->
views) -> agreement / objectives / algorithms -> engine (scan over iterations, vmap over
scenarios) -> sweep / figures / replay / cli. ``reference`` is a plain event-driven
simulator used as the oracle in tests and as the benchmark baseline.
"""

__version__ = "0.1.0"
