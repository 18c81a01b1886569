"""A real automount, and its expiry by the kernel, over loopback NFSv4.

EXPIRY comes only from mark_mounts_for_expiry(), which NFS runs on its automounted
submounts (fs/nfs/namespace.c, nfs_expire_automounts(), every
/proc/sys/fs/nfs/nfs_mountpoint_timeout seconds: the first pass marks a submount,
the second unmounts it if nothing used it in between). So the scenario serves NFS
to itself: it exports a tmpfs with a second tmpfs mounted below it (each with its
own fsid), mounts the export from 127.0.0.1 inside the watched workspace, reads
the directory that crosses into the second file system (the client automounts it:
finish_automount() -> do_add_mount()), and then waits, touching nothing, until the
kernel expires the submount.

The oracle gets what the mount table cannot say as hints: the new mount is a
submount, and its removal is an expiry. Every step that can block on the network
runs in a forked child with a deadline (the child shares this mount namespace),
and the server is stopped and the client unmounted however the scenario ends.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from .. import mounts, nfsd, sysc
from ..context import Context, ScenarioFailed, ScenarioSkipped

# The runner kills a scenario after 60 s (run.py --timeout), and a killed scenario cannot
# stop its server: the waits below stay well inside that.
EXPIRY_PERIOD = 2          # s, written to nfs_mountpoint_timeout for the scenario
EXPIRY_SLACK = 14.0        # s on top of three periods (a slow TCG guest)
NET_TIMEOUT = 20.0         # s for any one NFS mount, lookup or unmount
# NFSv4.0 over TCP from loopback (the default kernel's client has no NFS_V4_1, and 4.0 is in
# every NFSv4 client); soft, so a dead server fails calls instead of hanging.
NFS_OPTIONS = "vers=4.0,proto=tcp,addr=127.0.0.1,clientaddr=127.0.0.1,soft,timeo=100,retrans=2"
EXPORT_OPTIONS = "rw,sync,no_subtree_check,no_root_squash,insecure"


def bounded(fn: Callable[[], Any], timeout: float, what: str) -> None:
    """Run ``fn`` in a forked child (same namespaces); OSError if it fails or is late."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            fn()
        except OSError as exc:
            code = exc.errno if exc.errno and 0 < exc.errno < 255 else 254
        except BaseException:
            code = 255
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            end = time.monotonic() + 10
            while time.monotonic() < end and not os.waitpid(pid, os.WNOHANG)[0]:
                time.sleep(0.05)
            raise TimeoutError(f"{what}: no answer within {timeout:.0f} s (child killed)")
        time.sleep(0.02)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        raise OSError(0, f"{what}: the child was killed by signal {-code}")
    if code in (254, 255):
        raise OSError(0, f"{what}: the child failed with "
                      f"{'an OSError without errno' if code == 254 else 'an exception'}")
    if code != 0:
        raise OSError(code, f"{what}: {os.strerror(code)}")


def probe_fs(fstype: str) -> None:
    """Make the kernel load ``fstype`` (request_module) without mounting anything."""
    try:
        os.close(sysc.fsopen(fstype))
    except OSError as exc:
        if exc.errno == errno.ENODEV:
            raise ScenarioSkipped(f"this kernel has no {fstype} file system (CONFIG_NFSD, "
                                  "CONFIG_NFS_V4): boot a kernel with the nfs fragment") from exc
        raise


def mounted_at(point: str) -> mounts.Mount | None:
    for m in mounts.snapshot().values():
        if m.point == point:
            return m
    return None


def wait_gone(mnt_id: int, deadline: float) -> str:
    """Poll listmount (which takes no reference, so it never clears the expiry mark)."""
    start = time.monotonic()
    while time.monotonic() < deadline:
        if mnt_id not in mounts.listmount():
            return f"gone after {time.monotonic() - start:.1f} s"
        time.sleep(0.2)
    return f"still mounted after {time.monotonic() - start:.1f} s"


def _expect_marker(directory: str) -> None:
    names = os.listdir(directory)
    if "marker" not in names:
        raise OSError(errno.ENOENT, f"{directory} over NFS lists {names}, not the second "
                      "file system's marker")


