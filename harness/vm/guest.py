"""What every transport gives the guest: the guest-tests tree, how Python starts there,
the series' abi.json, and the default vCPU count."""

from __future__ import annotations

import json
from pathlib import Path

import mnh_guest

from harness.kernel import abi
from harness.kernel.image import Kernel

GUEST_DIR = Path(mnh_guest.__file__).resolve().parent.parent
# How the guest starts Python: -B writes no bytecode into the tree it shares with the
# host; -S skips site, which the stdlib-only guest code does not need (bench/results.json
# key watch_queue_suite has the start-up figures).
GUEST_PYTHON_FLAGS = ("-B", "-S")


def default_cpus(accel_name: str) -> int:
    """One vCPU under TCG: with several, QEMU's multi-threaded TCG and the kernel's
    boot-time text patching race now and then (seen here: "Oops: int3" in
    sched_clock_cpu during boot of Debian's 7.3.4), which is not the kernel under
    test's fault. Races are studied with an explicit --cpus."""
    return 2 if accel_name == "kvm" else 1


def abi_file(backend: str, kernel: Kernel, series: str | None, directory: Path) -> Path | None:
    """watch-queue: write the series' [abi] as ``directory/abi.json`` for the guest (the
    series given, else the one the kernel was built with, else the bundled one)."""
    if backend != "watch-queue":
        return None
    name = series or abi.series_of_kernel(kernel.metadata) or abi.DEFAULT_SERIES
    f = directory / "abi.json"
    f.write_text(json.dumps(abi.load(name), indent=2) + "\n")
    return f


def python_argv(python: str, module: str, *args: str) -> list[str]:
    """``python -B -S -m module args...`` as the guest runs it."""
    return [python, *GUEST_PYTHON_FLAGS, "-m", module, *args]
