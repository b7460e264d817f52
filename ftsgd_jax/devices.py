"""Where scenarios run: device selection, sharding of the scenario axis, chunk sizes.

A chunk is the number of scenarios one compiled call simulates at once. It is sized from
the memory one scenario needs and the free memory of the device (or the host), and is a
multiple of the device count so that every device gets an equal share of the scenarios.
On a CPU it stays at most DEFAULT_CHUNK (larger batches run no faster there, and CPU
chunk plans stay as they were); a GPU or TPU fills a share of its free memory, which can
be hundreds of thousands of scenarios.

On a CPU a chunk's program also runs its scenarios in consecutive blocks (:func:`cpu_block`)
rather than all at once, measured 14-25% faster at n = 16 (README, Performance): most
likely because a round's arrays for a few hundred scenarios stay in the processor's
caches, where those of 4,096 scenarios go to memory and back between fused loops.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import jax
import numpy as np

from ftsgd_jax.config import DEVICE_KINDS, RunConfig
from ftsgd_jax.errors import ConfigError, choice

DEFAULT_CHUNK = 4096

CPU_BLOCK_BYTES = 20 * 2**20
"""The round arrays one block of a CPU chunk may fill: blocks of 512 scenarios at n = 16,
d = 10, 147 at n = 32, 1,366 at n = 8 (chunks of 4,096). Measured on a 2-core AMD EPYC
(sc, S = 4,096, against one batch): n = 16 +14% (gen +25%); n = 32 +17% with blocks of 147
(256: +35% and +21% in two runs, 128: +22%); n = 8 within the noise at 512-2,048."""

MIN_CPU_BLOCK = 64
"""Smaller blocks pay a fixed cost per fused step that outweighs what the caches give back."""


def select_devices(kind: str = "auto", field: str = "run.device") -> list[jax.Device]:
    """The local devices to shard scenarios over: all of the default backend, or of ``kind``."""
    if choice(field, kind, DEVICE_KINDS) == "auto":
        return jax.local_devices()
    try:
        return jax.local_devices(backend=kind)
    except RuntimeError:
        present = ", ".join(sorted({f"{d.platform} ({d})" for d in jax.local_devices()}))
        raise ConfigError(field, f"no {kind} device here; present: {present}") from None


def scenario_sharding(devices: list[jax.Device]) -> jax.sharding.NamedSharding:
    """Scenarios split over a one-axis mesh of the devices; everything else follows."""
    mesh = jax.sharding.Mesh(np.asarray(devices), ("scenarios",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("scenarios"))


def bytes_per_scenario(config: RunConfig) -> int:
    """A generous estimate of the device memory one scenario of a chunk needs.

    Per round: about 30 (n, n) float32 arrays of stamps, masks and views; per process the
    parameters, gradients and agreement temporaries; per record the metric columns.
    """
    n, d = config.topology.n, config.objective.dim
    records = config.run.iterations // config.run.record_every
    return 4 * (30 * n * n + 12 * n * d + 16 * records) + 1024


def round_bytes(n: int, d: int) -> int:
    """The arrays one scenario's round works on: about 30 (n, n) and 12 (n, d) float32."""
    return 4 * (30 * n * n + 12 * n * d)


