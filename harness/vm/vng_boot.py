"""virtme-ng mode's boot step: the host's root over 9p, the results directory shared
read-write, the kernel console on vng's stderr (``harness.vm.supervise`` watches it)."""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BootError
from harness.vm import qemucmd
from harness.vm.guest import GUEST_DIR
from harness.vm.machine import SHELL_COMMAND_TIMEOUT, Machine, ShellRequest
from harness.vm.supervise import BootResult, Timeouts, stop_process, supervise
from harness.vm.vngcmd import VmSpec, vng_command


@dataclass(frozen=True)
class VngTransport:
    """virtme-ng: the host's root over 9p, the results directory shared read-write."""

    machine: Machine
    hardware_modules: bool = False     # let udev load QEMU's chipset drivers (vngcmd)
    mode: str = "vng"

    def guest_results(self, guest_out: Path) -> str:
        return str(guest_out)          # the very directory: shared with the guest

    def runner_args(self) -> list[str]:
        return []

    def spec(self, argv: list[str] | tuple[str, ...], rwdir: Path,
             stdout: Path | None = None, stderr: Path | None = None) -> VmSpec:
        m = self.machine
        gdb = (f"-gdb tcp:{qemucmd.LOOPBACK}:{m.gdb_port}",) if m.gdb_port else ()
        return VmSpec(kernel=m.kernel.image, accel=m.accel, guest_command=tuple(argv),
                      cwd=GUEST_DIR, rwdirs=(rwdir,), memory=m.memory, cpus=m.cpus,
                      append=m.append, hardware_modules=self.hardware_modules,
                      qemu_opts=gdb, stdout_file=stdout, stderr_file=stderr)

    def command(self, argv: list[str], guest_out: Path) -> list[str]:
        return vng_command(self.spec(argv, guest_out, guest_out / "runner.stdout",
                                     guest_out / "runner.stderr"))

    def describe(self) -> dict[str, Any]:
        return {"mode": "vng"}

    def run(self, argv: list[str], guest_out: Path, console_path: Path, timeouts: Timeouts,
            uploads: list[Path]) -> tuple[BootResult, dict[str, Any]]:
        # uploads are already in guest_out, which the guest sees at the same path.
        cmd = self.command(argv, guest_out)
        return supervise(cmd, console_path, guest_out.parent / "vng.stdout", timeouts), {}

    def shell(self, req: ShellRequest) -> int:
        ready = "/tmp/mnh-watch.ready"
        watch = list(req.watch_argv)
        if req.abi_file is not None:
            watch += ["--abi", str(req.abi_file)]
        # The watch in the background; the commands (or bash) once it says it is watching.
        script = (f"rm -f {ready}; {shlex.join([*watch, '--ready-file', ready])} & i=0; "
                  f"while [ ! -e {ready} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
                  + (" ; ".join([*req.commands, "sleep 1"]) if req.commands
                     else "exec bash -i"))
        cmd = vng_command(self.spec(("sh", "-c", script), req.session))
        timeout = None if req.interactive else req.boot_timeout + SHELL_COMMAND_TIMEOUT
        try:
            proc = subprocess.Popen(cmd, start_new_session=not req.interactive)
        except OSError as exc:
            raise BootError(f"Could not start vng: {exc}. Run `harness doctor --install`.") \
                from exc
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BootError(f"The guest did not finish the commands within {timeout:.0f} s; "
                            f"it was stopped.") from exc
        finally:
            if proc.poll() is None:
                stop_process(proc)
