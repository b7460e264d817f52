"""How fast the simulator runs, against what, and where the time goes.

Run it with ``python -m benchmarks`` from the repository root (see benchmarks/README.md).
Modules, each with one job:
plan (grid, configurations, memory and time budgets) -> measure (the library's compiled
engine timed) / baselines (the event-driven reference, a batched NumPy sc) / breakdown
(the library's parts of an iteration timed one by one) -> suite (a plan run in order)
-> report (machine, bench.json, bench.csv, Markdown table); ``__main__`` is the command
line. The library never imports this package.
"""
