"""Tests of ftsgd_jax.results: summaries and the metrics table against plain computations on
hand-made results, run lengths, the capped-rounds warning, strict JSON, and what a folder holds."""

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftsgd_jax import algorithms, cli, engine, results
from ftsgd_jax.config import build_config
from ftsgd_jax.metrics import METRIC_COLUMNS


@given(st.lists(st.one_of(st.integers(0, 3), st.sampled_from([0.5, 0.25, 1.0])), max_size=40))
def test_run_lengths_are_maximal_runs_that_expand_back(values):
    encoded = results.run_lengths(np.array(values))
    assert all(count >= 1 for _, count in encoded)
    assert all(a[0] != b[0] for a, b in zip(encoded, encoded[1:]))  # maximal: neighbours differ
    np.testing.assert_array_equal(results.expand_run_lengths(encoded), np.array(values))
    json.dumps(encoded)  # plain Python values


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


def hand_made_result(rng, scenarios: int, records: int, processes: int, rounds, needed) -> engine.RunResult:
    """A RunResult with NaN and Inf sprinkled in, as diverged or empty scenarios give."""
    metrics = {}
    for name in METRIC_COLUMNS:
        values = rng.normal(size=(scenarios, records)).astype(np.float32)
        values[rng.random(values.shape) < 0.2] = np.nan
        values[rng.random(values.shape) < 0.05] = np.inf
        metrics[name] = values
    for name in ("crashed", "blocked", "safe_fallbacks", "rounds", "rounds_capped"):
        metrics[name] = rng.integers(0, processes // 2 + 1, size=(scenarios, records)).astype(np.int32)
    metrics["majority"] = rng.random((scenarios, records)) < 0.7
    t = np.arange(1, records + 1) * 5
    return engine.RunResult(metrics, t, np.asarray(rounds), np.asarray(needed), 0.0, 0.0, scenarios)


@given(st.integers(1, 12), st.integers(1, 5), st.integers(2, 8), st.integers(0, 2**32 - 1))
def test_summary_is_the_plain_statistics_of_the_last_record(scenarios, records, processes, seed):
    rng = np.random.default_rng(seed)
    rounds = rng.integers(1, 4, size=records * 5)
    needed = rounds + (rng.random(rounds.size) < 0.3) * rng.integers(1, 3, size=rounds.size)
    result = hand_made_result(rng, scenarios, records, processes, rounds, needed)
    summary = results.summarize(result, processes)
    assert summary["scenarios"] == scenarios and summary["t"] == 5 * records
    for name in METRIC_COLUMNS:
        last = [float(v) for v in result.metrics[name][:, -1]]
        finite = [v for v in last if math.isfinite(v)]
        entry = summary["metrics"][name]
        assert entry["finite"] == len(finite) and entry["nan"] == scenarios - len(finite), name
        if finite:
            assert entry["mean"] == pytest.approx(sum(finite) / len(finite), rel=1e-9, abs=1e-12)
            assert entry["median"] == pytest.approx(float(np.median(finite))) and entry["max"] == max(finite)
        else:
            assert entry.keys() == {"finite", "nan"}
    blocked_last = result.metrics["blocked"][:, -1]
    assert summary["blocked_fraction"] == pytest.approx(sum(b > 0 for b in blocked_last) / scenarios)
    assert summary["majority_fraction"] == pytest.approx(sum(result.metrics["majority"][:, -1]) / scenarios)
    assert summary["rounds_capped_iterations"] == sum(n > r for n, r in zip(needed, rounds))
    assert summary["safe_fallbacks"] == int(result.metrics["safe_fallbacks"].sum())
    diverged = [
        s
        for s in range(scenarios)
        if any(
            processes - result.metrics["crashed"][s, k] - result.metrics["blocked"][s, k] > 0
            and not math.isfinite(result.metrics["loss_mean"][s, k])
            for k in range(records)
        )
    ]
    assert summary["nonfinite"] == {"count": len(diverged), "scenarios": diverged}
    assert "NaN" in results.format_summary(summary).splitlines()[0]
    json.loads(json.dumps(results.json_safe(summary), allow_nan=False))  # strict JSON


def test_capped_rounds_warning_counts_the_capped_iterations():
    rng = np.random.default_rng(0)
    result = hand_made_result(rng, 2, 2, 4, rounds=[8, 8, 3, 8, 8, 8, 8, 8, 8, 8], needed=[9, 12, 3, 8, 8, 8, 8, 8, 8, 8])
    assert results.capped_rounds_warning(result, 8) == (
        "warning: rounds = 'auto' needed up to 12 agreement rounds; 2 of 10 iterations ran max_rounds = 8, "
        "where eps_t is not guaranteed (column rounds_capped; raise algorithm.max_rounds)"
    )
    exact = hand_made_result(rng, 2, 2, 4, rounds=[8] * 10, needed=[8] * 9 + [algorithms.UNBOUNDED_ROUNDS])
    assert results.capped_rounds_warning(exact, 8).startswith(
        "warning: rounds = 'auto' needed exact agreement (eps_t = 0, a step size of 0); 1 of 10 iterations ran max_rounds = 8"
    )


def test_the_metrics_table_has_one_row_per_scenario_and_record_in_order():
    rng = np.random.default_rng(1)
    result = hand_made_result(rng, 3, 4, 4, rounds=[1] * 20, needed=[1] * 20)
    table = results.metrics_table(result, np.array([7, 8, 9]), extra={"system.clusters": [2, 1], "faults.crashes": 2})
    rows = table.to_pylist()
    assert len(rows) == 12
    for index, row in enumerate(rows):
        scenario, record = divmod(index, 4)
        assert row["scenario"] == 7 + scenario and row["t"] == 5 * (record + 1)
        assert row["system.clusters"] == "[2, 1]" and row["faults.crashes"] == 2
        for name in METRIC_COLUMNS:
            expected = result.metrics[name][scenario, record]
            assert row[name] == expected or (math.isnan(row[name]) and math.isnan(expected)), name


FLOATS = st.floats(allow_nan=True, allow_infinity=True)
DOCUMENTS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10, 10), FLOATS, st.text(alphabet="abcxyz", max_size=4)),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(alphabet="abc", max_size=3), children, max_size=3)),
    max_leaves=12,
)


