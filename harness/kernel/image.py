"""A bootable kernel image: what it is and what is known about it.

``check`` refuses, before anything boots, a file that is not a kernel image: an x86
bzImage carries the boot protocol's "HdrS" magic at 0x202, a vmlinux is an ELF file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import KernelFetchError


@dataclass(frozen=True)
class Kernel:
    """A bootable kernel and what is known about it."""

    image: Path                 # bzImage / vmlinuz
    release: str                # uname -r, or "" when unknown
    source: str                 # "debian", "build", "path"
    vmlinux: Path | None = None
    metadata: Path | None = None

    def to_json(self) -> dict[str, object]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def release_of(image: Path) -> str:
    """The kernel release string embedded in a bzImage header (best effort)."""
    try:
        with open(image, "rb") as f:
            head = f.read(0x20000)
        if head[0x202:0x206] != b"HdrS":
            return ""
        off = int.from_bytes(head[0x20E:0x210], "little") + 0x200
        end = head.index(b"\0", off)
        return head[off:end].decode(errors="replace").split(" ", 1)[0]
    except (OSError, ValueError):
        return ""




def kind_of(image: Path) -> str:
    """"bzImage", "vmlinux" (ELF), or "" when the file is neither."""
    try:
        with open(image, "rb") as f:
            head = f.read(0x210)
    except OSError:
        return ""
    if head[:4] == b"\x7fELF":
        return "vmlinux"
    if len(head) >= 0x206 and head[0x202:0x206] == b"HdrS":
        return "bzImage"
    return ""


def check(image: Path) -> None:
    """Raise unless ``image`` is a kernel the harness can boot (a bzImage or a vmlinux)."""
    if not image.is_file():
        raise KernelFetchError(f"Kernel image {image} is not a file. Give a bzImage or vmlinuz "
                               "(arch/x86/boot/bzImage of a build), or `debian[:VERSION]`.")
    if kind_of(image) == "":
        raise KernelFetchError(
            f"{image} is not a kernel image: it has neither the x86 boot header (\"HdrS\" at "
            "offset 0x202, as a bzImage or vmlinuz has) nor an ELF header (a vmlinux). Point "
            "--kernel at arch/x86/boot/bzImage of a build, a `harness build` artifact "
            "directory, or `debian[:VERSION]`.")
