"""``harness decode``: a collected log, a results directory or a raw buffer as a table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.results.logtable import decode_path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("decode", help="print a collected log as a readable table")
    p.add_argument("log", type=Path, help="scenario log, results directory, or raw buffer")
    p.add_argument("--raw", choices=("fanotify", "watch-queue"),
                   help="LOG is a raw buffer of records of this kind")
    # sys.stdout as it is at call time (main's default was bound at import time).
    p.set_defaults(func=lambda a: decode_path(a.log, a.raw, sys.stdout))
