"""Tests of ftsgd_jax.results: summaries, run lengths and the capped-rounds warning."""

import json

import numpy as np

from ftsgd_jax import cli, engine, results
from ftsgd_jax.config import build_config


def test_run_lengths_round_trip():
    values = np.array([3, 3, 3, 5, 5, 1, 3])
    encoded = results.run_lengths(values)
    assert encoded == [[3, 3], [5, 2], [1, 1], [3, 1]]
    np.testing.assert_array_equal(np.repeat([v for v, _ in encoded], [c for _, c in encoded]), values)
    assert results.run_lengths(np.array([], int)) == []


def _capped_config():
    return build_config(
        {
            "system": {"clusters": [8, 8, 8, 8]},
            "objective": {"kind": "quadratic", "dim": 2},
            "algorithm": {"kind": "gen", "rounds": "auto", "max_rounds": 8},
            "run": {"iterations": 10, "record_every": 5, "scenarios": 4},
        }
    )


def test_summary_counts_capped_iterations_and_the_run_warns(tmp_path, capsys):
    result = engine.run(_capped_config())
    summary = results.summarize(result, 32)
    assert summary["rounds_capped_iterations"] == 10
    assert results.capped_rounds_warning(result, 8).startswith("warning: rounds = 'auto' needed up to")
    config_file = tmp_path / "capped.toml"
    config_file.write_text(
        '[system]\nclusters = [8, 8, 8, 8]\n[objective]\nkind = "quadratic"\ndim = 2\n'
        '[algorithm]\nkind = "gen"\nrounds = "auto"\nmax_rounds = 8\n[run]\niterations = 10\nrecord_every = 5\nscenarios = 4\n'
    )
    assert cli.main(["run", str(config_file), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "10 of 10 iterations ran max_rounds = 8, where eps_t is not guaranteed" in err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["theory"]["rounds_per_iteration"] == [[8, 10]]
    assert manifest["theory"]["rounds_needed"][0][0] > 8


def test_no_warning_when_nothing_is_capped():
    cfg = build_config({"algorithm": {"kind": "gen", "rounds": 2}, "run": {"iterations": 4, "record_every": 2, "scenarios": 2}})
    result = engine.run(cfg)
    assert results.capped_rounds_warning(result, 64) is None
    assert results.summarize(result, 16)["rounds_capped_iterations"] == 0
