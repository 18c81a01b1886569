"""How a guest is started and reached: one interface, two transports.

- ``vng``: virtme-ng shares the host's root read-only over 9p; the results directory is
  the guest's one writable host directory, so nothing is copied
  (``harness.vm.vng_boot.VngTransport``).
- ``image``: QEMU with a self-contained Debian image; the runner starts over SSH and its
  results come back over SFTP (``harness.vm.image_boot.ImageTransport``).

``get`` picks one from what was asked (as tuxmake's ``Runtime.get`` does) and checks,
before anything boots, what that transport needs: vng installed, or the image sound and
its ports free. ``run``, ``shell``, ``bisect`` and ``repro`` all go through it.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Any, Protocol

from harness.errors import BootError
from harness.vm import image_boot, qemucmd
from harness.vm.machine import Machine, ShellRequest
from harness.vm.supervise import BootResult, Timeouts
from harness.vm.vng_boot import VngTransport

__all__ = ["Machine", "ShellRequest", "Transport", "VngTransport", "announce_gdb", "get"]


class Transport(Protocol):
    """What run, shell, bisect and repro need of a way to boot a guest."""

    @property
    def mode(self) -> str:
        """"vng" or "image"."""
        ...

    def guest_results(self, guest_out: Path) -> str:
        """Where, inside the guest, the runner writes what ends up in ``guest_out``."""
        ...

    def runner_args(self) -> list[str]:
        """Arguments this transport adds to the runner's command line."""
        ...

    def command(self, argv: list[str], guest_out: Path) -> list[str]:
        """The host command line that boots the guest (for command.json)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What results.json says about the transport."""
        ...

    def run(self, argv: list[str], guest_out: Path, console_path: Path, timeouts: Timeouts,
            uploads: list[Path]) -> tuple[BootResult, dict[str, Any]]:
        """Boot, run ``argv`` (the runner) and stop the guest; ``uploads`` are host files
        of ``guest_out`` the runner reads (abi.json). Returns the boot result and the
        transport's timing details."""
        ...

    def shell(self, req: ShellRequest) -> int:
        """An interactive guest; the exit status of the commands (or 0)."""
        ...


def get(machine: Machine, image: str | None = None, ssh_port: int | None = None,
        hardware_modules: bool = False) -> Transport:
    """The transport for ``image`` (image mode) or virtme-ng, checked before boot: a bad
    image, a port taken or a missing vng fails in seconds, naming the fix."""
    if image:
        return image_boot.ImageTransport.prepare(machine, image, ssh_port)
    if shutil.which("vng") is None:
        raise BootError("virtme-ng (vng) is not installed. Run `harness doctor --install`.")
    if machine.gdb_port is not None:
        qemucmd.check_port(machine.gdb_port, "gdb stub")
    return VngTransport(machine, hardware_modules=hardware_modules)


def announce_gdb(machine: Machine) -> None:
    """Print how to attach gdb to the stub (stderr), when there is one."""
    if machine.gdb_port is None:
        return
    hint = shlex.join(qemucmd.gdb_command(machine.kernel.vmlinux, machine.gdb_port))
    missing = "" if machine.kernel.vmlinux else "  (no vmlinux for this kernel: no symbols)"
    print(f"harness: gdb stub on {qemucmd.LOOPBACK}:{machine.gdb_port}; attach with: "
          f"{hint}{missing}", file=sys.stderr, flush=True)
