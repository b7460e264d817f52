"""Tests of ftsgd_jax.sweep: grid expansion, resumption, compile reuse and bad specs."""

import hashlib
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ftsgd_jax import api, engine, rng
from ftsgd_jax.cli import main
from ftsgd_jax.errors import ConfigError
from ftsgd_jax.sweep import Sweep, expand, run_sweep

@pytest.fixture
def spec(small_toml):
    """A sweep spec (as parsed TOML) of the small configuration: 24 scenarios in chunks of 8."""
    base = tomllib.loads(small_toml(scenarios=24, chunk=8))
    return lambda **sweep: {**base, "sweep": sweep}


def test_grid_is_a_cartesian_product_with_zip_and_seeds():
    points = expand(
        {
            "grid": {"faults.crashes": [0, 1], "system.quorum": ["weighted", "count"]},
            "zip": {"algorithm.kind": ["sc", "gen"], "algorithm.rounds": [1, 3]},
            "seeds": 2,
        },
        base_seed=10,
    )
    assert len(points) == 2 * 2 * 2 * 2
    assert points[0] == {
        "faults.crashes": 0,
        "system.quorum": "weighted",
        "algorithm.kind": "sc",
        "algorithm.rounds": 1,
        "run.seed": 10,
    }
    assert {(p["algorithm.kind"], p["algorithm.rounds"]) for p in points} == {("sc", 1), ("gen", 3)}
    assert {p["run.seed"] for p in points} == {10, 11}


def test_nested_tables_are_the_same_as_dotted_keys():
    assert expand({"grid": {"faults": {"crashes": [0, 2]}}}) == expand({"grid": {"faults.crashes": [0, 2]}})


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({}, "empty grid"),
        ({"grid": {"faults.crashes": []}}, "non-empty list"),
        ({"grid": {"faults.crashs": [1]}}, "does not exist .did you mean 'faults.crashes'"),
        ({"grid": {"fault.crashes": [1]}}, "unknown section 'fault' .did you mean 'faults.crashes'"),
        ({"zip": {"faults.crashes": [0, 1], "run.seed": [1]}}, "one length"),
        ({"grid": {"faults.crashes": [0]}, "seed": 2}, "sweep.seed"),
    ],
)
def test_bad_specs_give_one_clear_error(sweep, message):
    with pytest.raises(ConfigError, match=message):
        expand(sweep)


def test_a_bad_value_names_the_point(spec):
    with pytest.raises(ConfigError, match=r"faults.crashes.*sweep point"):
        Sweep(spec(grid={"faults.crashes": [1, 99]}), Path("s.toml"))


def _results(out):
    return pq.read_table(out / "metrics.parquet").sort_by([("point", "ascending"), ("scenario", "ascending"), ("t", "ascending")])


def test_resume_after_an_interruption_gives_identical_results(tmp_path, spec):
    sweep = Sweep(spec(grid={"faults.crashes": [0, 2]}, seeds=2), tmp_path / "s.toml")
    whole = tmp_path / "whole"
    run_sweep(sweep, whole)
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, cut, fail_after=5)
    finished = sorted((cut / "points").rglob("??????????-??????????.parquet"))
    assert len(finished) == 5
    stamps = {path: path.stat().st_mtime_ns for path in finished}
    run_sweep(sweep, cut, resume=True)
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items())  # not redone
    whole_table, cut_table = _results(whole), _results(cut)
    assert whole_table.column_names == cut_table.column_names
    for name in whole_table.column_names:
        a = whole_table.column(name).to_numpy(zero_copy_only=False)
        b = cut_table.column(name).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(a, b, err_msg=name)  # NaN equals NaN here
    summary = pq.read_table(cut / "summary.parquet")
    assert summary.num_rows == 4 and set(summary.column_names) >= {"faults.crashes", "run.seed", "blocked_fraction"}


def test_a_sweep_over_crashes_seeds_and_delays_traces_once(tmp_path, spec, compiles_once):
    sweep = Sweep(
        spec(grid={"faults.crashes": [0, 1, 3], "schedule.delay_mean": [0.5, 2.0]}, seeds=2), tmp_path / "s.toml"
    )
    run_sweep(sweep, tmp_path / "out")
    sim = engine.simulation(sweep.configs[0])
    assert all(engine.simulation(c) is sim for c in sweep.configs)


