"""What ``python -m bench`` was asked for; the argparse Namespace stops in ``main``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchOptions:
    kernel: str = "debian"             # the prebuilt kernel of the fanotify and image benches
    patched_kernel: str = "build"      # the series build of the watch-queue benches
    jobs: int | None = None            # make -jN of the build bench (default: nproc)
    boots: int = 3                     # alternating boots per side of a ratio
    records: int = 1_000_000           # decoder bench
    repeat: int = 3
    rounds: int = 5                    # stress bench
