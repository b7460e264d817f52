"""Figures from synthetic sweep folders: files written, series, theory lines, axis scales, errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ftsgd_jax import figures, theory
from ftsgd_jax.config import build_config
from ftsgd_jax.errors import ConfigError

FLOATS = (
    "err_mean", "err_max", "loss_mean", "grad_sq_mean", "disagreement",
    "view_min", "view_mean", "contraction_max", "contraction_mean",
)
INTS = ("rounds", "crashed", "blocked")
FLOAT_DEFAULTS = {"loss_mean": 1.0}  # every objective has a loss, and a NaN loss of live processes reads as divergence
SCENARIOS = 16
T = np.arange(10, 101, 10)

BASE = {
    "system": {"clusters": [2, 2], "quorum": "weighted"},
    "faults": {"pattern": "none", "crashes": 0, "window": [0.0, 1.0]},
    "schedule": {"kind": "random"},
    "objective": {"kind": "quadratic", "dim": 2, "mu": 1.0, "L": 1.0, "sigma": 1.0},
    "algorithm": {
        "kind": "sc", "rule": "mean", "rounds": 3, "step": "inverse", "step_scale": 1.0,
        "step_offset": 1.0, "lr": 0.05, "eps0": 1.0, "eps_power": 1.0,
    },
    "run": {"iterations": int(T[-1]), "scenarios": SCENARIOS, "record_every": 10, "seed": 0},
}


def config(**sections) -> dict:
    """BASE with ``section={key: value}`` overrides; an objective of another kind replaces BASE's."""
    out = copy.deepcopy(BASE)
    for section, values in sections.items():
        if section == "objective" and values.get("kind", "quadratic") != "quadratic":
            out[section] = {}
        out[section].update(values)
    return out


def n_of(cfg: dict) -> int:
    return sum(cfg["system"]["clusters"])


def noise(seed: int, shape=(SCENARIOS, T.size), spread=0.3) -> np.ndarray:
    return np.exp(np.random.default_rng(seed).normal(0.0, spread, shape))


def write_sweep(
    directory: Path,
    name: str,
    figure_names: list[str],
    swept: list[str],
    configs: list[dict],
    metrics: list[dict[str, np.ndarray]],
    drop: tuple[str, ...] = (),
) -> Path:
    """A sweep folder in the format of ``ftsgd sweep``; metrics[i][col] has shape (SCENARIOS, len(T))."""
    directory.mkdir(parents=True, exist_ok=True)
    points = []
    columns: dict[str, list] = {c: [] for c in ("point", "scenario", "t", *FLOATS, *INTS, "majority", *swept)}
    for index, (cfg, values) in enumerate(zip(configs, metrics, strict=True)):
        swept_values = {key: cfg[key.split(".")[0]][key.split(".")[1]] for key in swept}
        points.append({"index": index, "values": swept_values, "config": cfg, "theory": theory.record(build_config(cfg))})
        rows = SCENARIOS * T.size
        columns["point"].append(np.full(rows, index))
        columns["scenario"].append(np.repeat(np.arange(SCENARIOS), T.size))
        columns["t"].append(np.tile(T, SCENARIOS))
        for c in FLOATS:
            columns[c].append(np.asarray(values.get(c, np.full((SCENARIOS, T.size), FLOAT_DEFAULTS.get(c, np.nan))), np.float32).ravel())
        for c in INTS:
            columns[c].append(np.asarray(values.get(c, np.zeros((SCENARIOS, T.size))), np.int32).ravel())
        columns["majority"].append(np.asarray(values.get("majority", np.ones((SCENARIOS, T.size))), bool).ravel())
        for key, value in swept_values.items():
            text = json.dumps(value) if isinstance(value, list) else value
            columns[key].append(np.array([text] * rows))
    table = pa.table({c: np.concatenate(parts) for c, parts in columns.items() if c not in drop})
    pq.write_table(table, directory / "metrics.parquet")
    manifest = {"spec": {}, "name": name, "figures": figure_names, "swept": swept, "points": points}
    write_manifest(directory, manifest)
    return directory


def write_manifest(directory: Path, manifest: dict) -> None:
    (directory / "manifest.json").write_text(json.dumps(manifest))


def read_manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


def assert_files(paths: list[Path], names: list[str]) -> None:
    assert sorted(p.name for p in paths) == sorted(f"{n}.{ext}" for n in names for ext in ("png", "pdf"))
    for path in paths:
        assert path.stat().st_size > 1000
        head = path.read_bytes()[:8]
        assert head.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF")


def measured(ax) -> list:
    return [line for line in ax.get_lines() if line.get_gid() is None and not line.get_label().startswith("_")]


def theory_lines(ax) -> list:
    return [line for line in ax.get_lines() if line.get_gid() == figures.THEORY]


def legend_title(fig) -> str:
    return fig.legends[0].get_title().get_text()


# --- sweeps -------------------------------------------------------------------------------


def error_sweep(directory: Path) -> Path:
    configs = [
        config(schedule={"kind": "sync"}),
        config(schedule={"kind": "random"}, faults={"pattern": "random", "crashes": 1}),
        config(algorithm={"kind": "seq"}, schedule={"kind": "self_only"}, system={"clusters": [1, 1, 1, 1]}),
    ]
    ks = [4, 2, 1]
    metrics = [
        {"err_mean": noise(i) / (k * T), "view_min": np.full((SCENARIOS, T.size), k)} for i, k in enumerate(ks)
    ]
    swept = ["schedule.kind", "algorithm.kind"]
    return write_sweep(directory, "err", ["error_vs_iteration"], swept, configs, metrics)


def test_error_vs_iteration(tmp_path):
    sweep_dir = error_sweep(tmp_path / "sweep")
    paths = figures.draw_all(sweep_dir, tmp_path / "out")
    assert_files(paths, ["err_error_vs_iteration"])
    fig = figures.error_vs_iteration.draw(figures.load_sweep(sweep_dir))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert [line.get_label() for line in measured(ax)] == [
        "sc · sync · no crashes",
        "sc · random · 1 crash (random)",
        "seq · self_only · no crashes",
    ]
    lines = theory_lines(ax)
    assert len(lines) == 3 and all(line.get_linestyle() == "--" for line in lines)
    t, y = lines[0].get_data()
    np.testing.assert_allclose(y, 1.0 / (4 * t))  # sync: k = n = 4
    t, y = lines[1].get_data()
    np.testing.assert_allclose(y, 1.0 / (2 * t))  # k = median view_min
    median_line = measured(ax)[0].get_ydata()
    assert np.all(np.abs(np.log(median_line * 4 * T)) < 0.5)
    assert "t" in ax.get_xlabel() and "x*" in ax.get_ylabel()
    assert fig.get_size_inches()[0] == pytest.approx(figures.SINGLE_COLUMN)
    assert fig.legends and "theory" in " ".join(t.get_text() for t in fig.legends[0].get_texts())