def test_metrics_carry_one_column_per_swept_key(tmp_path, spec):
    sweep = Sweep(spec(grid={"faults.crashes": [0, 1]}, zip={"system.clusters": [[2, 1, 2], [1, 1, 1, 1, 1]]}), tmp_path / "s.toml")
    manifest = run_sweep(sweep, tmp_path / "out")
    table = pq.read_table(tmp_path / "out" / "metrics.parquet")
    assert {"point", "faults.crashes", "system.clusters"} <= set(table.column_names)
    assert set(table.column("system.clusters").to_pylist()) == {"[2, 1, 2]", "[1, 1, 1, 1, 1]"}
    assert manifest["swept"] == ["faults.crashes", "system.clusters"] and len(manifest["points"]) == 4
    assert table.num_rows == 4 * 24 * 2


def test_cli_refuses_a_folder_of_another_spec_unless_forced(tmp_path, capsys, small_toml):
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(small_toml(grid='"faults.crashes" = [0]'))
    second.write_text(small_toml(grid='"faults.crashes" = [1]'))
    out = tmp_path / "out"
    assert main(["sweep", str(first), "--out", str(out)]) == 0
    assert main(["sweep", str(second), "--out", str(out)]) == 2
    assert "different sweep spec" in capsys.readouterr().err
    assert main(["sweep", str(second), "--out", str(out), "--force"]) == 0
    assert json.loads((out / "manifest.json").read_text())["points"][0]["values"] == {"faults.crashes": 1}


def test_cli_runs_a_suite_into_subfolders(tmp_path, small_toml):
    (tmp_path / "one.toml").write_text(small_toml(grid='"faults.crashes" = [0, 1]', name="one"))
    (tmp_path / "two.toml").write_text(small_toml(grid='"faults.crashes" = [2]', name="two"))
    (tmp_path / "suite.toml").write_text('[suite]\nsweeps = ["one.toml", "two.toml"]\n[suite.set]\n"run.scenarios" = 8\n')
    assert main(["sweep", str(tmp_path / "suite.toml"), "--out", str(tmp_path / "out")]) == 0
    for name in ("one", "two"):
        table = pq.read_table(tmp_path / "out" / name / "metrics.parquet")
        assert set(np.unique(table.column("scenario").to_numpy())) == set(range(8))


def test_unknown_figure_names_are_refused_when_the_spec_is_read(spec):
    with pytest.raises(ConfigError, match="sweep.figures: unknown figure 'speed_up'.*did you mean 'speedup'"):
        Sweep(spec(grid={"faults.crashes": [0]}, figures=["speed_up"]), Path("s.toml"))


def test_figures_command_draws_a_small_sweep_and_refuses_a_missing_folder(tmp_path, capsys, small_toml):
    spec_file = tmp_path / "s.toml"
    grid = '"faults.crashes" = [0, 2]'
    spec_file.write_text(small_toml(grid=grid).replace("[sweep.grid]", 'figures = ["faults", "error_vs_iteration"]\n[sweep.grid]'))
    assert main(["sweep", str(spec_file), "--out", str(tmp_path / "out")]) == 0
    assert main(["figures", str(tmp_path / "out"), "--out", str(tmp_path / "figs")]) == 0
    drawn = sorted(p.name for p in (tmp_path / "figs").iterdir())
    assert drawn == ["s_error_vs_iteration.pdf", "s_error_vs_iteration.png", "s_faults.pdf", "s_faults.png"]
    assert main(["figures", str(tmp_path / "nothing"), "--out", str(tmp_path / "f2")]) == 2
    assert "no sweep results" in capsys.readouterr().err


@pytest.mark.parametrize(
    "sweep",
    [
        {"grid": {"faults.crashes": [0, 1]}, "zip": {"faults.crashes": [2, 3]}},
        {"zip": [{"faults.crashes": [0, 1]}, {"faults.crashes": [2, 3]}]},
        {"grid": {"run.seed": [1, 2]}, "seeds": 2},
    ],
)
def test_a_key_swept_in_two_places_is_refused(sweep):
    with pytest.raises(ConfigError, match="swept"):
        expand(sweep)


@pytest.mark.parametrize(
    ("sweep", "field"),
    [
        ({"grid": 5}, "sweep.grid"),
        ({"zip": 5}, "sweep.zip"),
        ({"grid": {"faults.crashes": list(range(400)), "schedule.delay_mean": list(range(1, 400))}}, "sweep"),
        ({"grid": {"faults.crashes": [0]}, "seeds": 10**9}, "sweep.seeds"),
    ],
)
def test_malformed_or_huge_grids_are_one_error(sweep, field):
    with pytest.raises(ConfigError) as error:
        expand(sweep)
    assert error.value.field == field


