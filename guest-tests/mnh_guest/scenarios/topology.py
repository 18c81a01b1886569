"""Topology scenarios: every expectation comes from the oracle's topology diff."""

from __future__ import annotations

import functools
import os

from .. import sysc
from ..backends import watch_queue
from ..context import Context


def _wq(ctx: Context) -> watch_queue.WatchQueueBackend | None:
    """The watch-queue backend, for the steps only that design has (extra watches)."""
    b = ctx.backend
    return b if isinstance(b, watch_queue.WatchQueueBackend) else None


def _attach_clone(source: str, target: str) -> None:
    """open_tree(OPEN_TREE_CLONE | AT_RECURSIVE) a copy of ``source``, attach it at ``target``."""
    fd = sysc.open_tree(sysc.AT_FDCWD, source,
                        sysc.OPEN_TREE_CLONE | sysc.OPEN_TREE_CLOEXEC | sysc.AT_RECURSIVE)
    try:
        sysc.move_mount(fd, "", sysc.AT_FDCWD, target, sysc.MOVE_MOUNT_F_EMPTY_PATH)
    finally:
        os.close(fd)


def mount(ctx: Context) -> None:
    a = ctx.mkdir("a")
    b = ctx.mkdir("b")
    ctx.op("mount tmpfs on a", lambda: sysc.mount("t1", a, "tmpfs"))
    os.makedirs(os.path.join(a, "sub"), exist_ok=True)
    ctx.op("bind a onto b", lambda: sysc.mount(a, b, None, sysc.MS_BIND))
    ctx.op("mount tmpfs on a/sub", lambda: sysc.mount("t2", os.path.join(a, "sub"), "tmpfs"))
    c = ctx.mkdir("c")
    ctx.op("recursive bind a onto c", lambda: sysc.mount(a, c, None, sysc.MS_BIND | sysc.MS_REC))
    d = ctx.mkdir("d")
    # A detached copy of the tree at a (a and a/sub) is attached in one move_mount.
    ctx.op("attach an open_tree(OPEN_TREE_CLONE) copy of a at d", lambda: _attach_clone(a, d))


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
    w = ctx.mkdir("w")
    ctx.op("mount tmpfs on w", lambda: sysc.mount("t3", w, "tmpfs"))
    wq = _wq(ctx)
    if wq is not None:
        # A watch on w itself: unmounting w destroys the watched mount, so that watch
        # gets its META/REMOVAL record, while the workspace watch sees the UNMOUNT.
        wq.add_watch(w, 7)
        w_old = sysc.statx_mnt_id(w, unique=False)
    ctx.op("umount the watched mount w", lambda: sysc.umount2(w))
    if wq is not None:
        removal = [r for r in ctx.last_records if r.get("event") == "REMOVAL"]
        ctx.check(len(removal) == 1 and removal[0]["watch_id"] == 7,
                  f"one REMOVAL record for watch 7 (got {removal})")
        if removal and wq.abi.get("removal_id_destroyed") == "mount_id":
            got = removal[0]["fields"].get("id")
            ctx.check(got == w_old, f"the REMOVAL record names mount {w_old} (got {got})")


def move(ctx: Context) -> None:
    a = ctx.mkdir("a")
    b = ctx.mkdir("b")
    c = ctx.mkdir("c")
    ctx.op("mount tmpfs on a", lambda: sysc.mount("t1", a, "tmpfs"))
    ctx.op("MS_MOVE a to b", lambda: sysc.mount(a, b, None, sysc.MS_MOVE))
    ctx.op("move_mount b to c", lambda: sysc.move_mount(sysc.AT_FDCWD, b, sysc.AT_FDCWD, c, 0))
    # A watched subtree "in" (its own mount, watch 2 on watch-queue) and a place "out"
    # beside it: a move with both parents inside, only the source inside, only the
    # destination inside.  The oracle delivers MOVE_FROM/MOVE_TO by where each parent is.
    inner = ctx.mkdir("in")
    out = ctx.mkdir("out")
    ctx.op("mount tmpfs on in", lambda: sysc.mount("inner", inner, "tmpfs"))
    wq = _wq(ctx)
    if wq is not None:
        wq.add_watch(inner, 2)
    p, q = os.path.join(inner, "p"), os.path.join(inner, "q")
    r, s = os.path.join(out, "r"), os.path.join(inner, "s")
    for d in (p, q, r, s):
        os.makedirs(d, exist_ok=True)
    ctx.op("mount tmpfs on in/p", lambda: sysc.mount("m", p, "tmpfs"))
    ctx.op("MS_MOVE in/p to in/q (both parents inside the watched subtree)",
           lambda: sysc.mount(p, q, None, sysc.MS_MOVE))
    ctx.op("move_mount in/q to out/r (only the source inside)",
           lambda: sysc.move_mount(sysc.AT_FDCWD, q, sysc.AT_FDCWD, r, 0))
    ctx.op("MS_MOVE out/r to in/s (only the destination inside)",
           lambda: sysc.mount(r, s, None, sysc.MS_MOVE))
    # A tree: the mount below the moved one goes with it but keeps its place in its
    # parent, so the move is reported for the moved mount only.
    sub, t = os.path.join(c, "sub"), ctx.mkdir("t")
    os.makedirs(sub, exist_ok=True)
    ctx.op("mount tmpfs on c/sub", lambda: sysc.mount("tree", sub, "tmpfs"))
    ctx.op("MS_MOVE c to t (a tree: c/sub goes with it, unmoved in c)",
           lambda: sysc.mount(c, t, None, sysc.MS_MOVE))


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
    # A slave of the peer group: mounts propagate into it, but not back out of it.
    slave = ctx.mkdir("slave")
    ctx.op("bind shared onto slave", lambda: sysc.mount(base, slave, None, sysc.MS_BIND))
    ctx.op("make slave a slave", lambda: sysc.mount(None, slave, None, sysc.MS_SLAVE))
    leaf2 = os.path.join(base, "leaf2")
    os.makedirs(leaf2, exist_ok=True)
    ctx.op("mount tmpfs on shared/leaf2 (propagates to the peers and the slave)",
           lambda: sysc.mount("t3", leaf2, "tmpfs"))
    own = os.path.join(slave, "own")
    os.makedirs(own, exist_ok=True)
    ctx.op("mount tmpfs on slave/own (does not propagate back to the master)",
           lambda: sysc.mount("t4", own, "tmpfs"))


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
