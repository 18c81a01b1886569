"""``harness compare``: one table of scenario outcomes across results directories."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.results.compare import print_table


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compare", help="one table of scenario outcomes across result dirs")
    p.add_argument("dirs", nargs="+", type=Path)
    p.set_defaults(func=lambda a: print_table(a.dirs))
