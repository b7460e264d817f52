"""Sharding the scenario axis over several devices gives the single-device results.

Run in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=4, since the
device count of a JAX process is fixed when JAX starts.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

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
    inputs = sim.inputs(cfg, np.arange(int(sys.argv[2])))
    sharded = jax.device_put(inputs, devices.scenario_sharding(devices.select_devices()))
    placement = len(sim.compiled(sharded)(sharded).records.err_mean.sharding.device_set)
    print(json.dumps({"devices": len(jax.devices()), "placement": placement,
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
    assert single["devices"] == 1 and sharded["devices"] == 4 and sharded["placement"] == 4
    for name, values in single["metrics"].items():
        np.testing.assert_allclose(sharded["metrics"][name], values, rtol=1e-5, atol=1e-7, err_msg=name)


def test_asking_for_an_absent_device_kind_names_the_present_ones():
    with pytest.raises(ConfigError, match=r"run.device: no tpu device here; present: cpu"):
        select_devices("tpu")
    with pytest.raises(ConfigError, match="run.device"):
        build_config({"run": {"device": "quantum"}})
