"""Tests of ftsgd_jax.config: defaults, overrides and one clear error per mistake."""

import pytest

from ftsgd_jax.config import DEFAULTS, apply_overrides, build_config, load_config, parse_override
from ftsgd_jax.errors import ConfigError


def test_every_default_is_resolved_and_recorded():
    cfg = build_config({})
    for section, values in DEFAULTS.items():
        if section != "objective":
            assert set(values) <= set(cfg.resolved[section]), section
    assert cfg.resolved["objective"]["kind"] == "quadratic" and "sigma" in cfg.resolved["objective"]
    assert cfg.resolved["schedule"]["groups"] == [[0, 1], [2, 3]]


def test_overrides_are_read_as_toml_values():
    assert parse_override("faults.crashes=3") == ("faults", "crashes", 3)
    assert parse_override("system.clusters=[1, 2]") == ("system", "clusters", [1, 2])
    assert parse_override("schedule.kind=sync") == ("schedule", "kind", "sync")
    merged = apply_overrides({"faults": {"crashes": 1}}, ["faults.crashes=2", "run.seed=7"])
    assert merged == {"faults": {"crashes": 2}, "run": {"seed": 7}}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"sytem": {}}, "config.sytem"),
        ({"system": {"clusterz": [1]}}, "system.clusterz"),
        ({"system": {"clusters": []}}, "system.clusters"),
        ({"system": {"clusters": [2, 0]}}, "system.clusters"),
        ({"system": {"clusters": "4,4"}}, "system.clusters"),
        ({"system": {"quorum": "majority"}}, "system.quorum"),
        ({"faults": {"pattern": "random", "crashes": 99}}, "faults.crashes"),
        ({"faults": {"pattern": "clusters", "crashes": 5}}, "faults.crashes"),
        ({"schedule": {"kind": "chaos"}}, "schedule.kind"),
        ({"schedule": {"delay_mean": -1}}, "schedule.delay_mean"),
        ({"objective": {"dim": 0}}, "objective.dim"),
        ({"objective": {"sigma": -1.0}}, "objective.sigma"),
        ({"objective": {"mu": 2.0, "L": 1.0}}, "objective.L"),
        ({"algorithm": {"kind": "gen", "rule": "midpoint"}}, "algorithm.rule"),
        ({"algorithm": {"kind": "fast"}}, "algorithm.kind"),
        ({"algorithm": {"rounds": 0}}, "algorithm.rounds"),
        ({"algorithm": {"rounds": "many"}}, "algorithm.rounds"),
        ({"algorithm": {"kind": "gen", "rounds": "auto"}, "objective": {"kind": "mlp"}}, "algorithm.step"),
        ({"algorithm": {"kind": "gen", "rounds": "auto", "step": "constant"}, "objective": {"kind": "mlp"}}, "algorithm.g_max"),
        ({"run": {"iterations": 0}}, "run.iterations"),
        ({"run": {"iterations": 100, "record_every": 30}}, "run.record_every"),
        ({"run": {"scenarios": 2.5}}, "run.scenarios"),
        ({"run": "fast"}, "run"),
    ],
)
def test_each_mistake_names_its_field(raw, field):
    with pytest.raises(ConfigError) as error:
        build_config(raw)
    assert error.value.field == field


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'iterations'"):
        build_config({"run": {"iteration": 10}})


def test_malformed_and_missing_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[system\nclusters = [1]")
    with pytest.raises(ConfigError, match="bad.toml: malformed TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_libsvm_path_is_relative_to_the_config_file(tmp_path):
    (tmp_path / "data.svm").write_text("+1 1:0.5 2:1.0\n-1 1:-0.5 3:2.0\n")
    (tmp_path / "run.toml").write_text('[objective]\nkind = "logistic"\npath = "data.svm"\n[algorithm]\nstep = "constant"\n')
    cfg = load_config(tmp_path / "run.toml")
    assert cfg.objective.dim == 3


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"algorithm": {"eps0": float("inf")}}, "algorithm.eps0"),
        ({"algorithm": {"eps0": float("nan")}}, "algorithm.eps0"),
        ({"algorithm": {"step_offset": float("inf")}}, "algorithm.step_offset"),
        ({"algorithm": {"step_scale": float("inf")}}, "algorithm.step_scale"),
        ({"algorithm": {"lr": float("inf"), "step": "constant"}}, "algorithm.lr"),
        ({"algorithm": {"g_max": float("inf")}}, "algorithm.g_max"),
        ({"algorithm": {"eps_power": float("inf")}}, "algorithm.eps_power"),
        ({"algorithm": {"eps_power": 0}}, "algorithm.eps_power"),
        ({"algorithm": {"lr": True}}, "algorithm.lr"),
        ({"algorithm": {"rounds": 10**9}}, "algorithm.rounds"),
        ({"faults": {"window": [True, True]}}, "faults.window"),
        ({"faults": {"window": ["a", "b"]}}, "faults.window"),
        ({"faults": {"window": [0.5, 0.2]}}, "faults.window"),
        ({"faults": {"window": [0, float("inf")]}}, "faults.window"),
        ({"run": {"iterations": 10**9}}, "run.iterations"),
        ({"run": {"scenarios": 10**12}}, "run.scenarios"),
        ({"run": {"chunk": 10**12}}, "run.chunk"),
    ],
)
def test_every_float_key_has_a_finite_range(raw, field):
    with pytest.raises(ConfigError) as error:
        build_config(raw)
    assert error.value.field == field


def test_eps0_inf_never_reaches_the_round_count():
    with pytest.raises(ConfigError, match=r"algorithm.eps0: need a finite number in \(0, 1e\+12\], got inf"):
        build_config({"algorithm": {"kind": "gen", "rounds": "auto", "eps0": float("inf")}})


def test_record_every_hint_is_fast_for_a_large_prime_iteration_count():
    import time

    started = time.perf_counter()
    with pytest.raises(ConfigError, match=r"run.record_every: must divide run.iterations \(9999991\); e.g. 1, 9999991"):
        build_config({"run": {"iterations": 9999991, "record_every": 10}})
    assert time.perf_counter() - started < 1.0


def test_non_utf8_config_files_are_one_error(tmp_path):
    latin = tmp_path / "latin.toml"
    latin.write_bytes('[run]\n# caf\xe9\nseed = 1\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="latin.toml: not UTF-8 text"):
        load_config(latin)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(ConfigError, match="binary.toml: not UTF-8 text"):
        load_config(binary)


def test_an_override_into_a_non_table_section_is_one_error():
    with pytest.raises(ConfigError, match="run: must be a table"):
        apply_overrides({"run": 5}, ["run.seed=1"])
