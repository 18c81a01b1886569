"""Watches on directories that are not mount roots, and who hears what.

"Mount notifications propagate up the tree towards the root, so a watch will catch all of
the events happening in the subtree rooted at the watch." (ver #5 commit message)  A
watch need not be on a mount root, so besides the workspace's own watch (1, on the
workspace tmpfs's root) this scenario watches

- 2: ``m``, the root of a tmpfs mounted in the workspace (a mount root);
- 3: ``w``, a plain directory of the workspace tmpfs (a directory inside a mount);
- 4: ``m/d``, a plain directory of that tmpfs (a directory below a mount point);

and mounts, changes, moves and unmounts things inside and outside each watched subtree.
Each step says which watches must hear of it (the scenario's own reading of that
sentence, checked against the records directly), and every record's IN_SUBTREE is
checked against "NOTIFY_MOUNT_IN_SUBTREE if true indicates that the notification was
generated in the mount subtree rooted at the watch, and not actually in the watch itself":
clear only on a record accounted to (``triggered_on``) the mount the watch is in.  The
oracle's specification model says the same per record.  Up to 0007 the series' walk
started at the root of ``triggered_on`` and never reached watches 3 and 4 for their own
mount's topology changes; 0008 starts it at the mount point.

Only the watch-queue design has watches on a subtree (fanotify marks a whole mount
namespace), so there is no fanotify variant.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import sysc
from ..backends import watch_queue
from ..context import Context, ScenarioSkipped

WORKSPACE, M_ROOT, W_DIR, M_DIR = 1, 2, 3, 4


@dataclass(frozen=True)
class Step:
    label: str
    fn: Callable[[], Any]
    heard: dict[str, tuple[int, ...]]      # event -> the watches that must receive it
    prepare: tuple[str, ...] = ()          # directories to make first


def _mount(path: str) -> None:
    sysc.mount("mnh-dw", path, "tmpfs")


def _steps(ctx: Context) -> list[Step]:
    p = ctx.path

    def mount(*parts: str) -> Callable[[], None]:
        return functools.partial(_mount, p(*parts))

    def umount(*parts: str) -> Callable[[], None]:
        return functools.partial(sysc.umount2, p(*parts))

    ro = sysc.MS_REMOUNT | sysc.MS_BIND | sysc.MS_RDONLY
    return [
        Step("mount tmpfs on w/sub (below the watched plain directory w)", mount("w", "sub"),
             {"NEW_MOUNT": (WORKSPACE, W_DIR)}, (p("w", "sub"),)),
        Step("mount tmpfs on w/sub/x (in the mount below w)", mount("w", "sub", "x"),
             {"NEW_MOUNT": (WORKSPACE, W_DIR)}, (p("w", "sub", "x"),)),
        Step("mount tmpfs on out/o (outside w and m)", mount("out", "o"),
             {"NEW_MOUNT": (WORKSPACE,)}, (p("out", "o"),)),
        Step("mount tmpfs on m/d/e (below the watched directory m/d)", mount("m", "d", "e"),
             {"NEW_MOUNT": (WORKSPACE, M_ROOT, M_DIR)}),
        Step("mount tmpfs on m/f (in m, beside m/d)", mount("m", "f"),
             {"NEW_MOUNT": (WORKSPACE, M_ROOT)}),
        Step("bind remount w/sub read-only (attributes of a mount below w)",
             functools.partial(sysc.mount, None, p("w", "sub"), None, ro),
             {"READONLY": (WORKSPACE, W_DIR), "SETATTR": (WORKSPACE, W_DIR)}),
        Step("mount_setattr(2): m nosuid (the mount that holds m/d, whose root is above it)",
             functools.partial(sysc.mount_setattr, sysc.AT_FDCWD, p("m"), 0,
                               attr_set=sysc.MOUNT_ATTR_NOSUID),
             {"SETATTR": (WORKSPACE, M_ROOT)}),
        Step("MS_MOVE w/sub to out/moved (leaves w's subtree; w/sub/x goes with it)",
             functools.partial(sysc.mount, p("w", "sub"), p("out", "moved"), None,
                               sysc.MS_MOVE),
             {"MOVE_FROM": (WORKSPACE, W_DIR), "MOVE_TO": (WORKSPACE,)}, (p("out", "moved"),)),
        Step("MS_MOVE out/moved to w/back (enters w's subtree)",
             functools.partial(sysc.mount, p("out", "moved"), p("w", "back"), None,
                               sysc.MS_MOVE),
             {"MOVE_FROM": (WORKSPACE,), "MOVE_TO": (WORKSPACE, W_DIR)}, (p("w", "back"),)),
        Step("umount w/back/x (in the mount below w)", umount("w", "back", "x"),
             {"UNMOUNT": (WORKSPACE, W_DIR)}),
        Step("umount w/back (below w)", umount("w", "back"), {"UNMOUNT": (WORKSPACE, W_DIR)}),
        Step("mount tmpfs on w itself (over the watched directory)", mount("w"),
             {"NEW_MOUNT": (WORKSPACE, W_DIR)}),
        Step("mount tmpfs on w/y (in the mount over w)", mount("w", "y"),
             {"NEW_MOUNT": (WORKSPACE, W_DIR)}, (p("w", "y"),)),
        Step("umount w/y", umount("w", "y"), {"UNMOUNT": (WORKSPACE, W_DIR)}),
        Step("umount w (the mount over the watched directory)", umount("w"),
             {"UNMOUNT": (WORKSPACE, W_DIR)}),
        Step("umount m/d/e", umount("m", "d", "e"), {"UNMOUNT": (WORKSPACE, M_ROOT, M_DIR)}),
        Step("umount m/f", umount("m", "f"), {"UNMOUNT": (WORKSPACE, M_ROOT)}),
        Step("umount out/o", umount("out", "o"), {"UNMOUNT": (WORKSPACE,)}),
        Step("umount m (its watches 2 and 4 go with it)", umount("m"),
             {"UNMOUNT": (WORKSPACE,), "REMOVAL": (M_ROOT, M_DIR)}),
    ]


def _check_heard(ctx: Context, step: Step) -> None:
    """The (event, watch) pairs that arrived are the ones the step names."""
    got = sorted({(str(r.get("event")), int(r.get("watch_id", -1))) for r in ctx.last_records})
    want = sorted((ev, wid) for ev, ids in step.heard.items() for wid in ids)
    ctx.check(got == want, f"'{step.label}': heard by {want} (got {got})")


def _check_in_subtree(ctx: Context, step: Step, homes: dict[int, int]) -> None:
    """IN_SUBTREE is clear only on a record accounted to the mount the watch is in."""
    for r in ctx.last_records:
        if r.get("kind") != "mount":
            continue
        wid, trig = r.get("watch_id"), r.get("fields", {}).get("triggered_on")
        at_watch = wid in homes and homes[wid] == trig
        flagged = "IN_SUBTREE" in r.get("flags", ())
        ctx.check(flagged != at_watch,
                  f"'{step.label}': {r.get('event')} to watch {wid} on mount {trig} "
                  f"{'has' if flagged else 'lacks'} IN_SUBTREE")


def dir_watch(ctx: Context) -> None:
    wq = ctx.backend
    if not isinstance(wq, watch_queue.WatchQueueBackend):
        raise ScenarioSkipped("dir-watch is for the watch-queue backend (fanotify marks a "
                              "whole mount namespace; it has no subtree watches)")
    for d in ("w", "out", "m"):
        ctx.mkdir(d)
    ctx.op("mount tmpfs on m", functools.partial(_mount, ctx.path("m")))
    ctx.mkdir("m", "d", "e")
    ctx.mkdir("m", "f")
    wq.add_watch(ctx.path("m"), M_ROOT)
    wq.add_watch(ctx.path("w"), W_DIR)
    wq.add_watch(ctx.path("m", "d"), M_DIR)
    ws_id = sysc.statx_mnt_id(ctx.workspace, unique=False)
    m_id = sysc.statx_mnt_id(ctx.path("m"), unique=False)
    homes = {WORKSPACE: ws_id, W_DIR: ws_id, M_ROOT: m_id, M_DIR: m_id}
    for step in _steps(ctx):
        for d in step.prepare:
            os.makedirs(d, exist_ok=True)
        ctx.op(step.label, step.fn)
        _check_heard(ctx, step)
        _check_in_subtree(ctx, step, homes)