def test_error_vs_iteration_splits_many_points_into_panels(tmp_path):
    configs, metrics = [], []
    for schedule in ("sync", "random", "self_only"):
        for m in (1, 2, 4, 8):
            configs.append(config(system={"clusters": [1] * m}, schedule={"kind": schedule}))
            metrics.append({"err_mean": noise(m) / (m * T), "view_min": np.full((SCENARIOS, T.size), m)})
    swept = ["schedule.kind", "system.clusters"]
    sweep_dir = write_sweep(tmp_path / "s", "acc", ["error_vs_iteration"], swept, configs, metrics)
    fig = figures.error_vs_iteration.draw(figures.load_sweep(sweep_dir))
    assert [ax.get_title() for ax in fig.axes] == [f"schedule.kind = {s}" for s in ("sync", "random", "self_only")]
    assert fig.get_size_inches()[0] == pytest.approx(figures.DOUBLE_COLUMN)
    for ax in fig.axes:
        assert [line.get_label() for line in measured(ax)] == [f"n={m} ({m}×1)" for m in (1, 2, 4, 8)]
        assert len(theory_lines(ax)) == 4
    # the same series has the same colour in every panel
    colours = {tuple(measured(ax)[2].get_color()) for ax in fig.axes}
    assert len(colours) == 1
    assert legend_title(fig) == "sc · no crashes"


def test_loss_vs_iteration(tmp_path):
    dw = config(objective={"kind": "double_well", "dim": 2, "sigma": 1.0}, algorithm={"step": "constant"})
    mlp = config(objective={"kind": "mlp"}, algorithm={"step": "constant"})
    gen_dw, gen_mlp = copy.deepcopy(dw), copy.deepcopy(mlp)
    gen_dw["algorithm"]["kind"] = gen_mlp["algorithm"]["kind"] = "gen"
    metrics = [{"loss_mean": -2.0 + 1.0 / T + 0 * noise(0)}, {"loss_mean": 0.1 + 1.0 / T + 0 * noise(1)}] * 2
    swept = ["algorithm.kind", "objective.kind"]
    sweep_dir = write_sweep(tmp_path / "s", "nc", ["loss_vs_iteration"], swept, [dw, mlp, gen_dw, gen_mlp], metrics)
    assert_files(figures.draw_all(sweep_dir, tmp_path / "out"), ["nc_loss_vs_iteration"])
    well, net = figures.loss_vs_iteration.draw(figures.load_sweep(sweep_dir)).axes[:2]
    assert (well.get_title(), net.get_title()) == ("objective: double_well", "objective: mlp")
    assert [line.get_label() for line in measured(well)] == ["sc", "gen (mean)"]
    assert well.get_yscale() == "linear" and net.get_yscale() == "log"  # negative losses stay linear
    (optimum,) = theory_lines(well)
    assert optimum.get_ydata()[0] == pytest.approx(2 * -1.019866, abs=1e-5)  # dim * Q(x_m), x_m = 0.957504
    assert not theory_lines(net)
    assert measured(well)[0].get_color() == measured(net)[0].get_color()


