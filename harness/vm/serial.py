"""The guest's serial console, driven with pexpect: boot progress, the root shell, panics.

QEMU's first serial port is its stdio. Headless (CI: no stdin, no terminal) the console
is read through pipes with ``pexpect.popen_spawn.PopenSpawn``, which needs no PTY at
all; an interactive shell uses ``pexpect.spawn`` (a PTY of its own) so that the user's
terminal can take over with ``interact()``. Everything the guest prints is copied to
``console.log`` (carriage returns dropped), which the verdict step scans as it does in
virtme-ng mode. Every wait here has a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pexpect
from pexpect import popen_spawn

from harness.errors import BootError
from harness.vm.supervise import KILL_GRACE, PANIC_GRACE

log = logging.getLogger("harness")

READY = re.compile(rb"mnh-init: ready sshd=(\w+)")
FAILED = re.compile(rb"mnh-init: FAILED[^\n]*")
PANIC = re.compile(rb"Kernel panic - not syncing[^\n]*")
PROMPT = re.compile(rb"mnh-guest# ")


class _ConsoleLog:
    """pexpect's logfile: the console bytes, without carriage returns, flushed at once so
    the supervisor can tail the file while the guest runs."""

    def __init__(self, path: Path) -> None:
        self._f: IO[bytes] = open(path, "ab")  # noqa: SIM115 - closed by close()

    def write(self, data: bytes) -> None:
        self._f.write(data.replace(b"\r", b""))
        self._f.flush()

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        self._f.close()


@dataclass
class BootWait:
    """How the wait for the guest's "ready" line ended."""

    state: str                 # "ready", "panic", "exited", "timeout", "failed"
    seconds: float
    detail: str = ""


