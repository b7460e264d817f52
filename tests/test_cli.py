"""Tests of the ftsgd command line: outputs of `run` and one-line errors with status 2."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ftsgd_jax.cli import main

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


def test_a_compilation_cache_is_recorded_and_a_cached_program_gives_the_same_results(small_config, tmp_path):
    """README Performance: JAX's persistent cache skips the compile of a program run before;
    the manifest says a cache was used, and the program loaded from it draws the same bits."""
    import os

    cache = tmp_path / "cache"
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    for name in ("cold", "warm"):
        proc = subprocess.run(
            [sys.executable, "-m", "ftsgd_jax", "run", str(small_config), "--out", str(tmp_path / name)],
            capture_output=True, text=True, env=env,
        )
        assert proc.returncode == 0, proc.stderr
        if name == "cold":
            written = sorted(p.name for p in cache.iterdir())
            assert any(p.startswith("jit_simulate_one") for p in written)
    for name in ("cold", "warm"):
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        assert manifest["environment"]["compilation_cache"] == str(cache)
    assert sorted(p.name for p in cache.iterdir()) == written  # the warm run compiled nothing new
    cold, warm = (pq.read_table(tmp_path / name / "metrics.parquet") for name in ("cold", "warm"))
    assert cold.column_names == warm.column_names
    for column in cold.column_names:  # bit for bit, NaN where NaN (Table.equals counts NaN != NaN)
        np.testing.assert_array_equal(cold[column].to_numpy(), warm[column].to_numpy(), err_msg=column)
    assert main(["run", str(small_config), "--out", str(tmp_path / "off")]) == 0
    assert json.loads((tmp_path / "off" / "manifest.json").read_text())["environment"]["compilation_cache"] is None


def test_diverging_scenarios_are_counted_and_named(small_config, tmp_path, capsys):
    args = ["--set", "algorithm.step=constant", "--set", "algorithm.lr=50.0", "--set", "objective.L=4.0"]
    assert main(["run", str(small_config), "--out", str(tmp_path / "d"), *args]) == 0
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["nonfinite"]["count"] > 0 and summary["nonfinite"]["scenarios"]
    assert summary["metrics"]["loss_mean"]["nan"] >= summary["nonfinite"]["count"]
    assert "NaN/Inf" in capsys.readouterr().err


# -- one line, exit 2, before any work (issue items 9-11, 16) ---------------------------


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if the engine is asked to simulate: refusals come before any work."""
    from ftsgd_jax import engine

    def refuse(*args, **kwargs):
        raise AssertionError("the simulation started before the input was checked")

    monkeypatch.setattr(engine, "run", refuse)


def _one_line(capsys, fragment: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ftsgd: error: ") and fragment in err[0], err
    return err[0]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (bytes(range(256)), "not UTF-8 text"),
        ("[run]\n# café\nseed = 1\n".encode("latin-1"), "not UTF-8 text"),
        (b"[run\nseed = 1", "malformed TOML"),
    ],
)
def test_unreadable_config_files_are_one_line(tmp_path, capsys, no_simulation, content, fragment):
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, fragment)
    path.rename(tmp_path / "s.toml")
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, fragment)


@pytest.mark.parametrize(
    ("sets", "fragment"),
    [
        (['faults.window=["a","b"]'], "faults.window: need a number in [0, 1], got 'a'"),
        (["faults.window=[true, true]"], "faults.window"),
        (["algorithm.eps0=inf"], "algorithm.eps0: need a finite number"),
        (["algorithm.step_offset=inf"], "algorithm.step_offset"),
        (["run.scenarios=1000000000000"], "run.scenarios: need an integer in [1, 4294967296]"),
        (["run.iterations=1000000000"], "run.iterations: need an integer in [1, 10000000]"),
        (["run.iterations=1000000007"], "run.iterations"),
        (["run=5"], "--set: expected section.key=value"),
    ],
)
def test_bad_values_are_one_line_before_any_work(small_config, tmp_path, capsys, no_simulation, sets, fragment):
    import time

    started = time.perf_counter()
    args = [arg for value in sets for arg in ("--set", value)]
    assert main(["run", str(small_config), "--out", str(tmp_path / "o"), *args]) == 2
    assert time.perf_counter() - started < 10
    _one_line(capsys, fragment)


def test_bad_output_folders_are_one_line_before_any_work(small_config, tmp_path, capsys, no_simulation):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    cases = [
        (a_file, "exists and is not a folder"),
        (a_file / "below", "cannot create"),
        (tmp_path / ("x" * 300), "File name too long"),
        (Path("/proc/ftsgd-results"), "cannot create"),
    ]
    for out, fragment in cases:
        for command in (["run", str(small_config)], ["figures", str(tmp_path)]):
            assert main([*command, "--out", str(out)]) == 2
            _one_line(capsys, fragment)


