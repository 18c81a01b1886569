"""Expiry: the umount2(MNT_EXPIRE) two-step.

The first MNT_EXPIRE call only marks the mount and fails with EAGAIN; a mount in
use fails with EBUSY; any use of the mount (a reference dropped through mntput)
clears the mark; the second call on a still-marked mount unmounts it. This path
reports an unmount, not EXPIRY: EXPIRY comes only from mark_mounts_for_expiry(),
i.e. from automounted submounts (NFS, CIFS, AFS).
"""

from __future__ import annotations

import errno
import os

from .. import sysc
from ..context import Context


def umount_expire(ctx: Context) -> None:
    a = ctx.mkdir("a")
    ctx.op("mount tmpfs on a", lambda: sysc.mount("t1", a, "tmpfs"))
    ctx.op("MNT_EXPIRE|MNT_DETACH is invalid",
           lambda: sysc.umount2(a, sysc.MNT_EXPIRE | sysc.MNT_DETACH), expect_errno=errno.EINVAL)
    ctx.op("MNT_EXPIRE, first call: marks, EAGAIN",
           lambda: sysc.umount2(a, sysc.MNT_EXPIRE), expect_errno=errno.EAGAIN)
    fd = os.open(os.path.join(a, "busy"), os.O_CREAT | os.O_RDWR, 0o600)
    ctx.op("MNT_EXPIRE while a file is open: EBUSY",
           lambda: sysc.umount2(a, sysc.MNT_EXPIRE), expect_errno=errno.EBUSY)
    os.close(fd)  # the last reference goes through mntput, which clears the mark
    ctx.op("MNT_EXPIRE after use: marks again, EAGAIN",
           lambda: sysc.umount2(a, sysc.MNT_EXPIRE), expect_errno=errno.EAGAIN)
    ctx.op("MNT_EXPIRE, second call: unmounts", lambda: sysc.umount2(a, sysc.MNT_EXPIRE))