def test_speedup(tmp_path):
    configs, metrics = [], []
    for schedule in ("sync", "random"):
        for m in (1, 2, 4, 8):
            cfg = config(system={"clusters": [1] * m}, schedule={"kind": schedule})
            k = m if schedule == "sync" else max(1, m // 2)
            configs.append(cfg)
            metrics.append({"err_mean": noise(m, spread=0.05) / (k * T), "view_min": np.full((SCENARIOS, T.size), k)})
    sweep_dir = write_sweep(tmp_path / "s", "scale", ["speedup"], ["system.clusters", "schedule.kind"], configs, metrics)
    assert_files(figures.draw_all(sweep_dir, tmp_path / "out"), ["scale_speedup"])
    ax = figures.speedup.draw(figures.load_sweep(sweep_dir)).axes[0]
    series = measured(ax)
    assert [line.get_label() for line in series] == ["sync", "random"]
    assert legend_title(ax.figure) == "sc · no crashes"  # what every series shares
    np.testing.assert_array_equal(series[0].get_xdata(), [1, 2, 4, 8])
    np.testing.assert_allclose(series[0].get_ydata(), [1, 2, 4, 8], rtol=0.15)  # sync: ideal
    lines = theory_lines(ax)
    ideal = [line for line in lines if line.get_label() == "_ideal"]
    assert len(ideal) == 1 and np.array_equal(ideal[0].get_xdata(), ideal[0].get_ydata())
    assert len(lines) == 3  # ideal + one k-line per series
    assert ax.get_xscale() == "log"


def test_sync_bound_takes_k_from_the_smallest_view(tmp_path):
    """Complete (sync) views hold only the live processes, and seq's view is itself: k is the
    measured smallest view, not n."""
    configs = [
        config(schedule={"kind": "sync"}, system={"clusters": [2, 2, 2, 2]}, faults={"pattern": "initial", "crashes": 3}),
        config(schedule={"kind": "sync"}, system={"clusters": [2, 2, 2, 2]}, algorithm={"kind": "seq"}),
        config(schedule={"kind": "sync"}, system={"clusters": [2, 2, 2, 2]}, faults={"pattern": "initial", "crashes": 1}),
    ]
    views = [np.full((SCENARIOS, T.size), 5.0), np.ones((SCENARIOS, T.size)), np.full((SCENARIOS, T.size), np.nan)]
    metrics = [{"err_mean": noise(i) / T, "view_min": view} for i, view in enumerate(views)]
    swept = ["algorithm.kind", "faults.crashes"]
    sweep_dir = write_sweep(tmp_path / "s", "sync", ["error_vs_iteration"], swept, configs, metrics)
    lines = theory_lines(figures.error_vs_iteration.draw(figures.load_sweep(sweep_dir)).axes[0])
    for line, k in zip(lines, (5, 1)):
        t, y = line.get_data()
        np.testing.assert_allclose(y, 1.0 / (k * t))
    assert len(lines) == 2  # no measured view (NaN): no k, so no bound rather than a guess of n

    configs, metrics = [], []
    for m in (2, 4, 8):
        configs.append(config(schedule={"kind": "sync"}, system={"clusters": [1] * m}, faults={"pattern": "initial", "crashes": 1}))
        metrics.append({"err_mean": noise(m) / ((m - 1) * T), "view_min": np.full((SCENARIOS, T.size), m - 1)})
    sweep_dir = write_sweep(tmp_path / "speed", "speed", ["speedup"], ["system.clusters"], configs, metrics)
    ax = figures.speedup.draw(figures.load_sweep(sweep_dir)).axes[0]
    (k_line,) = [line for line in theory_lines(ax) if line.get_label() != "_ideal"]
    np.testing.assert_array_equal(k_line.get_ydata(), [1, 3, 7])


def test_loss_draws_each_points_optimum(tmp_path):
    configs = [config(objective={"kind": "double_well", "dim": dim, "sigma": 0.5}, algorithm={"step": "constant"})
               for dim in (1, 4)]
    metrics = [{"loss_mean": -dim + 1.0 / T + 0 * noise(0)} for dim in (1, 4)]
    sweep_dir = write_sweep(tmp_path / "s", "dw", ["loss_vs_iteration"], ["objective.dim"], configs, metrics)
    optima = [point["theory"]["objective"]["q_star"] for point in read_manifest(sweep_dir)["points"]]
    assert optima[0] != optima[1]
    ax = figures.loss_vs_iteration.draw(figures.load_sweep(sweep_dir)).axes[0]
    lines = theory_lines(ax)
    assert [line.get_ydata()[0] for line in lines] == pytest.approx(optima)
    assert [line.get_color() for line in lines] == [line.get_color() for line in measured(ax)]


def test_bands_keep_infinities():
    inf, nan = np.inf, np.nan
    median, low, high = figures.style.bands(np.array([[1.0], [2.0], [inf], [inf], [inf]]))
    assert (median[0], low[0], high[0]) == (inf, pytest.approx(1.4), inf)
    median, low, high = figures.style.bands(np.array([[inf], [inf], [nan]]))
    assert (median[0], low[0], high[0]) == (inf, inf, inf)
    median, _, _ = figures.style.bands(np.array([[1.0], [nan], [3.0]]))  # NaN is no value: left out
    assert median[0] == 2.0
    assert np.isnan(figures.style.bands(np.array([[nan], [nan]]))[0][0])


def diverging_sweep(directory: Path, figure_name: str, step: str = "constant") -> Path:
    """Three points of an sc sweep over the step size: none, 3 and all 16 scenarios diverge at t = 60,
    their error Inf for two records and then NaN (Inf − Inf), as the engine's metrics are."""
    configs = [config(algorithm={"lr": lr, "step": step}) for lr in (0.1, 0.4, 0.8)]
    metrics = []
    for diverged in (0, 3, SCENARIOS):
        err, loss = noise(diverged) / T, np.ones((SCENARIOS, T.size))
        err[:diverged, T >= 60] = loss[:diverged, T >= 60] = np.inf
        err[:diverged, T >= 80] = loss[:diverged, T >= 80] = np.nan
        metrics.append({"err_mean": err, "loss_mean": loss, "view_min": np.ones((SCENARIOS, T.size))})
    return write_sweep(directory, "div", [figure_name], ["algorithm.lr"], configs, metrics)


def test_diverged_scenarios_are_counted_and_said(tmp_path):
    sweep_dir = diverging_sweep(tmp_path / "err", "error_vs_iteration")
    fig = figures.error_vs_iteration.draw(figures.load_sweep(sweep_dir))
    calm, some, every = measured(fig.axes[0])
    assert calm.get_label() == "lr=0.1"
    assert some.get_label() == "lr=0.4 — 3 of 16 scenarios diverged at t = 60"
    assert every.get_label() == "lr=0.8 — 16 of 16 scenarios diverged at t = 60"
    assert np.all(np.isinf(every.get_ydata()[T >= 60]))  # +Inf, not left out of the median
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert every.get_label() in legend and some.get_label() in legend

    sweep_dir = diverging_sweep(tmp_path / "speed", "speedup", step="inverse")  # a step the sc bound applies to
    ax = figures.speedup.draw(figures.load_sweep(sweep_dir)).axes[0]
    series = {line.get_label(): line.get_ydata()[0] for line in measured(ax)}
    assert series["lr=0.8 — 16 of 16 scenarios diverged at n = 4"] == 0.0  # no speed-up, rather than no point
    assert "lr=0.4 — 3 of 16 scenarios diverged at n = 4" in series


def test_the_sc_rate_is_drawn_only_where_the_theory_says_it_applies(tmp_path):
    """σ²/(μ² k t) is the asymptotic rate of the step 1/(μ (t + γ)): no line beside a step_scale 2
    or a constant step, and none from an older manifest whose record does not say it applies."""
    configs = [config(algorithm={"step": "inverse", "step_scale": 1.0}),
               config(algorithm={"step": "inverse", "step_scale": 2.0}),
               config(algorithm={"step": "constant", "step_scale": 1.0})]
    metrics = [{"err_mean": noise(i) / T, "view_min": np.full((SCENARIOS, T.size), 4)} for i in range(3)]
    sweep_dir = write_sweep(tmp_path / "s", "steps", ["error_vs_iteration"], ["algorithm.step", "algorithm.step_scale"],
                            configs, metrics)
    fig = figures.error_vs_iteration.draw(figures.load_sweep(sweep_dir))
    (line,) = theory_lines(fig.axes[0])
    assert line.get_color() == measured(fig.axes[0])[0].get_color()  # the step_scale 1 point's
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert [entry for entry in legend if entry.startswith("theory")] == [r"theory $\sigma^2/(\mu^2 k t)$ as $t \to \infty$, k = min view size"]

    manifest = read_manifest(sweep_dir)
    for point in manifest["points"]:
        del point["theory"]["sc_bound"]["applies"]  # as results of an older ftsgd hold it: judged from the config
    write_manifest(sweep_dir, manifest)
    fig = figures.error_vs_iteration.draw(figures.load_sweep(sweep_dir))
    (again,) = theory_lines(fig.axes[0])
    np.testing.assert_array_equal(again.get_ydata(), line.get_ydata())
    for point in manifest["points"]:
        del point["config"]["algorithm"]["step_scale"]  # a config that does not say: not known to apply
    write_manifest(sweep_dir, manifest)
    fig = figures.error_vs_iteration.draw(figures.load_sweep(sweep_dir))
    assert not theory_lines(fig.axes[0])
    assert not [text for text in fig.legends[0].get_texts() if text.get_text().startswith("theory")]


def test_speedup_of_a_step_without_the_sc_bound_is_measured_against_its_n_1_point(tmp_path):
    configs, metrics = [], []
    for m in (1, 2, 4):
        configs.append(config(system={"clusters": [1] * m}, algorithm={"step": "constant"}, schedule={"kind": "sync"}))
        metrics.append({"err_mean": np.full((SCENARIOS, T.size), 0.3 / m), "view_min": np.full((SCENARIOS, T.size), m)})
    sweep_dir = write_sweep(tmp_path / "s", "const", ["speedup"], ["system.clusters"], configs, metrics)
    ax = figures.speedup.draw(figures.load_sweep(sweep_dir)).axes[0]
    (series,) = measured(ax)
    np.testing.assert_allclose(series.get_ydata(), [1, 2, 4], rtol=1e-6)  # 0.3 / (0.3 / m), not σ²/(μ² T) / (0.3 / m)
    assert series.get_label().endswith("over its measured n = 1")
    assert [line.get_label() for line in theory_lines(ax)] == ["_ideal"]  # no k line: no sc bound for this step
    legend = [text.get_text() for text in ax.figure.legends[0].get_texts()]
    assert not [entry for entry in legend if "min view size" in entry]

    sweep_dir = write_sweep(tmp_path / "no1", "const", ["speedup"], ["system.clusters"], configs[1:], metrics[1:])
    with pytest.raises(ConfigError, match="speedup: series .* has no n = 1 point .* sc bound does not apply .* add an n = 1 point"):
        figures.draw_all(sweep_dir, tmp_path / "out")


def test_speedup_keeps_cluster_layouts_of_one_n_apart(tmp_path):
    layouts = [[1], [4, 4], [8], [2, 2, 2, 2]]
    configs = [config(system={"clusters": clusters}) for clusters in layouts]
    metrics = [{"err_mean": noise(i) / T, "view_min": np.full((SCENARIOS, T.size), 1)} for i in range(len(layouts))]
    sweep_dir = write_sweep(tmp_path / "s", "sp", ["speedup"], ["system.clusters"], configs, metrics)
    ax = figures.speedup.draw(figures.load_sweep(sweep_dir)).axes[0]
    series = measured(ax)
    assert [line.get_label() for line in series] == ["clusters=[1]", "clusters=[4,4]", "clusters=[8]", "clusters=[2,2,2,2]"]
    for line in series:
        assert len(set(line.get_xdata())) == len(line.get_xdata())  # no two points of a series at one n


def test_faults_keeps_points_the_label_omits_apart(tmp_path):
    """sc's label omits its rule: two rules at one crash count are two series, not one line back and forth."""
    configs, metrics = [], []
    for rule in ("mean", "safe_area"):
        for f in range(3):
            configs.append(config(algorithm={"rule": rule}, faults={"pattern": "random", "crashes": f}))
            metrics.append({"err_mean": noise(f) / T})
    sweep_dir = write_sweep(tmp_path / "s", "ft", ["faults"], ["algorithm.rule", "faults.crashes"], configs, metrics)
    error_ax = figures.faults.draw(figures.load_sweep(sweep_dir)).axes[0]
    assert [line.get_label() for line in measured(error_ax)] == ["rule=mean", "rule=safe_area"]
    assert all(list(line.get_xdata()) == [0, 1, 2] for line in measured(error_ax))

    # points no swept key tells apart (the rule left out of the swept keys) fail rather than merge
    sweep_dir = write_sweep(tmp_path / "same", "ft", ["faults"], ["faults.crashes"], configs, metrics)
    with pytest.raises(ConfigError, match=r"faults: points 0, 3 .* share one x = 0 and no swept key tells them apart"):
        figures.draw_all(sweep_dir, tmp_path / "out")


def test_seed_replicates_are_pooled_into_one_series(tmp_path):
    """``sweep.seeds`` replicates a point: its seeds' scenarios are one sample, not one line per seed."""
    configs, metrics = [], []
    for f in range(3):
        for seed in (0, 1):
            configs.append(config(faults={"pattern": "random", "crashes": f}, run={"seed": seed}))
            # seed 1 ten times larger: pooled, the band spans both seeds' scenarios
            metrics.append({"err_mean": noise(f) / T * (10.0 if seed else 1.0), "blocked": np.full((SCENARIOS, T.size), seed)})
    sweep_dir = write_sweep(tmp_path / "s", "ft", ["faults"], ["faults.crashes", "run.seed"], configs, metrics)
    sweep = figures.load_sweep(sweep_dir)
    assert [p.index for p in sweep.points] == [0, 2, 4] and "run.seed" not in sweep.swept
    assert [len(p.stored) for p in sweep.points] == [2, 2, 2]
    final = sweep.final(sweep.points[1], "err_mean")
    assert final.shape == (2 * SCENARIOS,)
    np.testing.assert_allclose(np.sort(final), np.sort(np.concatenate([metrics[2]["err_mean"][:, -1], metrics[3]["err_mean"][:, -1]])), rtol=1e-6)

    fig = figures.faults.draw(sweep)
    error_ax, blocked_ax = fig.axes[:2]
    assert len(measured(error_ax)) == 1 and list(measured(error_ax)[0].get_xdata()) == [0, 1, 2]
    np.testing.assert_array_equal(measured(blocked_ax)[0].get_ydata(), [0.5, 0.5, 0.5])  # half the pooled runs blocked
    assert "seed" not in " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert_files(figures.draw_all(sweep_dir, tmp_path / "out"), ["ft_faults"])


def test_points_of_different_scenario_counts_draw_each_over_its_own(tmp_path):
    """Seeds zipped unevenly with the x: 2 seeds (32 scenarios) at one x, 1 (16) at the other."""
    configs, metrics = [], []
    for f, seed, scale in ((0, 0, 1.0), (0, 1, 100.0), (1, 0, 1.0)):
        configs.append(config(faults={"pattern": "random", "crashes": f}, run={"seed": seed}))
        err = noise(f) / T * scale
        err[0, -1] = np.inf if seed == 1 else err[0, -1]  # one of the 32 diverged
        metrics.append({"err_mean": err, "loss_mean": np.where(np.isinf(err), np.nan, 1.0)})
    sweep_dir = write_sweep(tmp_path / "s", "ft", ["faults"], ["faults.crashes", "run.seed"], configs, metrics)
    sweep = figures.load_sweep(sweep_dir)
    assert [len(sweep.final(p, "err_mean")) for p in sweep.points] == [2 * SCENARIOS, SCENARIOS]
    (line,) = measured(figures.faults.draw(sweep).axes[0])
    pooled = np.concatenate([metrics[0]["err_mean"][:, -1], metrics[1]["err_mean"][:, -1]])
    np.testing.assert_allclose(line.get_ydata(), [np.median(pooled), np.median(metrics[2]["err_mean"][:, -1])], rtol=1e-6)
    assert f"1 of {2 * SCENARIOS} scenarios diverged at f = 0" in line.get_label()

    configs, metrics = [], []
    for m, seed in ((1, 0), (1, 1), (2, 0)):
        configs.append(config(system={"clusters": [1] * m}, run={"seed": seed}))
        metrics.append({"err_mean": noise(m + seed, spread=0.05) / (m * T), "view_min": np.full((SCENARIOS, T.size), m)})
    sweep_dir = write_sweep(tmp_path / "sp", "scale", ["speedup"], ["system.clusters", "run.seed"], configs, metrics)
    (line,) = measured(figures.speedup.draw(figures.load_sweep(sweep_dir)).axes[0])
    np.testing.assert_array_equal(line.get_xdata(), [1, 2])


def test_a_divergence_note_counts_scenarios_without_a_value_but_not_padding():
    x = np.array([10, 20])
    # scenario 1 lost every process (NaN, no value, not diverged); scenario 2 diverged at t = 20
    values = np.array([[1.0, 1.0], [np.nan, np.nan], [1.0, np.inf], [1.0, 1.0]])
    assert figures.style.divergence_note(x, values) == "1 of 4 scenarios diverged at t = 20"
    # a NaN-padded table of a 2-scenario point beside a 4-scenario one
    assert figures.style.divergence_note(x, values, scenarios=[4, 3]) == "1 of 3 scenarios diverged at t = 20"


def test_seeds_that_draw_their_own_data_stay_apart_and_labelled(tmp_path):
    """With objective.data_seed = "run" each seed is another dataset (another x*, another
    theory record): not replicates of one configuration, so not pooled, and the labels keep the seed."""
    configs, metrics = [], []
    for f in range(2):
        for seed in (0, 1):
            configs.append(config(faults={"pattern": "random", "crashes": f}, objective={"data_seed": seed}, run={"seed": seed}))
            metrics.append({"err_mean": noise(10 * f + seed) / T})
    sweep_dir = write_sweep(tmp_path / "s", "ds", ["faults"], ["faults.crashes", "run.seed"], configs, metrics)
    sweep = figures.load_sweep(sweep_dir)
    assert len(sweep.points) == 4 and "run.seed" in sweep.swept
    assert [line.get_label() for line in measured(figures.faults.draw(sweep).axes[0])] == ["seed=0", "seed=1"]


def test_pooled_replicates_keep_their_final_states_apart_from_other_points(tmp_path):
    sweep_dir = impossibility_sweep(tmp_path / "s")
    manifest = read_manifest(sweep_dir)
    single = figures.load_sweep(sweep_dir)
    # the same folder read as two seeds of one point: its final states are both points' scenarios
    manifest["swept"] = ["run.seed"]
    first = manifest["points"][0]
    for seed, entry in enumerate(manifest["points"]):
        entry.update(values={"run.seed": seed}, theory=first["theory"])
        entry["config"] = {**first["config"], "run": {**first["config"]["run"], "seed": seed}}
    write_manifest(sweep_dir, manifest)
    pooled = figures.load_sweep(sweep_dir)
    assert len(pooled.points) == 1
    both = pooled.final_state(pooled.points[0])
    parts = [single.final_state(point) for point in single.points]
    np.testing.assert_array_equal(both["x"], np.concatenate([part["x"] for part in parts]))
    np.testing.assert_array_equal(both["cluster_of"], parts[0]["cluster_of"])


def faults_sweep(directory: Path, drop: tuple[str, ...] = ()) -> Path:
    configs, metrics = [], []
    for quorum in ("weighted", "count"):
        for f in range(6):
            cfg = config(
                system={"clusters": [1, 1, 2, 4], "quorum": quorum},
                algorithm={"kind": "gen"},
                faults={"pattern": "random", "crashes": f},
            )
            limit = 3 if quorum == "weighted" else 1  # majority holds up to `limit` crashes
            holds = np.full((SCENARIOS, T.size), f <= limit)
            configs.append(cfg)
            metrics.append({
                "err_mean": noise(f) / (8 * T),
                "blocked": np.where(holds, 0, 8 - f),
                "majority": holds,
            })
    swept = ["system.quorum", "faults.crashes"]
    return write_sweep(directory, "ft", ["faults"], swept, configs, metrics, drop=drop)


def test_faults(tmp_path):
    sweep_dir = faults_sweep(tmp_path / "s")
    assert_files(figures.draw_all(sweep_dir, tmp_path / "out"), ["ft_faults"])
    fig = figures.faults.draw(figures.load_sweep(sweep_dir))
    error_ax, blocked_ax = fig.axes[:2]
    assert fig.get_size_inches()[0] == pytest.approx(figures.DOUBLE_COLUMN)
    labels = [line.get_label() for line in measured(error_ax)]
    assert labels == ["weighted quorum", "count quorum"]
    assert legend_title(fig) == "gen (mean) · random · random crashes"
    assert error_ax.get_yscale() == "log"
    blocked = measured(blocked_ax)
    np.testing.assert_array_equal(blocked[0].get_ydata(), [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(blocked[1].get_ydata(), [0, 0, 1, 1, 1, 1])
    failures = sorted({line.get_xdata()[0] for line in error_ax.get_lines() if line.get_gid() == "majority"})
    assert failures == [2, 4]
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "weighted quorum" in legend and "count quorum" in legend


def test_faults_uses_loss_when_error_unknown(tmp_path):
    cfg = config(objective={"kind": "double_well", "dim": 1, "sigma": 1.0}, algorithm={"step": "constant"})
    metrics = [{"loss_mean": -noise(0)}]
    sweep_dir = write_sweep(tmp_path / "s", "ft", ["faults"], [], [cfg], metrics)
    ax = figures.faults.draw(figures.load_sweep(sweep_dir)).axes[0]
    assert ax.get_yscale() == "linear" and "loss" in ax.get_ylabel()


def test_agreement(tmp_path):
    gen = config(algorithm={"kind": "gen", "rounds": "auto", "eps0": 0.5, "eps_power": 1.0})
    sc = config()
    eps = 0.5 / (T - 1 + 1.0)
    metrics = [
        {"disagreement": eps * np.random.default_rng(0).uniform(0.2, 1.0, (SCENARIOS, T.size)),
         "rounds": np.tile(np.ceil(np.log(T)), (SCENARIOS, 1))},
        {"disagreement": noise(1) / T, "rounds": np.ones((SCENARIOS, T.size))},
    ]
    sweep_dir = write_sweep(tmp_path / "s", "agr", ["agreement"], ["algorithm.kind"], [gen, sc], metrics)
    assert_files(figures.draw_all(sweep_dir, tmp_path / "out"), ["agr_agreement"])
    spread_ax, rounds_ax = figures.agreement.draw(figures.load_sweep(sweep_dir)).axes[:2]
    assert spread_ax.get_yscale() == "log"
    assert [line.get_label() for line in measured(spread_ax)] == ["gen (mean)", "sc"]
    assert legend_title(spread_ax.figure) == "random · no crashes"
    (eps_line,) = theory_lines(spread_ax)  # only the GEN point has a target
    t, y = eps_line.get_data()
    np.testing.assert_allclose(y, 0.5 / t)  # eps of iteration t-1: 0.5 / (mu ((t-1) + 1))
    assert len(measured(rounds_ax)) == 2
    np.testing.assert_allclose(measured(rounds_ax)[0].get_ydata(), np.ceil(np.log(T)))
    assert "round" in rounds_ax.get_ylabel()


def impossibility_sweep(directory: Path, with_npz: bool = True) -> Path:
    rng = np.random.default_rng(0)
    dw = {"kind": "double_well", "dim": 1, "sigma": 1.0}
    configs = [
        config(objective=dw, algorithm={"kind": "nowait", "step": "constant"}),
        config(objective=dw, algorithm={"kind": "gen", "step": "constant"}),
    ]
    blocked = np.zeros((SCENARIOS, T.size))
    blocked[: SCENARIOS // 2] = 4  # half the GEN runs blocked
    metrics = [{"loss_mean": -np.ones((SCENARIOS, T.size))}, {"loss_mean": -np.ones((SCENARIOS, T.size)), "blocked": blocked}]
    write_sweep(directory, "imp", ["impossibility"], ["algorithm.kind"], configs, metrics)
    if with_npz:
        for index in range(2):
            x = np.concatenate([rng.normal(-0.96, 0.05, (SCENARIOS, 2, 1)), rng.normal(0.96, 0.05, (SCENARIOS, 2, 1))], 1)
            live = np.ones((SCENARIOS, 4), bool)
            if index == 1:
                x[:] = 0.96
                live[: SCENARIOS // 2] = False
            folder = directory / "points" / str(index)
            folder.mkdir(parents=True)
            np.savez(folder / "final.npz", x=x, live=live, crash_time=np.full((SCENARIOS, 4), np.inf),
                     cluster_of=np.array([0, 0, 1, 1]), group_of_cluster=np.array([0, 1]))
    return directory


def test_impossibility(tmp_path):
    sweep_dir = impossibility_sweep(tmp_path / "s")
    assert_files(figures.draw_all(sweep_dir, tmp_path / "out"), ["imp_impossibility"])
    fig = figures.impossibility.draw(figures.load_sweep(sweep_dir))
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 2
    texts = [[t.get_text() for t in ax.texts if t.get_gid() == "outcome"][0] for ax in panels]
    assert "blocked: 0% of runs" in texts[0] and "groups apart >1: 100% of runs" in texts[0]
    assert "blocked: 50% of runs (median 2/4)" in texts[1] and "groups apart >1: 0% of runs" in texts[1]
    assert "majority side: none" in texts[1]  # clusters [2, 2] cut into {0} | {1}: no side has > n/2
    assert "majority condition (crashes)" not in texts[1]  # shown only where crashes break it
    assert [ax.get_title() for ax in panels] == ["nowait", "gen (mean)"]
    assert legend_title(fig) == "random · no crashes"
    assert len(panels[0].patches) == 2  # one histogram per partition group
    minima = [line.get_xdata()[0] for line in theory_lines(panels[0])]
    np.testing.assert_allclose(sorted(minima), [-0.957504, 0.957504], atol=1e-6)


def test_majority_side():
    state = {"group_of_cluster": np.array([0, 0, 1])}
    weighted = figures.Point(0, {}, config(system={"clusters": [1, 1, 4], "quorum": "weighted"}), {})
    count = figures.Point(0, {}, config(system={"clusters": [1, 1, 4], "quorum": "count"}), {})
    assert figures.impossibility.majority_side(weighted, state) == "group 1 (4/6 weighted)"
    assert figures.impossibility.majority_side(count, state) == "group 0 (2/3 count)"


def test_contraction(tmp_path):
    rng = np.random.default_rng(0)
    configs = [config(algorithm={"kind": "gen", "rule": "mean"}),
               config(algorithm={"kind": "gen", "rule": "midpoint"}, objective={"dim": 1}),
               config(algorithm={"kind": "sc"})]
    metrics = [{"contraction_max": rng.uniform(0.2, 0.75, (SCENARIOS, T.size))},
               {"contraction_max": rng.uniform(0.1, 0.5, (SCENARIOS, T.size))},
               {}]  # sc: NaN, left out
    sweep_dir = write_sweep(tmp_path / "s", "con", ["contraction"], ["algorithm.rule"], configs, metrics)
    assert_files(figures.draw_all(sweep_dir, tmp_path / "out"), ["con_contraction"])
    ax = figures.contraction.draw(figures.load_sweep(sweep_dir)).axes[0]
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["mean", "midpoint"]
    factors = sorted(line.get_ydata()[0] for line in theory_lines(ax))
    np.testing.assert_allclose(factors, [0.5, 0.75])  # midpoint 1/2, mean 1 - 1/4


def test_draw_suite_and_figure_list(tmp_path):
    error_sweep(tmp_path / "suite" / "a")
    faults_sweep(tmp_path / "suite" / "b")
    (tmp_path / "suite" / "notes").mkdir()
    paths = figures.draw_suite(tmp_path / "suite", tmp_path / "out")
    assert_files(paths, ["err_error_vs_iteration", "ft_faults"])
    assert figures.draw_suite(tmp_path / "suite" / "a", tmp_path / "out2")[0].name == "err_error_vs_iteration.png"
    assert set(figures.FIGURES) == {
        "error_vs_iteration", "loss_vs_iteration", "speedup", "faults", "agreement", "impossibility", "contraction"
    }


# --- theory from the manifest -----------------------------------------------------------------


def test_theory_lines_are_drawn_from_the_manifest(tmp_path):
    sweep_dir = error_sweep(tmp_path / "err")
    manifest = read_manifest(sweep_dir)
    manifest["points"][0]["theory"]["sc_bound"]["coefficient"] = 3.0
    write_manifest(sweep_dir, manifest)
    t, y = theory_lines(figures.error_vs_iteration.draw(figures.load_sweep(sweep_dir)).axes[0])[0].get_data()
    np.testing.assert_allclose(y, 3.0 / (4 * t))

    gen = config(algorithm={"kind": "gen", "rounds": 2})
    sweep_dir = write_sweep(tmp_path / "agr", "agr", ["agreement"], [], [gen], [{"disagreement": noise(0) / T}])
    manifest = read_manifest(sweep_dir)
    manifest["points"][0]["theory"]["eps"] = [[0.25, 4], [0.125, T.size - 4]]
    write_manifest(sweep_dir, manifest)
    (eps_line,) = theory_lines(figures.agreement.draw(figures.load_sweep(sweep_dir)).axes[0])
    np.testing.assert_array_equal(eps_line.get_ydata(), [0.25] * 4 + [0.125] * (T.size - 4))

    sweep_dir = impossibility_sweep(tmp_path / "imp")
    manifest = read_manifest(sweep_dir)
    for point in manifest["points"]:
        point["theory"]["objective"]["minimizer"] = 0.5
    write_manifest(sweep_dir, manifest)
    panel = figures.impossibility.draw(figures.load_sweep(sweep_dir)).axes[0]
    assert sorted(line.get_xdata()[0] for line in theory_lines(panel)) == [-0.5, 0.5]


def test_a_manifest_without_theory_asks_to_rerun_the_sweep(tmp_path):
    sweep_dir = error_sweep(tmp_path / "err")
    manifest = read_manifest(sweep_dir)
    del manifest["points"][1]["theory"]
    write_manifest(sweep_dir, manifest)
    with pytest.raises(ConfigError, match="point 1 has no theory record.*re-run the sweep") as info:
        figures.draw_all(sweep_dir, tmp_path / "out")
    assert info.value.field == "figures"


# --- errors -------------------------------------------------------------------------------


def test_no_results(tmp_path):
    (tmp_path / "empty").mkdir()
    for directory in (tmp_path / "empty", tmp_path / "absent"):
        with pytest.raises(ConfigError, match="no sweep results") as info:
            figures.draw_suite(directory, tmp_path / "out")
        assert info.value.field == "figures"
    with pytest.raises(ConfigError, match="no sweep results"):
        figures.draw_all(tmp_path / "empty", tmp_path / "out")


def test_missing_column_names_the_figure(tmp_path):
    sweep_dir = write_sweep(tmp_path / "s", "con", ["contraction"], [], [config(algorithm={"kind": "gen"})], [{}],
                            drop=("contraction_max",))
    with pytest.raises(ConfigError, match="contraction.*contraction_max") as info:
        figures.draw_all(sweep_dir, tmp_path / "out")
    assert info.value.field == "figures"


def test_missing_data_raises(tmp_path):
    with pytest.raises(ConfigError, match="impossibility.*final.npz"):
        figures.draw_all(impossibility_sweep(tmp_path / "imp", with_npz=False), tmp_path / "out")
    # every err NaN (no known optimum): the error figure says so instead of drawing nothing
    sweep_dir = write_sweep(tmp_path / "nan", "e", ["error_vs_iteration"], [], [config()], [{}])
    with pytest.raises(ConfigError, match="error_vs_iteration.*NaN"):
        figures.draw_all(sweep_dir, tmp_path / "out")
    sweep_dir = faults_sweep(tmp_path / "nocol", drop=("blocked",))
    with pytest.raises(ConfigError, match="faults.*'blocked'"):
        figures.draw_all(sweep_dir, tmp_path / "out")
    (sweep_dir / "metrics.parquet").unlink()
    with pytest.raises(ConfigError, match="faults.*metrics.parquet is missing"):
        figures.draw_all(sweep_dir, tmp_path / "out")


def test_unknown_figure(tmp_path):
    sweep_dir = write_sweep(tmp_path / "s", "x", ["error_vs_iteraton"], [], [config()], [{}])
    with pytest.raises(ConfigError, match="did you mean 'error_vs_iteration'"):
        figures.draw_all(sweep_dir, tmp_path / "out")


# --- labels -----------------------------------------------------------------------------------


def test_shorten():
    assert figures.shorten(["sc · sync · no crashes", "sc · random · no crashes"]) == ("sc · no crashes", ["sync", "random"])
    assert figures.shorten(["a · b", "c · d"]) == ("", ["a · b", "c · d"])
    assert figures.shorten(["only · one"]) == ("", ["only · one"])


def test_point_label():
    cfg = config(faults={"pattern": "random", "crashes": 3}, system={"clusters": [4, 4, 4, 4]})
    assert figures.point_label(cfg) == "sc · random · 3 crashes (random)"
    assert figures.point_label(cfg, ["system.clusters", "run.seed"]) == "sc · random · 3 crashes (random) · n=16 (4×4) · seed=0"
    assert figures.point_label(cfg, drop={"faults.crashes"}) == "sc · random · random crashes"


def test_labels_keep_distinct_floats_distinct(tmp_path):
    near = [config(algorithm={"step_offset": offset}) for offset in (100000.0, 100000.4)]
    assert [figures.point_label(cfg, ["algorithm.step_offset"]) for cfg in near] == [
        "sc · random · no crashes · step_offset=100000", "sc · random · no crashes · step_offset=100000.4"]
    assert figures.point_label(config(algorithm={"lr": 0.5}), ["algorithm.lr"]).endswith("lr=0.5")
    assert figures.point_label(config(algorithm={"lr": 1e-3}), ["algorithm.lr"]).endswith("lr=0.001")
    assert figures.point_label(config(algorithm={"lr": 0.1 + 0.2}), ["algorithm.lr"]).endswith("lr=0.30000000000000004")
    points = [figures.Point(i, {}, cfg, {}) for i, cfg in enumerate(near)]
    assert list(figures.labels.facets(points, "algorithm.step_offset")) == [
        "algorithm.step_offset = 100000", "algorithm.step_offset = 100000.4"]

    configs = [config(algorithm={"step_offset": offset}, faults={"pattern": "random", "crashes": f})
               for offset in (100000.0, 100000.4) for f in range(2)]
    sweep_dir = write_sweep(tmp_path / "s", "ft", ["faults"], ["algorithm.step_offset", "faults.crashes"], configs,
                            [{"err_mean": noise(i) / T} for i in range(4)])
    error_ax = figures.faults.draw(figures.load_sweep(sweep_dir)).axes[0]
    assert [line.get_label() for line in measured(error_ax)] == ["step_offset=100000", "step_offset=100000.4"]


# --- space-time diagram ----------------------------------------------------------------------


def tiny_trace() -> list[dict]:
    def event(time, step, process, peer=None, round_=0):
        cluster = 0 if process < 2 else 1
        return {"time": time, "step": step, "process": process, "cluster": cluster, "iteration": 0,
                "round": round_, "peer": peer}

    return [
        event(0.5, "compute", 0), event(0.6, "compute", 1), event(0.7, "compute", 2),
        event(1.0, "write", 0), event(1.1, "write", 1), event(1.2, "write", 2),
        event(1.3, "read", 0, peer=1), event(1.4, "read", 1, peer=0),
        event(1.5, "send", 0, peer=2), event(1.6, "send", 2, peer=0), event(1.7, "send", 2, peer=1),
        event(2.0, "receive", 2, peer=0), event(2.4, "receive", 0, peer=2), event(2.6, "receive", 1, peer=2),
        event(2.5, "end", 0), event(2.7, "end", 2),
        event(2.2, "crash", 1),
        event(2.8, "blocked", 2),
    ]


def test_spacetime(tmp_path):
    trace = tiny_trace()
    paths = figures.spacetime(trace, [2, 1], tmp_path / "replay.png")
    assert_files(paths, ["replay"])
    fig = figures.spacetime_figure(trace, [2, 1], blocked=[0])
    ax = fig.axes[0]
    arrows = [patch for patch in ax.patches if patch.get_gid() == "message"]
    assert len(arrows) == sum(e["step"] == "receive" for e in trace) == 3
    by_gid = {line.get_gid(): line for line in ax.get_lines() if line.get_gid() not in ("process", "blocked")}
    assert len(by_gid["write"].get_xdata()) == 3
    assert list(by_gid["crash"].get_xdata()) == [2.2]
    assert len(by_gid["round_end"].get_xdata()) == 2
    dashed = [line for line in ax.get_lines() if line.get_gid() == "blocked"]
    assert len(dashed) == 2  # p2 from its trace event, p0 from the argument
    assert all(line.get_xdata()[1] == pytest.approx(ax.get_xlim()[1]) for line in dashed)
    assert sum(t.get_text().strip() == "blocked" for t in ax.texts) == 2
    assert {"C0", "C1"} <= {t.get_text() for t in ax.texts if t.get_gid() == "cluster"}
    assert ax.get_xlabel() == "time (units)"
    # the arrow from p0's send (t = 1.5) to p2's receive (t = 2.0)
    first = arrows[0]
    (x0, _), (x1, _) = first._posA_posB
    assert (x0, x1) == (1.5, 2.0)


def test_spacetime_rejects_bad_steps():
    with pytest.raises(ConfigError, match="unknown step"):
        figures.spacetime_figure([{"time": 0.0, "step": "jump", "process": 0}], [1])


@pytest.mark.parametrize("figure_name", ["error_vs_iteration", "loss_vs_iteration"])
def test_a_series_diverging_in_one_panel_has_one_entry_that_names_the_panel(tmp_path, figure_name):
    configs, metrics = [], []
    for kind in ("quadratic", "double_well"):
        for lr in (0.1, 0.2, 0.3, 0.4, 0.5):
            configs.append(config(objective={"kind": kind, "sigma": 0.5}, algorithm={"lr": lr, "step": "constant"}))
            err, loss = noise(int(10 * lr)) / T, 1.0 + noise(int(10 * lr)) / T
            if kind == "double_well" and lr == 0.5:
                err[:3, T >= 60] = loss[:3, T >= 60] = np.inf
            metrics.append({"err_mean": err, "loss_mean": loss, "view_min": np.ones((SCENARIOS, T.size))})
    sweep_dir = write_sweep(tmp_path / "s", "div", [figure_name], ["objective.kind", "algorithm.lr"], configs, metrics)
    fig = getattr(figures, figure_name).draw(figures.load_sweep(sweep_dir))
    assert len(fig.axes) == 2
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    panel = "objective.kind = double_well" if figure_name == "error_vs_iteration" else "objective: double_well"
    assert [entry for entry in legend if "0.5" in entry] == [f"lr=0.5 — 3 of 16 scenarios diverged at t = 60 ({panel})"]
    assert len([entry for entry in legend if entry.startswith("lr=")]) == 5
