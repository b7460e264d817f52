"""The README's Guarantees: a sweep never loses, mixes or mislabels results.

Each test is one way results could go wrong (an interruption, a change of chunk size or
device count, a reordered spec, two writers, an interrupted --force, a run into a sweep
folder, mixed-type values, Ctrl-C, temporaries left by a kill) and checks that the tool
either produces exactly the results of an uninterrupted run or refuses in one line.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ftsgd_jax import devices, results
from ftsgd_jax.cli import main
from ftsgd_jax.sweep import Sweep, run_sweep

ROOT = Path(__file__).resolve().parents[1]

# Differences between chunk sizes or device counts (README, Reproducibility): the same
# scenario in another batch shape may differ in the last float32 bits.
CHUNK_RTOL, CHUNK_ATOL = 1e-5, 1e-6


@pytest.fixture
def spec_text(small_toml):
    """A sweep spec named "s" of the small configuration over ``grid``: 24 scenarios in chunks of 8 unless told."""

    def text(grid: str, scenarios: int = 24, chunk: int = 8, extra: str = "") -> str:
        return small_toml(grid=grid, scenarios=scenarios, chunk=chunk, extra=extra)

    return text


def table_by_values(out: Path, keys: list[str]) -> dict[tuple, dict[str, np.ndarray]]:
    """Rows of metrics.parquet per point, keyed by the point's swept values, sorted by (scenario, t)."""
    table = pq.read_table(out / "metrics.parquet")
    points = {}
    for values in {tuple(row[k] for k in keys) for row in table.select(keys).to_pylist()}:
        mask = np.ones(table.num_rows, bool)
        for key, value in zip(keys, values):
            mask &= np.asarray(table.column(key).to_pylist(), dtype=object) == value
        rows = table.filter(mask).sort_by([("scenario", "ascending"), ("t", "ascending")])
        points[values] = {name: rows.column(name).to_numpy(zero_copy_only=False) for name in rows.column_names}
    return points


def assert_same_results(a: Path, b: Path, keys: list[str], exact: bool = True) -> None:
    """Both folders hold the same points, each with the same scenarios and values."""
    ta, tb = table_by_values(a, keys), table_by_values(b, keys)
    assert set(ta) == set(tb)
    for values, columns in ta.items():
        other = tb[values]
        np.testing.assert_array_equal(columns["scenario"], other["scenario"], err_msg=str(values))
        np.testing.assert_array_equal(columns["t"], other["t"], err_msg=str(values))
        for name, column in columns.items():
            if name == "point":
                continue  # a point's index follows the spec's order; its values and id name it
            if column.dtype.kind in "fiub":
                if exact:
                    np.testing.assert_array_equal(column, other[name], err_msg=f"{values} {name}")
                else:
                    np.testing.assert_allclose(
                        column.astype(float), other[name].astype(float), rtol=CHUNK_RTOL, atol=CHUNK_ATOL, err_msg=f"{values} {name}"
                    )
            else:
                assert list(column) == list(other[name]), (values, name)


def chunk_files(out: Path) -> list[Path]:
    return sorted((out / "points").rglob("*.parquet"))


# -- 1. resume across a different chunk size ------------------------------------------


def test_resume_with_less_free_memory_neither_drops_nor_repeats_scenarios(tmp_path, monkeypatch, spec_text):
    """chunk = 0 sizes chunks from the free memory: 8 at first, 6 on resume (the stored
    plan of 8 no longer fits). On main today scenarios 6-7 appeared twice."""
    import tomllib

    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=20, chunk=0))
    sweep = Sweep(tomllib.loads(spec.read_text()), spec)
    per = devices.bytes_per_scenario(sweep.configs[0])
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 8 * per + 3)  # chunks of 8
    whole = tmp_path / "whole"
    run_sweep(sweep, whole)
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, cut, fail_after=1)
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 6 * per + 3)  # then of 6
    run_sweep(sweep, cut, resume=True)
    names = sorted(p.name for p in chunk_files(cut))
    assert "0000000000-0000000008.parquet" in names and "0000000008-0000000014.parquet" in names
    table = pq.read_table(cut / "metrics.parquet")
    for point in (0, 1):
        rows = table.filter(table.column("point").to_numpy() == point)
        scenarios = rows.column("scenario").to_numpy()
        assert rows.num_rows == 20 * 2 and sorted(set(scenarios)) == list(range(20))
    assert_same_results(whole, cut, ["faults.crashes"], exact=False)


