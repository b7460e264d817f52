"""Several processes, one sweep: joining them with jax.distributed and taking steps together.

Every process of a group runs the same ``ftsgd sweep`` into one results folder that all of
them can read and write (a shared file system across hosts). A step that all take
together (:func:`together`) runs on every process and then waits for all of them, so that
an error on any process stops every process at the same step, each naming the process
that failed, instead of leaving the others waiting. The coordinator (process 0's address)
only carries these waits and short messages; the results go through the folder.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

from ftsgd_jax.errors import ConfigError, integer

JOIN_SECONDS = 300  # how long a process waits for the others to start
WAIT_MS = 30 * 24 * 3600 * 1000  # a step may take as long as the work; a dead process is found by its missed heartbeats
ADDRESS = re.compile(r"[A-Za-z0-9.:\[\]_-]+:\d{1,5}")


@dataclasses.dataclass
class Group:
    """This process's place in the group: ``index`` of ``count`` processes, the
    coordination client that carries the waits, and how many steps were begun together.

    Every process begins the same steps in the same order, so a step's number names it
    alike on all of them, and a second sweep in the same group gets steps of its own.
    """

    index: int
    count: int
    client: Any
    steps: int = 0

    @property
    def lead(self) -> bool:
        """Process 0 holds the folder's lock, prepares it and assembles the results."""
        return self.index == 0

    def share(self, items: list) -> list:
        """This process's share of ``items``: every ``count``-th, from its ``index``."""
        return items[self.index :: self.count]


def check_flags(coordinator: str | None, count: int | None, index: int | None) -> bool:
    """Whether the sweep is split over processes; the three flags come together or not at all."""
    given = [value is not None for value in (coordinator, count, index)]
    if not any(given):
        return False
    if not all(given):
        raise ConfigError("--num-processes", "give --coordinator HOST:PORT, --num-processes P and --process-id I together")
    if not ADDRESS.fullmatch(coordinator):
        raise ConfigError("--coordinator", f"need HOST:PORT (process 0's host and a free port), got {coordinator!r}")
    integer("--num-processes", count, 1)
    integer("--process-id", index, 0, count - 1)
    return True


def join(coordinator: str, count: int, index: int) -> Group:
    """Start jax.distributed (before any JAX work in this process) and return the group."""
    import jax
    from jax._src import distributed

    try:
        jax.distributed.initialize(coordinator, count, index, initialization_timeout=JOIN_SECONDS)
    except Exception as error:  # jax raises its runtime error type, which it does not export stably
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            "--coordinator", f"could not join {count} processes at {coordinator} within {JOIN_SECONDS} s: {first}"
        ) from None
    return Group(jax.process_index(), jax.process_count(), distributed.global_state.client)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _key(group: Group, step: str) -> str:
    return f"ftsgd/{group.steps}-{step}"


def check_others(group: Group, step: str) -> None:
    """Raise, naming it, the error of another process that has already failed ``step``,
    the step under way: asked between chunks, so that no process works on for hours
    towards a step that fails."""
    for key, text in group.client.key_value_dir_get(f"{_key(group, step)}/"):
        index, status = int(key.rsplit("/", 1)[1]), json.loads(text)
        if index != group.index and not status["ok"]:
            raise ConfigError(f"process {index}", status["error"])


def together(group: Group, step: str, work: Callable[[], Any]) -> list[Any]:
    """Run ``work()`` here, wait for every process to finish its own, and return every
    process's value (JSON), in process order.

    This process's own error is raised again after the wait; an error elsewhere is raised
    here as a ConfigError naming that process, so every process stops at the same step.
    """
    group.steps += 1
    key = _key(group, step)
    try:
        value, failure = work(), None
        status = {"ok": True, "value": value}
    except BaseException as error:  # Ctrl-C too: the others must not wait for this process
        failure = error
        status = {"ok": False, "error": _one_line(error)}
    group.client.key_value_set(f"{key}/{group.index}", json.dumps(status))
    group.client.wait_at_barrier(key, WAIT_MS)
    if failure is not None:
        raise failure
    statuses = [json.loads(group.client.blocking_key_value_get(f"{key}/{k}", 60_000)) for k in range(group.count)]
    for k, other in enumerate(statuses):
        if not other["ok"]:
            raise ConfigError(f"process {k}", other["error"])
    return [other["value"] for other in statuses]
