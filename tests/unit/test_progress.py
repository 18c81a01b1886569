"""harness.progress: a live line on a terminal, a line per interval in a log."""

from __future__ import annotations

import io
import time

from harness import progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_one_line_per_interval_and_ticks_count() -> None:
    out, clock = io.StringIO(), Clock()
    p = progress.Progress("booting", out, interval=30.0, clock=clock)
    p.update("scenario mount")
    clock.now += 29
    p.tick()
    assert out.getvalue() == ""             # not yet half a minute
    clock.now += 2
    p.tick()                                # nothing new, but the interval passed
    clock.now += 31
    p.update("scenario move")
    lines = out.getvalue().splitlines()
    assert lines == ["harness: booting: scenario mount (31 s)",
                     "harness: booting: scenario move (62 s)"]


def test_a_terminal_gets_one_rewritten_line_cleared_at_the_end() -> None:
    out, clock = Tty(), Clock()
    p = progress.Progress("building", out, clock=clock)
    p.update("CC a.o")
    clock.now += 0.05
    p.update("CC b.o")                      # within 0.1 s: not redrawn
    clock.now += 0.2
    p.update("CC c.o")
    p.close("built in 1 s")
    text = out.getvalue()
    assert text.count("\r") == 3 and "CC a.o" in text and "CC b.o" not in text
    assert "CC c.o" in text and text.endswith("\r\x1b[Kharness: built in 1 s\n")


def test_the_heartbeat_keeps_a_silent_step_alive() -> None:
    out = io.StringIO()
    p = progress.Progress("downloading", out, interval=0.05)
    with progress.beating(p, every=0.02):
        time.sleep(0.3)
    assert out.getvalue().count("harness: downloading") >= 2


def test_a_closed_stream_is_never_an_error() -> None:
    out = io.StringIO()
    p = progress.Progress("x", out, interval=0.0)
    out.close()
    p.update("y")
    p.close("z")
