"""``harness kernel fetch``: a prebuilt Debian kernel into the cache."""

from __future__ import annotations

import argparse

from harness.errors import KernelFetchError
from harness.kernel import debian


def _fetch_main(spec: str, refresh: bool) -> int:
    if not (spec == "debian" or spec.startswith("debian:")):
        raise KernelFetchError(f"Unknown kernel source {spec!r}: only `debian[:VERSION]` can be "
                               "fetched (for your own tree use `harness build --tree`).")
    wanted = spec.partition(":")[2] or None
    k = debian.fetch(wanted, refresh=refresh)
    print(k.image.parent if k.metadata is None else k.metadata.parent)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("kernel", help="prebuilt kernels")
    ksub = p.add_subparsers(dest="kernel_cmd", required=True)
    f = ksub.add_parser("fetch", help="download a prebuilt kernel; prints its directory")
    f.add_argument("spec", help="debian or debian:VERSION (e.g. debian:7.2.13)")
    f.add_argument("--refresh", action="store_true", help="refresh the package index first")
    f.set_defaults(func=lambda a: _fetch_main(a.spec, a.refresh))
