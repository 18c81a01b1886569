"""The ``harness`` command: argument parsing and dispatch only.

Each subcommand is one module of this package with ``register(subparsers)``; the
argparse Namespace is turned into a frozen options dataclass there and stops at
this edge. The logic lives in the stage packages (build, kernel, vm, results,
workflows).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from types import ModuleType

from harness import __version__
from harness.cli import (
    bisect,
    build,
    compare,
    decode,
    doctor,
    image,
    kernel,
    repro,
    run,
    shell,
)
from harness.errors import HarnessError, Interrupted, signal_name
from harness.signals import stop_on_signals

# The subcommands, in help order.
COMMANDS: tuple[ModuleType, ...] = (doctor, kernel, build, image, run, shell, decode,
                                    compare, bisect, repro)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="harness", description="Build, boot and test Linux "
                                "mount-notification patch series under QEMU.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = p.add_subparsers(dest="command", required=True)
    for mod in COMMANDS:
        mod.register(sub)
    return p


def _quiet_broken_pipe() -> int:
    """stdout was closed by its reader (``| head``): stop quietly, as a pipe tool does."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())   # the interpreter's final flush has nowhere to fail
    return 141                              # 128 + SIGPIPE, what a shell reports for `yes | head`


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else
                        logging.INFO if args.verbose else logging.WARNING,
                        format="harness: %(message)s", stream=sys.stderr)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        with stop_on_signals():
            rc = func(args)
        sys.stdout.flush()
        return rc
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except KeyboardInterrupt as exc:   # SIGINT; SIGTERM and SIGHUP arrive as Interrupted
        code = exc.exit_code if isinstance(exc, Interrupted) else 130
        print(f"harness: stopped by {signal_name(exc)}; the guest was stopped, what was "
              "decided is written and the artifacts are kept", file=sys.stderr)
        return code
    except HarnessError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
