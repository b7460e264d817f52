"""A safe-area configuration whose views can never hold (d+1)f+1 points warns before it
runs, and the results count the rounds that fell back to the centroid."""

import json

import pytest

from ftsgd_jax.cli import main
from ftsgd_jax.config import build_config
from ftsgd_jax.theory import safe_area_shortfall


def safe_area_config(clusters: list[int], dim: int = 2, safe_f: int = 1, schedule: str = "sync", rule: str = "safe_area") -> dict:
    return {
        "system": {"clusters": clusters},
        "schedule": {"kind": schedule},
        "algorithm": {"kind": "gen", "rule": rule, "rounds": 2, "safe_f": safe_f},
        "objective": {"kind": "quadratic", "dim": dim},
        "run": {"iterations": 4, "scenarios": 4, "record_every": 2},
    }


def test_the_warning_names_the_sizes_and_only_when_views_are_too_small():
    line = safe_area_shortfall(build_config(safe_area_config([1, 1, 1])))
    assert line.startswith("algorithm.safe_f: safe_area needs views of (d+1)f+1 = 4 points (d = 2, f = 1)")
    assert "at most the n = 3 processes" in line
    assert safe_area_shortfall(build_config(safe_area_config([1, 1, 1, 1]))) == ""
    assert safe_area_shortfall(build_config(safe_area_config([1, 1, 1], safe_f=0))) == ""
    assert safe_area_shortfall(build_config(safe_area_config([1, 1, 1], dim=1, rule="mean"))) == ""
    self_only = safe_area_shortfall(build_config(safe_area_config([2, 2], dim=1, schedule="self_only")))
    assert "(d+1)f+1 = 3 points" in self_only and "the largest cluster (2 processes) under self_only" in self_only


@pytest.mark.parametrize(
    "clusters, warnings, fallbacks",
    [
        # sync views hold every process: the first round of each of the 4 iterations falls
        # back for all 3 processes of each of the 4 scenarios; then the values coincide and
        # the second round has a safe point
        ([1, 1, 1], 1, 4 * 4 * 3),
        ([1, 1, 1, 1], 0, 0),  # 4 = (d+1)f+1 points: a safe point in every round
    ],
)
def test_the_warning_comes_before_the_run_and_agrees_with_the_fallback_count(tmp_path, capsys, clusters, warnings, fallbacks):
    path = tmp_path / "safe.toml"
    path.write_text(
        f"[system]\nclusters = {clusters}\n[schedule]\nkind = \"sync\"\n"
        "[algorithm]\nkind = \"gen\"\nrule = \"safe_area\"\nrounds = 2\nsafe_f = 1\n"
        "[objective]\nkind = \"quadratic\"\ndim = 2\n[run]\niterations = 4\nscenarios = 4\nrecord_every = 2\n"
    )
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 0
    stderr = capsys.readouterr().err.strip().splitlines()
    warned = [index for index, line in enumerate(stderr) if line.startswith("warning: algorithm.safe_f: ")]
    assert warned == list(range(warnings))  # one line, before the progress lines
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["safe_fallbacks"] == fallbacks