@given(DOCUMENTS)
def test_json_safe_is_strict_json_and_restore_floats_undoes_it(document):
    text = json.dumps(results.json_safe(document), allow_nan=False)

    def same(a, b) -> bool:
        if isinstance(a, float) and math.isnan(a):
            return isinstance(b, float) and math.isnan(b)
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
        return a == b and type(a) is type(b)

    assert same(document, results.restore_floats(json.loads(text)))  # (its strings never spell inf or nan)


def test_json_safe_turns_numpy_into_plain_python():
    value = {"a": np.float32(1.5), "b": np.arange(3), "c": (np.int64(2), np.inf), "d": np.bool_(True)}
    assert results.json_safe(value) == {"a": 1.5, "b": [0, 1, 2], "c": [2, "inf"], "d": True}


def test_folder_kind_and_clear_results_remove_only_what_ftsgd_wrote(tmp_path):
    assert results.folder_kind(tmp_path / "absent") is None
    assert results.folder_kind(tmp_path) is None
    (tmp_path / results.LOCK_NAME).write_text("")
    assert results.folder_kind(tmp_path) is None  # a lock alone is nothing
    (tmp_path / "notes.txt").write_text("mine")
    assert results.folder_kind(tmp_path) == "other"
    (tmp_path / "spec.json").write_text("{}")
    assert results.folder_kind(tmp_path) == "sweep"
    (tmp_path / "manifest.json").write_text(json.dumps({"command": "run"}))
    assert results.folder_kind(tmp_path) == "run"
    (tmp_path / "points" / "abc").mkdir(parents=True)
    (tmp_path / "metrics.parquet").write_bytes(b"")
    (tmp_path / "half.tmp").write_bytes(b"")
    results.clear_results(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([results.LOCK_NAME, "notes.txt"])
    suite = tmp_path / "suite"
    (suite / "one").mkdir(parents=True)
    (suite / "suite.json").write_text(json.dumps({"sweeps": ["one"]}))
    (suite / "one" / "spec.json").write_text("{}")
    (suite / "one" / "summary.parquet").write_bytes(b"")
    assert results.folder_kind(suite) == "suite" and results.folder_kind(suite / "one") == "sweep"
    results.clear_results(suite)
    assert not (suite / "suite.json").exists() and list((suite / "one").iterdir()) == []


def test_tables_are_written_with_dictionaries_for_counts_only_and_read_back_exactly(tmp_path):
    import pyarrow.parquet as pq

    rng = np.random.default_rng(2)
    result = hand_made_result(rng, 5, 3, 4, rounds=[1] * 15, needed=[1] * 15)
    table = results.metrics_table(result, np.arange(5), extra={"system.quorum": "count"})
    results.write_table(tmp_path / "m.parquet", table)
    back = pq.read_table(tmp_path / "m.parquet")
    assert back.schema == table.schema
    for name in table.column_names:
        np.testing.assert_array_equal(back.column(name).to_numpy(zero_copy_only=False), table.column(name).to_numpy(zero_copy_only=False), err_msg=name)
    columns = pq.ParquetFile(tmp_path / "m.parquet").metadata.row_group(0)
    encoded = {columns.column(i).path_in_schema: columns.column(i).encodings for i in range(columns.num_columns)}
    assert "RLE_DICTIONARY" in encoded["scenario"] and "RLE_DICTIONARY" in encoded["system.quorum"]
    assert "RLE_DICTIONARY" not in encoded["err_mean"]


def test_a_constant_column_is_the_column_of_its_cell_repeated():
    import pyarrow as pa

    for value, kind in (("[2, 1]", pa.string()), (3, pa.int64()), (0.5, pa.float64()), (True, pa.bool_())):
        assert results.constant_column(pa.scalar(value, kind), 4).equals(pa.array([value] * 4, kind))
