"""Image mode's boot step: QEMU with the image, the serial console, the runner over SSH.

The same runner, the same markers, the same verdicts as virtme-ng mode; only the
transport differs. The sequence:

1. QEMU starts (``harness.qemu``) with the console on pexpect (``harness.serial``);
   the boot clock runs until the runner's start marker, as with vng.
2. The init's "ready" line (or a panic, QEMU's exit, the boot deadline) ends the
   console wait; the root shell on the console answers a first command.
3. paramiko logs in with the image's key, verifying the recorded host key; the
   guest-tests and the series metadata go in over SFTP.
4. The runner starts over SSH; ``boot.watch`` applies the layered timeouts to the
   console. Each scenario's verdict and log come back over SFTP as soon as its end
   marker shows, and only then does the host let the runner go on (``--ack-timeout``:
   it creates ``NAME.ack``), so a later panic loses nothing already decided.
5. The rest of the results come back, and the guest is powered off (sysrq 'o').
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from harness.errors import BootError, HostKeyError, ImageError
from harness.kernel.image import Kernel
from harness.vm import initramfs, qemucmd
from harness.vm.image import Image
from harness.vm.serial import SerialConsole
from harness.vm.ssh import GuestSSH, write_session
from harness.vm.supervise import KILL_GRACE, PANIC_GRACE, BootResult, Timeouts, watch

log = logging.getLogger("harness")

GUEST_ROOT = "/root/mnh"
GUEST_TESTS = f"{GUEST_ROOT}/guest-tests"
GUEST_RESULTS = f"{GUEST_ROOT}/results"
# The runner waits this long after each scenario for the host to copy its verdict out.
ACK_TIMEOUT = 30.0
POWEROFF_WAIT = 20.0
SHELL_CHECK_TIMEOUT = 30.0


@dataclass(frozen=True)
class ImageBoot:
    """What image mode needs beyond the runner's argv."""

    kernel: Kernel
    image: Image
    accel: str
    cpus: int
    memory: str
    append: tuple[str, ...]
    ssh_port: int
    gdb_port: int | None = None


def spec_for(b: ImageBoot) -> qemucmd.QemuSpec:
    return qemucmd.QemuSpec(kernel=b.kernel.image, image=b.image.path, accel=b.accel,
                         ssh_port=b.ssh_port,
                         initrd=initramfs.build(b.kernel.image, b.kernel.release),
                         cpus=b.cpus, memory=b.memory, append=b.append, gdb_port=b.gdb_port)


class _RunnerGuest:
    """``boot.Guest`` for image mode: ends when the runner's SSH command ends, or QEMU."""

    def __init__(self, serial: SerialConsole, ssh: GuestSSH, chan: Any) -> None:
        self.serial = serial
        self.ssh = ssh
        self.chan = chan
        self.runner_status: int | None = None
        self.qemu_status: int | None = None

    def poll(self) -> int | None:
        if self.runner_status is None and self.chan.exit_status_ready():
            self.runner_status = int(self.chan.recv_exit_status())
        if self.runner_status is not None:
            return self.runner_status
        self.qemu_status = self.serial.poll()
        return self.qemu_status

    def stop(self) -> None:
        self.serial.stop()


def _boot_failure(wait_state: str, detail: str, duration: float, rc: int | None,
                  timeouts: Timeouts) -> BootResult:
    """A BootResult for a guest that never got to the runner (verdict.assign decides)."""
    r = BootResult(returncode=rc, duration=duration)
    if wait_state == "timeout":
        r.timed_out = "boot"
        r.killed = True
        r.notes.append(f"boot deadline ({timeouts.boot:.0f} s) passed: {detail}; sent "
                       "SIGTERM, then SIGKILL if needed")
    else:
        r.notes.append(detail)
    return r