def test_sweep_output_folder_that_is_a_file_is_one_line(tmp_path, capsys, no_simulation, small_toml):
    spec = tmp_path / "s.toml"
    spec.write_text(small_toml(iterations=20, crashes=1, dim=3, grid='"faults.crashes" = [0, 1]'))
    (tmp_path / "file").write_text("x")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "file")]) == 2
    _one_line(capsys, "exists and is not a folder")


def test_replay_trace_iterations_must_be_positive(small_config, tmp_path, capsys):
    assert main(["replay", str(tmp_path), "--scenario", "0", "--trace-iterations", "0", "--out", str(tmp_path / "t")]) == 2
    _one_line(capsys, "--trace-iterations: need an integer >= 1")


def test_a_scenario_too_big_for_memory_is_refused_with_the_estimate(tmp_path, capsys, monkeypatch, no_simulation):
    from ftsgd_jax import devices

    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 2**30)
    path = tmp_path / "big.toml"
    path.write_text("[system]\nclusters = [10000]\n[run]\nscenarios = 2\niterations = 10\nrecord_every = 10\n")
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    line = _one_line(capsys, "system.clusters: one scenario (n = 10000 processes")
    assert "needs about 11.2 GiB but 4 GiB are free" in line


def test_a_huge_sweep_asks_for_yes_with_time_and_size(tmp_path, capsys, no_simulation, small_toml):
    spec = tmp_path / "s.toml"
    spec.write_text(small_toml(scenarios=4294967296, iterations=20, crashes=1, dim=3, grid='"faults.crashes" = [0, 1]'))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o")]) == 2
    line = _one_line(capsys, "sweep: about 1.72e+11 scenario-iterations (roughly 6.63 days")
    assert "of results" in line and "pass --yes to start it anyway" in line
    assert not (tmp_path / "o" / "spec.json").exists()


def test_a_run_whose_results_cannot_fit_in_memory_is_refused(small_config, tmp_path, capsys, monkeypatch, no_simulation):
    from ftsgd_jax import devices

    monkeypatch.setattr(devices, "host_memory_bytes", lambda: 2**30)
    assert main(["run", str(small_config), "--out", str(tmp_path / "o"), "--set", "run.scenarios=10000000", "--yes"]) == 2
    _one_line(capsys, "run.scenarios: 10000000 scenarios x 4 records need about")


def test_numpy_warnings_never_reach_the_user(small_config, tmp_path, capsys):
    args = ["--set", "algorithm.step=constant", "--set", "algorithm.lr=50.0", "--set", "objective.L=4.0"]
    assert main(["run", str(small_config), "--out", str(tmp_path / "d"), *args]) == 0
    assert "Warning" not in capsys.readouterr().err


# -- hygiene (items 12-14, 16) ------------------------------------------------------------


def test_run_results_are_strict_json_and_honour_the_umask(small_config, tmp_path):
    import os

    previous = os.umask(0o027)
    try:
        assert main(["run", str(small_config), "--out", str(tmp_path / "o"), "--set", "schedule.kind=partition"]) == 0
    finally:
        os.umask(previous)

    def refuse(constant):
        raise ValueError(constant)

    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text(), parse_constant=refuse)
    assert manifest["config"]["schedule"]["until"] == "inf"
    json.loads((tmp_path / "o" / "summary.json").read_text(), parse_constant=refuse)
    for name in ("metrics.parquet", "summary.json", "manifest.json"):
        assert (tmp_path / "o" / name).stat().st_mode & 0o777 == 0o640


def test_progress_in_a_log_file_is_plain_lines_and_counts_only_this_runs_work(monkeypatch):
    import io

    from ftsgd_jax import cli

    clock = iter([0.0, 1.0, 2.0, 30.0, 31.0, 60.0])
    monkeypatch.setattr(cli.time, "perf_counter", lambda: next(clock))
    log = io.StringIO()
    progress = cli.Progress("sweep s", stream=log, every=10.0, header="estimate")
    progress(500, 1000, 0)  # t=1: resumed with half done, nothing new yet
    progress(600, 1000, 100)  # t=2: too soon for another line
    progress(700, 1000, 200)  # t=30
    progress(1000, 1000, 500)  # t=31: the end is always reported
    text = log.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "estimate" and len(lines) == 4
    assert "500/1000" in lines[1] and " 0 scenarios/s" in lines[1]
    assert "700/1000" in lines[2] and " 7 scenarios/s" in lines[2]  # 200 new scenarios in 30 s, not 700
    assert lines[3].startswith("sweep s: 1000/1000 scenarios (100%)")


def test_version_and_plain_help(capsys):
    from ftsgd_jax import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"ftsgd {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "``" not in capsys.readouterr().out


