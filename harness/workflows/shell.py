"""``harness shell``: an interactive guest with a live mount watch, a second shell, gdb.

- with an image: QEMU with the guest image; the root shell on the serial console, with
  ``mnh_guest.watch`` already running in the background and printing decoded records
  as you mount and move things. ``--command`` runs commands there instead (no TTY
  needed, e.g. in CI) and prints the console.
- without one: virtme-ng on the host's root, the same watch, then bash.
- ``attach``: a second shell, over SSH (paramiko, the recorded host key), into the
  image-mode guest of a running ``harness run --image`` or ``harness shell`` (its
  results or session directory holds ``ssh.json``).
- a gdb port: QEMU's gdb stub on loopback; the gdb command line to attach with the
  build's vmlinux is printed.

Both transports do the booting (``harness.vm.transport``); this module only says what
the session is.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import BootError
from harness.kernel import resolve
from harness.vm import accel, guest, qemucmd, transport
from harness.vm.image import load as load_image
from harness.vm.machine import SHELL_COMMAND_TIMEOUT, Machine, ShellRequest
from harness.vm.ssh import SESSION_FILE, GuestSSH

COMMAND_TIMEOUT = SHELL_COMMAND_TIMEOUT


@dataclass(frozen=True)
class ShellOptions:
    kernel: str
    backend: str = "fanotify"
    series: str | None = None
    image: str | None = None
    commands: tuple[str, ...] = ()
    gdb: int | None = None             # None: no stub; 0: a free port; else that port
    ssh_port: int | None = None
    cpus: int | None = None
    memory: str = "1G"
    append: tuple[str, ...] = ()
    hardware_modules: bool = False
    boot_timeout: float = 180.0


def shell(opts: ShellOptions) -> int:
    kernel = resolve.kernel(opts.kernel)
    session = paths.cache_dir("shells") / time.strftime("%Y%m%d-%H%M%S")
    session.mkdir(parents=True, exist_ok=True)
    chosen = accel.choose(kernel.image)
    gdb = None if opts.gdb is None else (opts.gdb or qemucmd.free_port())
    machine = Machine(kernel=kernel, accel=chosen.name,
                      cpus=opts.cpus or guest.default_cpus(chosen.name), memory=opts.memory,
                      append=opts.append, gdb_port=gdb)
    tp = transport.get(machine, image=opts.image, ssh_port=opts.ssh_port,
                       hardware_modules=opts.hardware_modules)
    transport.announce_gdb(machine)
    req = ShellRequest(
        session=session,
        watch_argv=tuple(guest.python_argv("python3", "mnh_guest.watch", "--backend",
                                           opts.backend)),
        abi_file=guest.abi_file(opts.backend, kernel, opts.series, session),
        commands=opts.commands, interactive=not opts.commands and sys.stdin.isatty(),
        boot_timeout=opts.boot_timeout)
    return tp.shell(req)


# --- a second shell -------------------------------------------------------------------

def attach(directory: Path, command: tuple[str, ...]) -> int:
    """A shell (or ``command``) over SSH in the guest of a running session."""
    f = directory / SESSION_FILE
    try:
        data = json.loads(f.read_text())
        img = load_image(Path(data["image"]))
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
