"""The harness's error hierarchy.

Every error carries a message that names the cause and the next step, and, where
there is one, the directory of artifacts that was kept for inspection.
"""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """Base class: a one-paragraph message naming the cause and what to do next."""

    exit_code = 2

    def __init__(self, message: str, *, artifacts: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.artifacts = artifacts

    def __str__(self) -> str:
        if self.artifacts is not None:
            return f"{self.message}\nArtifacts kept in: {self.artifacts}"
        return self.message


class PrerequisiteError(HarnessError):
    """A host tool or package is missing."""


class KernelFetchError(HarnessError):
    """A prebuilt kernel could not be resolved or downloaded."""


class PatchError(HarnessError):
    """A patch of the series does not apply."""


class ConfigError(HarnessError):
    """A Kconfig option asked for did not land in the final .config."""


class BuildError(HarnessError):
    """The kernel build failed."""


class BootError(HarnessError):
    """The guest could not be started (bad kernel path, QEMU refused, ...)."""


class ImageError(HarnessError):
    """A guest image is missing, corrupt, or lacks what the harness needs."""


class HostKeyError(BootError):
    """The guest presented an SSH host key other than the one recorded for its image."""


class LostVMError(HarnessError):
    """The guest went away without reporting a verdict."""


class DecodeError(HarnessError):
    """A notification record or log could not be decoded."""

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{message}{where}")
        self.offset = offset


class BisectError(HarnessError):
    """A bisect cannot go on (bad ends, bad arguments)."""


class ReproError(HarnessError):
    """repro cannot go on (bad arguments, the guest keeps failing to start)."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived (a CI cancel, ``timeout``, a closed terminal).

    Raised in the main thread by ``harness.signals`` so that every ``finally`` runs: the
    guest's process group is stopped and the outputs are written with what was decided.
    It is a KeyboardInterrupt on purpose, not a HarnessError: no ``except HarnessError``
    or ``except Exception`` (a bisect step's skip, a repro boot's retry) may swallow it,
    and everything that handles Ctrl-C handles it too. The exit status is 128 + the
    signal's number, as a shell reports it (SIGINT: 130)."""

    def __init__(self, signum: int, name: str) -> None:
        super().__init__(f"stopped by {name}")
        self.signum = signum
        self.name = name
        self.exit_code = 128 + signum


def signal_name(exc: BaseException) -> str:
    """"SIGTERM", "SIGHUP" for ``Interrupted``; "SIGINT" for a plain Ctrl-C."""
    return exc.name if isinstance(exc, Interrupted) else "SIGINT"