class SerialConsole:
    """A QEMU process whose serial console is on its stdio."""

    def __init__(self, cmd: list[str], console_path: Path, interactive: bool = False) -> None:
        self.console_path = console_path
        self.log = _ConsoleLog(console_path)
        self.started = time.monotonic()
        self.interactive = interactive
        self._pump: threading.Thread | None = None
        self._stop_pump = threading.Event()
        self._lock = threading.Lock()
        self.eof = False
        self.echo_off = False
        try:
            if interactive:
                self.child: Any = pexpect.spawn(cmd[0], cmd[1:], timeout=None,
                                                logfile=None, encoding=None)
                self.child.logfile_read = self.log
            else:
                # Its own session: stopping the guest signals the whole process group.
                self.child = popen_spawn.PopenSpawn(cmd, timeout=None, logfile=None,
                                                    preexec_fn=os.setsid)
                self.child.logfile_read = self.log
        except (OSError, pexpect.ExceptionPexpect) as exc:
            self.log.close()
            raise BootError(f"Could not start {cmd[0]!r}: {exc}. Run `harness doctor "
                            "--install` to install QEMU.") from exc

    # --- the process ------------------------------------------------------------

    @property
    def pid(self) -> int:
        return int(self.child.pid)

    def poll(self) -> int | None:
        """QEMU's exit status, or None while it runs."""
        if isinstance(self.child, popen_spawn.PopenSpawn):
            rc: int | None = self.child.proc.poll()
            return rc
        if self.child.isalive():
            return None
        return int(self.child.exitstatus if self.child.exitstatus is not None
                   else 128 + (self.child.signalstatus or 0))

    def wait_exit(self, timeout: float) -> int | None:
        """Wait (reading the console) until QEMU exits, at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.poll()
            if rc is not None:
                self._drain_rest()
                return rc
            if self._pump is None:
                self._expect([pexpect.EOF], min(0.5, deadline - time.monotonic()))
            else:
                time.sleep(0.1)
        return self.poll()

    def stop(self) -> None:
        """SIGTERM to QEMU's process group, then SIGKILL; reap it; close the log."""
        self._stop_pump.set()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)
            deadline = time.monotonic() + KILL_GRACE
            while self.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._pump is not None:
            self._pump.join(timeout=KILL_GRACE)
        self._drain_rest()
        if not self.interactive:
            with contextlib.suppress(Exception):
                self.child.proc.stdin.close()
        with contextlib.suppress(Exception):
            self.log.close()

    def _drain_rest(self) -> None:
        if self._pump is not None and self._pump.is_alive():
            return
        with contextlib.suppress(Exception):
            self._expect([pexpect.EOF], 1.0)

    # --- expecting --------------------------------------------------------------

    def _expect(self, patterns: list[Any], timeout: float) -> int:
        """pexpect's expect with EOF and TIMEOUT always handled: index, -1 EOF, -2 TIMEOUT."""
        with self._lock:
            try:
                i: int = self.child.expect([*patterns, pexpect.EOF, pexpect.TIMEOUT],
                                           timeout=max(timeout, 0.01))
            except (OSError, ValueError):
                self.eof = True
                return -1
        if i == len(patterns):
            self.eof = True
            return -1
        if i == len(patterns) + 1:
            return -2
        return i

    def wait_ready(self, timeout: float) -> BootWait:
        """Follow the boot until the init's "ready" line, a panic, QEMU's exit, or timeout."""
        deadline = self.started + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return BootWait("timeout", self._elapsed(),
                                f"no 'mnh-init: ready' on the console within {timeout:.0f} s")
            i = self._expect([READY, PANIC, FAILED], remaining)
            if i == 0:
                sshd = self.child.match.group(1).decode()
                if sshd != "up":
                    return BootWait("failed", self._elapsed(), "sshd did not start in the "
                                    "guest (see the console log)")
                return BootWait("ready", self._elapsed())
            if i == 1:
                title = self.child.match.group(0).decode(errors="replace").strip()
                # Let the rest of the splat reach the log; panic=-1 and -no-reboot end QEMU.
                self.wait_exit(PANIC_GRACE)
                return BootWait("panic", self._elapsed(), title)
            if i == 2:
                log.warning("guest: %s", self.child.match.group(0).decode(errors="replace"))
                continue
            if i == -1:
                rc = self.wait_exit(KILL_GRACE)
                return BootWait("exited", self._elapsed(), f"QEMU exited with status {rc} "
                                "before the guest was ready")
            # -2: TIMEOUT of this slice; the loop checks the deadline.

    def shell(self, command: str, timeout: float) -> tuple[int, str]:
        """Run ``command`` in the console's root shell: (exit status, output).

        A panic at the prompt raises BootError with the panic line.
        """
        token = secrets.token_hex(4)
        # The echoed command line cannot match: the shell expands $? only in the output.
        # Two lines, so that a command ending in "&" stays valid shell.
        self.send(command)
        self.send(f"printf '\\n__mnh_{token}_rc=%s\\n' \"$?\"")
        done = re.compile(rf"__mnh_{token}_rc=(\d+)".encode())
        i = self._expect([done, PANIC], timeout)
        if i == 0:
            before = self.child.before.decode(errors="replace").replace("\r", "")
            lines = [PROMPT.sub(b"", ln.encode()).decode() for ln in before.split("\n")]
            if self.echo_off:
                out = "\n".join(ln for ln in lines if ln.strip())
            else:  # drop the echoed command lines
                out = "\n".join(ln for ln in lines[1:] if ln.strip() and "__mnh_" not in ln)
            return int(self.child.match.group(1)), out.strip()
        if i == 1:
            title = self.child.match.group(0).decode(errors="replace").strip()
            self.wait_exit(PANIC_GRACE)
            raise BootError(f"The guest panicked at the console prompt: {title}. See "
                            f"{self.console_path}.")
        if i == -1:
            rc = self.wait_exit(KILL_GRACE)
            raise BootError(f"QEMU exited (status {rc}) while the console shell ran "
                            f"{command!r}, with no panic on the console; see "
                            f"{self.console_path}.")
        raise BootError(f"The guest's console shell did not answer {command!r} within "
                        f"{timeout:.0f} s (see {self.console_path}); the guest is stuck.")

    def expect_line(self, pattern: bytes, timeout: float) -> bool:
        """Wait for ``pattern`` (a regex) on the console; False on timeout or EOF."""
        return self._expect([re.compile(pattern)], timeout) == 0

    def quiet(self, timeout: float) -> None:
        """Turn the console's echo off, so command output comes back without the commands."""
        self.shell("stty -echo", timeout)
        self.echo_off = True

    def send(self, line: str) -> None:
        """Send a line; a console that already closed (QEMU gone after a panic) is not an
        error here: the next expect reads what it printed and reports EOF."""
        with contextlib.suppress(OSError):  # BrokenPipeError: the reader decides
            self.child.sendline(line)

    def wait_prompt(self, timeout: float) -> bool:
        self.send("")
        return self._expect([PROMPT], timeout) == 0

    # --- background reading -----------------------------------------------------

    def start_pump(self) -> None:
        """Keep reading the console into the log in a thread (QEMU must never block on a
        full pipe while the harness talks to the guest over SSH)."""
        if self._pump is not None:
            return

        def pump() -> None:
            while not self._stop_pump.is_set() and not self.eof:
                self._expect([], 0.2)

        self._pump = threading.Thread(target=pump, name="serial-pump", daemon=True)
        self._pump.start()

    def interact(self) -> None:
        """Hand the console to the user's terminal (interactive mode only)."""
        self.child.interact(escape_character=chr(29))  # ^] leaves, as telnet does

    def _elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)