def cpu_block(size: int, n: int, d: int) -> int:
    """Scenarios per block when a CPU chunk of ``size`` runs in consecutive blocks: about
    ``CPU_BLOCK_BYTES`` of round arrays, at least ``MIN_CPU_BLOCK``, and balanced, so that
    the blocks cover the chunk with fewer than one padded scenario per block."""
    target = max(CPU_BLOCK_BYTES // round_bytes(n, d), MIN_CPU_BLOCK)
    blocks = -(-size // target)
    return -(-size // blocks)


def block_size(placed: Collection[jax.Device], size: int, n: int, d: int, planned: int | None = None) -> int:
    """Scenarios per block of a chunk of ``size`` run on the devices ``placed``.

    On one CPU device: ``planned`` (a sweep's stored plan) if given, else :func:`cpu_block`.
    Elsewhere the whole chunk as one batch, whatever was planned: blocks serve a CPU's
    caches, and would only serialise a GPU's or several devices' work.
    """
    if len(placed) == 1 and next(iter(placed)).platform == "cpu":
        return min(planned or cpu_block(size, n, d), size)
    return size


def chunk_block(config: RunConfig, size: int) -> int:
    """:func:`block_size` of a chunk of ``size`` of ``config`` on the devices it runs on."""
    return block_size(select_devices(config.run.device), size, config.topology.n, config.objective.dim)


def host_memory_bytes() -> int:
    """Free memory of the host, where results gather whatever device computed them."""
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def available_memory_bytes(device: jax.Device | None = None) -> int:
    """Free memory of ``device`` (default: the first local one): an accelerator's from its
    memory statistics, a CPU's from the host."""
    stats = (device or jax.local_devices()[0]).memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return host_memory_bytes()


def memory_share(platform: str) -> float:
    """The share of the free memory a chunk may fill: a quarter of the host's on CPU, where
    the rest of the machine lives too; half of an accelerator's, whose memory holds nothing
    else and whose free figure is already within XLA's own pool."""
    return 0.25 if platform == "cpu" else 0.5


def fitting_scenarios(free: int, per_scenario: int, platform: str) -> int:
    """How many scenarios of ``per_scenario`` bytes fit in the share of ``free`` (0 if not one)."""
    return int(free * memory_share(platform)) // per_scenario


def automatic_chunk(scenarios: int, per_scenario: int, free: int, platform: str) -> int:
    """Scenarios per chunk when ``run.chunk`` is not given: as many as fit, at least one,
    at most the run's scenarios, and on CPU at most DEFAULT_CHUNK."""
    cap = DEFAULT_CHUNK if platform == "cpu" else scenarios
    return min(scenarios, cap, max(fitting_scenarios(free, per_scenario, platform), 1))


def _platform(config: RunConfig) -> str:
    return select_devices(config.run.device)[0].platform


def _memory(config: RunConfig) -> int:
    return available_memory_bytes(select_devices(config.run.device)[0])


def fitting_chunk(config: RunConfig) -> int:
    """How many scenarios fit in the free memory the device's chunks may fill (0 if not even one)."""
    return fitting_scenarios(_memory(config), bytes_per_scenario(config), _platform(config))


def _largest_term(config: RunConfig) -> str:
    """The setting that makes one scenario big: the process count, the dimension or the records."""
    n, d = config.topology.n, config.objective.dim
    records = config.run.iterations // config.run.record_every
    terms = {"system.clusters": 30 * n * n, "objective.dim": 12 * n * d, "run.record_every": 16 * records}
    return max(terms, key=terms.get)


def chunk_size(config: RunConfig) -> int:
    """Scenarios per compiled batch: ``run.chunk`` if given (checked against memory), else
    :func:`automatic_chunk` for the device.

    A configuration of which a single scenario needs more than half the free memory is
    refused with the estimate, rather than started with a chunk of one that swaps or hangs.
    """
    per_scenario = bytes_per_scenario(config)
    free = _memory(config)
    if per_scenario > free // 2:
        n, d = config.topology.n, config.objective.dim
        raise ConfigError(
            _largest_term(config),
            f"one scenario (n = {n} processes, d = {d}, {config.run.iterations // config.run.record_every} records) "
            f"needs about {per_scenario / 2**30:.3g} GiB but {free / 2**30:.3g} GiB are free; use fewer processes or a smaller dimension",
        )
    if config.run.chunk:
        need = config.run.chunk * per_scenario
        if need > free:
            raise ConfigError(
                "run.chunk",
                f"{config.run.chunk} scenarios need about {need / 2**30:.1f} GiB but {free / 2**30:.1f} GiB are free; "
                f"use at most {max(free // per_scenario, 1)}",
            )
        chunk = config.run.chunk
    else:
        chunk = automatic_chunk(config.run.scenarios, per_scenario, free, _platform(config))
    devices = len(select_devices(config.run.device))
    return -(-chunk // devices) * devices  # a multiple of the device count, so every device gets a share


def result_bytes(config: RunConfig, columns: int) -> int:
    """Bytes of the metrics table of a configuration (``columns`` 8-byte cells per row, an upper bound)."""
    records = config.run.iterations // config.run.record_every
    return config.run.scenarios * records * columns * 8


def free_disk_bytes(folder) -> int:
    """Free space of the file system holding ``folder`` (or its nearest existing parent)."""
    from pathlib import Path

    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize
