"""The table of scenarios: name -> (function, backends, description).

An explicit table, not registration by import side effect. Each entry names its
function as ``module:function`` in this package and the module is imported when the
scenario runs: a guest that runs one scenario (a bisect step) does not pay, under TCG,
for importing the NFS server, the stress threads and the rest. ``selftest`` entries
exist to prove the harness's own failure paths (panic, hang) and never run unless
asked for by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..context import Context

BOTH = ("fanotify", "watch-queue")
WQ = ("watch-queue",)


@dataclass(frozen=True)
class Scenario:
    name: str
    target: str                 # "module:function" in this package
    backends: tuple[str, ...]
    description: str
    selftest: bool = False
    default: bool = True        # run when no scenario is named
    stress: bool = False        # long racing loops for `harness repro`; never in a default run

    @property
    def func(self) -> Callable[[Context], None]:
        module, _, function = self.target.partition(":")
        found: Callable[[Context], None] = getattr(
            importlib.import_module(f"{__package__}.{module}"), function)
        return found


TABLE: tuple[Scenario, ...] = (
    Scenario("basic", "queue:basic", WQ,
             "one NEW_MOUNT whose ids match mountinfo and whose watch id is ours"),
    Scenario("mount", "topology:mount", BOTH,
             "tmpfs, bind, recursive bind, and an open_tree(OPEN_TREE_CLONE) copy attached"),
    Scenario("unmount", "topology:unmount", BOTH,
             "plain and lazy unmounts; unmounting the watched mount (REMOVAL)"),
    Scenario("move", "topology:move", BOTH,
             "MS_MOVE and move_mount(2); both/only source/only destination in a watched subtree"),
    Scenario("propagation", "topology:propagation", BOTH,
             "shared peers and a slave: one event per propagated copy"),
    Scenario("fsmount", "topology:fsmount", BOTH, "fsopen/fsmount/move_mount attaches a mount"),
    Scenario("namespaces", "topology:namespaces", BOTH,
             "a mount in another mount namespace is not reported here"),
    Scenario("remount-ro", "attrs:remount_ro", BOTH,
             "read-only and back via mount(2), mount_setattr(2), and AT_RECURSIVE"),
    Scenario("setattr", "attrs:setattr", BOTH,
             "nosuid/nodev/noexec/noatime on and off: never claims IS_NOW_RO"),
    Scenario("expire", "expiry:umount_expire", BOTH,
             "umount2(MNT_EXPIRE): EAGAIN, EBUSY while in use, unmount on the second call"),
    Scenario("automount-expiry", "automount:automount_expiry", BOTH,
             "a loopback NFSv4 automount (IS_SUBMOUNT) that the kernel expires (EXPIRY)"),
    Scenario("bad-input", "queue:bad_input", WQ,
             "watch_mount rejects bad flags, ids, fds and paths with the right errno"),
    Scenario("overrun", "queue:overrun", WQ,
             "a 1-note queue overruns: LOSS record, then a resync from the mount table"),
    Scenario("filters", "queue:filters", WQ,
             "two watches on one queue, a subtype filter, removing a watch with id -1"),
    Scenario("dir-watch", "dirwatch:dir_watch", WQ,
             "watches on a mount root, a plain directory and a directory below a mount "
             "point: which mounts each hears of, and IN_SUBTREE"),
    Scenario("keys", "queue:keys", WQ, "key notifications still work (core regression guard)"),
    Scenario("selftest-panic", "selftest:panic", BOTH,
             "triggers a kernel panic with sysrq 'c' (proves crash detection)", selftest=True),
    Scenario("selftest-hang", "selftest:hang", BOTH,
             "sleeps forever (proves timeouts)", selftest=True),
    Scenario("selftest-fail", "selftest:fail", BOTH,
             "a check that fails (proves the fail path)", selftest=True),
    Scenario("stress-race", "stress:race", WQ, "threads mount/move/unmount while others add "
             "and remove watches, close and reopen the queue, and read it", stress=True),
    Scenario("stress-lazy", "stress:lazy", WQ, "watched trees unmounted with MNT_DETACH, freed "
             "when the last descriptor closes", stress=True),
    Scenario("stress-watches", "stress:watches", WQ,
             "128 watches on one small queue while mounts churn below them", stress=True),
)

BY_NAME = {s.name: s for s in TABLE}


def default_names(backend: str) -> list[str]:
    """The scenarios a run does when none are named."""
    return [s.name for s in TABLE
            if backend in s.backends and not s.selftest and not s.stress and s.default]


def stress_names() -> list[str]:
    """The stress scenarios (``harness repro``'s default)."""
    return [s.name for s in TABLE if s.stress]
