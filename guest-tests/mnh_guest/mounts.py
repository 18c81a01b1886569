"""Mount-table snapshots: statmount/listmount (unique ids) joined with mountinfo."""

from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import asdict, dataclass
from typing import Any

from . import sysc

LSMT_ROOT = 0xFFFFFFFFFFFFFFFF
STATMOUNT_SB_BASIC = 0x1
STATMOUNT_MNT_BASIC = 0x2
STATMOUNT_MNT_ROOT = 0x8
STATMOUNT_MNT_POINT = 0x10
STATMOUNT_FS_TYPE = 0x20
_MASK = (STATMOUNT_SB_BASIC | STATMOUNT_MNT_BASIC | STATMOUNT_MNT_ROOT
         | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE)
# struct mnt_id_req, VER0 (24 bytes): size, spare, mnt_id, param.
_REQ = struct.Struct("<IIQQ")
# struct statmount fixed part (include/uapi/linux/mount.h); strings start at 512.
_SM = struct.Struct("<IIQIIQIIQQIIQQQQQII")
_SM_STR = 512


@dataclass(frozen=True)
class Mount:
    """One mount as the kernel reports it."""

    id: int            # unique 64-bit id (statmount mnt_id)
    parent: int        # unique id of the parent
    old_id: int        # reusable id shown in /proc/self/mountinfo
    old_parent: int
    point: str         # mount point, relative to the caller's root
    root: str          # root of the mount within its filesystem
    fstype: str
    attr: int          # MOUNT_ATTR_* bits
    propagation: int   # MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE
    peer_group: int
    master: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def listmount(root: int = LSMT_ROOT) -> list[int]:
    """Unique ids of all mounts below ``root`` in the caller's namespace."""
    ids: list[int] = []
    last = 0
    batch = 256
    arr = (ctypes.c_uint64 * batch)()
    while True:
        req = ctypes.create_string_buffer(_REQ.pack(_REQ.size, 0, root, last))
        n = sysc.syscall("listmount", req, arr, batch, 0)
        ids.extend(arr[:n])
        if n < batch:
            return ids
        last = ids[-1]


def statmount(mnt_id: int) -> Mount:
    req = ctypes.create_string_buffer(_REQ.pack(_REQ.size, 0, mnt_id, _MASK))
    size = 4096
    while True:
        buf = ctypes.create_string_buffer(size)
        try:
            sysc.syscall("statmount", req, buf, size, 0)
            break
        except OSError as exc:
            if exc.errno != 75 or size > 1 << 20:  # EOVERFLOW: buffer too small
                raise
            size *= 4
    raw = buf.raw
    f = _SM.unpack_from(raw, 0)
    (_size, _opts, _mask, _maj, _min, _magic, _sbflags, fs_type, uid, uparent, old, oldp,
     attr, prop, peer, master, _pfrom, mnt_root, mnt_point) = f

    def string(off: int) -> str:
        start = _SM_STR + off
        end = raw.index(b"\0", start)
        return os.fsdecode(raw[start:end])

    return Mount(id=uid, parent=uparent, old_id=old, old_parent=oldp, point=string(mnt_point),
                 root=string(mnt_root), fstype=string(fs_type), attr=attr, propagation=prop,
                 peer_group=peer, master=master)


def snapshot() -> dict[int, Mount]:
    """The caller's mount namespace, keyed by unique mount id."""
    table: dict[int, Mount] = {}
    for mid in listmount():
        try:
            table[mid] = statmount(mid)
        except OSError as exc:
            if exc.errno != 2:  # ENOENT: unmounted between listmount and statmount
                raise
    return table


def mountinfo() -> list[dict[str, str]]:
    """/proc/self/mountinfo, parsed (ids as the kernel prints them)."""
    rows = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            a = left.split()
            b = right.split()
            rows.append({"id": a[0], "parent": a[1], "root": a[3], "point": a[4],
                         "options": a[5], "optional": " ".join(a[6:]),
                         "fstype": b[0] if b else "", "source": b[1] if len(b) > 1 else ""})
    return rows
