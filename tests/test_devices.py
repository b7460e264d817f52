"""Sharding the scenario axis over several devices gives the single-device results.

Run in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=4, since the
device count of a JAX process is fixed when JAX starts.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ftsgd_jax import devices
from ftsgd_jax.config import build_config
from ftsgd_jax.devices import select_devices
from ftsgd_jax.errors import ConfigError

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    from ftsgd_jax import devices, engine
    from ftsgd_jax.config import build_config
    cfg = build_config({
        "system": {"clusters": [2, 1, 2]}, "faults": {"pattern": "random", "crashes": 2},
        "algorithm": {"kind": sys.argv[1], "rounds": 2}, "objective": {"kind": "quadratic", "dim": 3},
        "run": {"iterations": 12, "scenarios": 30, "record_every": 4, "chunk": int(sys.argv[2])},
    })
    result = engine.run(cfg)
    sim = engine.simulation(cfg)
    inputs = engine.scenario_inputs(cfg, np.arange(int(sys.argv[2])))
    sharded = jax.device_put(inputs, devices.scenario_sharding(devices.select_devices()))
    placement = len(sim.compiled(sharded)(sharded).records.err_mean.sharding.device_set)
    # a block planned on one CPU device (a resumed sweep's plan) does not split sharded work
    unblocked = sim.compiled(sharded, 2) is sim.compiled(sharded)
    print(json.dumps({"devices": len(jax.devices()), "placement": placement, "unblocked": unblocked,
                      "metrics": {k: np.nan_to_num(v, nan=-1.0).tolist() for k, v in result.metrics.items()}}))
    """
)


def run_with_devices(count: int, algorithm: str, chunk: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={count}", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, algorithm, str(chunk)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("algorithm", ["sc", "gen"])
def test_four_devices_give_the_single_device_results(algorithm):
    single = run_with_devices(1, algorithm, 8)
    sharded = run_with_devices(4, algorithm, 8)
    assert single["devices"] == 1 and sharded["devices"] == 4 and sharded["placement"] == 4 and sharded["unblocked"]
    for name, values in single["metrics"].items():
        np.testing.assert_allclose(sharded["metrics"][name], values, rtol=1e-5, atol=1e-7, err_msg=name)


def test_asking_for_an_absent_device_kind_names_the_present_ones():
    with pytest.raises(ConfigError, match=r"run.device: no tpu device here; present: cpu"):
        select_devices("tpu")
    with pytest.raises(ConfigError, match="run.device"):
        build_config({"run": {"device": "quantum"}})


def test_a_scenario_bigger_than_half_the_free_memory_is_refused_with_the_estimate(monkeypatch):

    config = build_config({"system": {"clusters": [10000]}, "run": {"scenarios": 2, "iterations": 10, "record_every": 10}})
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 2**30)
    with pytest.raises(ConfigError, match=r"system.clusters: one scenario .* needs about 11.2 GiB but 4 GiB are free"):
        devices.chunk_size(config)
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 64 * 2**30)
    assert devices.chunk_size(config) == 1  # fits: a chunk of one, said by the estimate


def test_auto_chunks_follow_the_free_memory_and_stay_a_multiple_of_the_device_count(monkeypatch):

    config = build_config({"run": {"scenarios": 1000}})
    per = devices.bytes_per_scenario(config)
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 37 * per)
    assert devices.chunk_size(config) == 37 and devices.fitting_chunk(config) == 37
    cpus = [types.SimpleNamespace(platform="cpu")] * 4
    monkeypatch.setattr(devices, "select_devices", lambda kind="auto", field="run.device": cpus)
    assert devices.chunk_size(config) == 40


def test_the_chunk_plan_is_kept_while_it_fits(tmp_path, monkeypatch):
    from ftsgd_jax.sweep import chunk_plan

    config = build_config({"run": {"scenarios": 1000}})
    per = devices.bytes_per_scenario(config)
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 50 * per)
    assert chunk_plan(config, tmp_path).chunk == 50
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 80 * per)
    assert chunk_plan(config, tmp_path).chunk == 50  # the first run's plan
    monkeypatch.setattr(devices, "available_memory_bytes", lambda *_: 4 * 20 * per)
    assert chunk_plan(config, tmp_path).chunk == 20  # no longer fits: smaller, and stored
    assert json.loads((tmp_path / "plan.json").read_text()) == {"chunk": 20, "block": 20}


