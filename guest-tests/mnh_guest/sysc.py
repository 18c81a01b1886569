"""ctypes bindings for the system calls the scenarios drive (x86_64 numbers)."""

from __future__ import annotations

import ctypes
import os
import struct

# The C library the interpreter itself links (dlopen(NULL)): no ctypes.util.find_library,
# which runs `ldconfig -p` in a child process, a cost every guest boot paid under TCG.
_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

# x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
NR = {
    "pipe2": 293,
    "keyctl": 250,
    "fanotify_init": 300,
    "fanotify_mark": 301,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "mount_setattr": 442,
    "statmount": 457,
    "listmount": 458,
}

AT_FDCWD = -100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_NO_AUTOMOUNT = 0x800
AT_SYMLINK_NOFOLLOW = 0x100

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000

OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6

MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_NOATIME = 0x10

STATX_MNT_ID = 0x1000
STATX_MNT_ID_UNIQUE = 0x4000


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _cstr(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def syscall(name: str, *args: object) -> int:
    """Call a raw system call by name; raise OSError on failure."""
    cargs = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return _check(_syscall(ctypes.c_long(NR[name]), *cargs), name)


def mount(source: str | None, target: str, fstype: str | None = None,
          flags: int = 0, data: str | None = None) -> None:
    _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                            ctypes.c_ulong, ctypes.c_char_p]
    _check(_libc.mount(_cstr(source), _cstr(target), _cstr(fstype), flags, _cstr(data)),
           f"mount {target}")


def umount2(target: str, flags: int = 0) -> None:
    _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    _check(_libc.umount2(_cstr(target), flags), f"umount2 {target}")


def unshare(flags: int) -> None:
    _libc.unshare.argtypes = [ctypes.c_int]
    _check(_libc.unshare(flags), "unshare")


def pipe2(flags: int) -> tuple[int, int]:
    fds = (ctypes.c_int * 2)()
    syscall("pipe2", fds, flags)
    return fds[0], fds[1]


def open_tree(dfd: int, path: str, flags: int) -> int:
    return syscall("open_tree", dfd, _cstr(path), flags)


def move_mount(from_dfd: int, from_path: str, to_dfd: int, to_path: str, flags: int) -> None:
    syscall("move_mount", from_dfd, _cstr(from_path), to_dfd, _cstr(to_path), flags)


def fsopen(fstype: str, flags: int = FSOPEN_CLOEXEC) -> int:
    return syscall("fsopen", _cstr(fstype), flags)


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None,
             aux: int = 0) -> None:
    syscall("fsconfig", fd, cmd, _cstr(key), _cstr(value), aux)


def fsmount(fsfd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    return syscall("fsmount", fsfd, flags, attr_flags)


class MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0) -> None:
    attr = MountAttr(attr_set, attr_clr, propagation, 0)
    syscall("mount_setattr", dfd, _cstr(path), flags, ctypes.byref(attr), ctypes.sizeof(attr))


def statx_mnt_id(path: str, unique: bool = True) -> int:
    """The mount id of ``path`` (the 64-bit unique id by default)."""
    buf = ctypes.create_string_buffer(256)
    mask = STATX_MNT_ID_UNIQUE if unique else STATX_MNT_ID
    _libc.statx.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_uint,
                            ctypes.c_void_p]
    _check(_libc.statx(AT_FDCWD, _cstr(path), AT_SYMLINK_NOFOLLOW, mask, buf), f"statx {path}")
    got_mask = struct.unpack_from("<I", buf.raw, 0)[0]
    if not got_mask & mask:
        raise OSError(0, f"statx {path}: kernel did not fill mask {mask:#x}")
    return int(struct.unpack_from("<Q", buf.raw, 0x90)[0])
