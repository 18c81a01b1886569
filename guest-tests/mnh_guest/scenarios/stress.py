"""Stress scenarios: threads that race each other on mounts, watches and queues.

No oracle here (the interleaving decides what is reported); a round fails when a
record is malformed, a call fails with an errno no race explains, a thread does not
stop, or mounts are left behind.  Kernel splats (KASAN, lockdep, BUG) are the host's to
find in the console.  Each round writes one ``round`` line to the scenario log, which
``harness repro`` reads.

Parameters come from the kernel command line (``harness repro`` sets them):
``mnh.stress_rounds=N`` (rounds in this boot) and ``mnh.stress_seconds=S`` (per round).
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import select
import threading
import time
from collections.abc import Callable

from .. import decode, sysc
from ..backends import watch_queue
from ..context import Context, ScenarioSkipped
from ..mounts import snapshot

DEFAULT_ROUNDS = 2
DEFAULT_SECONDS = 2.0
JOIN_GRACE = 30.0   # a worker still running this long after "stop" is stuck in the kernel
# What a race legitimately produces: the path or mount went away, is busy, or moved;
# the queue was closed (or its descriptor reused by another queue) under the call.
TOLERATED = frozenset({errno.ENOENT, errno.EBUSY, errno.EINVAL, errno.EBADF, errno.EEXIST,
                       errno.ENOTDIR, errno.EAGAIN, errno.ENOSPC, errno.ELOOP, errno.EXDEV,
                       errno.ENOTEMPTY, errno.ESTALE,
                       # watch_mount(..., -1) when that queue has no watch there
                       errno.EBADSLT,
                       # a closed queue's descriptor number reused by a directory opened
                       # in another thread (stress-lazy): reading it fails so
                       errno.EISDIR})


def params(cmdline: str | None = None) -> tuple[int, float]:
    """(rounds, seconds per round) from the kernel command line."""
    if cmdline is None:
        try:
            with open("/proc/cmdline", encoding="utf-8") as f:
                cmdline = f.read()
        except OSError:
            cmdline = ""
    rounds, seconds = DEFAULT_ROUNDS, DEFAULT_SECONDS
    for word in cmdline.split():
        key, _, value = word.partition("=")
        try:
            if key == "mnh.stress_rounds":
                rounds = max(1, int(value))
            elif key == "mnh.stress_seconds":
                seconds = max(0.1, float(value))
        except ValueError:
            pass
    return rounds, seconds


class Round:
    """Shared state of one round: the stop flag, counters, and what went wrong."""

    def __init__(self, wq: watch_queue.WatchQueueBackend, workspace: str) -> None:
        self.wq = wq
        self.ws = workspace
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ops = 0
        self.records = 0
        self.losses = 0
        self.problems: list[str] = []
        self.queue = watch_queue.open_queue(64)

    def count(self, n: int = 1) -> None:
        with self.lock:
            self.ops += n

    def problem(self, text: str) -> None:
        with self.lock:
            if len(self.problems) < 20:
                self.problems.append(text)

    def call(self, what: str, fn: Callable[[], object], detail: str = "") -> bool:
        """Run one racing call; an errno a race explains is fine, another is a problem.
        The problem reads "WHAT: unexpected ERRNO [DETAIL]": the host's fingerprint keeps
        the part before the brackets, so paths and ids do not split one bug in many."""
        try:
            fn()
        except OSError as exc:
            if exc.errno not in TOLERATED:
                self.problem(f"{what}: unexpected {errno.errorcode.get(exc.errno or 0, '?')}"
                             f" [{detail or exc}]")
            return False
        finally:
            self.count()
        return True

    def watch(self, path: str, watch_id: int, dfd: int = sysc.AT_FDCWD,
              at_flags: int = 0) -> bool:
        wfd = self.queue[1]
        what = "watch_mount remove" if watch_id < 0 else "watch_mount add"
        return self.call(what, lambda: self.wq.watch_mount(path, watch_id, dfd=dfd,
                                                           at_flags=at_flags, queue_fd=wfd),
                         detail=f"{path!r}, id {watch_id}, dfd {dfd}")

    def read(self) -> None:
        """Read what the current queue holds and check every record's framing."""
        rfd = self.queue[0]
        try:
            ready, _, _ = select.select([rfd], [], [], 0.01)
            if not ready:
                return
            data = os.read(rfd, 65536)
        except (OSError, ValueError) as exc:
            if isinstance(exc, OSError) and exc.errno not in TOLERATED:
                self.problem(f"read queue: {exc}")
            return
        for r in decode.decode_watch_queue(data, (self.wq.layout,)):
            if isinstance(r, decode.Problem):
                self.problem(f"malformed record at {r.offset}: {r.message}")
                continue
            with self.lock:
                self.records += 1
                self.losses += r.kind == "meta" and r.name == "LOSS"

    def cycle_queue(self) -> None:
        """Close the queue and open a new one, while the other threads use it."""
        old = self.queue
        self.queue = watch_queue.open_queue(64)
        for fd in old:
            os.close(fd)
        self.count()

    def close(self) -> None:
        for fd in self.queue:
            with contextlib.suppress(OSError):
                os.close(fd)