def test_resume_with_the_same_plan_is_bit_identical(tmp_path, monkeypatch, spec_text):
    """Where the first run's chunk size still fits, the resumed sweep reuses it: exact equality."""
    import tomllib

    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=20, chunk=0))
    sweep = Sweep(tomllib.loads(spec.read_text()), spec)
    per = devices.bytes_per_scenario(sweep.configs[0])
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 8 * per + 3)
    run_sweep(sweep, tmp_path / "whole")
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, tmp_path / "cut", fail_after=1)
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 4096 * per)  # more memory now: still 8
    run_sweep(sweep, tmp_path / "cut", resume=True)
    assert (tmp_path / "whole" / "metrics.parquet").read_bytes() == (tmp_path / "cut" / "metrics.parquet").read_bytes()


def _blocks_of(monkeypatch, sweep: Sweep, scenarios: int | None) -> None:
    """CPU chunks from here on run in blocks of ``scenarios`` (None: one batch)."""
    config = sweep.configs[0]
    wanted = (scenarios or 10**6) * devices.round_bytes(config.topology.n, config.objective.dim)
    monkeypatch.setattr(devices, "CPU_BLOCK_BYTES", wanted)
    monkeypatch.setattr(devices, "MIN_CPU_BLOCK", 1)


def _metrics_bytes(out: Path) -> bytes:
    return (out / "metrics.parquet").read_bytes()


def _two_points_in_chunks_of_10(tmp_path: Path, spec_text) -> Sweep:
    import tomllib

    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=20, chunk=10))
    return Sweep(tomllib.loads(spec.read_text()), spec)


def test_resume_keeps_the_blocks_of_the_first_run_when_a_version_sizes_them_otherwise(tmp_path, monkeypatch, spec_text):
    """The plan holds the block; a resume under other block sizes still gives the same bits."""
    sweep = _two_points_in_chunks_of_10(tmp_path, spec_text)
    _blocks_of(monkeypatch, sweep, None)
    run_sweep(sweep, tmp_path / "one_batch")
    _blocks_of(monkeypatch, sweep, 4)
    run_sweep(sweep, tmp_path / "whole")
    assert json.loads(next((tmp_path / "whole" / "points").glob("*/plan.json")).read_text()) == {"chunk": 10, "block": 4}
    # the two layouts round differently here, so a resume that switched layout would show
    assert _metrics_bytes(tmp_path / "one_batch") != _metrics_bytes(tmp_path / "whole")
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, tmp_path / "cut", fail_after=1)
    _blocks_of(monkeypatch, sweep, None)  # a version that runs such chunks as one batch
    run_sweep(sweep, tmp_path / "cut", resume=True)
    assert _metrics_bytes(tmp_path / "whole") == _metrics_bytes(tmp_path / "cut")


def test_a_sweep_planned_before_blocks_resumes_as_one_batch(tmp_path, monkeypatch, spec_text):
    """A plan.json without a block ran its chunks as one batch; the rest of them run so too."""
    sweep = _two_points_in_chunks_of_10(tmp_path, spec_text)
    _blocks_of(monkeypatch, sweep, None)
    run_sweep(sweep, tmp_path / "whole")
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, tmp_path / "cut", fail_after=1)
    for plan in (tmp_path / "cut" / "points").glob("*/plan.json"):
        plan.write_text(json.dumps({"chunk": 10}))  # as the version before blocks wrote it
    _blocks_of(monkeypatch, sweep, 4)
    run_sweep(sweep, tmp_path / "cut", resume=True)
    assert _metrics_bytes(tmp_path / "whole") == _metrics_bytes(tmp_path / "cut")


