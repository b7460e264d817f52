"""Behaviour tests of the benchmark package (no timing assertions: machines differ)."""

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import __main__ as command
from benchmarks import scaling
from benchmarks.baselines import numpy_sc
from benchmarks.breakdown import UNITS
from benchmarks.plan import Plan, clusters_for, suite_plan
from benchmarks.report import CSV_COLUMNS
from benchmarks.suite import run_suite

ROOT = Path(__file__).resolve().parent.parent

# seconds of work at toy sizes; a generous budget, as the tests check what is written, not speed
TINY = Plan(
    mode="tiny",
    engine=(("sc", "mean", 4, 2, 4), ("gen", "mean", 4, 2, 4)),
    reference=(("sc", 4, 2, 1, 2), ("gen", 4, 2, 1, 1)),
    numpy=((4, 2, 4),),
    breakdown=(),
    repeats=2,
    measurement_cap_seconds=10.0,
    budget_seconds=3600.0,
    min_run_seconds=0.001,
    max_iterations=4,
)


def test_tiny_suite_writes_json_and_csv_with_machine(tmp_path):
    messages = []
    payload = run_suite(tmp_path, TINY, progress=messages.append)
    data = json.loads((tmp_path / "bench.json").read_text())
    assert {"mode", "machine", "memory", "measurements", "skipped", "breakdown", "markdown", "total_seconds"} <= set(data)
    assert data["mode"] == "tiny"
    machine = data["machine"]
    assert {"cpu", "cores", "backend", "devices", "versions", "usable_cores"} <= set(machine)
    assert machine["cpu"] and machine["cores"] >= 1 and machine["devices"]
    assert data["memory"]["budget_bytes"] > 0
    kinds = {row["kind"] for row in data["measurements"]}
    assert {"engine", "reference", "numpy"} <= kinds
    for row in data["measurements"]:
        assert row["status"] == "ok", row
    engine_rows = [row for row in data["measurements"] if row["kind"] == "engine"]
    assert {row["algorithm"] for row in engine_rows} == {"sc", "gen"}
    for row in engine_rows:
        for key in ("compile_seconds", "best_scenario_iterations_per_second", "median_scenario_iterations_per_second",
                    "run_seconds", "peak_rss_bytes", "xla_bytes", "estimated_bytes", "iterations", "scenarios", "clusters"):
            assert key in row, key
        assert row["best_scenario_iterations_per_second"] >= row["median_scenario_iterations_per_second"] > 0
        assert len(row["run_seconds"]) == row["repeats"]
    for row in data["measurements"]:
        if row["kind"] in ("reference", "numpy"):
            assert row["ratio"] > 0 and row["scenario_iterations_per_second"] > 0

    with open(tmp_path / "bench.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(data["measurements"])
    assert set(CSV_COLUMNS) == set(table[0])
    assert all(row["cpu"] == machine["cpu"] and row["backend"] == machine["backend"] for row in table)
    markdown = payload["markdown"]
    assert markdown.startswith("Machine: ") and "| engine" in markdown and "| reference" in markdown
    assert any("wrote" in message for message in messages)


def test_breakdown_times_every_part_of_the_library(tmp_path):
    plan = dataclasses.replace(TINY, engine=(), reference=(), numpy=(), breakdown=((4, 2, 4),))
    payload = run_suite(tmp_path, plan, progress=None)
    (result,) = payload["breakdown"]
    assert result["failed_parts"] == {}  # every part still compiles alone against the library's API
    assert set(result["parts"]) == set(UNITS)
    assert result["parts"]["sc_iteration"]["share_of_sc_iteration"] == pytest.approx(1.0)
    assert result["dominant_sc_part"] in ("draws", "views_sc", "gradients", "averaging_sc")
    rows = payload["measurements"]
    assert [row["part"] for row in rows] == list(result["parts"]) and {row["kind"] for row in rows} == {"breakdown"}
    assert "Breakdown at n=4, d=2, S=4" in payload["markdown"] and "| sc_iteration | scenario-iteration |" in payload["markdown"]


def test_over_budget_configurations_are_recorded_as_skipped(tmp_path):
    plan = Plan(
        mode="tiny", engine=(("sc", "mean", 4, 2, 4), ("gen", "safe_area", 8, 2, 64)), reference=(),
        numpy=((4, 2, 4),), breakdown=(), repeats=1, measurement_cap_seconds=5, budget_seconds=5,
    )
    no_memory = {"source": "test", "available_bytes": 2, "budget_bytes": 1}
    data = run_suite(tmp_path, plan, progress=None, memory=no_memory)
    assert [row["status"] for row in data["measurements"]] == ["skipped"] * 3
    assert all("memory" in row["reason"] for row in data["measurements"])
    assert len(data["skipped"]) == 3
    assert "skipped: estimated memory" in data["markdown"]
    assert (tmp_path / "bench.csv").read_text().count("skipped") == 3


def test_plans_contain_the_headline_configurations():
    for quick in (False, True):
        plan = suite_plan(quick)
        assert plan.engine[:2] == (("sc", "mean", 16, 10, 4096), ("gen", "mean", 16, 10, 4096))
    full = suite_plan(False)
    assert ("gen", "safe_area", 32, 2, 64) in full.engine and ("sc", "mean", 128, 1000, 8192) in full.engine
    only = suite_plan(True, only="gen", budget_seconds=7)
    assert {entry[0] for entry in only.engine} == {"gen"} and only.numpy == ()
    assert only.only == "gen" and only.budget_seconds == 7.0


def test_clusters_rule():
    assert clusters_for(16) == [4, 4, 4, 4]
    assert clusters_for(6) == [1] * 6


def test_numpy_sc_sync_without_crashes_averages_exactly():
    clusters, d, scenarios = [2, 1, 2], 3, 2
    n = sum(clusters)
    rng = np.random.default_rng(7)
    x0 = rng.standard_normal((scenarios, n, d)).astype(np.float32)
    x_star = np.array([1.0, -2.0, 0.5], np.float32)
    mu, L = 1.0, 2.0
    out = numpy_sc(clusters, d, scenarios, 2, schedule="sync", sigma=0.0, mu=mu, L=L, x_star=x_star, x0=x0)
    assert out.view.all() and out.finished.all()
    assert (out.view_min == n).all()
    np.testing.assert_array_equal(out.clock, np.full((scenarios, n), 2.0, np.float32))  # compute_mean 1, no offsets

    h = np.linspace(mu, L, d)
    x = x0.astype(np.float64)
    for t in range(2):
        alpha = 1.0 / (mu * (t + 1))
        y = x - alpha * h * (x - x_star)
        x = np.broadcast_to(y.mean(axis=1, keepdims=True), y.shape)  # complete views: everyone's mean
    np.testing.assert_allclose(out.x, x, rtol=1e-5, atol=1e-6)


def test_numpy_sc_initial_crash_is_left_out_of_every_view():
    clusters, d = [2, 2], 2
    x0 = np.arange(8, dtype=np.float32).reshape(1, 4, 2)
    crash = np.array([[0.0, np.inf, np.inf, np.inf]], np.float32)
    out = numpy_sc(clusters, d, 1, 1, schedule="sync", sigma=0.0, x_star=0.0, x0=x0, crash_time=crash)
    assert not out.finished[0, 0] and out.finished[0, 1:].all()
    assert not out.view[0, :, 0].any() and out.view[0, 1:, 1:].all()
    np.testing.assert_array_equal(out.x[0, 0], x0[0, 0])  # the crashed process keeps its value
    y = x0[0, 1:] - 1.0 * (x0[0, 1:] - 0.0)  # alpha_0 = 1, h = 1: y = x_star = 0
    np.testing.assert_allclose(out.x[0, 1:], np.broadcast_to(y.mean(axis=0), (3, 2)), atol=1e-7)


def test_numpy_sc_random_schedule_runs_and_is_reproducible():
    a = numpy_sc([2, 2], 3, 4, 3, seed=5)
    b = numpy_sc([2, 2], 3, 4, 3, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    assert np.isfinite(a.x).all()
    assert (a.view_min >= 1).all() and (a.view_min <= 4).all()
    diagonal = np.einsum("spp->sp", a.view)
    assert diagonal[a.finished].all()  # a finishing process always holds its own value


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "tpu"], "--device: no tpu device here; present: cpu"),
        (["--device", "abacus"], "--device: got 'abacus'"),
        (["--only", "seq"], "--only: got 'seq', allowed: 'sc', 'gen'"),
        (["--budget-seconds", "0"], "--budget-seconds: need a number > 0"),
        (["--budget-seconds", "soon"], "argument --budget-seconds: invalid float value"),
        (["--fast"], "unrecognized arguments: --fast"),
    ],
)
def test_bad_flags_end_with_one_line_and_status_2(tmp_path, capsys, argv, message):
    assert _status([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("python -m benchmarks: error: ") and message in err
    assert not (tmp_path / "out").exists()


def test_an_output_that_cannot_be_a_folder_is_refused_before_any_timing(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    assert _status(["--quick", "--only", "sc", "--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m benchmarks: error: --out: {taken} exists and is not a folder\n"


def _status(argv):
    """The exit status of the command line, whether it returns it or argparse exits with it."""
    try:
        return command.main(argv)
    except SystemExit as stopped:
        return stopped.code


def test_cpu_device_resolves():
    assert command.resolve_device("cpu").platform == "cpu"
    assert command.resolve_device(None) is None


def test_the_module_runs_from_the_repository_root_and_the_library_never_imports_it(tmp_path):
    refused = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "seq", "--out", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith("python -m benchmarks: error: --only")
    code = "import sys, ftsgd_jax.cli; ftsgd_jax.cli.build_parser(); print(any(m.startswith('benchmarks') for m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"


# --------------------------------------------------------------------------- scaling curves


def test_scaling_sweeps_vary_one_factor_around_the_headline_and_reach_a_million_scenarios_on_accelerators():
    points = scaling.sweep_points(accelerator=False, quick=False)
    by_factor = {f: [p for p in points if p["factor"] == f and p["algorithm"] == "sc"] for f in scaling.FACTORS}
    assert [p["scenarios"] for p in by_factor["scenarios"]] == [16, 64, 256, 1024, 4096, 16384, 65536]
    assert [p["n"] for p in by_factor["n"]] == [8, 16, 32, 64, 128]
    assert [p["d"] for p in by_factor["d"]] == [2, 10, 100, 1000]
    assert all(p["d"] == 10 for p in by_factor["n"]) and all(p["n"] == 16 for p in by_factor["d"])
    assert {p["algorithm"] for p in points} == {"sc", "gen"}
    assert [p["factor"] for p in points] == sorted((p["factor"] for p in points), key=scaling.FACTORS.index)
    assert scaling.scenario_values(accelerator=True, quick=False)[-1] == 1 << 20
    assert {p["scenarios"] for p in scaling.sweep_points(True, False) if p["factor"] != "scenarios"} == {65536}
    assert {p["factor"] for p in scaling.sweep_points(False, True, factors=("d",))} == {"d"}


def test_scaling_runs_enough_iterations_to_amortise_a_chunks_setup_however_large_the_batch():
    from benchmarks.plan import CostModel

    cost = CostModel()
    big = dict(algorithm="gen", n=16, d=10, scenarios=1 << 20)  # one iteration of all of them: seconds
    assert cost.call_seconds("gen", "mean", 16, 10, 1 << 20, 1) > scaling.TARGET_CALL_SECONDS
    assert scaling.iterations_for(cost, big) == scaling.MIN_ITERATIONS
    assert scaling.iterations_for(cost, dict(big, scenarios=16)) == scaling.MAX_ITERATIONS


def test_scaling_measures_the_first_point_records_the_rest_as_skipped_past_the_budget_and_draws(tmp_path, monkeypatch):
    tiny = [dict(factor="scenarios", algorithm="sc", n=4, d=2, scenarios=s) for s in (4, 16)]
    monkeypatch.setattr(scaling, "sweep_points", lambda accelerator, quick, factors: tiny)
    payload = scaling.run_scaling(tmp_path, budget_seconds=1e-9)
    first, second = payload["rows"]
    assert first["status"] == "ok" and first["best_scenario_iterations_per_second"] > 0
    assert second["status"] == "skipped" and "budget" in second["reason"]
    written = json.loads((tmp_path / "scaling.json").read_text())
    assert [r["status"] for r in written["rows"]] == ["ok", "skipped"] and written["machine"]["backend"] == "cpu"
    assert (tmp_path / "scaling.png").stat().st_size > 10_000


def test_scaling_plot_draws_several_result_files_and_refuses_what_is_not_one(tmp_path, capsys):
    rows = [
        {"factor": f, "algorithm": a, "status": "ok", "n": 16, "d": 10, "scenarios": s, f: v,
         "best_scenario_iterations_per_second": 1e5 * v}
        for f in scaling.FACTORS for a in ("sc", "gen") for s, v in ((1024, 2), (1024, 8))
    ]
    cpu = {"machine": {"backend": "cpu", "cores": 2}, "rows": rows}
    gpu = {"machine": {"backend": "gpu", "device_kind": "NVIDIA H200"}, "rows": rows}
    for name, payload in (("cpu.json", cpu), ("gpu.json", gpu)):
        (tmp_path / name).write_text(json.dumps(payload))
    figure = tmp_path / "both.png"
    assert scaling.main(["--plot", str(figure), str(tmp_path / "cpu.json"), str(tmp_path / "gpu.json")]) == 0
    assert figure.stat().st_size > 10_000
    table = capsys.readouterr().out.splitlines()
    assert table[0] == "| factor | n | d | S | sc, CPU (2 cores) | gen, CPU (2 cores) | sc, NVIDIA H200 | gen, NVIDIA H200 |"
    assert "| n | 2 | 10 | 1,024 | 200.0k | 200.0k | 200.0k | 200.0k |" in table  # the rows' rate is 1e5 x the factor
    assert "| scenarios | 16 | 10 | 8 | 800.0k | 800.0k | 800.0k | 800.0k |" in table
    (tmp_path / "bench.json").write_text(json.dumps({"measurements": []}))
    for argv, message in (
        (["--plot", str(figure), str(tmp_path / "bench.json")], "is not a scaling.json"),
        (["--plot", str(figure), str(tmp_path / "missing.json")], "cannot read"),
        (["--plot", str(figure)], "needs a figure path and at least one scaling.json"),
        (["--budget-seconds", "0"], "--budget-seconds: need a number > 0"),
    ):
        assert scaling.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("python -m benchmarks.scaling: error: --") and message in err
