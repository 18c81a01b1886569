"""Does KVM really work here? A real probe, not a look at /dev/kvm.

On a machine without nested virtualisation /dev/kvm can exist and a trivial guest
can even run, yet a Linux guest dies on its first VEX instruction ("KVM internal
error") or hangs. So the probe boots a real kernel under KVM with ``-cpu host`` (as
virtme-ng does) with no root file system and waits for the panic that says it got
as far as mounting root. That takes about a second when KVM works. The verdict is
cached per host (QEMU version, host kernel, CPU model), so it is paid once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from harness import paths

PROBE_TIMEOUT = 20.0
# The kernel got far enough: it looked for its root file system (or ran init).
_REACHED = (b"VFS: Unable to mount root fs", b"Kernel panic - not syncing", b"Run /init")
_BROKEN = (b"KVM internal error", b"KVM: entry failed", b"failed to initialize kvm",
           b"Could not access KVM kernel module")


@dataclass(frozen=True)
class Accel:
    """The accelerator a boot uses, and why."""

    name: str      # "kvm" or "tcg"
    reason: str
    probed: bool   # True when a real kernel boot decided it

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def probe_command(qemu: str, kernel: Path) -> list[str]:
    """QEMU command line of the KVM probe (pure)."""
    return [
        qemu,
        "-accel", "kvm",
        "-cpu", "host",             # what virtme-ng uses with KVM; the MSR/VEX failures show here
        "-m", "256",
        "-smp", "1",
        "-display", "none",
        "-nodefaults",              # no NIC, no VGA: nothing but the serial port below
        "-no-reboot",               # panic=-1 then ends QEMU
        "-serial", "stdio",
        "-kernel", str(kernel),
        "-append", "console=ttyS0 panic=-1 loglevel=3 root=/dev/nonexistent",
    ]


def probe_boot(kernel: Path, qemu: str = "qemu-system-x86_64",
               timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Boot ``kernel`` under KVM until it looks for root; (works, evidence)."""
    cmd = probe_command(qemu, kernel)
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    assert proc.stdout is not None
    seen = b""
    try:
        while time.monotonic() - start < timeout:
            ready, _, _ = select.select([proc.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    # End of output comes a moment before the exit status: wait for it,
                    # or an exiting QEMU would be reported as a hang.
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=max(0.0, timeout - (time.monotonic() - start)))
                    break
                seen = (seen + chunk)[-65536:]
                for marker in _BROKEN:
                    if marker in seen:
                        return False, f"QEMU reported '{marker.decode()}' while booting a kernel"
                for marker in _REACHED:
                    if marker in seen:
                        return True, (f"a kernel booted under KVM to '{marker.decode()}' in "
                                      f"{time.monotonic() - start:.1f} s")
            elif proc.poll() is not None:
                break
        if proc.poll() is None:
            return False, f"a kernel under KVM printed nothing useful for {timeout:.0f} s (hang)"
        tail = seen.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return False, f"QEMU with KVM exited with status {proc.returncode}: {tail[0]}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()


def _host_key(qemu: str) -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run([qemu, "--version"], capture_output=True, text=True,
                             check=False).stdout.splitlines()[:1]
    raw = json.dumps([platform.release(), model, version])
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def choose(kernel: Path | None, qemu: str = "qemu-system-x86_64") -> Accel:
    """Pick KVM when it really works, TCG otherwise; cached per host."""
    forced = os.environ.get("MNH_ACCEL", "").lower()
    if forced in ("kvm", "tcg"):
        return Accel(forced, f"forced by MNH_ACCEL={forced}", probed=False)
    if not os.path.exists("/dev/kvm"):
        return Accel("tcg", "/dev/kvm does not exist", probed=False)
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accel("tcg", "/dev/kvm is not readable and writable by this user "
                            "(add the user to group kvm)", probed=False)
    if shutil.which(qemu) is None:
        return Accel("tcg", f"{qemu} is not installed", probed=False)
    cache = paths.cache_dir("accel") / f"{_host_key(qemu)}.json"
    if cache.exists():
        data = json.loads(cache.read_text())
        return Accel(data["name"], data["reason"] + " (cached probe)", probed=True)
    if kernel is None:
        return Accel("tcg", "/dev/kvm exists but KVM was not probed yet (no kernel at hand); "
                            "TCG until a real probe says otherwise", probed=False)
    works, evidence = probe_boot(kernel, qemu)
    accel = Accel("kvm" if works else "tcg",
                  evidence if works else f"KVM does not work: {evidence}; using TCG", probed=True)
    with tempfile.NamedTemporaryFile("w", dir=cache.parent, delete=False) as f:
        json.dump(accel.to_json(), f)
    os.replace(f.name, cache)
    return accel