def _sweep_process(spec: Path, out: Path, device_count: int, *args: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": f"--xla_force_host_platform_device_count={device_count}",
    }
    command = [sys.executable, "-m", "ftsgd_jax.cli", "sweep", str(spec), "--out", str(out), *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_chunks(out: Path, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(chunk_files(out)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the sweep wrote no chunks"
        time.sleep(0.01)


def test_sigkill_then_resume_on_three_devices_gives_the_uninterrupted_results(tmp_path, spec_text):
    """Killed on one device, resumed on three (chunks of 1 become sharded chunks of 3):
    the scenario ranges of the finished chunks are kept, nothing is dropped or repeated.
    On main today the resumed sweep lost scenarios and still exited 0."""
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=48, chunk=1))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    first = _sweep_process(spec, cut, 1)
    _wait_for_chunks(cut, 3, first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (cut / "manifest.json").exists()  # really cut short
    resumed = _sweep_process(spec, cut, 3, "--resume")
    assert resumed.wait(timeout=300) == 0, resumed.communicate()
    assert main(["sweep", str(spec), "--out", str(whole)]) == 0
    table = pq.read_table(cut / "metrics.parquet")
    assert table.num_rows == 2 * 48 * 2
    assert_same_results(whole, cut, ["faults.crashes"], exact=False)


# -- 2. reordered grid keys -----------------------------------------------------------


def test_resume_after_swapping_grid_lines_keeps_every_result_with_its_values(tmp_path, spec_text):
    grid = '"faults.crashes" = [0, 2]\n"system.quorum" = ["weighted", "count"]'
    swapped = '"system.quorum" = ["weighted", "count"]\n"faults.crashes" = [0, 2]'
    first, second, whole_spec = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "w.toml"
    first.write_text(spec_text(grid))
    second.write_text(spec_text(swapped))
    whole_spec.write_text(spec_text(grid))
    import tomllib

    out, whole = tmp_path / "out", tmp_path / "whole"
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(Sweep(tomllib.loads(first.read_text()), first), out, fail_after=5)  # points 0 and 1 (partly)
    assert main(["sweep", str(second), "--out", str(out), "--resume"]) == 0
    assert main(["sweep", str(whole_spec), "--out", str(whole)]) == 0
    keys = ["faults.crashes", "system.quorum"]
    assert_same_results(whole, out, keys)
    summary = {(r["faults.crashes"], r["system.quorum"]): r for r in pq.read_table(out / "summary.parquet").to_pylist()}
    reference = {(r["faults.crashes"], r["system.quorum"]): r for r in pq.read_table(whole / "summary.parquet").to_pylist()}
    for values, row in summary.items():
        for name, value in row.items():
            if name not in ("point",):
                assert value == reference[values][name] or (value != value and reference[values][name] != reference[values][name]), (values, name)
    manifest = json.loads((out / "manifest.json").read_text())
    table = pq.read_table(out / "metrics.parquet")
    for entry in manifest["points"]:  # the index of each point agrees with its values everywhere
        rows = table.filter(table.column("point").to_numpy() == entry["index"]).to_pylist()
        assert {(r["faults.crashes"], r["system.quorum"]) for r in rows} == {tuple(entry["values"][k] for k in keys)}


def test_replay_names_a_point_by_its_values(tmp_path, capsys, spec_text):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]\n"system.quorum" = ["weighted", "count"]', scenarios=8))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0
    args = ["replay", str(tmp_path / "out"), "--scenario", "3", "--trace-iterations", "2"]
    assert main([*args, "--point", "system.quorum=\"count\",faults.crashes=2", "--out", str(tmp_path / "t")]) == 0
    replayed = json.loads((tmp_path / "t" / "replay.json").read_text())
    assert replayed["point"] == 3
    assert "equal" in capsys.readouterr().out
    assert main([*args, "--point", "faults.crashes=2", "--out", str(tmp_path / "t2")]) == 2
    assert "2 points have faults.crashes=2" in capsys.readouterr().err
    assert main([*args, "--point", "faults.crashes=5", "--out", str(tmp_path / "t3")]) == 2
    assert "no point has faults.crashes=5" in capsys.readouterr().err


# -- 3. two runs into one folder ------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys, spec_text, small_toml):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=16))
    run_config = tmp_path / "r.toml"
    run_config.write_text(small_toml(scenarios=16, chunk=8))
    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".ftsgd.lock", "a+") as handle:  # the lock a running sweep holds
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write("ftsgd sweep s (pid 4242 on elsewhere, since 2025-01-01 00:00:00)\n")
        handle.flush()
        for command in (["sweep", str(spec)], ["sweep", str(spec), "--force"], ["run", str(run_config), "--force"]):
            assert main([*command, "--out", str(out)]) == 2
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and "is in use by ftsgd sweep s (pid 4242 on elsewhere" in lines[0], lines
    assert not (out / "spec.json").exists() and not (out / "metrics.parquet").exists()
    assert main(["sweep", str(spec), "--out", str(out)]) == 0  # free again


# -- 4. an interrupted --force leaves no stale results ---------------------------------


