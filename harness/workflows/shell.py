"""``harness shell``: an interactive guest with a live mount watch, a second shell, gdb.

- ``--image``: QEMU with the guest image; the root shell on the serial console, with
  ``mnh_guest.watch`` already running in the background and printing decoded records
  as you mount and move things. ``--command`` runs commands there instead (no TTY
  needed, e.g. in CI) and prints the console.
- without ``--image``: virtme-ng on the host's root, the same watch, then bash.
- ``--attach DIR``: a second shell, over SSH (paramiko, the recorded host key), into
  the image-mode guest of a running ``harness run --image`` or ``harness shell``
  (DIR is its results or session directory, which holds ``ssh.json``).
- ``--gdb [PORT]``: QEMU's gdb stub on a loopback port; the gdb command line to attach
  with the build's vmlinux is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import BootError
from harness.kernel import abi
from harness.kernel.image import Kernel
from harness.vm import accel, image, image_boot, qemucmd
from harness.vm.serial import SerialConsole
from harness.vm.ssh import SESSION_FILE, GuestSSH, ssh_argv, write_session
from harness.vm.vngcmd import VmSpec, vng_command
from harness.workflows.run import GUEST_DIR, GUEST_PYTHON_FLAGS, default_cpus

COMMAND_TIMEOUT = 120.0
POWEROFF_WAIT = 20.0
WATCH_START = 60.0       # seconds for the watch to say it is watching (python under TCG)


def _watch_argv(backend: str, abi_path: str | None) -> list[str]:
    argv = ["python3", *GUEST_PYTHON_FLAGS, "-m", "mnh_guest.watch", "--backend", backend]
    if abi_path:
        argv += ["--abi", abi_path]
    return argv


def _abi_file(backend: str, kernel: Kernel, series: str | None, d: Path) -> Path | None:
    if backend != "watch-queue":
        return None
    name = series or abi.series_of_kernel(kernel.metadata) or abi.DEFAULT_SERIES
    f = d / "abi.json"
    f.write_text(json.dumps(abi.load(name), indent=2) + "\n")
    return f


# --- image mode -------------------------------------------------------------------

def image_shell(a: argparse.Namespace, kernel: Kernel, session: Path) -> int:
    img = image.resolve(a.image)
    image.check(img.path)
    port, gdb = image_boot.check_ports(a.ssh_port, _gdb_port(a))
    chosen = accel.choose(kernel.image)
    ib = image_boot.ImageBoot(kernel=kernel, image=img, accel=chosen.name,
                             cpus=a.cpus or default_cpus(chosen.name), memory=a.memory,
                             append=tuple(a.append), ssh_port=port, gdb_port=gdb)
    cmd = qemucmd.qemu_command(image_boot.spec_for(ib))
    abi_file = _abi_file(a.backend, kernel, a.series, session)
    interactive = not a.command and sys.stdin.isatty()
    if gdb is not None:
        _say(f"gdb stub on {qemucmd.LOOPBACK}:{gdb}; attach with: {image_boot.gdb_hint(ib)}"
             + ("" if kernel.vmlinux else "  (no vmlinux for this kernel: symbols missing)"))
    console = SerialConsole(cmd, session / "console.log", interactive=interactive)
    ssh: GuestSSH | None = None
    try:
        ready = console.wait_ready(a.boot_timeout)
        if ready.state != "ready":
            raise BootError(f"The guest did not get ready ({ready.state}: {ready.detail}). See "
                            f"{session / 'console.log'}.")
        ssh = GuestSSH.connect(img, port, deadline=time.monotonic() + a.boot_timeout)
        ssh.run(["rm", "-rf", image_boot.GUEST_ROOT])
        ssh.put_tree(GUEST_DIR / "mnh_guest", f"{image_boot.GUEST_TESTS}/mnh_guest")
        guest_abi = None
        if abi_file is not None:
            guest_abi = f"{image_boot.GUEST_ROOT}/abi.json"
            ssh.put(abi_file, guest_abi)
        write_session(session, img, port)
        _say(f"second shell: harness shell --attach {session}   (or: "
             f"{shlex.join(ssh_argv(img, port, session / 'known_hosts'))})")
        if not interactive:
            console.quiet(COMMAND_TIMEOUT)
        watch = shlex.join(_watch_argv(a.backend, guest_abi))
        # In the background of the console's shell: its records interleave with the prompt.
        console.shell(f"cd {image_boot.GUEST_TESTS} && {watch} &", COMMAND_TIMEOUT)
        if not console.expect_line(rb"mnh-watch: .*records follow", WATCH_START):
            _say(f"the mount watch did not start within {WATCH_START:.0f} s; see "
                 f"{session / 'console.log'}")
        if interactive:
            _say("root shell on the guest's console; mount things and watch the records. "
                 "Leave with ^] (the guest is stopped).")
            console.send("")
            console.interact()
            return 0
        status = 0
        for command in a.command:
            rc, out = console.shell(command, COMMAND_TIMEOUT)
            print(f"mnh-guest# {command}\n{out}".rstrip())
            status = status or rc
        time.sleep(1.5)  # the last records reach the console
        _, out = console.shell("true", COMMAND_TIMEOUT)
        print(out.rstrip()) if out.strip() else None
        return status
    finally:
        if ssh is not None:
            with contextlib.suppress(Exception):
                ssh.start(["sh", "-c", "echo o > /proc/sysrq-trigger"])
            console.wait_exit(POWEROFF_WAIT)
            ssh.close()
        console.stop()


# --- virtme-ng mode -----------------------------------------------------------------

def vng_shell(a: argparse.Namespace, kernel: Kernel, session: Path) -> int:
    if shutil.which("vng") is None:
        raise BootError("virtme-ng (vng) is not installed. Run `harness doctor --install`.")
    chosen = accel.choose(kernel.image)
    gdb = qemucmd.check_port(_gdb_port(a) or qemucmd.free_port(), "gdb stub") if a.gdb is not None \
        else None
    abi_file = _abi_file(a.backend, kernel, a.series, session)
    ready = "/tmp/mnh-watch.ready"
    watch = shlex.join([*_watch_argv(a.backend, str(abi_file) if abi_file else None),
                        "--ready-file", ready])
    # The watch in the background; the commands (or bash) once it says it is watching.
    script = (f"rm -f {ready}; {watch} & i=0; while [ ! -e {ready} ] && [ $i -lt 600 ]; "
              f"do sleep 0.1; i=$((i+1)); done; "
              + (" ; ".join([*a.command, "sleep 1"]) if a.command else "exec bash -i"))
    spec = VmSpec(kernel=kernel.image, accel=chosen.name, guest_command=("sh", "-c", script),
                  cwd=GUEST_DIR, rwdirs=(session,), memory=a.memory,
                  cpus=a.cpus or default_cpus(chosen.name), append=tuple(a.append),
                  hardware_modules=a.hardware_modules,
                  qemu_opts=(f"-gdb tcp:{qemucmd.LOOPBACK}:{gdb}",) if gdb else ())
    if gdb is not None:
        _say(f"gdb stub on {qemucmd.LOOPBACK}:{gdb}; attach with: "
             f"{shlex.join(qemucmd.gdb_command(kernel.vmlinux, gdb))}")
    cmd = vng_command(spec)
    timeout = None if sys.stdin.isatty() and not a.command else a.boot_timeout + COMMAND_TIMEOUT
    try:
        return subprocess.run(cmd, check=False, timeout=timeout).returncode
    except subprocess.TimeoutExpired as exc:
        raise BootError(f"The guest did not finish the commands within {timeout:.0f} s.") \
            from exc


# --- a second shell -------------------------------------------------------------------

def attach(directory: Path, command: list[str]) -> int:
    """A shell (or ``command``) over SSH in the guest of a running session."""
    f = directory / SESSION_FILE
    try:
        data = json.loads(f.read_text())
        img = image.load(Path(data["image"]))
        port = int(data["port"])
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as exc:
        raise BootError(f"{f} is missing or unreadable ({exc}): attach to the results "
                        "directory of a running `harness run --image` or `harness shell "
                        "--image`, whose guest is still up.") from exc
    ssh = GuestSSH.connect(img, port, deadline=time.monotonic() + 15)
    try:
        if command:
            rc, out = ssh.run(["sh", "-c", " ; ".join(command)], timeout=COMMAND_TIMEOUT)
            print(out, end="")
            return rc
        return _interactive(ssh)
    finally:
        ssh.close()


def _interactive(ssh: GuestSSH) -> int:
    """A PTY shell over the SSH channel, with the local terminal in raw mode."""
    import termios
    import tty

    size = shutil.get_terminal_size()
    transport = ssh.client.get_transport()
    assert transport is not None
    chan = transport.open_session(timeout=30)
    chan.get_pty(term=os.environ.get("TERM", "vt100"), width=size.columns, height=size.lines)
    chan.invoke_shell()
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd) if os.isatty(fd) else None
    try:
        if old is not None:
            tty.setraw(fd)
        while not chan.exit_status_ready():
            r, _, _ = select.select([chan, fd], [], [], 0.5)
            if chan in r:
                data = chan.recv(65536)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
            if fd in r:
                data = os.read(fd, 1024)
                if not data:
                    break
                chan.sendall(data)
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
    return chan.recv_exit_status() if chan.exit_status_ready() else 0


# --- the command ------------------------------------------------------------------------

def _gdb_port(a: argparse.Namespace) -> int | None:
    if a.gdb is None:
        return None
    return int(a.gdb) or qemucmd.free_port()


def _say(text: str) -> None:
    print(f"harness: {text}", file=sys.stderr, flush=True)
