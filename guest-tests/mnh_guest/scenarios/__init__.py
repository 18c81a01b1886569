"""The table of scenarios: name -> (function, backends, description).

An explicit table, not registration by import side effect. ``selftest`` entries
exist to prove the harness's own failure paths (panic, hang) and never run unless
asked for by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..context import Context
from . import selftest, topology


@dataclass(frozen=True)
class Scenario:
    name: str
    func: Callable[[Context], None]
    backends: tuple[str, ...]
    description: str
    selftest: bool = False


TABLE: tuple[Scenario, ...] = (
    Scenario("mount", topology.mount, ("fanotify",), "tmpfs and bind mounts attach"),
    Scenario("unmount", topology.unmount, ("fanotify",), "plain and lazy unmounts detach"),
    Scenario("move", topology.move, ("fanotify",), "MS_MOVE and move_mount: one move event"),
    Scenario("propagation", topology.propagation, ("fanotify",),
             "a shared mount bound several times: one event per propagated copy"),
    Scenario("fsmount", topology.fsmount, ("fanotify",),
             "fsopen/fsmount/move_mount attaches a new mount"),
    Scenario("selftest-panic", selftest.panic, ("fanotify",),
             "triggers a kernel panic with sysrq 'c' (proves crash detection)", selftest=True),
    Scenario("selftest-hang", selftest.hang, ("fanotify",),
             "sleeps forever (proves timeouts)", selftest=True),
    Scenario("selftest-fail", selftest.fail, ("fanotify",),
             "expects an event that never comes (proves the fail path)", selftest=True),
)

BY_NAME = {s.name: s for s in TABLE}


def default_names(backend: str) -> list[str]:
    """The scenarios a run does when none are named."""
    return [s.name for s in TABLE if backend in s.backends and not s.selftest]