def test_every_config_key_is_in_the_readme_table():
    from pathlib import Path

    from ftsgd_jax.config import DEFAULTS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("| section | keys (default) |"):readme.index("A mistake")]
    for section, keys in DEFAULTS.items():
        row = next(line for line in table.splitlines() if line.startswith(f"| `[{section}]`"))
        for key in keys if section not in ("objective", "schedule") else ():
            assert f"`{key}`" in row, f"{section}.{key} missing from the README's configuration table"


def test_figures_says_why_it_drew_nothing(small_config, tmp_path, capsys, small_toml):
    spec = tmp_path / "s.toml"
    spec.write_text(small_toml(scenarios=4, iterations=20, crashes=1, dim=3, grid='"faults.crashes" = [0, 1]'))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "sweep")]) == 0
    capsys.readouterr()
    assert main(["figures", str(tmp_path / "sweep"), "--out", str(tmp_path / "f")]) == 2
    _one_line(capsys, "nothing to draw: the sweep spec of")
    assert main(["run", str(small_config), "--out", str(tmp_path / "run")]) == 0
    capsys.readouterr()
    assert main(["figures", str(tmp_path / "run"), "--out", str(tmp_path / "f")]) == 2
    _one_line(capsys, "holds the results of `ftsgd run`")


# -- property: random documents and --set values -------------------------------------------

import contextlib  # noqa: E402
import io  # noqa: E402
import math  # noqa: E402
import tempfile  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ftsgd_jax.config import DEFAULTS  # noqa: E402

TINY = {
    "system": {"clusters": [2, 1]},
    "faults": {"pattern": "random", "crashes": 1},
    "objective": {"kind": "quadratic", "dim": 2},
    "run": {"iterations": 4, "scenarios": 4, "record_every": 2},
}
KEYS = sorted(
    {f"{section}.{key}" for section, keys in DEFAULTS.items() for key in keys}
    | {"schedule.delay_mean", "schedule.tail_index", "schedule.until", "objective.x0", "objective.sigma", "objective.mu"}
    | {"run.bogus", "nosection.key", "system.clusters"}
)
SMALL_INTS = st.integers(-3, 9)
SCALARS = st.one_of(
    SMALL_INTS,
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.booleans(),
    st.sampled_from(["auto", "mean", "gen", "sc", "random", "partition", "constant", "x", ""]),
    st.text(alphabet="abcxyz_.-", max_size=6),
)
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.lists(st.lists(SMALL_INTS, max_size=2), max_size=2))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value == math.inf else "-inf" if value == -math.inf else repr(value))
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def toml_document(tables: dict) -> str:
    lines = []
    for section, body in tables.items():
        lines.append(f"[{section}]")
        lines += [f"{json.dumps(key)} = {toml_value(value)}" for key, value in body.items()]
    return "\n".join(lines) + "\n"


def _call(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    return code, err.getvalue()


def _check_outcome(code: int, err: str, out: Path) -> None:
    assert "Traceback" not in err and "Warning" not in err, err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ftsgd: error: "), err
    else:
        assert code == 0, err
        assert (out / "manifest.json").is_file() and (out / "metrics.parquet").is_file()


@settings(max_examples=25, deadline=None)
@given(
    changes=st.lists(st.tuples(st.sampled_from(KEYS), VALUES), max_size=3),
    sets=st.lists(st.tuples(st.sampled_from(KEYS), st.text(alphabet='abc019.,[]"=- einfa', max_size=8)), max_size=2),
    sweep=st.one_of(st.none(), st.tuples(st.sampled_from(KEYS), st.lists(VALUES, max_size=3))),
    garbage=st.one_of(st.none(), st.binary(max_size=40)),
)
def test_random_documents_give_one_line_or_a_run(changes, sets, sweep, garbage):
    """Any TOML document, `--set` value or [sweep] grid: one line and exit 2, or a valid run."""
    tables = json.loads(json.dumps(TINY))
    for key, value in changes:
        section, name = key.split(".", 1)
        tables.setdefault(section, {})[name] = value
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        config = folder / "c.toml"
        if garbage is not None:
            config.write_bytes(garbage)
        else:
            config.write_text(toml_document(tables))
        overrides = [arg for key, text in sets for arg in ("--set", f"{key}={text}")]
        code, err = _call(["run", str(config), "--out", str(folder / "run"), *overrides])
        _check_outcome(code, err, folder / "run")
        if sweep is not None and garbage is None:
            key, values = sweep
            tables["sweep"] = {"grid": {key: values}}
            config.write_text(toml_document({k: v for k, v in tables.items() if k != "sweep"}) + "[sweep.grid]\n"
                              + f"{json.dumps(key)} = {toml_value(values)}\n")
            code, err = _call(["sweep", str(config), "--out", str(folder / "sweep")])
            _check_outcome(code, err, folder / "sweep")