Worker = Callable[[Round, random.Random], None]


def _loop(rnd: Round, seed: int, body: Worker) -> Callable[[], None]:
    def target() -> None:
        rng = random.Random(seed)
        try:
            while not rnd.stop.is_set():
                body(rnd, rng)
        except Exception as exc:  # a bug in the scenario or an unexpected exception
            rnd.problem(f"{body.__name__}: {type(exc).__name__}: {exc}")
    return target


def _cleanup(workspace: str) -> list[str]:
    """Lazily unmount everything below the workspace; name what would not go."""
    left: list[str] = []
    for _ in range(5):
        below = sorted((m.point for m in snapshot().values()
                        if m.point.startswith(workspace + "/")), key=len, reverse=True)
        if not below:
            return []
        left = below
        for point in below:
            with contextlib.suppress(OSError):
                sysc.umount2(point, sysc.MNT_DETACH)
    return left


def _run_rounds(ctx: Context, workers: list[Worker], setup: Callable[[Context], None]) -> None:
    if not isinstance(ctx.backend, watch_queue.WatchQueueBackend):
        raise ScenarioSkipped("stress scenarios are for the watch-queue backend")
    wq = ctx.backend
    rounds, seconds = params()
    failed = 0
    for n in range(1, rounds + 1):
        setup(ctx)
        rnd = Round(wq, ctx.workspace)
        threads = [threading.Thread(target=_loop(rnd, n * 100 + i, w), name=w.__name__,
                                    daemon=True) for i, w in enumerate(workers)]
        start = time.monotonic()
        for t in threads:
            t.start()
        time.sleep(seconds)
        rnd.stop.set()
        for t in threads:
            t.join(JOIN_GRACE)
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            rnd.problem(f"worker(s) {', '.join(stuck)} still running {JOIN_GRACE:.0f} s after "
                        "stop: stuck in a system call")
        elapsed = time.monotonic() - start
        rnd.close()
        left = _cleanup(ctx.workspace)
        if left:
            rnd.problem(f"mounts left after lazy unmounting: {left[:5]}")
        ok = not rnd.problems
        failed += not ok
        ctx.log.write("round", n=n, ok=ok, ops=rnd.ops, records=rnd.records,
                      losses=rnd.losses, seconds=round(elapsed, 3),
                      problems=rnd.problems)
        if stuck:
            break  # the stuck threads still hold the workspace
    ctx.check(failed == 0, f"{failed} of {rounds} stress round(s) found problems (see the "
                           "round lines of the log)")


# --- stress-race: mount/unmount/move against watch add/remove and queue cycling -----

def _dirs(ctx: Context) -> None:
    for d in ("a", "b", "c", "d"):
        ctx.mkdir(d)


def mounter(rnd: Round, rng: random.Random) -> None:
    ws = rnd.ws
    a, b = (os.path.join(ws, x) for x in rng.sample(["a", "b"], 2))
    if rnd.call("mount a", lambda: sysc.mount("stress", a, "tmpfs")):
        sub = os.path.join(a, "s")
        rnd.call("mkdir", lambda: os.makedirs(sub, exist_ok=True))
        rnd.call("mount a/s", lambda: sysc.mount("stress-sub", sub, "tmpfs"))
        rnd.call("move a to b", lambda: sysc.mount(a, b, None, sysc.MS_MOVE))
    target = b if rng.random() < 0.5 else a
    rnd.call("umount", lambda: sysc.umount2(target, sysc.MNT_DETACH if rng.random() < 0.5
                                            else 0))


