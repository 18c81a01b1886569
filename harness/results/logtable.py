"""``harness decode LOG``: print any collected log as a readable table.

LOG is a scenario log (JSON lines written by the guest), a results directory (all
its scenario logs), or a raw buffer of records (``--raw fanotify|watch-queue``).
Raw bytes are always decoded again with the shared decoder, so the table shows what
the bytes say, not what the guest thought they said. Garbled or truncated input is
reported with its line or byte offset and makes the exit status 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from mnh_guest import decode

from harness.errors import DecodeError
from harness.kernel import abi


def _records(backend: str, raw: bytes, layouts: tuple[decode.WatchLayout, ...]
             ) -> list[Any]:
    if backend == "fanotify":
        return list(decode.decode_fanotify(raw))
    return list(decode.decode_watch_queue(raw, layouts))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        yield from enumerate(f, 1)


def decode_log(path: Path, out: TextIO, layouts: tuple[decode.WatchLayout, ...] = ()) -> int:
    """Print one scenario log; return the number of problems found."""
    problems = 0
    backend = "fanotify"
    print(f"== {path}", file=out)
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            problems += 1
            what = "truncated" if not line.endswith("\n") else "garbled"
            print(f"  line {lineno}: {what} JSON ({exc.msg} at column {exc.colno}); "
                  "the guest may have died while writing it", file=out)
            continue
        if not isinstance(entry, dict):
            problems += 1
            print(f"  line {lineno}: not a log entry (a JSON {type(entry).__name__})", file=out)
            continue
        kind = entry.get("kind")
        if kind == "header":
            backend = str(entry.get("backend", backend))
            print(f"  scenario {entry.get('scenario')} backend {backend} "
                  f"kernel {entry.get('kernel')}", file=out)
        elif kind == "op":
            status = "ok" if entry.get("ok") else "MISMATCH"
            err = f" errno={entry['errno']}" if entry.get("errno") else ""
            print(f"  op {entry.get('seq')}: {entry.get('label')} [{status}]{err}", file=out)
            try:
                raw = bytes.fromhex(str(entry.get("raw", "")))
            except ValueError:
                problems += 1
                print(f"    line {lineno}: raw bytes are not valid hex", file=out)
                continue
            for rec in _records(backend, raw, layouts):
                problems += isinstance(rec, decode.Problem)
                print(f"    {decode.describe(rec)}", file=out)
            for key in ("missing", "unexpected", "wrong"):
                for item in entry.get(key) or []:
                    print(f"    {key.upper()}: {item}", file=out)
        elif kind == "check" and not entry.get("ok"):
            print(f"  check FAILED: {entry.get('message')}", file=out)
        elif kind == "verdict":
            print(f"  verdict: {entry.get('outcome')} {entry.get('message', '')}", file=out)
    return problems


def decode_raw(path: Path, fmt: str, out: TextIO,
               layouts: tuple[decode.WatchLayout, ...] = ()) -> int:
    data = path.read_bytes()
    problems = 0
    for rec in _records(fmt, data, layouts):
        problems += isinstance(rec, decode.Problem)
        print(decode.describe(rec), file=out)
    return problems


def decode_path(target: Path, raw: str | None, out: TextIO = sys.stdout) -> int:
    if not target.exists():
        raise DecodeError(f"{target} does not exist. Give a scenario log (.jsonl), a results "
                          "directory, or a raw record buffer with --raw.")
    layouts = abi.layouts_near(target)
    if raw:
        problems = decode_raw(target, raw, out, layouts)
    elif target.is_dir():
        logs = sorted(target.glob("**/scenarios/*.jsonl")) or sorted(target.glob("*.jsonl"))
        if not logs:
            raise DecodeError(f"{target} holds no scenario logs (*.jsonl).")
        problems = sum(decode_log(p, out, layouts) for p in logs)
    else:
        problems = decode_log(target, out, layouts)
    if problems:
        print(f"{problems} problem(s) found while decoding {target}", file=sys.stderr)
        return 1
    return 0
