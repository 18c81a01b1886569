"""The watch_queue backend: the mount-notification series (``watch_mount``).

The series' facts (syscall number, record layout, subtypes, flags) come from its
metadata (``patches/<series>/series.toml``, section ``[abi]``), which the host
passes in as JSON; nothing about the layout is a constant here.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import struct
from typing import Any

from .. import decode, sysc
from ..context import ScenarioSkipped
from ..mounts import Mount, snapshot
from ..oracle import watch_queue as wq_oracle
from ..oracle import watch_queue_impl as wq_impl
from ..oracle.model import Prediction
from ..oracle.topology import mount_at, rel_in
from .reader import read_until

O_NOTIFICATION_PIPE = os.O_EXCL
IOC_WATCH_QUEUE_SET_SIZE = 0x5760
IOC_WATCH_QUEUE_SET_FILTER = 0x5761
KEYCTL_WATCH_KEY = 32


def load_abi(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        abi: dict[str, Any] = json.load(f)
    return abi


def open_queue(size: int, nonblock: bool = True) -> tuple[int, int]:
    """A notification pipe of ``size`` notes; (read fd, write fd)."""
    flags = O_NOTIFICATION_PIPE | os.O_CLOEXEC | (os.O_NONBLOCK if nonblock else 0)
    try:
        rfd, wfd = sysc.pipe2(flags)
    except OSError as exc:
        if exc.errno == errno.ENOPKG:
            raise ScenarioSkipped("pipe2(O_NOTIFICATION_PIPE) failed with ENOPKG: this kernel "
                                  "has no CONFIG_WATCH_QUEUE") from exc
        raise
    fcntl.ioctl(wfd, IOC_WATCH_QUEUE_SET_SIZE, size)
    return rfd, wfd


def type_filter(entries: list[tuple[int, list[int]]]) -> bytes:
    """A ``watch_notification_filter`` for (type, subtypes) pairs (no info filtering)."""
    out = struct.pack("<II", len(entries), 0)
    for wtype, subtypes in entries:
        words = [0] * 8
        for st in subtypes:
            words[st // 32] |= 1 << (st % 32)
        out += struct.pack("<III8I", wtype, 0, 0, *words)
    return out


def set_filter(wfd: int, entries: list[tuple[int, list[int]]] | None) -> None:
    if entries is None:
        fcntl.ioctl(wfd, IOC_WATCH_QUEUE_SET_FILTER, 0)
        return
    # A bytes argument makes fcntl pass a pointer to a copy of it; an int argument
    # (such as ctypes.addressof) is converted to a C int and overflows.
    fcntl.ioctl(wfd, IOC_WATCH_QUEUE_SET_FILTER, type_filter(entries))


class WatchQueueBackend:
    """A notification pipe with mount watches on it."""

    name = "watch-queue"

    def __init__(self, abi: dict[str, Any], queue_size: int = 256) -> None:
        self.abi = abi
        self.layout = decode.WatchLayout.from_abi(abi)
        self.nr_watch_mount = int(abi["syscall_watch_mount"])
        self.queue_size = queue_size
        self.rfd = self.wfd = -1
        self.watches: list[wq_oracle.Watch] = []
        self.counters: dict[tuple[str, int], int] = {}
        self.counter_problems: list[str] = []
        # Records owed by an operation the mount table does not show (a removed watch).
        self.pending: list[dict[str, Any]] = []

    # --- the system call -----------------------------------------------------
    def watch_mount(self, path: str, watch_id: int, dfd: int = sysc.AT_FDCWD,
                    at_flags: int = 0, queue_fd: int | None = None) -> None:
        fd = self.wfd if queue_fd is None else queue_fd
        arg = None if path is None else os.fsencode(path)
        ret = sysc._syscall(ctypes.c_long(self.nr_watch_mount), ctypes.c_long(dfd), arg,
                            ctypes.c_long(at_flags), ctypes.c_long(fd), ctypes.c_long(watch_id))
        if ret < 0:
            err = ctypes.get_errno()
            if err == errno.ENOSYS:
                raise ScenarioSkipped(f"watch_mount (syscall {self.nr_watch_mount}) is not in "
                                      "this kernel: boot a kernel built with the series")
            raise OSError(err, f"watch_mount({path!r}, id {watch_id}): {os.strerror(err)}")

    def add_watch(self, path: str, watch_id: int) -> None:
        self.watch_mount(path, watch_id)
        table = snapshot()
        m = mount_at(table, path)
        self.watches.append(wq_oracle.Watch(watch_id, m.id, rel_in(m, path)))

    def remove_watch(self, path: str, watch_id_for_oracle: int) -> None:
        """``watch_mount(path, -1)``; the core posts META/REMOVAL to the removed watch."""
        self.watch_mount(path, -1)
        self.pending.append(wq_oracle.explicit_removal(watch_id_for_oracle))
        table = snapshot()
        m = mount_at(table, path)
        rel = rel_in(m, path)
        self.watches = [w for w in self.watches
                        if not (w.mount == m.id and w.rel == rel)]

    # --- Backend protocol ----------------------------------------------------------
    def open(self, workspace: str | None = None) -> None:
        self.rfd, self.wfd = open_queue(self.queue_size)
        if workspace is not None:
            self.add_watch(workspace, 1)

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            if fd >= 0:
                os.close(fd)
        self.rfd = self.wfd = -1

    def read_raw(self, deadline: float, want: int) -> bytes:
        """Read records until the queue is empty and ``want`` came, or the deadline."""
        return read_until(self.rfd, deadline, want, self._count)

    def _count(self, data: bytes) -> int:
        return sum(1 for r in decode.decode_watch_queue(data, (self.layout,))
                   if not isinstance(r, decode.Problem))

    def drain(self, deadline: float, want: int) -> tuple[bytes, list[dict[str, Any]]]:
        raw = self.read_raw(deadline, want)
        recs = [r.to_json() for r in decode.decode_watch_queue(raw, (self.layout,))]
        self._check_counters(recs)
        return raw, recs

    def expected(self, before: dict[int, Mount], after: dict[int, Mount],
                 hints: dict[str, Any]) -> Prediction:
        """Both models' records for this change; then the watches its unmounts removed go."""
        spec = wq_oracle.expected(before, after, self.watches, hints) + self.pending
        impl = wq_impl.expected(before, after, self.watches, hints) + self.pending
        self.pending = []
        gone = before.keys() - after.keys()
        self.watches = [w for w in self.watches if w.mount not in gone]
        return Prediction(spec, impl)

    def take_problems(self) -> list[str]:
        out, self.counter_problems = self.counter_problems, []
        return out

    def key(self, record: dict[str, Any]) -> tuple[Any, ...]:
        return wq_oracle.key(record)

    def identity(self, record: dict[str, Any]) -> Any:
        return wq_oracle.identity(record)

    def _check_counters(self, recs: list[dict[str, Any]]) -> None:
        """Change counters of a mount only ever go up (they wrap at 2**32).

        "Every mount is given a change counter than counts the number of topological
        rearrangements in which it is involved and the number of attribute changes it
        undergoes." (ver #5 commit message)
        """
        seen: set[tuple[Any, ...]] = set()
        for r in recs:
            if r.get("kind") != "mount":
                continue
            f = r.get("fields", {})
            ident = (r.get("event"), f.get("triggered_on"), f.get("auxiliary_mount"))
            if ident in seen:  # the same event delivered to several watches
                continue
            seen.add(ident)
            topo = r.get("event") in ("NEW_MOUNT", "UNMOUNT", "MOVE_FROM", "MOVE_TO")
            obs = [(("topology", f["triggered_on"]), f.get("topology_changes"))] if topo else \
                  [(("attr", f["triggered_on"]), f.get("attr_changes"))]
            if topo and f.get("auxiliary_mount"):
                obs.append((("topology", f["auxiliary_mount"]), f.get("aux_topology_changes")))
            for k, v in obs:
                if v is None:
                    continue
                prev = self.counters.get(k)
                if prev is not None and (v - prev) % (1 << 32) == 0:
                    self.counter_problems.append(
                        f"{r.get('event')}: {k[0]} counter of mount {k[1]} did not increase "
                        f"(still {v})")
                self.counters[k] = v
