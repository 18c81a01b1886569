"""Read-only and attribute changes: through mount(2) and mount_setattr(2).

On the watch_queue series these are READONLY and SETATTR records; upstream fanotify
has no attribute events, so there the oracle expects silence.
"""

from __future__ import annotations

import functools
import os

from .. import sysc
from ..context import Context
from ..mounts import snapshot, statmount


def _attr(path: str) -> int:
    return statmount(sysc.statx_mnt_id(path)).attr


def _is_ro(path: str) -> bool:
    return bool(_attr(path) & sysc.MOUNT_ATTR_RDONLY)


def remount_ro(ctx: Context) -> None:
    a, b, c = ctx.mkdir("a"), ctx.mkdir("b"), ctx.mkdir("c")
    ctx.op("mount tmpfs on a", lambda: sysc.mount("t1", a, "tmpfs"))
    ctx.op("bind a onto b", lambda: sysc.mount(a, b, None, sysc.MS_BIND))
    steps = (
        ("mount(2): bind remount b read-only",
         lambda: sysc.mount(None, b, None, sysc.MS_REMOUNT | sysc.MS_BIND | sysc.MS_RDONLY), True),
        ("mount(2): bind remount b read-write",
         lambda: sysc.mount(None, b, None, sysc.MS_REMOUNT | sysc.MS_BIND), False),
        ("mount_setattr(2): b read-only",
         lambda: sysc.mount_setattr(sysc.AT_FDCWD, b, 0, attr_set=sysc.MOUNT_ATTR_RDONLY), True),
        ("mount_setattr(2): b read-write",
         lambda: sysc.mount_setattr(sysc.AT_FDCWD, b, 0, attr_clr=sysc.MOUNT_ATTR_RDONLY), False),
    )
    for label, fn, ro in steps:
        ctx.op(label, fn)
        ctx.check(_is_ro(b) == ro, f"after '{label}' b is {'ro' if _is_ro(b) else 'rw'}")
    os.makedirs(os.path.join(a, "sub"), exist_ok=True)
    ctx.op("mount tmpfs on a/sub", lambda: sysc.mount("t2", os.path.join(a, "sub"), "tmpfs"))
    ctx.op("recursive bind a onto c", lambda: sysc.mount(a, c, None, sysc.MS_BIND | sysc.MS_REC))
    top = sysc.statx_mnt_id(c)
    ctx.op("mount_setattr(2) AT_RECURSIVE: c read-only",
           lambda: sysc.mount_setattr(sysc.AT_FDCWD, c, sysc.AT_RECURSIVE,
                                      attr_set=sysc.MOUNT_ATTR_RDONLY),
           hints={"recursive_root": top})
    ctx.check(_is_ro(c) and _is_ro(os.path.join(c, "sub")), "c and c/sub are read-only")
    ctx.op("mount_setattr(2) AT_RECURSIVE: c read-write",
           lambda: sysc.mount_setattr(sysc.AT_FDCWD, c, sysc.AT_RECURSIVE,
                                      attr_clr=sysc.MOUNT_ATTR_RDONLY),
           hints={"recursive_root": top})
    ctx.check(not _is_ro(c) and not _is_ro(os.path.join(c, "sub")), "c and c/sub are rw")


ATTRS = (("nosuid", sysc.MOUNT_ATTR_NOSUID), ("nodev", sysc.MOUNT_ATTR_NODEV),
         ("noexec", sysc.MOUNT_ATTR_NOEXEC))
MOUNT_ATTR__ATIME = 0x70


def setattr(ctx: Context) -> None:
    a = ctx.mkdir("a")
    ctx.op("mount tmpfs on a", lambda: sysc.mount("t1", a, "tmpfs"))
    for name, bit in ATTRS:
        ctx.op(f"mount_setattr(2): {name} on",
               functools.partial(sysc.mount_setattr, sysc.AT_FDCWD, a, 0, attr_set=bit))
        ctx.check(bool(_attr(a) & bit), f"{name} is set")
        ctx.op(f"mount_setattr(2): {name} off",
               functools.partial(sysc.mount_setattr, sysc.AT_FDCWD, a, 0, attr_clr=bit))
        ctx.check(not _attr(a) & bit, f"{name} is clear")
    ctx.op("mount_setattr(2): noatime on",
           lambda: sysc.mount_setattr(sysc.AT_FDCWD, a, 0, attr_set=sysc.MOUNT_ATTR_NOATIME,
                                      attr_clr=MOUNT_ATTR__ATIME))
    ctx.op("mount_setattr(2): noatime off (relatime)",
           lambda: sysc.mount_setattr(sysc.AT_FDCWD, a, 0, attr_clr=MOUNT_ATTR__ATIME))
    ctx.op("mount(2): bind remount a nosuid,nodev",
           lambda: sysc.mount(None, a, None,
                              sysc.MS_REMOUNT | sysc.MS_BIND | sysc.MS_NOSUID | sysc.MS_NODEV))
    ctx.check(not _is_ro(a), "a is still read-write after nosuid,nodev")
    ctx.op("mount(2): bind remount a plain", lambda: sysc.mount(
        None, a, None, sysc.MS_REMOUNT | sysc.MS_BIND))
    ctx.check(len(snapshot()) > 0, "mount table readable")