def test_a_chunk_that_fails_to_start_leaves_every_chunk_before_it_written(tmp_path, spec, monkeypatch):
    sweep = Sweep(spec(grid={"faults.crashes": [0, 2]}), tmp_path / "s.toml")
    launch, launched = engine._launch, []

    def fails_on_the_fourth(chunk):
        if len(launched) == 3:
            raise RuntimeError("the fourth chunk cannot start")
        launched.append(chunk)
        return launch(chunk)

    monkeypatch.setattr(engine, "_launch", fails_on_the_fourth)
    with pytest.raises(RuntimeError, match="fourth chunk"):
        run_sweep(sweep, tmp_path / "cut")
    assert len(sorted((tmp_path / "cut" / "points").rglob("??????????-??????????.parquet"))) == 3


def test_a_sweep_without_figures_does_not_import_them(tmp_path, small_toml):
    """Checking figure names imports matplotlib (a second on a first run): only when there are names."""
    import subprocess
    import sys

    spec = tmp_path / "s.toml"
    spec.write_text(small_toml(grid='"faults.crashes" = [0, 1]'))
    code = (
        "import sys, tomllib; from pathlib import Path; from ftsgd_jax.sweep import Sweep; "
        f"p = Path({str(spec)!r}); Sweep(tomllib.loads(p.read_text()), p); "
        "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'ftsgd_jax.figures'))))"
    )
    imported = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert imported == "[]"