def test_an_interrupted_forced_rerun_leaves_no_results_of_the_old_spec(tmp_path, capsys, spec_text):
    import tomllib

    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=16))
    new.write_text(spec_text('"faults.crashes" = [1, 3]', scenarios=16))
    out = tmp_path / "out"
    assert main(["sweep", str(old), "--out", str(out)]) == 0
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(Sweep(tomllib.loads(new.read_text()), new), out, force=True, fail_after=1)
    for name in ("manifest.json", "metrics.parquet", "summary.parquet"):
        assert not (out / name).exists(), name
    capsys.readouterr()
    assert main(["replay", str(out), "--scenario", "0", "--out", str(tmp_path / "t")]) == 2
    assert "no results" in capsys.readouterr().err
    assert main(["sweep", str(new), "--out", str(out), "--resume"]) == 0
    values = {p["values"]["faults.crashes"] for p in json.loads((out / "manifest.json").read_text())["points"]}
    assert values == {1, 3}
    assert set(pq.read_table(out / "metrics.parquet").column("faults.crashes").to_pylist()) == {1, 3}


# -- 5. `run --out` onto a sweep folder --------------------------------------------------


def test_run_into_a_sweep_folder_is_refused_unless_forced(tmp_path, capsys, spec_text, small_toml):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=8))
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out)]) == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".ftsgd.lock"}
    capsys.readouterr()
    run_config = tmp_path / "r.toml"
    run_config.write_text(small_toml(scenarios=8, chunk=0))
    assert main(["run", str(run_config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a sweep's results" in err[0] and "--force" in err[0]
    assert {p: p.stat().st_mtime_ns for p in before} == before  # untouched
    assert main(["run", str(tmp_path / "r.toml"), "--out", str(out), "--force"]) == 0
    assert json.loads((out / "manifest.json").read_text())["command"] == "run"
    assert not (out / "points").exists() and not (out / "summary.parquet").exists() and not (out / "spec.json").exists()
    assert main(["sweep", str(spec), "--out", str(out)]) == 2  # and the other way round
    assert "holds the results of `ftsgd run`" in capsys.readouterr().err


# -- 6. mixed-type swept values ---------------------------------------------------------


@pytest.mark.parametrize(
    ("grid", "extra"),
    [
        ('"algorithm.rounds" = [3, "auto"]', '[algorithm]\nkind = "gen"\n'),
        ('"objective.x0" = [0, [1.0, 2.0]]', ""),
        ('"faults.crashes" = [0, 1]\n"schedule.delay_mean" = [1, 2.5]', ""),
    ],
)
def test_mixed_type_values_are_stored_in_one_column_type(tmp_path, grid, extra, spec_text):
    import tomllib

    spec = tmp_path / "s.toml"
    spec.write_text(spec_text(grid, scenarios=16, extra=extra))
    sweep = Sweep(tomllib.loads(spec.read_text()), spec)
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, tmp_path / "out", fail_after=2)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--resume"]) == 0
    assert main(["sweep", str(spec), "--out", str(tmp_path / "whole")]) == 0
    assert_same_results(tmp_path / "whole", tmp_path / "out", sweep.swept)
    summary = pq.read_table(tmp_path / "out" / "summary.parquet")
    assert summary.num_rows == len(sweep.points)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert [p["values"] for p in manifest["points"]] == sweep.points  # the typed values


def test_the_readme_sweep_example_runs(tmp_path, small_toml):
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", readme, re.S)
    examples = [b for b in blocks if "[sweep]" in b]
    assert examples
    for number, block in enumerate(examples):
        spec = tmp_path / f"readme{number}.toml"
        spec.write_text(block + small_toml(scenarios=4, chunk=0))
        assert main(["sweep", str(spec), "--out", str(tmp_path / f"out{number}")]) == 0


# -- 7. Ctrl-C --------------------------------------------------------------------------


def test_a_running_sweep_refuses_a_second_writer_and_stops_cleanly_on_ctrl_c(tmp_path, capsys, spec_text):
    """Items 3 and 7 on one live sweep: a forced second sweep into its folder is refused
    naming the holder; Ctrl-C then stops it after the chunk with status 130 (never a
    segfault) and the exact resume command, which completes the uninterrupted results."""
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=48, chunk=1))
    other = tmp_path / "o.toml"
    other.write_text(spec_text('"faults.crashes" = [1]', scenarios=16))
    out = tmp_path / "out"
    process = _sweep_process(spec, out, 1)
    _wait_for_chunks(out, 2, process)
    assert main(["sweep", str(other), "--out", str(out), "--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is in use by ftsgd sweep s (pid {process.pid}" in err[0]
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "Segmentation" not in stderr and "Fatal" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert re.fullmatch(r"ftsgd: interrupted: \d+ of 96 scenarios of sweep s are kept in .*; resume with: ftsgd sweep .* --resume", last)
    kept = int(last.split()[2])
    assert kept == sum(1 for _ in chunk_files(out)) >= 2 and not (out / "manifest.json").exists()
    assert main(last.split("resume with: ")[1].split()[1:]) == 0
    assert main(["sweep", str(spec), "--out", str(tmp_path / "whole")]) == 0
    assert_same_results(tmp_path / "whole", out, ["faults.crashes"])


def test_ctrl_c_during_run_says_nothing_was_written(tmp_path, small_toml):
    config = tmp_path / "r.toml"
    config.write_text(small_toml(scenarios=2000, chunk=1))
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "ftsgd_jax.cli", "run", str(config), "--out", str(out)],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    first = process.stderr.readline()  # the first progress line: a chunk is done
    assert first.startswith("run: "), first + process.communicate()[1]
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=120)
    stderr = first + rest
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1].startswith("ftsgd: interrupted: nothing was written to")
    assert not (out / "metrics.parquet").exists() and not (out / "manifest.json").exists()


