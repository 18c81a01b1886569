"""The virtme-ng command line, built by pure functions (tested without a VM)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VmSpec:
    """Everything that decides how a guest is started."""

    kernel: Path
    accel: str                          # "kvm" or "tcg"
    guest_command: tuple[str, ...]      # argv run inside the guest
    cwd: Path                           # guest working directory (shared read-only)
    rwdirs: tuple[Path, ...] = ()       # host directories the guest may write
    cpus: int = 2
    memory: str = "1G"
    force_9p: bool = True
    append: tuple[str, ...] = ()
    qemu_opts: tuple[str, ...] = ()
    stdout_file: Path | None = None     # where the guest command's stdout goes (in the guest)
    stderr_file: Path | None = None
    env: tuple[tuple[str, str], ...] = field(default=())


# Kernel command line the harness always adds, and why.
BASE_APPEND = (
    "panic=-1",              # a panic ends QEMU (-no-reboot) instead of sitting there
    "softlockup_panic=0",    # report soft lockups on the console, keep running
    "printk.devkmsg=on",     # the runner's /dev/kmsg markers are never rate-limited away
)


def guest_shell(spec: VmSpec) -> str:
    """The shell string vng's --exec runs in the guest (argv quoted, output redirected)."""
    parts = [f"export {k}={shlex.quote(v)};" for k, v in spec.env]
    parts.append("exec " + shlex.join(spec.guest_command))
    if spec.stdout_file is not None:
        parts.append(f"> {shlex.quote(str(spec.stdout_file))}")
    if spec.stderr_file is not None:
        parts.append(f"2> {shlex.quote(str(spec.stderr_file))}")
    return " ".join(parts)


def vng_command(spec: VmSpec, vng: str = "vng") -> list[str]:
    """``vng --run`` argv for ``spec``; the kernel console goes to vng's stderr."""
    cmd = [
        vng,
        "--run", str(spec.kernel),
        "--verbose",                       # kernel console on stderr: captured to its own file
        "--cpus", str(spec.cpus),
        "--memory", spec.memory,
        "--cwd", str(spec.cwd),
    ]
    if spec.accel != "kvm":
        cmd.append("--disable-kvm")        # TCG; vng picks -cpu max
    if spec.force_9p:
        cmd.append("--force-9p")           # skip the virtiofsd start-up wait when it is absent
    for d in spec.rwdirs:
        cmd += ["--rwdir", str(d)]
    for a in (*BASE_APPEND, *spec.append):
        cmd += ["--append", a]
    for o in spec.qemu_opts:
        cmd += ["--qemu-opts", o]
    cmd += ["--exec", guest_shell(spec)]
    return cmd
