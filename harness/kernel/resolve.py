"""What ``--kernel`` names: a path, a build artifact, a kernel tree, ``build[:SERIES][@K]``
or ``debian[:VERSION]`` (``harness.kernel.debian``), resolved to one ``Kernel``."""

from __future__ import annotations

from pathlib import Path

from harness.build.pipeline import BuildRequest, build
from harness.errors import ConfigError, KernelFetchError
from harness.kernel import abi, debian
from harness.kernel.image import Kernel, check, release_of


def kernel(spec: str) -> Kernel:
    """``debian[:VERSION]``, ``build[:SERIES][@K|@posted]``, a build artifact directory, a
    kernel tree, or an image file."""
    if spec == "debian" or spec.startswith("debian:"):
        return debian.fetch(spec.partition(":")[2] or None)
    if spec == "build" or spec.startswith(("build:", "build@")):
        series, _, upto = spec.removeprefix("build").removeprefix(":").partition("@")
        return build_kernel(series or None, upto or None)
    p = Path(spec).expanduser()
    if not p.exists():
        raise KernelFetchError(
            f"Kernel {spec!r} does not exist. Give a kernel image (bzImage/vmlinuz), a build "
            "artifact directory printed by `harness build`, a kernel build tree, or "
            "`debian[:VERSION]` for a prebuilt Debian kernel.")
    if p.is_dir():
        for rel, source in (("bzImage", "build"), ("arch/x86/boot/bzImage", "tree")):
            if (p / rel).is_file():
                check(p / rel)
                vmlinux = p / "vmlinux"
                return Kernel(image=p / rel, release=release_of(p / rel), source=source,
                              vmlinux=vmlinux if vmlinux.exists() else None,
                              metadata=(p / "metadata.json")
                              if (p / "metadata.json").exists() else None)
        k = debian.kernel_from_dir(p)
        if k is not None:
            return k
        raise KernelFetchError(
            f"{p} is a directory without a kernel image (no bzImage, "
            "arch/x86/boot/bzImage or kernel.json). Point --kernel at the image itself.")
    check(p)   # /etc/passwd is refused here, not booted
    return Kernel(image=p.resolve(), release=release_of(p), source="path")


def build_kernel(series: str | None, upto: str | None = None) -> Kernel:
    """Build (or take from the cache) the patched kernel of ``series``; ``upto``: only
    the first K patches ("K"), or the series as posted ("posted": its [posted] table)."""
    name = series or abi.DEFAULT_SERIES
    k: int | None = None
    if upto == "posted":
        k = abi.posted(name).patches
    elif upto is not None:
        if not upto.isdigit():
            raise ConfigError(f"build:{name}@{upto}: after @ give a patch count K (the first K "
                              "patches) or 'posted' (the series as posted, without the fixes).")
        k = int(upto)
    art = build(BuildRequest(series=name, upto=k))
    return Kernel(image=art.bzimage, release=release_of(art.bzimage), source="build",
                  vmlinux=art.vmlinux if art.vmlinux.exists() else None,
                  metadata=art.directory / "metadata.json")


