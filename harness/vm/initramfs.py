"""A tiny initramfs for modular kernels in image mode: busybox and the modules to mount root.

Debian's prebuilt kernels have virtio_blk, ext4 and virtio_net as modules, and the
guest image is kernel-independent, so the modules cannot live in the image. The
harness therefore writes a newc cpio archive per kernel with a static busybox, the
modules the image needs (their dependencies resolved on the host from modules.dep,
decompressed here so busybox's insmod can load them) and ``images/initramfs-init``,
which loads them, mounts the image and switches to its init. A kernel without
modules (the patched build) boots the image directly and needs none of this.

The archive is cached under the kernel release and the content of its inputs.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from harness import paths
from harness.errors import PrerequisiteError

INIT_SCRIPT = paths.data_dir("images") / "initramfs-init"
# The modules image mode loads, and why. A name missing from the kernel is skipped.
MODULES: tuple[tuple[str, str], ...] = (
    ("virtio_blk", "the image is a virtio disk"),
    ("ext4", "the image's file system"),
    ("virtio_net", "eth0: SSH through QEMU's user-mode network"),
    ("virtio_rng", "entropy for sshd without waiting"),
    ("nfsd", "the NFS server the expiry scenario exports from"),
    ("nfsv4", "the NFS client that mounts that export"),
    ("nfsv3", "the same over NFSv3"),
)
CONSOLE_RDEV = (5, 1)
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def module_dir(kernel_image: Path) -> Path | None:
    """The module tree beside a kernel image (Debian's 7.x packaging), if any."""
    d = kernel_image.parent
    return d if (d / "modules.dep").exists() else None


def parse_modules_dep(text: str) -> dict[str, tuple[str, list[str]]]:
    """modules.dep -> {module name: (path, dependency paths)}."""
    out: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        path, _, deps = line.partition(":")
        out[module_name(path)] = (path.strip(), deps.split())
    return out


def module_name(path: str) -> str:
    base = os.path.basename(path.strip())
    for ext in (".ko.xz", ".ko.zst", ".ko.gz", ".ko"):
        if base.endswith(ext):
            base = base[: -len(ext)]
            break
    return base.replace("-", "_")


def load_order(dep: dict[str, tuple[str, list[str]]], wanted: Iterable[str]) -> list[str]:
    """Module paths to insmod in order: every dependency before its user, no repeats."""
    by_path = {p: deps for p, deps in dep.values()}
    order: list[str] = []

    def visit(path: str, depth: int = 0) -> None:
        if path in order or depth > 64:
            return
        for d in by_path.get(path, []):
            visit(d, depth + 1)
        order.append(path)

    for name in wanted:
        if name in dep:
            visit(dep[name][0])
    return order


def _decompress(src: Path) -> bytes:
    data = src.read_bytes()
    if src.name.endswith(".xz"):
        return lzma.decompress(data)
    if src.name.endswith(".gz"):
        return gzip.decompress(data)
    if src.name.endswith(".zst"):
        raise PrerequisiteError(f"{src} is zstd-compressed, which the harness cannot unpack "
                                "with the standard library; use a kernel with xz or "
                                "uncompressed modules.")
    return data


def busybox() -> Path:
    for c in BUSYBOX_CANDIDATES:
        p = Path(c)
        if p.is_file():
            return p
    raise PrerequisiteError("busybox is missing: image mode builds an initramfs with it for "
                            "modular kernels. Run `harness doctor --install` (package "
                            "busybox-static).")


# --- a newc cpio writer (the format the kernel unpacks) ----------------------

def _cpio_entry(name: str, mode: int, data: bytes = b"", ino: int = 0,
                rdev: tuple[int, int] = (0, 0)) -> bytes:
    name_b = name.encode() + b"\0"
    # ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, *rdev, len(name_b), 0)
    head = b"070701" + b"".join(f"{v:08x}".encode() for v in fields)
    out = head + name_b
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc archive of (path, mode, data) entries, ending with the trailer."""
    parts = [_cpio_entry(name, mode, data, ino, CONSOLE_RDEV if name == "dev/console" else (0, 0))
             for ino, (name, mode, data) in enumerate(entries, 1)]
    parts.append(_cpio_entry("TRAILER!!!", 0))
    return b"".join(parts)


def build(kernel_image: Path, release: str) -> Path | None:
    """The initramfs for ``kernel_image``, or None when the kernel has no module tree."""
    mods = module_dir(kernel_image)
    if mods is None:
        return None
    dep = parse_modules_dep((mods / "modules.dep").read_text())
    order = load_order(dep, (m for m, _ in MODULES))
    bb = busybox()
    h = hashlib.sha256()
    for part in (release, INIT_SCRIPT.read_text(), *order, str(bb.stat().st_size)):
        h.update(part.encode() + b"\n")
    out = paths.cache_dir("initramfs") / f"{release or 'kernel'}-{h.hexdigest()[:16]}.cpio"
    if out.exists():
        return out
    d, f, x = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFREG | 0o755
    entries: list[tuple[str, int, bytes]] = [
        ("bin", d, b""), ("dev", d, b""), ("proc", d, b""), ("sys", d, b""),
        ("newroot", d, b""), ("modules", d, b""),
        ("dev/console", stat.S_IFCHR | 0o600, b""),
        ("bin/busybox", x, bb.read_bytes()),
        ("bin/sh", stat.S_IFLNK | 0o777, b"busybox"),
        ("init", x, INIT_SCRIPT.read_bytes()),
    ]
    names = []
    for rel in order:
        name = module_name(rel) + ".ko"
        names.append(name)
        entries.append((f"modules/{name}", f, _decompress(mods / rel)))
    entries.append(("modules.order", f, ("\n".join(names) + "\n").encode()))
    data = cpio(entries)
    with tempfile.NamedTemporaryFile(dir=out.parent, delete=False, prefix=".tmp-") as tmp:
        tmp.write(data)
    os.replace(tmp.name, out)
    return out
