"""A live mount watch for interactive guests: ``python3 -m mnh_guest.watch --backend ...``.

``harness shell`` starts this in the background; it prints one line per record, decoded
with the shared decoder, as the user mounts, moves and unmounts things. Mount ids are
looked up in the mount table (statmount) so a line names the mount point when the mount
still exists. Stops on SIGTERM/SIGINT or after ``--duration`` seconds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, TextIO

from . import decode, mounts
from .backends import fanotify, watch_queue
from .context import ScenarioSkipped

BACKENDS = ("fanotify", "watch-queue")


def _where(table: dict[int, mounts.Mount], mid: int | None) -> str:
    if mid is None:
        return ""
    m = table.get(mid)
    if m is None:
        for cand in table.values():  # watch_queue reports the reusable ids
            if cand.old_id == mid:
                m = cand
                break
    return f" {m.point} ({m.fstype})" if m is not None else " (gone)"


def describe(record: Any, table: dict[int, mounts.Mount]) -> str:
    return decode.describe(record, lambda mid: _where(table, mid))


def watch(backend_name: str, abi_path: str | None, path: str, duration: float,
          out: TextIO, ready_file: str | None = None) -> int:
    if backend_name == "fanotify":
        backend: Any = fanotify.FanotifyBackend()
        backend.open()
        layouts: tuple[decode.WatchLayout, ...] = ()
    else:
        if abi_path is None:
            print("mnh-watch: the watch-queue backend needs --abi FILE", file=sys.stderr)
            return 2
        backend = watch_queue.WatchQueueBackend(watch_queue.load_abi(abi_path))
        backend.open(path)
        layouts = (backend.layout,)
    what = path if backend_name != "fanotify" else "this mount namespace"
    print(f"mnh-watch: {backend_name} watch on {what}; records follow", file=out, flush=True)
    if ready_file:
        with open(ready_file, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    end = time.monotonic() + duration if duration > 0 else float("inf")
    try:
        while time.monotonic() < end:
            raw = backend.read_raw(time.monotonic() + 1.0, 1)
            if not raw:
                continue
            records = (decode.decode_fanotify(raw) if backend_name == "fanotify"
                       else decode.decode_watch_queue(raw, layouts))
            table = mounts.snapshot()
            for rec in records:
                print(f"mnh-watch: {describe(rec, table)}", file=out, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        backend.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mnh_guest.watch")
    p.add_argument("--backend", default="fanotify", choices=BACKENDS)
    p.add_argument("--abi", help="JSON file with the series' [abi] table (watch-queue)")
    p.add_argument("--path", default="/", help="watch-queue: the mount to watch (subtree)")
    p.add_argument("--duration", type=float, default=0.0, help="stop after N seconds (0: never)")
    p.add_argument("--ready-file", help="create this file once the watch is in place")
    a = p.parse_args(argv)
    try:
        return watch(a.backend, a.abi, a.path, a.duration, sys.stdout, a.ready_file)
    except ScenarioSkipped as exc:
        print(f"mnh-watch: {exc}", file=sys.stderr)
        return 4


if __name__ == "__main__":
    sys.exit(main())
