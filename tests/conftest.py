"""Shared test settings: hypothesis profiles sized for a 2-core CI machine.

``make test`` is reproducible: the default profile derandomizes hypothesis, so a clean clone
draws the same examples on every machine and a red run can be rerun as is. Searching for new
counterexamples is a separate, deliberate act: ``HYPOTHESIS_PROFILE=explore make test``
draws fresh random examples (and more of them); anything it finds becomes a fixed test.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.register_profile(
    "explore", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=False
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# -- shared fixtures -------------------------------------------------------------------------

import pytest  # noqa: E402


def small_run(
    *,
    scenarios: int = 16,
    iterations: int = 10,
    chunk: int = 0,
    crashes: int | None = None,
    dim: int = 2,
    grid: str | None = None,
    name: str = "s",
    extra: str = "",
) -> str:
    """The TOML text of the small configuration most tests run: 5 processes in clusters of
    2, 1 and 2, the random crash pattern, a quadratic in ``dim`` dimensions, a record every
    5 iterations. With ``grid`` (the lines of ``[sweep.grid]``) it is a sweep spec named
    ``name``; ``extra`` adds tables (e.g. ``[algorithm]``)."""
    sweep = f'[sweep]\nname = "{name}"\n[sweep.grid]\n{grid}\n' if grid is not None else ""
    faults = f"crashes = {crashes}\n" if crashes is not None else ""
    return (
        f"{sweep}{extra}"
        "[system]\nclusters = [2, 1, 2]\n"
        f'[faults]\npattern = "random"\n{faults}'
        f'[objective]\nkind = "quadratic"\ndim = {dim}\n'
        f"[run]\niterations = {iterations}\nscenarios = {scenarios}\nrecord_every = 5\nchunk = {chunk}\n"
    )


@pytest.fixture
def small_toml():
    """``small_run``: the TOML text of the small configuration, sized by keyword."""
    return small_run


@pytest.fixture
def small_config(tmp_path):
    """A small run config file: 16 scenarios of 20 iterations, one random crash, a 3-d quadratic."""
    path = tmp_path / "small.toml"
    path.write_text(small_run(iterations=20, crashes=1, dim=3))
    return path


@pytest.fixture
def compiles_once(monkeypatch):
    """Simulators built afresh for this test, whose scenario program fails the test when it
    is traced more than once in all (``chex.assert_max_traces``): what every configuration
    the test runs shares is compiled once."""
    import chex

    from ftsgd_jax import engine

    chex.clear_trace_counter()
    monkeypatch.setattr(engine, "_SIMULATIONS", {})
    monkeypatch.setattr(engine.Simulation, "simulate_one", chex.assert_max_traces(engine.Simulation.simulate_one, n=1))
    yield
    chex.clear_trace_counter()
