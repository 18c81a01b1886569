"""``harness doctor``: check every host prerequisite, and install what is missing.

The table below is the single list of what the harness needs on the host; the
README's "fresh machine" command and CI both go through ``doctor --install``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.vm import accel

MIN_FREE_GB = 20
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")


@dataclass(frozen=True)
class Prereq:
    name: str
    kind: str          # "exe" (on PATH), "file" (exists), "python" (importable module)
    target: str        # executable name, file path, or module name
    apt: str = ""      # Debian package that provides it
    pip: str = ""      # PyPI distribution that provides it
    why: str = ""
    needed_for: str = "run"   # "run" or "build"


PREREQS: tuple[Prereq, ...] = (
    Prereq("QEMU", "exe", "qemu-system-x86_64", apt="qemu-system-x86", why="runs the guest"),
    Prereq("qemu-img", "exe", "qemu-img", apt="qemu-utils", why="guest disk images"),
    Prereq("virtme-ng", "exe", "vng", pip="virtme-ng", why="boots a kernel on the host's root"),
    Prereq("depmod", "exe", "depmod", apt="kmod", why="virtme-ng indexes kernel modules"),
    Prereq("busybox", "exe", "busybox", apt="busybox-static", why="virtme-ng's initramfs"),
    Prereq("udevadm", "exe", "udevadm", apt="udev", why="virtme-ng-init starts udev in guest"),
    Prereq("dpkg-deb", "exe", "dpkg-deb", apt="dpkg", why="unpacks prebuilt Debian kernels"),
    Prereq("apt-get", "exe", "apt-get", apt="apt", why="downloads prebuilt Debian kernels"),
    # The automount-expiry scenario runs a loopback NFSv4 server inside the guest, whose
    # root is the host's: the server's userland must be installed on the host.
    Prereq("rpc.nfsd", "exe", "rpc.nfsd", apt="nfs-kernel-server",
           why="guest NFS server (automount-expiry)"),
    Prereq("rpc.mountd", "exe", "rpc.mountd", apt="nfs-kernel-server",
           why="answers the guest nfsd's export upcalls"),
    Prereq("exportfs", "exe", "exportfs", apt="nfs-kernel-server",
           why="exports the guest NFS server's directories"),
    Prereq("mmdebstrap", "exe", "mmdebstrap", apt="mmdebstrap",
           why="builds the guest image (image mode)"),
    Prereq("mke2fs", "exe", "mke2fs", apt="e2fsprogs",
           why="packs and checks the guest image (image mode)"),
    Prereq("git", "exe", "git", apt="git", why="applies series (git am), bisects",
           needed_for="build"),
    Prereq("gcc", "exe", "gcc", apt="gcc", why="compiles the kernel", needed_for="build"),
    Prereq("make", "exe", "make", apt="make", needed_for="build"),
    Prereq("flex", "exe", "flex", apt="flex", needed_for="build"),
    Prereq("bison", "exe", "bison", apt="bison", needed_for="build"),
    Prereq("bc", "exe", "bc", apt="bc", needed_for="build"),
    Prereq("cpio", "exe", "cpio", apt="cpio", needed_for="build"),
    Prereq("xz", "exe", "xz", apt="xz-utils", why="unpacks linux-source", needed_for="build"),
    Prereq("lz4", "exe", "lz4", apt="lz4", why="fast kernel compression", needed_for="build"),
    Prereq("zstd", "exe", "zstd", apt="zstd", needed_for="build"),
    Prereq("ccache", "exe", "ccache", apt="ccache", why="cached rebuilds", needed_for="build"),
    Prereq("libelf headers", "file", "/usr/include/gelf.h", apt="libelf-dev",
           why="objtool", needed_for="build"),
    Prereq("OpenSSL headers", "file", "/usr/include/openssl/ssl.h", apt="libssl-dev",
           why="kernel signing tools", needed_for="build"),
    Prereq("linux-source-6.12", "file", "/usr/src/linux-source-6.12.tar.xz",
           apt="linux-source-6.12", why="the base tree of the bundled series",
           needed_for="build"),
)


@contextlib.contextmanager
def no_service_starts(policy: Path = POLICY_RC_D) -> Iterator[bool]:
    """While installing, deny package scripts any service start (Debian's policy-rc.d,
    exit status 101): nfs-kernel-server would otherwise start nfsd and rpcbind on the
    host, which only the guest needs. A machine's own policy-rc.d is left alone; True
    when this one was written (and is removed again)."""
    if policy.exists() or not os.access(policy.parent, os.W_OK):
        yield False
        return
    policy.write_text("#!/bin/sh\n# harness doctor --install: no service starts while it "
                      "installs\nexit 101\n")
    policy.chmod(0o755)
    try:
        yield True
    finally:
        policy.unlink(missing_ok=True)


@dataclass(frozen=True)
class Check:
    prereq: Prereq
    ok: bool
    detail: str


def check(p: Prereq) -> Check:
    if p.kind == "exe":
        found = shutil.which(p.target)
        return Check(p, found is not None, found or "not on PATH")
    if p.kind == "file":
        ok = Path(p.target).exists()
        return Check(p, ok, p.target if ok else f"{p.target} missing")
    if p.kind == "python":
        try:
            ok = importlib.util.find_spec(p.target) is not None
        except ModuleNotFoundError:   # a parent package of a dotted name is missing
            ok = False
        return Check(p, ok, p.target if ok else f"Python module {p.target} not importable")
    raise ValueError(p.kind)


def install_commands(missing: list[Prereq]) -> list[list[str]]:
    """The exact commands that install ``missing`` (pure)."""
    cmds: list[list[str]] = []
    apt = sorted({p.apt for p in missing if p.apt})
    pip = sorted({p.pip for p in missing if p.pip})
    if apt:
        cmds.append(["apt-get", "update"])
        cmds.append(["apt-get", "install", "-y", "--no-install-recommends", *apt])
    if pip:
        cmds.append([sys.executable, "-m", "pip", "install", *pip])
    return cmds


def free_gb(path: Path) -> float:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize / 1e9


def _any_cached_kernel() -> Path | None:
    base = paths.cache_root() / "kernels" / "debian"
    if base.is_dir():
        for vmlinuz in sorted(base.glob("*/usr/lib/modules/*/vmlinuz"), reverse=True):
            return vmlinuz
    builds = paths.cache_root() / "builds"
    if builds.is_dir():
        for img in sorted(builds.glob("*/bzImage")):
            return img
    return None


def doctor(install: bool, probe_kernel: Path | None = None) -> int:
    checks = [check(p) for p in PREREQS]
    missing = [c.prereq for c in checks if not c.ok]
    if missing and install:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for cmd in install_commands(missing):
            if os.geteuid() != 0 and cmd[0] == "apt-get":
                cmd = ["sudo", *cmd]
            print("+ " + " ".join(cmd), file=sys.stderr)
            with no_service_starts():
                res = subprocess.run(cmd, env=env, check=False, timeout=1800)
            if res.returncode != 0:
                print(f"doctor: `{' '.join(cmd)}` failed with status {res.returncode}; fix "
                      "the package manager's error above and run `harness doctor --install` "
                      "again.", file=sys.stderr)
                return 2
        checks = [check(p) for p in PREREQS]
        missing = [c.prereq for c in checks if not c.ok]
    for c in checks:
        mark = "ok  " if c.ok else "MISS"
        why = f"  ({c.prereq.why})" if c.prereq.why else ""
        print(f"[{mark}] {c.prereq.name:<18} {c.detail}{why}")
    cache = paths.cache_root()
    cache.mkdir(parents=True, exist_ok=True)
    gb = free_gb(cache)
    disk_ok = gb >= MIN_FREE_GB
    print(f"[{'ok  ' if disk_ok else 'LOW '}] {'free disk':<18} {gb:.0f} GB in {cache} "
          f"(a kernel build wants {MIN_FREE_GB} GB)")
    kernel = probe_kernel or _any_cached_kernel()
    if shutil.which("qemu-system-x86_64"):
        a = accel.choose(kernel)
        print(f"[{'ok  ' if a.name == 'kvm' else 'tcg '}] {'accelerator':<18} {a.name}: {a.reason}")
    if missing:
        print("\nMissing prerequisites. Install them with:", file=sys.stderr)
        for cmd in install_commands(missing):
            prefix = "" if os.geteuid() == 0 else "sudo "
            print("  " + prefix + " ".join(cmd), file=sys.stderr)
        print("or run `harness doctor --install`.", file=sys.stderr)
        return 1
    return 0
