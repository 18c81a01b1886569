"""harness.vm.serial: the console driver against a fake guest on pipes (no VM, no PTY)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness.errors import BootError
from harness.vm.serial import SerialConsole

FAKE = str(Path(__file__).resolve().parents[2] / "fakes" / "fake-guest")


def console(tmp_path: Path, mode: str) -> SerialConsole:
    return SerialConsole([FAKE, mode], tmp_path / "console.log")


def test_ready_then_the_root_shell_answers(tmp_path: Path) -> None:
    c = console(tmp_path, "ready")
    try:
        assert c.wait_ready(30).state == "ready"
        assert c.shell("echo hello; echo world", 30) == (0, "hello\nworld")
        assert c.shell("false", 30)[0] == 1
        assert c.shell("sleep 0.2 &", 30)[0] == 0      # a trailing & is valid
    finally:
        c.stop()
    assert c.poll() is not None
    text = (tmp_path / "console.log").read_text()
    assert "mnh-init: ready sshd=up" in text and "\r" not in text


def test_panic_before_ready_is_reported_with_the_line(tmp_path: Path) -> None:
    c = console(tmp_path, "boot-panic")
    try:
        w = c.wait_ready(30)
    finally:
        c.stop()
    assert w.state == "panic" and "Unable to mount root fs" in w.detail
    assert "end Kernel panic" in (tmp_path / "console.log").read_text()


def test_a_guest_that_never_gets_ready_times_out_in_bounded_time(tmp_path: Path) -> None:
    c = console(tmp_path, "silent")
    t0 = time.monotonic()
    try:
        w = c.wait_ready(1.5)
    finally:
        c.stop()
    assert w.state == "timeout" and time.monotonic() - t0 < 20
    assert c.poll() is not None


@pytest.mark.parametrize(("mode", "gone_first", "error"), [
    # the guest reads the command, then panics
    ("prompt-panic", False, "panicked at the console prompt: Kernel panic"),
    # QEMU already gone: writing the command hits a closed pipe, which must not surface as
    # BrokenPipeError; the panic line still on the console is the cause (a CI race, once)
    ("ready-then-panic", True, "panicked at the console prompt: Kernel panic"),
    ("ready-then-exit", True, r"QEMU exited .* no panic"),
])
def test_a_guest_gone_at_the_prompt_is_a_boot_error(tmp_path: Path, mode: str,
                                                   gone_first: bool, error: str) -> None:
    c = console(tmp_path, mode)
    try:
        assert c.wait_ready(30).state == "ready"
        if gone_first:
            c.child.proc.wait(30)
        with pytest.raises(BootError, match=error):
            c.shell("uname -r", 30)
    finally:
        c.stop()


def test_sshd_down_is_not_ready(tmp_path: Path) -> None:
    c = console(tmp_path, "sshd-down")
    try:
        w = c.wait_ready(30)
    finally:
        c.stop()
    assert w.state == "failed" and "sshd" in w.detail


def test_a_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BootError, match="Could not start"):
        SerialConsole([str(tmp_path / "no-qemu")], tmp_path / "console.log")
