"""The guest machine and an interactive session, whatever transport boots them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.kernel.image import Kernel

SHELL_COMMAND_TIMEOUT = 120.0


@dataclass(frozen=True)
class Machine:
    """The guest machine, whatever transport boots it."""

    kernel: Kernel
    accel: str
    cpus: int
    memory: str = "1G"
    append: tuple[str, ...] = ()       # extra kernel arguments (after the harness's own)
    gdb_port: int | None = None        # QEMU's gdb stub on this loopback port


@dataclass(frozen=True)
class ShellRequest:
    """An interactive guest (``harness shell``): a live watch, then a shell or commands."""

    session: Path                      # where the console log and ssh.json go
    watch_argv: tuple[str, ...]        # the live watch, without --abi
    abi_file: Path | None
    commands: tuple[str, ...] = ()     # run these instead of an interactive shell
    interactive: bool = False
    boot_timeout: float = 180.0
