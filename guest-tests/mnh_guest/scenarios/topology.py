"""Topology scenarios: every expectation comes from the oracle's topology diff."""

from __future__ import annotations

import functools
import os

from .. import sysc
from ..context import Context


def mount(ctx: Context) -> None:
    a = ctx.mkdir("a")
    b = ctx.mkdir("b")
    ctx.op("mount tmpfs on a", lambda: sysc.mount("t1", a, "tmpfs"))
    os.makedirs(os.path.join(a, "sub"), exist_ok=True)
    ctx.op("bind a onto b", lambda: sysc.mount(a, b, None, sysc.MS_BIND))
    ctx.op("mount tmpfs on a/sub", lambda: sysc.mount("t2", os.path.join(a, "sub"), "tmpfs"))
    c = ctx.mkdir("c")
    ctx.op("recursive bind a onto c", lambda: sysc.mount(a, c, None, sysc.MS_BIND | sysc.MS_REC))


def unmount(ctx: Context) -> None:
    a = ctx.mkdir("a")
    ctx.op("mount tmpfs on a", lambda: sysc.mount("t1", a, "tmpfs"))
    ctx.op("umount a", lambda: sysc.umount2(a))
    ctx.op("mount tmpfs on a again", lambda: sysc.mount("t1", a, "tmpfs"))
    for sub in ("x", "y"):
        d = os.path.join(a, sub)
        os.makedirs(d)
        ctx.op(f"mount tmpfs on a/{sub}", functools.partial(sysc.mount, "t2", d, "tmpfs"))
    ctx.op("lazy umount of the tree at a", lambda: sysc.umount2(a, sysc.MNT_DETACH))


def move(ctx: Context) -> None:
    a = ctx.mkdir("a")
    b = ctx.mkdir("b")
    c = ctx.mkdir("c")
    ctx.op("mount tmpfs on a", lambda: sysc.mount("t1", a, "tmpfs"))
    ctx.op("MS_MOVE a to b", lambda: sysc.mount(a, b, None, sysc.MS_MOVE))
    ctx.op("move_mount b to c", lambda: sysc.move_mount(sysc.AT_FDCWD, b, sysc.AT_FDCWD, c, 0))


def propagation(ctx: Context) -> None:
    base = ctx.mkdir("shared")
    ctx.op("mount tmpfs on shared", lambda: sysc.mount("t1", base, "tmpfs"))
    ctx.op("make shared", lambda: sysc.mount(None, base, None, sysc.MS_SHARED))
    for i in range(1, 4):
        target = os.path.join(base, f"b{i}")
        os.makedirs(target, exist_ok=True)
        ctx.op(f"bind shared onto shared/b{i}",
               functools.partial(sysc.mount, base, target, None, sysc.MS_BIND))
    leaf = os.path.join(base, "leaf")
    os.makedirs(leaf, exist_ok=True)
    ctx.op("mount tmpfs on shared/leaf (propagates to every peer)",
           lambda: sysc.mount("t2", leaf, "tmpfs"))


def fsmount(ctx: Context) -> None:
    target = ctx.mkdir("new")

    def attach() -> None:
        fsfd = sysc.fsopen("tmpfs")
        try:
            sysc.fsconfig(fsfd, sysc.FSCONFIG_CMD_CREATE)
            mfd = sysc.fsmount(fsfd)
        finally:
            os.close(fsfd)
        try:
            sysc.move_mount(mfd, "", sysc.AT_FDCWD, target, sysc.MOVE_MOUNT_F_EMPTY_PATH)
        finally:
            os.close(mfd)

    ctx.op("fsopen/fsmount/move_mount tmpfs onto new", attach)
    ctx.op("umount new", lambda: sysc.umount2(target))


def namespaces(ctx: Context) -> None:
    """A mount in another mount namespace is not reported to a watch in this one."""
    x = ctx.mkdir("x")

    def mount_elsewhere() -> None:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                sysc.unshare(sysc.CLONE_NEWNS)
                sysc.mount(None, "/", None, sysc.MS_REC | sysc.MS_PRIVATE)
                sysc.mount("other-ns", x, "tmpfs")
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise OSError(0, "the mount in the other namespace failed")

    ctx.op("mount tmpfs on x in another mount namespace", mount_elsewhere)
    ctx.op("mount tmpfs on x here", lambda: sysc.mount("here", x, "tmpfs"))
