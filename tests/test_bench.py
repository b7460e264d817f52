"""Behaviour tests of the benchmark harness (no timing assertions: machines differ)."""

import argparse
import csv
import json

import numpy as np
import pytest

from ftsgd_jax import bench
from ftsgd_jax.errors import ConfigError


def _bench_args(*argv):
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    bench.register(commands)
    return parser.parse_args(["bench", *argv])


def test_tiny_suite_writes_json_and_csv_with_machine(tmp_path):
    messages = []
    # a generous budget: this test checks what is written, not how fast a loaded machine is
    payload = bench.run_suite(tmp_path, tiny=True, progress=messages.append, budget_seconds=3600)
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
                    "run_seconds", "peak_rss_bytes", "xla_bytes", "iterations", "scenarios", "clusters"):
            assert key in row, key
        assert row["best_scenario_iterations_per_second"] >= row["median_scenario_iterations_per_second"] > 0
        assert len(row["run_seconds"]) == row["repeats"]
    for row in data["measurements"]:
        if row["kind"] in ("reference", "numpy"):
            assert row["ratio"] > 0 and row["scenario_iterations_per_second"] > 0

    with open(tmp_path / "bench.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(data["measurements"])
    assert set(bench.CSV_COLUMNS) == set(table[0])
    assert all(row["cpu"] == machine["cpu"] and row["backend"] == machine["backend"] for row in table)
    assert payload["markdown"].startswith("Machine: ") and "| engine" in payload["markdown"]
    assert any("wrote" in message for message in messages)


def test_over_budget_configurations_are_recorded_as_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "memory_budget", lambda device=None: {"source": "test", "available_bytes": 2, "budget_bytes": 1})
    monkeypatch.setattr(bench, "suite_plan", lambda quick, tiny, only: bench.Plan(
        mode="tiny", engine=(("sc", "mean", 4, 2, 4), ("gen", "safe_area", 8, 2, 64)), reference=(),
        numpy=((4, 2, 4),), breakdown=(), repeats=1, measurement_cap_seconds=5, budget_seconds=5))
    data = bench.run_suite(tmp_path, tiny=True, progress=None)
    assert [row["status"] for row in data["measurements"]] == ["skipped"] * 3
    assert all("memory" in row["reason"] for row in data["measurements"])
    assert len(data["skipped"]) == 3
    assert "skipped: estimated memory" in data["markdown"]
    assert (tmp_path / "bench.csv").read_text().count("skipped") == 3


def test_memory_estimate_grows_with_every_dimension():
    base = bench.estimate_engine_bytes("sc", 8, 10, 64)
    assert bench.estimate_engine_bytes("sc", 8, 10, 128) == 2 * base
    assert bench.estimate_engine_bytes("sc", 32, 10, 64) > base
    assert bench.estimate_engine_bytes("sc", 8, 1000, 64) > base
    assert bench.estimate_engine_bytes("gen", 8, 10, 64) > base
    assert bench.estimate_engine_bytes("gen", 32, 2, 64, "safe_area") > 1 << 30  # O(n^5) clipping


def test_plans_contain_the_headline_configurations():
    for quick in (False, True):
        plan = bench.suite_plan(quick)
        assert plan.engine[:2] == (("sc", "mean", 16, 10, 4096), ("gen", "mean", 16, 10, 4096))
    full = bench.suite_plan(False)
    assert ("gen", "safe_area", 32, 2, 64) in full.engine and ("sc", "mean", 128, 1000, 8192) in full.engine
    only = bench.suite_plan(True, only="gen")
    assert {entry[0] for entry in only.engine} == {"gen"} and only.numpy == ()


def test_clusters_rule():
    assert bench.clusters_for(16) == [4, 4, 4, 4]
    assert bench.clusters_for(6) == [1] * 6


def test_numpy_sc_sync_without_crashes_averages_exactly():
    clusters, d, scenarios = [2, 1, 2], 3, 2
    n = sum(clusters)
    rng = np.random.default_rng(7)
    x0 = rng.standard_normal((scenarios, n, d)).astype(np.float32)
    x_star = np.array([1.0, -2.0, 0.5], np.float32)
    mu, L = 1.0, 2.0
    out = bench.numpy_sc(clusters, d, scenarios, 2, schedule="sync", sigma=0.0, mu=mu, L=L, x_star=x_star, x0=x0)
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
    out = bench.numpy_sc(clusters, d, 1, 1, schedule="sync", sigma=0.0, x_star=0.0, x0=x0, crash_time=crash)
    assert not out.finished[0, 0] and out.finished[0, 1:].all()
    assert not out.view[0, :, 0].any() and out.view[0, 1:, 1:].all()
    np.testing.assert_array_equal(out.x[0, 0], x0[0, 0])  # the crashed process keeps its value
    y = x0[0, 1:] - 1.0 * (x0[0, 1:] - 0.0)  # alpha_0 = 1, h = 1: y = x_star = 0
    np.testing.assert_allclose(out.x[0, 1:], np.broadcast_to(y.mean(axis=0), (3, 2)), atol=1e-7)


def test_numpy_sc_random_schedule_runs_and_is_reproducible():
    a = bench.numpy_sc([2, 2], 3, 4, 3, seed=5)
    b = bench.numpy_sc([2, 2], 3, 4, 3, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    assert np.isfinite(a.x).all()
    assert (a.view_min >= 1).all() and (a.view_min <= 4).all()
    diagonal = np.einsum("spp->sp", a.view)
    assert diagonal[a.finished].all()  # a finishing process always holds its own value


def test_device_flag_names_the_devices_present(tmp_path):
    args = _bench_args("--device", "tpu", "--out", str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        args.handler(args)
    assert raised.value.field == "--device"
    assert "no tpu device" in str(raised.value) and "cpu" in str(raised.value)
    assert not (tmp_path / "bench.json").exists()


@pytest.mark.parametrize(("argv", "field"), [(["--device", "abacus"], "--device"), (["--only", "seq"], "--only"),
                                             (["--budget-seconds", "0"], "--budget-seconds")])
def test_bad_flags_raise_config_error(tmp_path, argv, field):
    args = _bench_args(*argv, "--out", str(tmp_path))
    with pytest.raises(ConfigError) as raised:
        args.handler(args)
    assert raised.value.field == field


def test_cpu_device_resolves():
    assert bench.resolve_device("cpu").platform == "cpu"
    assert bench.resolve_device(None) is None


def test_registering_the_subcommand_does_not_import_jax():
    import subprocess
    import sys

    code = "import sys, argparse; from ftsgd_jax import bench; p = argparse.ArgumentParser(); " \
           "bench.register(p.add_subparsers()); print('jax' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
