"""The ``harness`` command: argument parsing and dispatch only; the logic lives elsewhere."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from types import ModuleType

from . import __version__, bisect_run, compare, decodelog, doctor, image, kernels, repro, run, shell
from .build import command as build
from .errors import HarnessError

# The subcommands, in help order: each module has register(subparsers).
COMMANDS: tuple[ModuleType, ...] = (doctor, kernels, build, image, run, shell, decodelog,
                                    compare, bisect_run, repro)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Build, boot and test Linux "
                                "mount-notification patch series under QEMU.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = p.add_subparsers(dest="command", required=True)
    for mod in COMMANDS:
        mod.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else
                        logging.INFO if args.verbose else logging.WARNING,
                        format="harness: %(message)s", stream=sys.stderr)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("harness: interrupted; artifacts so far are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
