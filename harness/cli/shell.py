"""``harness shell``: the command line of interactive guests."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness import paths
from harness.errors import HarnessError
from harness.kernel import resolve
from harness.workflows.shell import attach, image_shell, vng_shell


def _main(a: argparse.Namespace) -> int:
    if a.attach:
        return attach(a.attach, a.command)
    if not a.kernel:
        raise HarnessError("--kernel is required (a kernel image, a build artifact directory, "
                           "debian[:VERSION] or build[:SERIES]), or --attach DIR for a second "
                           "shell.")
    kernel = resolve.kernel(a.kernel)
    session = paths.cache_dir("shells") / time.strftime("%Y%m%d-%H%M%S")
    session.mkdir(parents=True, exist_ok=True)
    if a.image:
        return image_shell(a, kernel, session)
    return vng_shell(a, kernel, session)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("shell", help="an interactive guest with a live mount watch; a second "
                       "shell into a running guest; gdb")
    p.add_argument("--kernel", help="image path, build artifact dir, or debian[:VERSION]")
    p.add_argument("--image", help="image mode: a guest image (directory or suite name)")
    p.add_argument("--backend", default="fanotify", choices=("fanotify", "watch-queue"))
    p.add_argument("--series", help="watch-queue: the series whose ABI the kernel has")
    p.add_argument("--command", action="append", default=[], metavar="CMD",
                   help="run CMD in the guest's shell instead of an interactive session "
                   "(repeatable; no terminal needed)")
    p.add_argument("--attach", type=Path, metavar="DIR", help="a second shell over SSH into "
                   "the running guest whose results/session directory is DIR")
    p.add_argument("--gdb", nargs="?", const="0", default=None, metavar="PORT",
                   help="expose QEMU's gdb stub on 127.0.0.1 (PORT, default a free one)")
    p.add_argument("--ssh-port", type=int, default=None)
    p.add_argument("--cpus", type=int, default=None)
    p.add_argument("--memory", default="1G")
    p.add_argument("--append", action="append", default=[], metavar="ARG")
    p.add_argument("--hardware-modules", action="store_true",
                   help="let udev load the drivers of QEMU's emulated PC (see `harness run`)")
    p.add_argument("--boot-timeout", type=float, default=180.0)
    p.set_defaults(func=_main)