def automount_expiry(ctx: Context) -> None:
    probe_fs("nfsd")
    probe_fs("nfs4")   # also registers the fs.nfs sysctls (a module on Debian's kernels)
    srv = ctx.mkdir("srv")
    sub = os.path.join(srv, "sub")
    mnt = ctx.mkdir("mnt")
    ctx.op("mount tmpfs on srv (the export root)", lambda: sysc.mount("nfs-root", srv, "tmpfs"))
    os.mkdir(sub)
    ctx.op("mount tmpfs on srv/sub (a second file system)",
           lambda: sysc.mount("nfs-sub", sub, "tmpfs"))
    with open(os.path.join(sub, "marker"), "w", encoding="ascii") as f:
        f.write("on the second file system\n")
    if mounted_at(nfsd.NFSD_FS) is None:
        ctx.op("mount the nfsd control file system on /proc/fs/nfsd",
               lambda: sysc.mount("nfsd", nfsd.NFSD_FS, "nfsd"))
    server = nfsd.Server([
        nfsd.Export(srv, f"{EXPORT_OPTIONS},fsid=0,crossmnt"),
        nfsd.Export(sub, f"{EXPORT_OPTIONS},fsid=1"),
    ], log_dir=f"/tmp/mnh-nfsd-{os.getpid()}")
    old_period: int | None = None
    try:
        ctx.op("start the loopback NFSv4 server (no mount changes)", server.start)
        old_period = nfsd.read_int(nfsd.MOUNTPOINT_TIMEOUT)
        nfsd.write_value(nfsd.MOUNTPOINT_TIMEOUT, EXPIRY_PERIOD)
        ctx.log.write("expiry-period", seconds=EXPIRY_PERIOD, was=old_period)
        try:
            ctx.op("mount nfs4 127.0.0.1:/ on mnt", lambda: bounded(
                lambda: sysc.mount("127.0.0.1:/", mnt, "nfs4", 0, NFS_OPTIONS),
                NET_TIMEOUT, "the NFS mount"))
        except ScenarioFailed:
            died = server.mountd_died()
            if died:
                # Not the kernel under test: the server's userspace went away, so the
                # kernel's export upcalls got no answer (an error, blamed on the harness).
                raise nfsd.NfsServerError(
                    f"the guest's rpc.mountd {died} while the NFS mount waited for it, so "
                    f"the mount got no answer; see mountd_log in this scenario's log "
                    "(the nfs-utils of the guest's root, not the kernel under test)") from None
            raise
        ctx.op("automount: read mnt/sub (crosses into the second file system)",
               lambda: bounded(lambda: _expect_marker(os.path.join(mnt, "sub")),
                               NET_TIMEOUT, "reading mnt/sub"),
               hints={"submount": True})
        submount = mounted_at(os.path.join(mnt, "sub"))
        ctx.check(submount is not None and submount.fstype == "nfs4",
                  f"an nfs4 submount appeared on mnt/sub (found {submount})")
        if submount is None:
            return
        start = time.monotonic()
        deadline = start + 3 * EXPIRY_PERIOD + EXPIRY_SLACK
        outcome = ctx.op(f"expiry: wait (touching nothing) until the kernel expires the "
                         f"submount (period {EXPIRY_PERIOD} s)",
                         lambda: wait_gone(submount.id, deadline), hints={"expiry": True})
        ctx.log.write("expiry-wait", seconds=round(time.monotonic() - start, 3),
                      outcome=outcome)
        ctx.check(str(outcome).startswith("gone"),
                  f"the kernel expired the NFS submount within {deadline - start:.0f} s "
                  f"({outcome})")
        ctx.op("umount mnt", lambda: bounded(lambda: sysc.umount2(mnt), NET_TIMEOUT,
                                             "unmounting the NFS mount"))
    finally:
        _cleanup(ctx, server, mnt, old_period)


def _cleanup(ctx: Context, server: nfsd.Server, mnt: str, old_period: int | None) -> None:
    """Never leave an NFS mount, a running nfsd or mountd, or the short period behind."""
    problems: list[str] = []
    if mounted_at(mnt) is not None:
        try:  # lazy: never blocks on a dead server
            sysc.umount2(mnt, sysc.MNT_DETACH)
        except OSError as exc:
            problems.append(f"lazy umount of {mnt}: {exc}")
    problems += server.stop()
    if old_period is not None:
        try:
            nfsd.write_value(nfsd.MOUNTPOINT_TIMEOUT, old_period)
        except OSError as exc:
            problems.append(f"restoring nfs_mountpoint_timeout: {exc}")
    ctx.log.write("nfs-server", transcript=server.transcript, mountd_log=server.mountd_log(),
                  problems=problems)
    ctx.check(not problems, "clean NFS shutdown: " + ("; ".join(problems) or "ok"))