def boot_and_run(b: ImageBoot, spec: qemucmd.QemuSpec, runner_argv: list[str], guest_out: Path,
                 console_path: Path, timeouts: Timeouts, upload: list[tuple[Path, str]]
                 ) -> tuple[BootResult, dict[str, Any]]:
    """Boot the image, run ``runner_argv`` over SSH, copy its results into ``guest_out``.

    ``upload`` is (local path, guest path) of extra files (the series' abi.json). Returns
    the BootResult (as vng mode's) and timing details for results.json.
    """
    cmd = qemucmd.qemu_command(spec)
    info: dict[str, Any] = {"qemu_command": cmd, "image": b.image.to_json(),
                            "ssh_port": b.ssh_port, "initrd": str(spec.initrd or "")}
    serial = SerialConsole(cmd, console_path)
    start = serial.started
    ssh: GuestSSH | None = None
    try:
        log.info("image mode: booting %s", describe(b))
        ready = serial.wait_ready(timeouts.boot)
        info["ready_s"] = ready.seconds
        log.info("image mode: guest %s after %.1f s%s", ready.state, ready.seconds,
                 f" ({ready.detail})" if ready.detail else "")
        if ready.state != "ready":
            if ready.state == "timeout":
                serial.stop()
            else:
                serial.wait_exit(KILL_GRACE)
                serial.stop()
            return _boot_failure(ready.state, ready.detail, round(time.monotonic() - start, 3),
                                 serial.poll(), timeouts), info
        try:
            ssh, chan = _prepare(b, serial, console_path, runner_argv, upload, info, start,
                                 timeouts)
        except HostKeyError:
            raise
        except (BootError, paramiko.SSHException, OSError, EOFError) as exc:
            # Did the guest go away (a panic at the prompt, during the upload)? Then the
            # verdict step decides from the console, as for any guest that died early.
            if serial.wait_exit(PANIC_GRACE) is None:
                raise BootError(f"The guest is up but the harness could not start the runner "
                                f"in it: {exc}. See {console_path}.") from exc
            r = BootResult(returncode=serial.poll(), duration=round(time.monotonic() - start, 3))
            r.notes.append(f"the guest went away before the runner started ({exc})")
            return r, info
        guest = _RunnerGuest(serial, ssh, chan)
        scen_dir = guest_out / "scenarios"
        scen_dir.mkdir(parents=True, exist_ok=True)

        def fetch(name: str) -> None:
            # The verdict is written before the end marker: fetch it (and the log) now.
            assert ssh is not None
            for suffix in (".verdict.json", ".jsonl"):
                with contextlib.suppress(Exception):
                    ssh.get(f"{GUEST_RESULTS}/scenarios/{name}{suffix}",
                            scen_dir / f"{name}{suffix}")
            # Only now may the runner start the next scenario (--ack-timeout).
            with contextlib.suppress(Exception):
                ssh.sftp.open(f"{GUEST_RESULTS}/scenarios/{name}.ack", "w").close()

        result = watch(guest, console_path, timeouts, start, on_end=fetch)
        if guest.runner_status is not None:
            # The runner ended normally: everything it wrote comes back.
            with contextlib.suppress(Exception):
                ssh.get_tree(GUEST_RESULTS, guest_out, skip_suffixes=(".ack",))
        if serial.poll() is None:
            with contextlib.suppress(Exception):
                ssh.start(["sh", "-c", "sync; echo o > /proc/sysrq-trigger"])
            if serial.wait_exit(POWEROFF_WAIT) is None:
                result.notes.append("the guest did not power off; QEMU was stopped")
        result.duration = round(time.monotonic() - start, 3)
        info["qemu_status"] = serial.poll()
        return result, info
    finally:
        if ssh is not None:
            ssh.close()
        serial.stop()


def _prepare(b: ImageBoot, serial: SerialConsole, console_path: Path, runner_argv: list[str],
             upload: list[tuple[Path, str]], info: dict[str, Any], start: float,
             timeouts: Timeouts) -> tuple[GuestSSH, Any]:
    """From "ready" to a running runner: console check, SSH, uploads, the runner's channel."""
    # The console's root shell works (and a panic at its prompt would show here).
    rc, release = serial.shell("uname -r", SHELL_CHECK_TIMEOUT)
    info["console_shell"] = {"status": rc, "uname_r": release.splitlines()[-1:]}
    ssh = GuestSSH.connect(b.image, b.ssh_port, deadline=start + timeouts.boot)
    try:
        return ssh, _start_runner(b, serial, ssh, console_path, runner_argv, upload, info,
                                  start)
    except BaseException:
        ssh.close()
        raise


def _start_runner(b: ImageBoot, serial: SerialConsole, ssh: GuestSSH, console_path: Path,
                  runner_argv: list[str], upload: list[tuple[Path, str]], info: dict[str, Any],
                  start: float) -> Any:
    info["ssh_s"] = round(time.monotonic() - start, 3)
    log.info("image mode: SSH login after %.1f s (host key %s verified)", info["ssh_s"],
             b.image.host_fingerprint)
    write_session(console_path.parent, b.image, b.ssh_port)  # `harness shell --attach`
    serial.start_pump()
    status, out = ssh.run(["sh", "-c", "command -v python3"])
    if status != 0:
        raise ImageError(f"The guest image {b.image.path} has no python3 (`command -v "
                         f"python3` said: {out.strip() or 'nothing'}); the scenario runner "
                         "needs it. Rebuild the image with `harness image build --force`.")
    from harness.workflows.run import GUEST_DIR

    ssh.run(["rm", "-rf", GUEST_ROOT])
    info["uploaded_files"] = ssh.put_tree(GUEST_DIR / "mnh_guest",
                                          f"{GUEST_TESTS}/mnh_guest")
    for local, remote in upload:
        ssh.put(local, remote)
    ssh.makedirs(f"{GUEST_RESULTS}/scenarios")
    info["uploaded_s"] = round(time.monotonic() - start, 3)
    log.info("image mode: %d files uploaded after %.1f s; starting the runner",
             info["uploaded_files"], info["uploaded_s"])
    return ssh.start(runner_argv, cwd=GUEST_TESTS, stdout=f"{GUEST_RESULTS}/runner.stdout",
                     stderr=f"{GUEST_RESULTS}/runner.stderr")


def check_ports(ssh_port: int | None, gdb_port: int | None) -> tuple[int, int | None]:
    """The SSH forward's port (a free one unless given) and the gdb port, both bindable."""
    port = qemucmd.check_port(ssh_port) if ssh_port else qemucmd.free_port()
    gdb = qemucmd.check_port(gdb_port, "gdb stub") if gdb_port else None
    if gdb is not None and gdb == port:
        raise BootError(f"The SSH forward and the gdb stub cannot share port {port}.")
    return port, gdb


def gdb_hint(b: ImageBoot) -> str:
    if b.gdb_port is None:
        return ""
    return " ".join(qemucmd.gdb_command(b.kernel.vmlinux, b.gdb_port))


def describe(b: ImageBoot) -> str:
    return (f"image {b.image.path} ({b.image.suite}, host key {b.image.host_fingerprint}), "
            f"SSH on {qemucmd.LOOPBACK}:{b.ssh_port}")