def test_resume_refuses_results_drawn_with_other_random_streams(tmp_path, capsys, small_toml):
    # results of an older ftsgd whose seeds drew other scenarios must not be completed
    # with this version's draws: the mix would look like one sweep and be none
    (tmp_path / "a.toml").write_text(small_toml(grid='"faults.crashes" = [0]'))
    out = tmp_path / "out"
    assert main(["sweep", str(tmp_path / "a.toml"), "--out", str(out)]) == 0
    stamp = json.loads((out / "spec.json").read_text())
    assert stamp["streams"] == rng.STREAMS
    del stamp["streams"]  # as written before the streams were versioned
    (out / "spec.json").write_text(json.dumps(stamp))
    capsys.readouterr()
    assert main(["sweep", str(tmp_path / "a.toml"), "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "random streams 1" in err and f"streams {rng.STREAMS}" in err and "--force" in err
    assert main(["sweep", str(tmp_path / "a.toml"), "--out", str(out), "--force"]) == 0


LOGISTIC_SPEC = """[sweep]
name = "lib"
[sweep.grid]
"faults.crashes" = [0, 1]
[system]
clusters = [2, 2]
[faults]
pattern = "random"
[objective]
kind = "logistic"
path = "data.svm"
batch = 4
[algorithm]
kind = "sc"
step = "constant"
lr = 0.1
[run]
iterations = 20
scenarios = 32
record_every = 10
chunk = 16
"""


def _libsvm_text(seed: int) -> str:
    """40 samples of 3 features in LIBSVM format, a different dataset for every seed."""
    draw = np.random.default_rng(seed)
    rows = zip(draw.choice([-1, 1], 40), draw.normal(size=(40, 3)))
    return "".join(f"{label} " + " ".join(f"{k + 1}:{v:.3f}" for k, v in enumerate(row)) + "\n" for label, row in rows)


def test_resume_refuses_a_data_file_that_changed_since_the_sweep_began(tmp_path, capsys):
    # same path, other bytes: finishing the sweep would put scenarios of two datasets under one point
    (tmp_path / "spec.toml").write_text(LOGISTIC_SPEC)
    data, out = tmp_path / "data.svm", tmp_path / "out"
    data.write_text(_libsvm_text(0))
    command = ["sweep", str(tmp_path / "spec.toml"), "--out", str(out)]
    assert main(command) == 0
    second_chunks = list((out / "points").glob("*/0000000016-0000000032.parquet"))
    assert len(second_chunks) == 2
    for chunk in second_chunks:
        chunk.unlink()  # as if the sweep was killed before each point's second chunk
    data.write_text(_libsvm_text(1))
    capsys.readouterr()
    assert main([*command, "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "objective.path" in err and str(data.resolve()) in err and "--force" in err
    assert main([*command, "--resume", "--force"]) == 0
    recorded = {"objective.path": {"path": str(data.resolve()), "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}}
    assert all(point["inputs"] == recorded for point in json.loads((out / "manifest.json").read_text())["points"])


def test_a_run_manifest_records_the_digest_of_its_data_file(tmp_path):
    data = tmp_path / "data.svm"
    data.write_text(_libsvm_text(0))
    config = tomllib.loads("[system]" + LOGISTIC_SPEC.split("[system]", 1)[1])
    config["objective"]["path"] = str(data)
    manifest = api.run(config, out=tmp_path / "out").manifest
    assert manifest["inputs"] == {"objective.path": {"path": str(data.resolve()), "sha256": hashlib.sha256(data.read_bytes()).hexdigest()}}
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["inputs"] == manifest["inputs"]


DIVERGING_SPEC = """[sweep]
name = "part"
[sweep.grid]
"algorithm.lr" = [0.1, 0.6]
[system]
clusters = [2, 2]
[objective]
kind = "quadratic"
dim = 2
mu = 1.0
L = 4.0
sigma = 1.0
[algorithm]
kind = "sc"
step = "constant"
[run]
iterations = 130
scenarios = 64
record_every = 2
chunk = 64
"""


def test_a_sweep_counts_and_warns_of_diverged_scenarios_as_a_run_does(tmp_path, capsys):
    # at lr = 0.6 = 2.4 / L about half the scenarios overflow: the table's medians are of the
    # others, so the table must say how many there were, and the sweep must warn as `ftsgd run` does
    spec = tmp_path / "spec.toml"
    spec.write_text(DIVERGING_SPEC)
    config = tomllib.loads("[system]" + DIVERGING_SPEC.split("[system]", 1)[1])
    config["algorithm"]["lr"] = 0.6
    diverged = api.run(config).summary["nonfinite"]["count"]
    assert 0 < diverged < 64
    capsys.readouterr()
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    table = [line.split() for line in captured.out.splitlines() if line.split()[:1] in (["algorithm.lr"], ["0.1"], ["0.6"])]
    column = table[0].index("diverged")
    assert [row[column] for row in table[1:]] == ["0", str(diverged)]
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "0.6" in warnings[0] and f"{diverged} of 64 scenarios produced NaN/Inf" in warnings[0]
    summary = pq.read_table(tmp_path / "out" / "summary.parquet")
    assert summary.column("diverged").to_pylist() == [0, diverged]
    assert summary.column("loss_mean_nan").to_pylist()[0] == 0  # the per-metric counts stay


def _chunk_times(out):
    return {path: path.stat().st_mtime_ns for path in (out / "points").rglob("??????????-??????????.parquet")}


def test_rerunning_a_sweep_without_resume_refuses_to_delete_its_results(tmp_path, capsys, small_toml):
    # a second `ftsgd sweep` of the same spec, --resume forgotten, deleted every finished chunk
    spec = tmp_path / "s.toml"
    spec.write_text(small_toml(grid='"faults.crashes" = [0, 1]', scenarios=16, chunk=8))
    out = tmp_path / "out"
    command = ["sweep", str(spec), "--out", str(out)]
    assert main(command) == 0
    finished = _chunk_times(out)
    assert len(finished) == 4
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ftsgd: error: --out:"), err
    assert "results of this sweep (2 of 2 points done" in err and "--resume" in err and "--force" in err
    assert _chunk_times(out) == finished and (out / "manifest.json").is_file()
    assert main([*command, "--resume"]) == 0
    assert _chunk_times(out) == finished  # kept, not redone
    assert main([*command, "--force"]) == 0
    assert all(path.stat().st_mtime_ns != stamp for path, stamp in finished.items())  # started over


def test_a_partial_sweep_is_kept_when_rerun_without_resume(tmp_path, spec):
    sweep = Sweep(spec(grid={"faults.crashes": [0, 2]}), tmp_path / "s.toml")
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, out, fail_after=4)  # point 0 whole (3 chunks of 8), point 1 one chunk
    finished = _chunk_times(out)
    with pytest.raises(ConfigError, match=r"1 of 2 points done, 32 of 48 scenarios") as error:
        run_sweep(sweep, out)
    assert error.value.field == "--out"
    assert _chunk_times(out) == finished
    run_sweep(sweep, out, resume=True)
    assert len(_chunk_times(out)) == 6


def test_a_sweep_that_finished_no_chunk_starts_again_without_resume(tmp_path, spec):
    sweep = Sweep(spec(grid={"faults.crashes": [0, 2]}), tmp_path / "s.toml")
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, tmp_path / "out", fail_after=0)
    run_sweep(sweep, tmp_path / "out")  # nothing finished, nothing to lose
    assert len(_chunk_times(tmp_path / "out")) == 6


@pytest.mark.parametrize(
    ("suite", "message"),
    [
        ("suite = 5", "suite: must be a table"),
        ("[suite]\nsweeps = [3]", "suite.sweeps: need a non-empty list of sweep spec files"),
        ('[suite]\nsweeps = ["one.toml"]\nset = "x"', "suite.set: must be a table"),
        ('[suite]\nsweeps = ["one.toml"]\n[suite.set]\nfoo = 1', "suite.set: override 'foo' must be section.key"),
        ('[suite]\nsweeps = ["one.toml"]\n[suite.set]\n"run" = 5', "suite.set: override 'run' must be section.key"),
        ('[suite]\nsweeps = ["one.toml"]\n[suite.set]\n"sweep" = 5', "suite.set: override 'sweep' must be section.key"),
        ('[suite]\nsweeps = ["one.toml"]\n[suite.set]\n"nosection.x" = 1', "suite.set: override 'nosection.x' does not exist: unknown section 'nosection'"),
        ('[suite]\nsweeps = ["one.toml"]\n[suite.set]\n"run.scenarioz" = 8', "suite.set: override 'run.scenarioz' does not exist .did you mean 'run.scenarios'"),
        # the member's grid sets the key at every point: the override would be dropped unseen
        ('[suite]\nsweeps = ["one.toml"]\n[suite.set]\n"faults.crashes" = 3', "suite.set: override 'faults.crashes' is swept by sweep 'one' .sweep.grid."),
    ],
)
def test_a_bad_suite_is_one_line_naming_the_field(tmp_path, capsys, small_toml, suite, message):
    (tmp_path / "one.toml").write_text(small_toml(grid='"faults.crashes" = [0]', name="one"))
    (tmp_path / "suite.toml").write_text(suite + "\n")
    assert main(["sweep", str(tmp_path / "suite.toml"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(message, err), err


def test_a_suites_run_seed_moves_its_sweeps_seeds_and_a_swept_one_is_refused(small_toml):
    seeded = tomllib.loads('[sweep]\nname = "one"\nseeds = 2\n[sweep.grid]\n"faults.crashes" = [0, 1]\n' + small_toml())
    # the seeds axis counts up from run.seed: a suite's run.seed is where it starts, not dropped
    assert [p["run.seed"] for p in Sweep(seeded, Path("one.toml"), {"run.seed": 5}).points] == [5, 6, 5, 6]
    zipped = tomllib.loads('[sweep]\nname = "one"\n[sweep.zip]\n"run.seed" = [1, 2]\n"faults.crashes" = [0, 1]\n' + small_toml())
    with pytest.raises(ConfigError, match=r"suite.set: override 'run.seed' is swept by sweep 'one' \(sweep.zip\)"):
        Sweep(zipped, Path("one.toml"), {"run.seed": 5})


def test_a_suite_may_set_a_key_of_its_sweeps_tables(tmp_path, small_toml):
    (tmp_path / "one.toml").write_text(small_toml(grid='"faults.crashes" = [0, 1]', name="one", scenarios=8))
    (tmp_path / "suite.toml").write_text('[suite]\nsweeps = ["one.toml"]\n[suite.set]\n"sweep.seeds" = 2\n')
    results = api.run_sweep(tmp_path / "suite.toml", tmp_path / "out")
    assert results["one"].summary.num_rows == 4


@pytest.mark.parametrize(
    ("grid", "shown"),
    [
        ({"schedule.delay_mean": [0.5, 1, 1.0]}, r"\{\"schedule.delay_mean\": 1\} and \{\"schedule.delay_mean\": 1.0\}"),
        ({"faults.window": [[0, 1], [0.0, 1.0]]}, r"\[0, 1\]\} and \{\"faults.window\": \[0.0, 1.0\]"),
    ],
)
def test_points_equal_as_numbers_are_duplicates(spec, grid, shown):
    # 1 and 1.0 hash to different point ids but are one configuration: it ran twice
    with pytest.raises(ConfigError, match=shown) as error:
        Sweep(spec(grid=grid), Path("s.toml"))
    assert error.value.field == "sweep"