# -- 8. temporaries left by a kill ------------------------------------------------------


def test_temporaries_of_a_killed_writer_are_removed(tmp_path, spec_text):
    import tomllib

    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=16))
    sweep = Sweep(tomllib.loads(spec.read_text()), spec)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="interruption"):
        run_sweep(sweep, out, fail_after=1)
    leftovers = [out / "tmpab12cd.tmp", next((out / "points").iterdir()) / "tmpzz99.tmp"]
    for path in leftovers:
        path.write_bytes(b"half a chunk")
    run_sweep(sweep, out, resume=True)
    assert not list(out.rglob("*.tmp"))


# -- 12, 13. strict JSON, file modes ------------------------------------------------------


def test_manifests_are_strict_json_and_files_honour_the_umask(tmp_path, spec_text):
    spec = tmp_path / "s.toml"
    spec.write_text(spec_text('"faults.crashes" = [0, 2]', scenarios=8))
    previous = os.umask(0o022)
    try:
        assert main(["sweep", str(spec), "--out", str(tmp_path / "out")]) == 0
    finally:
        os.umask(previous)

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    text = (tmp_path / "out" / "manifest.json").read_text()
    manifest = json.loads(text, parse_constant=refuse)
    assert manifest["points"][0]["config"]["schedule"]["until"] == "inf"
    for path in (tmp_path / "out").rglob("*"):
        if path.is_file() and path.name != ".ftsgd.lock":
            assert path.stat().st_mode & 0o777 == 0o644, path
    # and the strings come back as floats where configs are read
    assert results.restore_floats(manifest["points"][0]["config"])["schedule"]["until"] == float("inf")


# -- 15. chunk size and reproducibility -------------------------------------------------


def _small_config(small_toml, chunk: int):
    import tomllib

    from ftsgd_jax.config import build_config

    return build_config(tomllib.loads(small_toml(scenarios=24, chunk=chunk, crashes=2)))


def test_chunk_size_changes_results_only_within_the_stated_tolerance(small_toml):
    """README, Reproducibility: another chunk size may change the last float32 bits, never more
    than rtol 1e-5 + atol 1e-6; integer and boolean metrics and NaN positions are equal."""
    from ftsgd_jax import engine

    reference = engine.run(_small_config(small_toml, 24))
    for chunk in (1, 7, 8):
        other = engine.run(_small_config(small_toml, chunk))
        for name, values in reference.metrics.items():
            if values.dtype.kind == "f":
                np.testing.assert_array_equal(np.isnan(values), np.isnan(other.metrics[name]), err_msg=name)
                np.testing.assert_allclose(other.metrics[name], values, rtol=CHUNK_RTOL, atol=CHUNK_ATOL, err_msg=f"{chunk} {name}")
            else:
                np.testing.assert_array_equal(other.metrics[name], values, err_msg=f"{chunk} {name}")


def test_a_scenario_does_not_depend_on_its_neighbours_in_the_batch(small_toml):
    """Same chunk size: scenarios 4..7 are bit-identical whether batched with 0..3 or 8..11."""
    from ftsgd_jax import engine

    config = _small_config(small_toml, 8)
    first = engine.run(config, indices=np.arange(0, 8))
    second = engine.run(config, indices=np.arange(4, 12))
    again = engine.run(config, indices=np.arange(0, 8))
    for name, values in first.metrics.items():
        np.testing.assert_array_equal(values[4:8], second.metrics[name][0:4], err_msg=name)
        np.testing.assert_array_equal(values, again.metrics[name], err_msg=name)
