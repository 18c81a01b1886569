"""``harness shell``: the command line of interactive guests."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import HarnessError
from harness.workflows.shell import ShellOptions, attach, shell


def from_args(a: argparse.Namespace) -> ShellOptions:
    if not a.kernel:
        raise HarnessError("--kernel is required (a kernel image, a build artifact directory, "
                           "debian[:VERSION] or build[:SERIES]), or --attach DIR for a second "
                           "shell.")
    return ShellOptions(kernel=a.kernel, backend=a.backend, series=a.series, image=a.image,
                        commands=tuple(a.command),
                        gdb=None if a.gdb is None else int(a.gdb), ssh_port=a.ssh_port,
                        cpus=a.cpus, memory=a.memory, append=tuple(a.append),
                        hardware_modules=a.hardware_modules, boot_timeout=a.boot_timeout)


def _main(a: argparse.Namespace) -> int:
    if a.attach:
        return attach(a.attach, tuple(a.command))
    return shell(from_args(a))


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
