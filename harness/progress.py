"""Progress of a long step on stderr: a live line on a terminal, a line every half
minute in a log.

A CI log that stays silent for the five minutes of a cold kernel build looks hung, and a
terminal scrolled full of compiler lines hides what matters. So one ``Progress`` per
step: on a TTY it rewrites one line in place (at most ten times a second); anywhere
else it prints a plain line when ``interval`` seconds have passed since the last one,
and ``tick()`` (or the heartbeat thread of ``beating()``) keeps a step that has nothing
new to say from going silent.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

LOG_INTERVAL = 30.0      # seconds between lines in a log
TTY_INTERVAL = 0.1       # seconds between rewrites of the live line


class Progress:
    """One step's progress: ``update`` with what it is doing, ``close`` when done."""

    def __init__(self, what: str, stream: TextIO | None = None,
                 interval: float = LOG_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.tty = _isatty(self.stream)
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.detail = ""
        self._last = self.started if not self.tty else 0.0
        self._shown = False
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    def text(self) -> str:
        detail = f": {self.detail}" if self.detail else ""
        return f"harness: {self.what}{detail} ({self.elapsed():.0f} s)"

    def update(self, detail: str) -> None:
        """What the step is doing now (shown when it is time to show something)."""
        with self._lock:
            self.detail = detail
            self._maybe_show()

    def tick(self) -> None:
        """Nothing new: still, a log gets its line when the interval has passed."""
        with self._lock:
            self._maybe_show()

    def _maybe_show(self) -> None:
        now = self.clock()
        due = TTY_INTERVAL if self.tty else self.interval
        if now - self._last < due:
            return
        self._last = now
        try:
            if self.tty:
                width = max(20, shutil.get_terminal_size().columns - 1)
                self.stream.write("\r" + self.text()[:width].ljust(width))
            else:
                self.stream.write(self.text() + "\n")
            self.stream.flush()
            self._shown = True
        except (OSError, ValueError):   # stderr closed: progress is never worth a failure
            pass

    def close(self, final: str | None = None) -> None:
        """Clear the live line; print ``final`` (a summary) if given."""
        with self._lock, contextlib.suppress(OSError, ValueError):
            if self.tty and self._shown:
                self.stream.write("\r\x1b[K")
            if final:
                self.stream.write(f"harness: {final}\n")
            self.stream.flush()


@contextlib.contextmanager
def beating(progress: Progress, every: float = 1.0) -> Iterator[Progress]:
    """Call ``progress.tick()`` from a daemon thread every ``every`` seconds while the
    block runs: a wait on something that prints nothing (a download, a guest) still
    shows it is alive."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            progress.tick()

    t = threading.Thread(target=beat, name="mnh-progress", daemon=True)
    t.start()
    try:
        yield progress
    finally:
        stop.set()
        t.join(timeout=every + 1.0)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
