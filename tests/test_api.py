"""Tests of ftsgd_jax.api: run and run_sweep give what `ftsgd run` and `ftsgd sweep` give,
take overrides and dict configs, refuse bad input with ConfigError, and resume."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import ftsgd_jax
from ftsgd_jax.cli import main
from ftsgd_jax.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def assert_same_table(a, b) -> None:
    """Equal column names, types and values bit for bit (NaN equal to NaN, unlike Table.equals)."""
    assert a.schema.remove_metadata() == b.schema.remove_metadata()
    for name in a.column_names:
        np.testing.assert_array_equal(a.column(name).to_numpy(zero_copy_only=False), b.column(name).to_numpy(zero_copy_only=False), err_msg=name)


def files_below(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.name != ".ftsgd.lock"}


def test_run_equals_the_command_bit_for_bit_and_writes_the_same_files(small_config, tmp_path, capsys):
    assert main(["run", str(small_config), "--out", str(tmp_path / "cli")]) == 0
    result = ftsgd_jax.run(small_config, out=tmp_path / "api")
    assert_same_table(result.metrics, pq.read_table(tmp_path / "cli" / "metrics.parquet"))
    assert (tmp_path / "cli" / "metrics.parquet").read_bytes() == (tmp_path / "api" / "metrics.parquet").read_bytes()
    assert json.loads((tmp_path / "cli" / "summary.json").read_text()) == json.loads((tmp_path / "api" / "summary.json").read_text())
    assert files_below(tmp_path / "cli") == files_below(tmp_path / "api") == {"metrics.parquet", "summary.json", "manifest.json"}
    written = json.loads((tmp_path / "api" / "manifest.json").read_text())
    cli_manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert written.keys() == cli_manifest.keys() == result.manifest.keys()
    for key in ("command", "config_file", "overrides", "config", "seed", "theory"):
        assert written[key] == cli_manifest[key], key
    assert result.out == tmp_path / "api" and result.warnings == ()
    assert result.summary["metrics"]["err_mean"]["finite"] == 16


def test_a_run_without_a_folder_writes_nothing_and_a_dict_or_runconfig_is_the_same_config(small_config, tmp_path):
    from_file = ftsgd_jax.run(small_config)
    assert from_file.out is None and from_file.manifest["config_file"] == str(small_config.resolve())
    from_dict = ftsgd_jax.run(tomllib.loads(small_config.read_text()))
    from_config = ftsgd_jax.run(from_file.config)
    assert_same_table(from_dict.metrics, from_file.metrics)
    assert_same_table(from_config.metrics, from_file.metrics)
    assert from_dict.manifest["config_file"] is None
    assert list(tmp_path.iterdir()) == [small_config]


def test_overrides_as_a_dict_or_as_set_texts_are_the_commands_set(small_config, tmp_path):
    assert main(["run", str(small_config), "--out", str(tmp_path / "cli"), "--set", "faults.crashes=3", "--set", "run.seed=7"]) == 0
    texts = ftsgd_jax.run(small_config, ["faults.crashes=3", "run.seed=7"])
    values = ftsgd_jax.run(small_config, {"faults.crashes": 3, "run.seed": 7})
    on_config = ftsgd_jax.run(ftsgd_jax.load(small_config), {"faults.crashes": 3, "run.seed": 7})
    stored = pq.read_table(tmp_path / "cli" / "metrics.parquet")
    for result in (texts, values, on_config):
        assert_same_table(result.metrics, stored)
        assert result.config.crashes == 3 and result.config.run.seed == 7
    assert values.manifest["overrides"] == {"faults.crashes": 3, "run.seed": 7}
    assert texts.manifest["overrides"] == ["faults.crashes=3", "run.seed=7"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"faults.crashs": 2}, "faults.crashs"),
        ({"system.clusters": [0, 2]}, "system.clusters"),
        ({"schedule.delay_mean": -1}, "schedule.delay_mean"),
        ({"crashes": 1}, "crashes"),
        (["nonsense"], "--set"),
        (["run.iterations=0"], "run.iterations"),
        ("faults.crashes=1", "overrides"),
    ],
)
def test_bad_overrides_raise_config_error_naming_the_field(small_config, overrides, field):
    with pytest.raises(ConfigError) as error:
        ftsgd_jax.run(small_config, overrides)
    assert error.value.field == field and "\n" not in str(error.value)


def test_bad_sources_and_folders_raise_config_error(small_config, tmp_path):
    with pytest.raises(ConfigError, match="need a TOML file path, a dict of sections or a RunConfig"):
        ftsgd_jax.run(42)
    with pytest.raises(ConfigError, match="cannot read the config file"):
        ftsgd_jax.run(tmp_path / "missing.toml")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        ftsgd_jax.run(small_config, out=tmp_path / "file")
    with pytest.raises(ConfigError, match="not a sweep spec"):
        ftsgd_jax.run_sweep({"run": {"scenarios": 4}}, tmp_path / "s")


def test_a_stopped_run_writes_nothing(small_config, tmp_path):
    with pytest.raises(ftsgd_jax.Interrupted, match="nothing was written to"):
        ftsgd_jax.run(small_config, {"run.chunk": 4}, out=tmp_path / "out", stop=lambda: True)
    assert files_below(tmp_path / "out") == set()


def test_to_pandas_says_pandas_is_needed_when_it_is_missing(small_config, monkeypatch):
    result = ftsgd_jax.run(small_config)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now fails
    with pytest.raises(ImportError, match="needs pandas"):
        result.to_pandas()


def test_run_sweep_writes_what_the_command_writes(small_toml, tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(small_toml(grid='"faults.crashes" = [0, 2]', scenarios=8, chunk=4))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "cli")]) == 0
    result = ftsgd_jax.run_sweep(spec, tmp_path / "api")
    assert files_below(tmp_path / "cli") == files_below(tmp_path / "api")
    for name in ("metrics.parquet", "summary.parquet"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "api" / name).read_bytes(), name
    assert result.name == "s" and result.out == tmp_path / "api"
    assert_same_table(result.summary, pq.read_table(tmp_path / "cli" / "summary.parquet"))
    assert_same_table(result.metrics, pq.read_table(tmp_path / "cli" / "metrics.parquet"))
    assert result.manifest["swept"] == ["faults.crashes"] and len(result.manifest["points"]) == 2
    from_dict = ftsgd_jax.run_sweep(tomllib.loads(spec.read_text()), tmp_path / "dict")
    assert_same_table(from_dict.metrics, result.metrics)


def test_a_stopped_sweep_resumes_to_the_uninterrupted_results(small_toml, tmp_path):
    spec = tomllib.loads(small_toml(grid='"faults.crashes" = [0, 2]', scenarios=8, chunk=4))
    whole = ftsgd_jax.run_sweep(spec, tmp_path / "whole")
    heard = []
    with pytest.raises(ftsgd_jax.Interrupted, match=r"interrupted: 4 of 16 scenarios of sweep s are kept in"):
        ftsgd_jax.run_sweep(
            spec, tmp_path / "cut", stop=lambda: True, progress=lambda sweeps, number, estimate: lambda *counts: heard.append(counts)
        )
    assert heard == [(4, 16, 4)]
    with pytest.raises(ConfigError, match="holds results of a different sweep spec"):
        ftsgd_jax.run_sweep({**spec, "run": {**spec["run"], "seed": 1}}, tmp_path / "cut", resume=True)
    resumed = ftsgd_jax.run_sweep(spec, tmp_path / "cut", resume=True)
    assert (tmp_path / "whole" / "metrics.parquet").read_bytes() == (tmp_path / "cut" / "metrics.parquet").read_bytes()
    assert_same_table(resumed.summary, whole.summary)


def test_a_suite_gives_every_sweep_by_name(small_toml, tmp_path):
    (tmp_path / "one.toml").write_text(small_toml(grid='"faults.crashes" = [0, 1]', name="one", scenarios=4))
    (tmp_path / "two.toml").write_text(small_toml(grid='"faults.crashes" = [2]', name="two", scenarios=4))
    (tmp_path / "suite.toml").write_text('[suite]\nsweeps = ["one.toml", "two.toml"]\n')
    finished = []
    results = ftsgd_jax.run_sweep(tmp_path / "suite.toml", tmp_path / "out", finished=lambda r: finished.append(r.name))
    assert list(results) == finished == ["one", "two"]
    assert results["two"].out == tmp_path / "out" / "two" and results["two"].summary.num_rows == 1
    assert json.loads((tmp_path / "out" / "suite.json").read_text())["sweeps"] == ["one", "two"]


def test_the_example_sweep_script_runs(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(ROOT / "examples" / "sweep_script.py"), "--out", str(tmp_path / "crashes")]
    done = subprocess.run([*command, "--scenarios", "4", "--iterations", "10"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].split()[0] == "crashes" and [line.split()[0] for line in lines[1:7]] == ["0", "2", "4", "8", "12", "15"]
    assert (tmp_path / "crashes" / "error_vs_crashes.png").stat().st_size > 1000
    assert np.isfinite([float(line.split()[1]) for line in lines[1:7]]).all()


def test_the_example_sweep_script_refuses_bad_input_in_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(ROOT / "examples" / "sweep_script.py"), "--out", str(tmp_path / "crashes"), "--scenarios", "0"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("sweep_script.py: error: run.scenarios")


def test_a_manifest_does_not_grow_with_the_iterations(tmp_path, small_toml):
    """Per-iteration lists (rounds per iteration) are run-length encoded: a run 50 times
    longer with as many records writes a manifest of the same size, give or take its numbers."""
    sizes = []
    for iterations in (20, 1000):
        path = tmp_path / f"t{iterations}.toml"
        path.write_text(small_toml(scenarios=2, iterations=iterations).replace("record_every = 5", f"record_every = {iterations // 4}"))
        ftsgd_jax.run(path, out=tmp_path / f"out{iterations}", overrides={"algorithm.step": "constant"})
        sizes.append((tmp_path / f"out{iterations}" / "manifest.json").stat().st_size)
    assert abs(sizes[1] - sizes[0]) < 200, sizes


def test_a_data_file_rewritten_between_runs_is_read_again_and_recorded_as_read(tmp_path):
    """The compiled simulators were shared by configuration text, which names a data file by
    its path: a second run in the same process after the file changed reused the first
    file's data, while its manifest recorded the new file's sha256."""
    import hashlib

    from ftsgd_jax import engine

    data = tmp_path / "data.svm"

    def write(seed: int) -> str:
        features = np.random.default_rng(seed).standard_normal((50, 3))
        lines = [f"{1 if x[0] > 0 else -1:+d} " + " ".join(f"{j + 1}:{v:.4f}" for j, v in enumerate(x)) for x in features]
        data.write_text("\n".join(lines) + "\n")
        return hashlib.sha256(data.read_bytes()).hexdigest()

    config = {
        "system": {"clusters": [2, 2]},
        "objective": {"kind": "logistic", "path": str(data)},
        "algorithm": {"kind": "sc", "step": "constant", "lr": 0.5},
        "run": {"iterations": 20, "scenarios": 8, "record_every": 10},
    }
    first_digest = write(0)
    first = ftsgd_jax.run(config)
    second_digest = write(1)
    second = ftsgd_jax.run(config)
    engine._SIMULATIONS.clear()
    fresh = ftsgd_jax.run(config)
    loss = {name: r.summary["metrics"]["loss_mean"]["median"] for name, r in (("first", first), ("second", second), ("fresh", fresh))}
    assert loss["second"] == loss["fresh"] != loss["first"]
    assert first.manifest["inputs"]["objective.path"]["sha256"] == first_digest
    assert second.manifest["inputs"]["objective.path"]["sha256"] == second_digest
