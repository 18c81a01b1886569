"""The fanotify backend: upstream mount events (Linux 6.15+) on a mount namespace."""

from __future__ import annotations

import errno
import os
from typing import Any

from .. import decode, sysc
from ..context import ScenarioSkipped
from ..mounts import Mount
from ..oracle import fanotify as rules
from ..oracle.model import Prediction
from .reader import read_until

FAN_CLASS_NOTIF = 0x0
FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_REPORT_MNT = 0x00004000
FAN_MARK_ADD = 0x1
FAN_MARK_MNTNS = 0x110


class FanotifyBackend:
    """A fanotify group that reports ATTACH/DETACH for the caller's mount namespace."""

    name = "fanotify"

    def __init__(self) -> None:
        self.fd = -1
        self.raw_log: list[bytes] = []

    def open(self, workspace: str | None = None) -> None:
        try:
            self.fd = sysc.syscall("fanotify_init",
                                   FAN_CLASS_NOTIF | FAN_REPORT_MNT | FAN_NONBLOCK | FAN_CLOEXEC,
                                   os.O_RDONLY)
        except OSError as exc:
            if exc.errno in (errno.EINVAL, errno.ENOSYS):
                raise ScenarioSkipped(f"fanotify_init(FAN_REPORT_MNT) failed with "
                                  f"{errno.errorcode.get(exc.errno or 0)}: this kernel has no "
                                  f"fanotify mount events (they need Linux 6.15+)") from exc
            raise
        nsfd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            sysc.syscall("fanotify_mark", self.fd, FAN_MARK_ADD | FAN_MARK_MNTNS,
                         decode.FAN_MNT_ATTACH | decode.FAN_MNT_DETACH, nsfd, None)
        finally:
            os.close(nsfd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def read_raw(self, deadline: float, want: int) -> bytes:
        """Read events until the queue is empty and ``want`` events came, or the deadline."""
        return read_until(self.fd, deadline, want, _count)

    def drain(self, deadline: float, want: int) -> tuple[bytes, list[dict[str, Any]]]:
        raw = self.read_raw(deadline, want)
        self.raw_log.append(raw)
        return raw, [r.to_json() for r in decode.decode_fanotify(raw)]

    @staticmethod
    def take_problems() -> list[str]:
        return []

    @staticmethod
    def expected(before: dict[int, Mount], after: dict[int, Mount],
                 hints: dict[str, Any] | None = None) -> Prediction:
        """The specification model only: there is no as-implemented model of fanotify."""
        return Prediction(rules.expected(before, after, hints))

    @staticmethod
    def key(record: dict[str, Any]) -> tuple[Any, ...]:
        return rules.key(record)

    @staticmethod
    def identity(record: dict[str, Any]) -> Any:
        return rules.identity(record)


def _count(data: bytes) -> int:
    return sum(1 for r in decode.decode_fanotify(data) if isinstance(r, decode.FanEvent))
