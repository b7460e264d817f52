"""Tests of ftsgd_jax.replay and `ftsgd replay`: one scenario alone equals its batched lane."""

import json

import pytest

from ftsgd_jax import replay, rng
from ftsgd_jax.cli import main

RUN = """
[system]
clusters = [2, 1, 2]
[faults]
pattern = "random"
crashes = 2
[schedule]
kind = "random"
[objective]
kind = "quadratic"
dim = 2
[algorithm]
kind = "gen"
rounds = 2
[run]
iterations = 12
scenarios = 12
record_every = 4
"""

SWEEP = RUN.replace("[system]", '[sweep]\n[sweep.grid]\n"faults.crashes" = [0, 3]\n\n[system]')


@pytest.fixture
def run_dir(tmp_path):
    (tmp_path / "run.toml").write_text(RUN)
    assert main(["run", str(tmp_path / "run.toml"), "--out", str(tmp_path / "out")]) == 0
    return tmp_path / "out"


def test_replayed_metrics_equal_the_stored_row(run_dir):
    config, _ = replay.load_point(run_dir, 0)
    for scenario in (0, 7, 11):
        replayed = replay.replay_metrics(config, scenario)
        stored = replay.stored_metrics(run_dir, 0, scenario)
        assert max(replay.compare(replayed, stored).values()) <= 1


def test_replay_writes_a_time_ordered_trace_and_a_diagram(run_dir, tmp_path, capsys):
    out = tmp_path / "trace"
    assert main(["replay", str(run_dir), "--scenario", "3", "--out", str(out)]) == 0
    events = [json.loads(line) for line in (out / "trace.jsonl").read_text().splitlines()]
    times = [e["time"] for e in events]
    assert times == sorted(times)
    steps = {e["step"] for e in events}
    assert {"compute", "write", "read", "send", "receive", "end"} <= steps
    assert all({"process", "cluster", "iteration", "round"} <= set(e) for e in events)
    assert any("value" in e for e in events if e["step"] == "write")
    assert (out / "spacetime.png").stat().st_size > 1000
    summary = json.loads((out / "replay.json").read_text())
    assert max(summary["difference_over_tolerance"].values()) <= 1


def test_replay_of_a_sweep_point(tmp_path):
    (tmp_path / "sweep.toml").write_text(SWEEP)
    assert main(["sweep", str(tmp_path / "sweep.toml"), "--out", str(tmp_path / "s")]) == 0
    assert main(["replay", str(tmp_path / "s"), "--point", "1", "--scenario", "5", "--out", str(tmp_path / "t")]) == 0
    events = [json.loads(line) for line in (tmp_path / "t" / "trace.jsonl").read_text().splitlines()]
    assert sum(e["step"] == "crash" for e in events) == 3


def test_a_point_is_found_by_an_infinite_value_as_the_manifest_stores_it():
    # JSON has no infinity: the manifest stores "inf", --point parses inf as TOML does
    manifest = {"command": "sweep", "points": [{"values": {"schedule.delay_mean": "inf", "faults.crashes": 1}},
                                               {"values": {"schedule.delay_mean": 2.0, "faults.crashes": 1}}]}
    assert replay.point_index(manifest, "schedule.delay_mean=inf") == 0
    assert replay.point_index(manifest, "schedule.delay_mean=2, faults.crashes=1") == 1
    assert replay.point_index(manifest, "schedule.delay_mean=2.0") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "99"], "--scenario: scenario 99 out of range"),
        (["--scenario", "0", "--point", "2"], "--point"),
    ],
)
def test_bad_replay_requests_are_one_line(run_dir, tmp_path, capsys, args, message):
    assert main(["replay", str(run_dir), *args, "--out", str(tmp_path / "t")]) == 2
    assert message in capsys.readouterr().err


def test_missing_results_folder(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "nothing"), "--scenario", "0", "--out", str(tmp_path / "t")]) == 2
    assert "no results" in capsys.readouterr().err


def test_replay_refuses_results_drawn_with_other_random_streams(run_dir, tmp_path, capsys):
    # a replay draws with this version's streams: of an older folder it would show another
    # scenario than the stored one, so it says so instead
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["environment"]["random_streams"] == rng.STREAMS
    del manifest["environment"]["random_streams"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    assert main(["replay", str(run_dir), "--scenario", "0", "--out", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "random streams 1" in err and not (tmp_path / "t").exists()
