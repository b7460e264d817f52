"""A sweep split over processes with jax.distributed equals the sweep run by one process.

Two local CPU processes join a coordinator on a free localhost port and share one results
folder. Every subprocess has a timeout, so a coordinator that never answers fails the
test instead of hanging it.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest

from ftsgd_jax import api
from ftsgd_jax.cli import main

JOINED_SECONDS = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def sweep_in_processes(specs: list, out, timeout: float = JOINED_SECONDS) -> list[subprocess.CompletedProcess]:
    """``ftsgd sweep`` once per spec, process i running specs[i], all joined at one coordinator."""
    address = f"localhost:{free_port()}"
    env = {key: value for key, value in os.environ.items() if key != "XLA_FLAGS"} | {"JAX_PLATFORMS": "cpu"}
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "ftsgd_jax.cli", "sweep", str(spec), "--out", str(out),
             "--coordinator", address, "--num-processes", str(len(specs)), "--process-id", str(index)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for index, spec in enumerate(specs)
    ]
    finished = []
    try:
        for process in running:
            stdout, stderr = process.communicate(timeout=timeout)
            finished.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    except subprocess.TimeoutExpired:
        for process in running:
            process.kill()
        pytest.fail(f"the processes did not finish within {timeout} s: a coordinator that hangs")
    return finished


def test_two_processes_give_the_results_of_one_bit_for_bit(tmp_path, small_toml):
    spec = tmp_path / "spec.toml"
    spec.write_text(small_toml(scenarios=12, chunk=4, grid='"faults.crashes" = [0, 1, 2]'))
    api.run_sweep(spec, tmp_path / "single")
    for process in sweep_in_processes([spec, spec], tmp_path / "shared"):
        assert process.returncode == 0, process.stderr
    for name in ("metrics.parquet", "summary.parquet"):
        shared, alone = pq.read_table(tmp_path / "shared" / name), pq.read_table(tmp_path / "single" / name)
        assert shared.schema.equals(alone.schema) and shared.num_rows == alone.num_rows > 0
        for column in alone.column_names:
            left, right = shared.column(column).to_numpy(zero_copy_only=False), alone.column(column).to_numpy(zero_copy_only=False)
            if left.dtype.kind == "f":
                np.testing.assert_array_equal(left, right, err_msg=f"{name}: {column}")  # NaN equals NaN here
            else:
                assert left.tolist() == right.tolist(), f"{name}: {column}"
    manifest = json.loads((tmp_path / "shared" / "manifest.json").read_text())
    assert {timing["process"] for timing in manifest["timings"]} == {0, 1}  # both did work


def test_processes_running_different_specs_all_stop_naming_why(tmp_path, small_toml):
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(small_toml(grid='"faults.crashes" = [0, 1]'))
    second.write_text(small_toml(grid='"faults.crashes" = [0, 2]'))
    for process in sweep_in_processes([first, second], tmp_path / "shared"):
        lines = process.stderr.strip().splitlines()
        assert process.returncode == 2 and "Traceback" not in process.stderr
        assert "does not hold this spec's sweep here: every process needs the same spec" in lines[-1]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--num-processes", "2"], "--num-processes: give --coordinator HOST:PORT, --num-processes P and --process-id I together"),
        (["--coordinator", "nowhere", "--num-processes", "2", "--process-id", "0"], "--coordinator: need HOST:PORT"),
        (["--coordinator", "localhost:1", "--num-processes", "2", "--process-id", "2"], "--process-id: need an integer in [0, 1], got 2"),
    ],
)
def test_bad_process_flags_are_one_line(tmp_path, capsys, small_toml, flags, message):
    spec = tmp_path / "spec.toml"
    spec.write_text(small_toml(grid='"faults.crashes" = [0, 1]'))
    assert main(["sweep", str(spec), "--out", str(tmp_path / "out"), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error


class Coordinator:
    """The coordination client's key-value store, in memory: what check_others reads."""

    def __init__(self, entries: dict[str, str]):
        self.entries = entries

    def key_value_dir_get(self, prefix: str) -> list[tuple[str, str]]:
        return [(key, value) for key, value in self.entries.items() if key.startswith(prefix)]


def test_a_process_stops_between_chunks_when_another_has_failed():
    from ftsgd_jax.errors import ConfigError
    from ftsgd_jax.processes import Group, check_others

    ok, failed = json.dumps({"ok": True, "value": []}), json.dumps({"ok": False, "error": "run.chunk: 4 scenarios need more"})
    # step 3 (s/run) is under way; step 2 was another
    check_others(Group(0, 3, Coordinator({"ftsgd/3-s/run/2": ok, "ftsgd/2-s/plan/1": failed}), steps=3), "s/run")
    check_others(Group(1, 3, Coordinator({"ftsgd/3-s/run/1": failed}), steps=3), "s/run")  # its own is raised where it happened
    with pytest.raises(ConfigError, match=r"^process 1: run.chunk: 4 scenarios need more$"):
        check_others(Group(0, 3, Coordinator({"ftsgd/3-s/run/2": ok, "ftsgd/3-s/run/1": failed}), steps=3), "s/run")