def binder(rnd: Round, rng: random.Random) -> None:
    ws = rnd.ws
    c, d = os.path.join(ws, "c"), os.path.join(ws, "d")
    flags = sysc.MS_BIND | (sysc.MS_REC if rng.random() < 0.5 else 0)
    if rnd.call("bind c onto d", lambda: sysc.mount(c, d, None, flags)):
        rnd.call("move_mount d to c", lambda: sysc.move_mount(sysc.AT_FDCWD, d,
                                                              sysc.AT_FDCWD, c, 0))
        rnd.call("umount c", lambda: sysc.umount2(c, sysc.MNT_DETACH))


def watcher(rnd: Round, rng: random.Random) -> None:
    ws = rnd.ws
    path = os.path.join(ws, rng.choice(["", "a", "b", "c", "d", "a/s", "b/s"]))
    wid = rng.randrange(2, 256)
    rnd.watch(path, wid)
    rnd.watch(path, -1)


def cycler(rnd: Round, rng: random.Random) -> None:
    rnd.cycle_queue()
    time.sleep(rng.uniform(0.001, 0.02))


def reader(rnd: Round, rng: random.Random) -> None:
    rnd.read()


def race(ctx: Context) -> None:
    """Mount, move, bind and unmount while watches come and go and the queue is closed
    and reopened under them, and a reader drains it."""
    _run_rounds(ctx, [mounter, mounter, binder, watcher, watcher, cycler, reader], _dirs)


# --- stress-lazy: lazily unmounted trees whose last reference is a descriptor --------

def lazy_tree(rnd: Round, rng: random.Random) -> None:
    ws = rnd.ws
    top = os.path.join(ws, f"l{rng.randrange(4)}")
    os.makedirs(top, exist_ok=True)
    if not rnd.call("mount top", lambda: sysc.mount("lazy", top, "tmpfs")):
        return
    sub = os.path.join(top, "sub")
    rnd.call("mkdir sub", lambda: os.makedirs(sub, exist_ok=True))
    rnd.call("mount sub", lambda: sysc.mount("lazy-sub", sub, "tmpfs"))
    try:
        fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        if exc.errno not in TOLERATED:
            rnd.problem(f"open sub: {exc}")
        return
    rnd.watch(sub, rng.randrange(2, 256))
    rnd.watch(top, rng.randrange(2, 256))
    rnd.call("lazy umount top", lambda: sysc.umount2(top, sysc.MNT_DETACH))
    # The detached tree is alive only through fd: watch it through the descriptor, then
    # drop the last reference (the mounts are destroyed in the close).
    rnd.watch("", rng.randrange(2, 256), dfd=fd, at_flags=sysc.AT_EMPTY_PATH)
    time.sleep(rng.uniform(0, 0.005))
    os.close(fd)
    rnd.count()


def lazy(ctx: Context) -> None:
    """Trees unmounted with MNT_DETACH while watched, freed by closing a descriptor."""
    _run_rounds(ctx, [lazy_tree, lazy_tree, watcher, cycler, reader], lambda c: None)


# --- stress-watches: many watches on one queue -----------------------------------------

MANY = 128


def _many_dirs(ctx: Context) -> None:
    for i in range(MANY):
        ctx.mkdir("w", f"{i:03d}")


def many_watches(rnd: Round, rng: random.Random) -> None:
    ws = rnd.ws
    ids = list(range(MANY))
    rng.shuffle(ids)
    for i in ids:
        rnd.watch(os.path.join(ws, "w", f"{i:03d}"), 2 + i)
    rng.shuffle(ids)
    for i in ids:
        rnd.watch(os.path.join(ws, "w", f"{i:03d}"), -1)


def churn(rnd: Round, rng: random.Random) -> None:
    ws = rnd.ws
    d = os.path.join(ws, "w", f"{rng.randrange(MANY):03d}")
    if rnd.call("mount", lambda: sysc.mount("many", d, "tmpfs")):
        rnd.call("remount ro", lambda: sysc.mount(None, d, None,
                                                  sysc.MS_REMOUNT | sysc.MS_BIND
                                                  | sysc.MS_RDONLY))
        rnd.call("umount", lambda: sysc.umount2(d))


def watches(ctx: Context) -> None:
    """Many watches on one small queue (it overruns) while mounts churn below them."""
    _run_rounds(ctx, [many_watches, churn, churn, reader], _many_dirs)
