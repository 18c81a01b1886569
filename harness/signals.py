"""SIGTERM and SIGHUP as an exception, so that cleanup runs as it does for Ctrl-C.

Python's default for SIGTERM is to die at once: no ``finally`` runs, so a guest started
in its own process group (which does not get the signal) would go on writing into the
results directory, and no report would be written. ``stop_on_signals`` turns both
signals into ``Interrupted`` in the main thread while a command runs; SIGINT stays
``KeyboardInterrupt``. Code that must finish a step despite a signal (writing the
reports) runs under ``deferred``, which holds the signal until its block is done.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

from harness.errors import Interrupted

CAUGHT = (signal.SIGTERM, signal.SIGHUP)
_held: list[int] = []
_holding = threading.local()


def _raise(signum: int, _frame: FrameType | None) -> None:
    if getattr(_holding, "depth", 0):
        _held.append(signum)
        return
    raise Interrupted(signum, signal.Signals(signum).name)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise ``Interrupted`` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _raise) for s in CAUGHT}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGTERM/SIGHUP (and SIGINT) until the block is done, then raise the first."""
    _holding.depth = getattr(_holding, "depth", 0) + 1
    old_int = None
    if threading.current_thread() is threading.main_thread():
        old_int = signal.signal(signal.SIGINT, _raise_int_later)
    try:
        yield
    finally:
        _holding.depth -= 1
        if old_int is not None:
            signal.signal(signal.SIGINT, old_int)
    if _holding.depth == 0 and _held:
        signum = _held.pop(0)
        _held.clear()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Interrupted(signum, signal.Signals(signum).name)


def _raise_int_later(signum: int, _frame: FrameType | None) -> None:
    _held.append(signum)
