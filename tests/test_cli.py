"""Tests of the ftsgd command line: outputs of `run` and one-line errors with status 2."""

import json
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from ftsgd_jax.cli import main

SMALL = """
[system]
clusters = [2, 1, 2]
[faults]
pattern = "random"
crashes = 1
[objective]
kind = "quadratic"
dim = 3
[run]
iterations = 20
scenarios = 16
record_every = 5
"""


@pytest.fixture
def small_config(tmp_path):
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


def test_run_writes_metrics_summary_and_manifest(small_config, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", str(small_config), "--out", str(out), "--set", "run.seed=3"]) == 0
    table = pq.read_table(out / "metrics.parquet")
    required = {"scenario", "t", "err_mean", "err_max", "loss_mean", "grad_sq_mean", "disagreement"}
    required |= {"view_min", "view_mean", "rounds", "crashed", "blocked", "majority"}
    assert required <= set(table.column_names)
    assert table.num_rows == 16 * 4
    assert sorted(set(table.column("t").to_pylist())) == [5, 10, 15, 20]
    summary = json.loads((out / "summary.json").read_text())
    assert {"blocked_fraction", "majority_fraction"} <= set(summary)
    assert summary["metrics"]["err_mean"]["finite"] == 16
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["run"]["seed"] == 3 and manifest["config"]["faults"]["crashes"] == 1
    assert manifest["config"]["schedule"]["delay_mean"] == 1.0  # defaults are written too
    assert manifest["environment"]["versions"]["jax"] and manifest["timings"]["run_seconds"] > 0
    assert "err_mean" in capsys.readouterr().out


def test_same_seed_same_metrics(small_config, tmp_path):
    for name in ("a", "b"):
        assert main(["run", str(small_config), "--out", str(tmp_path / name)]) == 0
    a = pq.read_table(tmp_path / "a" / "metrics.parquet").column("err_mean").to_numpy()
    b = pq.read_table(tmp_path / "b" / "metrics.parquet").column("err_mean").to_numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "faults.crashs=2"], "faults.crashs: unknown key"),
        (["--set", "system.clusters=[0, 2]"], "system.clusters"),
        (["--set", "schedule.delay_mean=-1"], "schedule.delay_mean"),
        (["--set", "objective.sigma=-2"], "objective.sigma"),
        (["--set", "nonsense"], "--set: expected section.key=value"),
    ],
)
def test_bad_input_is_one_line_and_status_2(small_config, tmp_path, capsys, args, message):
    assert main(["run", str(small_config), "--out", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_no_traceback_from_the_installed_command(tmp_path):
    missing = tmp_path / "nope.toml"
    proc = subprocess.run(
        [sys.executable, "-m", "ftsgd_jax.cli", "run", str(missing), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "nope.toml" in proc.stderr


def test_diverging_scenarios_are_counted_and_named(small_config, tmp_path, capsys):
    args = ["--set", "algorithm.step=constant", "--set", "algorithm.lr=50.0", "--set", "objective.L=4.0"]
    assert main(["run", str(small_config), "--out", str(tmp_path / "d"), *args]) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["nonfinite"]["count"] > 0 and summary["nonfinite"]["scenarios"]
    assert summary["metrics"]["loss_mean"]["nan"] >= summary["nonfinite"]["count"]
    assert "NaN/Inf" in capsys.readouterr().err
