"""Drawing whole sweeps: every figure a sweep's manifest names, or every sweep of a suite."""

from __future__ import annotations

from pathlib import Path

from ftsgd_jax.errors import ConfigError, closest
from ftsgd_jax.figures.data import SweepData
from ftsgd_jax.figures.style import FIGURES, save


def draw_sweep(sweep: SweepData, out_dir: str | Path) -> list[Path]:
    unknown = [name for name in sweep.figures if name not in FIGURES]
    if unknown:
        raise ConfigError(
            "figures",
            f"unknown figure {unknown[0]!r} in {sweep.directory / 'manifest.json'}, allowed: "
            f"{', '.join(map(repr, FIGURES))}{closest(unknown[0], FIGURES)}",
        )
    paths = []
    for name in sweep.figures:
        fig = FIGURES[name](sweep)
        paths += save(fig, Path(out_dir) / f"{sweep.name}_{name}")
    return paths


def draw_all(sweep_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Draw every figure the sweep's manifest names into ``out_dir``; return the PNG and PDF paths."""
    return draw_sweep(SweepData.load(sweep_dir), out_dir)


def draw_suite(directory: str | Path, out_dir: str | Path) -> list[Path]:
    """Draw one sweep folder, or every sweep folder (with a manifest) directly inside ``directory``.

    Drawing nothing is an error that says why: a run's folder, or sweeps whose specs name no figures.
    """
    directory = Path(directory)
    if (directory / "manifest.json").is_file():
        sweeps = [directory]
    else:
        sweeps = sorted(p for p in directory.iterdir() if (p / "manifest.json").is_file()) if directory.is_dir() else []
    if not sweeps:
        raise ConfigError("figures", f"no sweep results in {directory}")
    loaded = [SweepData.load(sweep_dir) for sweep_dir in sweeps]
    runs = [data for data in loaded if data.manifest.get("command") == "run"]
    if len(runs) == len(loaded):
        raise ConfigError("figures", f"{directory} holds the results of `ftsgd run`; figures are drawn from sweeps (`ftsgd sweep`)")
    if not any(data.figures for data in loaded):
        raise ConfigError(
            "figures",
            f"nothing to draw: the sweep spec of {directory} names no figures; add figures = [...] under [sweep] "
            f"(allowed: {', '.join(FIGURES)}) and rerun the sweep with --resume",
        )
    paths = []
    for data in loaded:
        paths += draw_sweep(data, out_dir)
    return paths
