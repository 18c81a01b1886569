"""A loopback NFSv4 server inside the guest (for the automount-expiry scenario).

The kernel's nfsd does the serving; three programs of nfs-utils (Debian package
``nfs-kernel-server``, found on the guest's root file system) drive it:

- ``exportfs`` writes the exports table (``/var/lib/nfs/etab``);
- ``rpc.mountd`` answers the kernel's export cache upcalls (which export, which
  client); with NFS versions 2 and 3 off it serves no MOUNT protocol, so no
  rpcbind is needed;
- ``rpc.nfsd`` starts the kernel server (NFSv4 only, TCP on 127.0.0.1) and stops
  it again (``rpc.nfsd 0``).

The nfsd control file system must already be mounted on ``/proc/fs/nfsd`` (the
scenario mounts it as one of its operations, so the oracle sees that mount).
Every command runs with a timeout; ``stop`` undoes ``start`` step by step, keeps
going when a step fails, and reports what failed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

NFSD_FS = "/proc/fs/nfsd"
MOUNTPOINT_TIMEOUT = "/proc/sys/fs/nfs/nfs_mountpoint_timeout"
# rpc.mountd reads the mount table through this path (for crossmnt exports) and crashes
# when it cannot open it.
MTAB = "/etc/mtab"
TOOLS = ("rpc.nfsd", "rpc.mountd", "exportfs")
# The tools live in sbin, which a non-login PATH may lack.
SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


class NfsServerError(RuntimeError):
    """The loopback NFS server could not be started (infrastructure, not the kernel)."""


@dataclass(frozen=True)
class Export:
    path: str
    options: str
    client: str = "127.0.0.1"


def find_tool(name: str) -> str:
    path = os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    found = shutil.which(name, path=path)
    if found is None:
        raise NfsServerError(f"{name} is not installed on the guest's root file system: install "
                             "nfs-kernel-server on the host (`harness doctor --install`)")
    return found


def loopback_up() -> bool:
    """Bring ``lo`` up if it is down (the kernel then adds 127.0.0.1); True if it was down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack_from("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        if flags & IFF_UP:
            return False
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))
        return True


def read_int(path: str) -> int:
    with open(path, encoding="ascii") as f:
        return int(f.read().split()[0])


def write_value(path: str, value: int | str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(f"{value}\n")


@dataclass
class Server:
    """An NFSv4 server on 127.0.0.1 exporting ``exports``; logs go to ``log_dir``."""

    exports: list[Export]
    log_dir: str
    timeout: float = 15.0          # per command
    threads: int = 2
    transcript: list[dict[str, Any]] = field(default_factory=list)
    _mountd: subprocess.Popen[bytes] | None = None
    _exported: list[Export] = field(default_factory=list)
    _started: bool = False

    def _run(self, argv: list[str]) -> None:
        start = time.monotonic()
        try:
            res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                 timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            self.transcript.append({"argv": argv, "rc": None, "timeout": self.timeout})
            raise NfsServerError(f"`{' '.join(argv)}` did not finish within {self.timeout:.0f} s"
                                 ) from exc
        out = (res.stdout + res.stderr).decode(errors="replace").strip()
        self.transcript.append({"argv": argv, "rc": res.returncode, "output": out[-2000:],
                                "seconds": round(time.monotonic() - start, 3)})
        if res.returncode != 0:
            raise NfsServerError(f"`{' '.join(argv)}` failed with status {res.returncode}: "
                                 f"{out[-500:] or 'no output'}")

    def start(self) -> None:
        """Export, start mountd, start nfsd threads; raise NfsServerError on failure."""
        nfsd, mountd, exportfs = (find_tool(t) for t in TOOLS)
        if not os.path.exists(MTAB):
            raise NfsServerError(f"{MTAB} is missing on the guest's root file system: "
                                 "rpc.mountd opens it to answer for crossmnt exports and "
                                 "segfaults without it; make it a symbolic link to "
                                 "/proc/self/mounts (the harness's image recipe does)")
        threads = os.path.join(NFSD_FS, "threads")
        if not os.path.exists(threads):
            raise NfsServerError(f"{threads} is missing: mount the nfsd file system on "
                                 f"{NFSD_FS} first")
        if read_int(threads) != 0:
            raise NfsServerError("an NFS server already runs in this guest (nfsd threads "
                                 f"{read_int(threads)}); stop it first (`rpc.nfsd 0`)")
        self.transcript.append({"lo_was_down": loopback_up()})
        for e in self.exports:
            # -i: ignore /etc/exports; the exports are exactly these.
            self._run([exportfs, "-i", "-o", e.options, f"{e.client}:{e.path}"])
            self._exported.append(e)
        os.makedirs(self.log_dir, exist_ok=True)
        log = open(os.path.join(self.log_dir, "rpc.mountd.log"), "wb")  # noqa: SIM115
        try:
            # -F foreground (so it can be stopped), -N 2 -N 3: NFSv4 only, no MOUNT service
            # and no rpcbind registration; -u: no UDP.
            self._mountd = subprocess.Popen([mountd, "-F", "-N", "2", "-N", "3", "-u"],
                                            stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        time.sleep(0.2)
        if self._mountd.poll() is not None:
            raise NfsServerError(f"rpc.mountd exited at once with status "
                                 f"{self._mountd.returncode}; see {self.log_dir}/rpc.mountd.log")
        # NFSv4 only (nfs-utils 2.6 no longer knows version 2: "-N 2" is an error), TCP on
        # loopback; the shortest lease and grace times nfsd accepts.
        self._started = True
        self._run([nfsd, "-N", "3", "-U", "-H", "127.0.0.1",
                   "-L", "10", "-G", "10", str(self.threads)])
        if read_int(threads) == 0:
            raise NfsServerError("rpc.nfsd succeeded but no nfsd thread runs")

    def mountd_died(self) -> str:
        """How rpc.mountd ended, if it did ("" while it runs): an NFS request that gets no
        answer after that is the guest userspace's failure, not the kernel's."""
        if self._mountd is None or self._mountd.poll() is None:
            return ""
        rc = self._mountd.returncode
        if rc < 0:
            try:
                return f"was killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"was killed by signal {-rc}"
        return f"exited with status {rc}"

    def stop(self) -> list[str]:
        """Undo ``start``, each step whatever the others did; the problems, if any."""
        problems: list[str] = []
        if self._started:
            try:
                self._run([find_tool("rpc.nfsd"), "0"])
            except NfsServerError as exc:
                problems.append(str(exc))
                try:
                    write_value(os.path.join(NFSD_FS, "threads"), 0)
                except OSError as exc2:
                    problems.append(f"writing 0 to {NFSD_FS}/threads: {exc2}")
            self._started = False
        if self._exported:
            try:
                # Unexport everything and flush the kernel's export caches (they hold
                # references to the exported directories).
                self._run([find_tool("exportfs"), "-u", "-a"])
            except NfsServerError as exc:
                problems.append(str(exc))
            self._exported = []
        if self._mountd is not None:
            self._mountd.terminate()
            try:
                self._mountd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._mountd.kill()
                try:
                    self._mountd.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    problems.append(f"rpc.mountd (pid {self._mountd.pid}) survived SIGKILL")
            self.transcript.append({"mountd_exit": self._mountd.returncode})
            self._mountd = None
        return problems

    def mountd_log(self) -> str:
        try:
            with open(os.path.join(self.log_dir, "rpc.mountd.log"), "rb") as f:
                return f.read()[-4000:].decode(errors="replace")
        except OSError:
            return ""
