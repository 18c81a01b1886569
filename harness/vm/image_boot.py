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
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paramiko

from harness.errors import BootError, HostKeyError, ImageError
from harness.vm import image, initramfs, qemucmd
from harness.vm.guest import GUEST_DIR
from harness.vm.image import Image
from harness.vm.machine import SHELL_COMMAND_TIMEOUT, Machine, ShellRequest
from harness.vm.serial import SerialConsole
from harness.vm.ssh import GuestSSH, ssh_argv, write_session
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
class ImageTransport:
    """Image mode (``harness.vm.transport``): QEMU with the image, SSH to the runner."""

    machine: Machine
    image: Image
    ssh_port: int
    mode: str = "image"

    @classmethod
    def prepare(cls, machine: Machine, spec: str, ssh_port: int | None) -> ImageTransport:
        """Resolve and check the image and the ports before anything boots."""
        img = image.resolve(spec)
        image.check(img.path)
        port, _ = check_ports(ssh_port, machine.gdb_port)
        return cls(machine, img, port)

    def qemu_spec(self) -> qemucmd.QemuSpec:
        m = self.machine
        return qemucmd.QemuSpec(kernel=m.kernel.image, image=self.image.path, accel=m.accel,
                                ssh_port=self.ssh_port,
                                initrd=initramfs.build(m.kernel.image, m.kernel.release),
                                cpus=m.cpus, memory=m.memory, append=m.append,
                                gdb_port=m.gdb_port)

    def guest_results(self, guest_out: Path) -> str:
        return GUEST_RESULTS           # the guest's own disk; copied back over SFTP

    def runner_args(self) -> list[str]:
        # Each verdict leaves the guest before the next scenario may crash it.
        return ["--ack-timeout", str(ACK_TIMEOUT)]

    def command(self, argv: list[str], guest_out: Path) -> list[str]:
        return qemucmd.qemu_command(self.qemu_spec())

    def describe(self) -> dict[str, Any]:
        return {"mode": "image", "image": self.image.to_json()}

    def run(self, argv: list[str], guest_out: Path, console_path: Path, timeouts: Timeouts,
            uploads: list[Path]) -> tuple[BootResult, dict[str, Any]]:
        return boot_and_run(self, argv, guest_out, console_path, timeouts,
                            [(f, f"{GUEST_RESULTS}/{f.name}") for f in uploads])

    def shell(self, req: ShellRequest) -> int:
        return image_shell(self, req)


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


def boot_and_run(b: ImageTransport, runner_argv: list[str], guest_out: Path,
                 console_path: Path, timeouts: Timeouts, upload: list[tuple[Path, str]]
                 ) -> tuple[BootResult, dict[str, Any]]:
    """Boot the image, run ``runner_argv`` over SSH, copy its results into ``guest_out``.

    ``upload`` is (local path, guest path) of extra files (the series' abi.json). Returns
    the BootResult (as vng mode's) and timing details for results.json.
    """
    spec = b.qemu_spec()
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
        if not power_off(ssh, serial):
            result.notes.append("the guest did not power off; QEMU was stopped")
        result.duration = round(time.monotonic() - start, 3)
        info["qemu_status"] = serial.poll()
        return result, info
    finally:
        if ssh is not None:
            ssh.close()
        serial.stop()


def _prepare(b: ImageTransport, serial: SerialConsole, console_path: Path, runner_argv: list[str],
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


def _start_runner(b: ImageTransport, serial: SerialConsole, ssh: GuestSSH, console_path: Path,
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
    ssh.makedirs(f"{GUEST_RESULTS}/scenarios")
    info["uploaded_files"] = upload_guest(ssh, upload)
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


def upload_guest(ssh: GuestSSH, files: list[tuple[Path, str]]) -> int:
    """A fresh copy of the guest-tests tree, then ``files`` (local, guest path); returns
    how many files went in. run and shell both start the guest side this way."""
    ssh.run(["rm", "-rf", f"{GUEST_TESTS}"])
    count = ssh.put_tree(GUEST_DIR / "mnh_guest", f"{GUEST_TESTS}/mnh_guest")
    for local, remote in files:
        ssh.put(local, remote)
    return count + len(files)


def power_off(ssh: GuestSSH | None, serial: SerialConsole) -> bool:
    """sysrq 'o' through SSH (after a sync), then wait for QEMU to exit; False when it
    did not within POWEROFF_WAIT (the caller stops it)."""
    if serial.poll() is not None:
        return True
    if ssh is not None:
        with contextlib.suppress(Exception):
            ssh.start(["sh", "-c", "sync; echo o > /proc/sysrq-trigger"])
    return serial.wait_exit(POWEROFF_WAIT) is not None


def describe(b: ImageTransport) -> str:
    return (f"image {b.image.path} ({b.image.suite}, host key {b.image.host_fingerprint}), "
            f"SSH on {qemucmd.LOOPBACK}:{b.ssh_port}")


WATCH_START = 60.0       # seconds for the live watch to say it is watching (python, TCG)


def image_shell(b: ImageTransport, req: ShellRequest) -> int:
    """The console's root shell with the live watch running in its background; or, with
    ``req.commands``, those commands run there and the console printed (no TTY needed)."""
    console = SerialConsole(b.command([], req.session), req.session / "console.log",
                            interactive=req.interactive)
    ssh: GuestSSH | None = None
    try:
        ready = console.wait_ready(req.boot_timeout)
        if ready.state != "ready":
            raise BootError(f"The guest did not get ready ({ready.state}: {ready.detail}). "
                            f"See {req.session / 'console.log'}.")
        ssh = GuestSSH.connect(b.image, b.ssh_port,
                               deadline=time.monotonic() + req.boot_timeout)
        guest_abi = f"{GUEST_ROOT}/abi.json" if req.abi_file is not None else None
        upload_guest(ssh, [(req.abi_file, f"{GUEST_ROOT}/abi.json")]
                     if req.abi_file is not None else [])
        write_session(req.session, b.image, b.ssh_port)
        _say(f"second shell: harness shell --attach {req.session}   (or: "
             f"{shlex.join(ssh_argv(b.image, b.ssh_port, req.session / 'known_hosts'))})")
        if not req.interactive:
            console.quiet(SHELL_COMMAND_TIMEOUT)
        watch = shlex.join([*req.watch_argv, *(["--abi", guest_abi] if guest_abi else [])])
        # In the background of the console's shell: its records interleave with the prompt.
        console.shell(f"cd {GUEST_TESTS} && {watch} &", SHELL_COMMAND_TIMEOUT)
        if not console.expect_line(rb"mnh-watch: .*records follow", WATCH_START):
            _say(f"the mount watch did not start within {WATCH_START:.0f} s; see "
                 f"{req.session / 'console.log'}")
        if req.interactive:
            _say("root shell on the guest's console; mount things and watch the records. "
                 "Leave with ^] (the guest is stopped).")
            console.send("")
            console.interact()
            return 0
        return _run_commands(console, req.commands)
    finally:
        power_off(ssh, console)
        if ssh is not None:
            ssh.close()
        console.stop()


def _run_commands(console: SerialConsole, commands: tuple[str, ...]) -> int:
    status = 0
    for command in commands:
        rc, out = console.shell(command, SHELL_COMMAND_TIMEOUT)
        print(f"mnh-guest# {command}\n{out}".rstrip())
        status = status or rc
    time.sleep(1.5)  # the last records reach the console
    _, out = console.shell("true", SHELL_COMMAND_TIMEOUT)
    if out.strip():
        print(out.rstrip())
    return status


def _say(text: str) -> None:
    print(f"harness: {text}", file=sys.stderr, flush=True)