def test_chunks_are_sized_by_their_device_memory_and_results_by_the_host(monkeypatch):
    from ftsgd_jax import api

    gpu = types.SimpleNamespace(platform="gpu", memory_stats=lambda: {"bytes_limit": 80 * 2**30, "bytes_in_use": 2**30})
    cpu = types.SimpleNamespace(platform="cpu", memory_stats=lambda: None)
    monkeypatch.setattr(devices, "host_memory_bytes", lambda: 2**30)
    assert devices.available_memory_bytes(gpu) == 79 * 2**30
    assert devices.available_memory_bytes(cpu) == 2**30
    # a run on the GPU whose results fit the GPU's memory but not the host's is refused
    big = build_config({"run": {"scenarios": 10_000_000, "iterations": 40, "record_every": 10}})
    monkeypatch.setattr(devices, "select_devices", lambda kind="auto", field="run.device": [gpu])
    assert devices.chunk_size(big) > devices.DEFAULT_CHUNK
    with pytest.raises(ConfigError, match="run.scenarios: 10000000 scenarios x 4 records need about"):
        api._check_result_memory(big)


def test_a_gpu_chunk_fills_half_the_free_device_memory_and_a_cpu_chunk_stays_capped():

    config = build_config({"system": {"clusters": [4, 4, 4, 4]}, "objective": {"dim": 10}, "run": {"scenarios": 1_048_576}})
    per = devices.bytes_per_scenario(config)
    free = 60 * 2**30  # an 80 GB card's XLA pool, nothing in use
    gpu = devices.automatic_chunk(config.run.scenarios, per, free, "gpu")
    assert gpu == free // 2 // per and gpu > 100_000
    assert devices.automatic_chunk(config.run.scenarios, per, free, "tpu") == gpu
    assert devices.automatic_chunk(config.run.scenarios, per, free, "cpu") == devices.DEFAULT_CHUNK
    assert devices.automatic_chunk(1000, per, free, "gpu") == 1000  # never more than the run's scenarios
    assert devices.automatic_chunk(config.run.scenarios, per, 3 * per, "gpu") == 1  # at least one
    assert devices.fitting_scenarios(free, per, "gpu") == 2 * devices.fitting_scenarios(free, per, "cpu")


@pytest.mark.parametrize(
    "setting, message",
    [
        ("run.chunk=1048576", r"^ftsgd: error: run\.chunk: 1048576 scenarios need about [\d.]+ GiB but [\d.]+ GiB are free; use at most \d+$"),
        ("run.device=gpu", r"^ftsgd: error: run\.device: no gpu device here; present: cpu \(.*\)$"),
    ],
)
def test_a_chunk_or_device_that_cannot_hold_the_run_is_one_line_and_status_2(tmp_path, capsys, monkeypatch, setting, message):
    from ftsgd_jax import engine
    from ftsgd_jax.cli import main

    monkeypatch.setattr(engine, "run", lambda *args, **kwargs: pytest.fail("the run started before its chunk was checked"))
    path = tmp_path / "run.toml"
    path.write_text("[system]\nclusters = [64, 64]\n[run]\nscenarios = 4\niterations = 10\n")  # about 2 MB a scenario
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--set", setting]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and re.match(message, error[0]), error


@settings(max_examples=200, deadline=None)
@given(size=st.integers(1, 300_000), n=st.integers(1, 128), d=st.integers(1, 1000))
def test_cpu_blocks_are_balanced_and_cover_the_chunk(size, n, d):
    block = devices.cpu_block(size, n, d)
    blocks = -(-size // block)
    target = max(devices.CPU_BLOCK_BYTES // devices.round_bytes(n, d), devices.MIN_CPU_BLOCK)
    assert 1 <= block <= size
    assert blocks == -(-size // target)  # as few blocks as the target size allows
    assert blocks * block - size < blocks  # fewer than one padded scenario per block
    assert block <= max(target, 1) or blocks == 1
