"""``harness doctor``: host prerequisites and the KVM probe."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.doctor import doctor


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("doctor", help="check (and install) host prerequisites and KVM")
    p.add_argument("--install", action="store_true",
                   help="install what is missing (apt-get/pip as root; else print the command)")
    p.add_argument("--probe-kernel", type=Path, default=None,
                   help="kernel image for the KVM probe (default: any cached kernel)")
    p.set_defaults(func=lambda a: doctor(a.install, a.probe_kernel))
