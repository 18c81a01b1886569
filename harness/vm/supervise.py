"""Start a guest and watch it: layered timeouts with SIGTERM then SIGKILL escalation.

The supervisor tails the kernel console for the runner's markers. Three clocks:
boot (until the runner says it started), scenario (from a scenario's start marker to
its end marker), and the whole run. Whichever expires first stops the guest: SIGTERM
to its process group, then SIGKILL. Nothing here waits without a deadline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from harness.errors import BootError
from harness.progress import Progress
from harness.results import scan

log = logging.getLogger("harness")

KILL_GRACE = 5.0          # seconds between SIGTERM and SIGKILL
PANIC_GRACE = 10.0        # a panicked guest should end by itself (panic=-1, -no-reboot)


@dataclass(frozen=True)
class Timeouts:
    boot: float = 180.0       # start to "runner start"
    scenario: float = 90.0    # one scenario, start marker to end marker (host side)
    run: float = 1800.0       # the whole guest
    shutdown: float = 60.0    # "runner done" to the guest's exit (a kernel that hangs at
                              # poweroff, e.g. on a lock an oops left held)


@dataclass
class BootResult:
    returncode: int | None
    duration: float
    timed_out: str = ""             # "", "boot", "scenario:NAME", "run", "panic", "shutdown"
    booted_at: float | None = None  # seconds from start to "runner start"
    killed: bool = False
    interrupted: str = ""           # the signal that stopped the run ("SIGTERM", ...)
    notes: list[str] = field(default_factory=list)


class _ConsoleTail:
    """Incrementally read a growing console file and follow the markers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.partial = b""
        self.booted = False
        self.done = False
        self.current = ""
        self.panicked = False
        self.ended: list[str] = []       # end markers not yet handed to on_end
        self.finished: list[str] = []    # every scenario that ended

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self.pos += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            line = raw.decode(errors="replace")
            if "Kernel panic - not syncing" in line:
                self.panicked = True
            if "mnh: " not in line:
                continue
            for mk in scan.find_markers([line]):
                if mk.what == "runner start":
                    self.booted = True
                elif mk.what == "runner done":
                    self.done = True
                elif mk.what == "start":
                    self.current = mk.scenario
                elif mk.what == "end":
                    self.current = ""
                    self.ended.append(mk.scenario)
                    self.finished.append(mk.scenario)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group, then SIGKILL; returns when the group is gone."""
    for sig, wait in ((signal.SIGTERM, KILL_GRACE), (signal.SIGKILL, KILL_GRACE)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; what is left of its group (a child that ignored SIGTERM)
        # would outlive the run: kill it too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return
    log.warning("guest process group %d survived SIGKILL", proc.pid)


class Guest(Protocol):
    """What the supervisor needs of a running guest, whatever started it."""

    def poll(self) -> int | None: ...   # exit status once the guest (or its runner) ended
    def stop(self) -> None: ...         # SIGTERM, then SIGKILL; returns when it is gone


class _Process:
    """A guest that is one process group (vng)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def poll(self) -> int | None:
        return self.proc.poll()

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc.poll()


def supervise(cmd: list[str], console_path: Path, stdout_path: Path, timeouts: Timeouts,
              cwd: Path | None = None) -> BootResult:
    """Run ``cmd`` (vng) with its stderr (the kernel console) to ``console_path``."""
    start = time.monotonic()
    with open(console_path, "wb") as err, open(stdout_path, "wb") as out:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                    cwd=cwd, start_new_session=True)
        except OSError as exc:
            raise BootError(f"Could not start {cmd[0]!r}: {exc}. Run `harness doctor --install` "
                            "to install virtme-ng and QEMU.") from exc
        guest = _Process(proc)
        try:
            result = watch(guest, console_path, timeouts, start)
        finally:
            if proc.poll() is None:
                stop_process(proc)
        result.returncode = proc.returncode
    return result


def watch(guest: Guest, console_path: Path, timeouts: Timeouts, start: float,
          on_end: Callable[[str], None] | None = None) -> BootResult:
    """Follow ``guest``'s console until it ends or a deadline passes (then stop it).

    ``start`` is when the guest was started (monotonic), for the boot and run clocks;
    ``on_end(name)`` is called when a scenario's end marker appears.
    """
    tail = _ConsoleTail(console_path)
    result = BootResult(returncode=None, duration=0.0)
    shown = Progress("guest")
    scenario_started = start
    current = ""
    panic_seen_at: float | None = None
    done_at: float | None = None
    try:
        while True:
            rc = guest.poll()
            tail.poll()
            now = time.monotonic()
            if tail.booted and result.booted_at is None:
                result.booted_at = round(now - start, 3)
            if on_end is not None:
                while tail.ended:
                    on_end(tail.ended.pop(0))
            if tail.current != current:
                current, scenario_started = tail.current, now
            shown.update(f"scenario {current}, {len(tail.finished)} done" if current else
                         f"{len(tail.finished)} scenarios done" if tail.booted else "booting")
            if rc is not None:
                result.returncode = rc
                break
            if tail.panicked and panic_seen_at is None:
                panic_seen_at = now
            if tail.done and done_at is None:
                done_at = now
            expired = ""
            if now - start > timeouts.run:
                expired = "run"
            elif not tail.booted and now - start > timeouts.boot:
                expired = "boot"
            elif current and now - scenario_started > timeouts.scenario:
                expired = f"scenario:{current}"
            elif panic_seen_at is not None and now - panic_seen_at > PANIC_GRACE:
                expired = "panic"
            elif done_at is not None and now - done_at > timeouts.shutdown:
                expired = "shutdown"
            if expired:
                result.timed_out = expired
                result.killed = True
                if expired == "shutdown":
                    result.notes.append(
                        f"the guest did not power off within {timeouts.shutdown:.0f} s of "
                        "the runner's end (a kernel hang at shutdown: see the end of the "
                        "console log); every verdict was in, so it was stopped")
                else:
                    result.notes.append(f"{expired} deadline passed after "
                                        f"{now - start:.1f} s; sent SIGTERM, then SIGKILL "
                                        "if needed")
                guest.stop()
                result.returncode = guest.poll()
                break
            time.sleep(0.1)
    finally:
        if guest.poll() is None and result.returncode is None:
            guest.stop()
    tail.poll()
    shown.close()
    result.duration = round(time.monotonic() - start, 3)
    return result
