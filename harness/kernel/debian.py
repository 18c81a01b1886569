"""Prebuilt Debian kernels.

``debian`` resolves the newest Debian kernel that has fanotify mount events
(Linux 6.15+): the 7.x ``linux-binary-*`` + ``linux-modules-*`` pairs, and older
ones as ``linux-image-*-unsigned``, from the ``sid`` and ``trixie-backports``
suites. They are fetched with ``apt-get download`` through a private sources list
whose mirror URI is read from the machine's own apt configuration (so nothing here
names a host), extracted once into the cache, and recorded with exact versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.errors import KernelFetchError
from harness.kernel.image import Kernel
from harness.progress import Progress, beating

SUITES = ("sid", "trixie-backports")
# commit 0f46d81f2bce ("fanotify: notify on mount attach and detach") (in v6.15)
MIN_FANOTIFY_MNT = (6, 15)
INDEX_MAX_AGE = 24 * 3600.0
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
APT_HELPER = "/usr/lib/apt/apt-helper"
# The generic amd64 flavour only (not rt-amd64, cloud-amd64): 7.3.4+deb13-amd64, 6.1.0-28-amd64.
_PKG_RE = re.compile(r"^linux-(?:binary|image)-(?P<rel>(?P<ver>\d+\.\d+(?:\.\d+)?)"
                     r"(?:\+deb\d+|-\d+)?-amd64)(?P<unsigned>-unsigned)?$")


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    release: str                # kernel release, e.g. 7.3.4+deb13-amd64
    upstream: tuple[int, ...]
    companions: tuple[str, ...]  # packages that go with it (modules)


# --- the machine's apt mirror ------------------------------------------------

def _apt_source_files() -> Iterator[Path]:
    yield Path("/etc/apt/sources.list")
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        yield from sorted(d.iterdir())


def parse_mirror(text: str, deb822: bool) -> str | None:
    """The first Debian archive URI (not a security or third-party one) in a sources file."""
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    k, v = line.split(":", 1)
                    fields[k.strip().lower()] = v.strip()
            suites = fields.get("suites", "").split()
            components = fields.get("components", "").split()
            for uri in fields.get("uris", "").split():
                if _is_main_archive(uri, suites, components):
                    return uri
        return None
    for line in text.splitlines():
        parts = re.sub(r"\[[^]]*\]", "", line).split()
        if (len(parts) >= 3 and parts[0] == "deb"
                and _is_main_archive(parts[1], parts[2:3], parts[3:])):
            return parts[1]
    return None


def _is_main_archive(uri: str, suites: list[str], components: list[str]) -> bool:
    # "main": third-party repositories also live under .../debian (Docker's
    # https://download.docker.com/linux/debian has component "stable").
    return (uri.rstrip("/").endswith("/debian") and bool(suites)
            and not any("security" in s for s in suites) and "main" in components)


def machine_mirror() -> str:
    override = os.environ.get("MNH_DEBIAN_MIRROR")
    if override:
        return override
    for f in _apt_source_files():
        if not f.is_file() or f.suffix not in (".list", ".sources", ""):
            continue
        uri = parse_mirror(f.read_text(errors="replace"), deb822=f.suffix == ".sources")
        if uri:
            return uri
    raise KernelFetchError(
        "Could not find a Debian archive mirror in this machine's apt sources "
        "(/etc/apt/sources.list and sources.list.d). Set MNH_DEBIAN_MIRROR to the URI of a "
        "Debian mirror (the part before /dists/) and run the command again.")


# --- a private apt configuration --------------------------------------------

class PrivateApt:
    """apt-get/apt-cache confined to a directory of the cache."""

    def __init__(self, root: Path, mirror: str) -> None:
        self.root = root
        self.mirror = mirror
        (root / "lists" / "partial").mkdir(parents=True, exist_ok=True)
        (root / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
        signed = f"signed-by={KEYRING}" if os.path.exists(KEYRING) else "trusted=yes"
        lines = [f"deb [{signed}] {mirror} {suite} main" for suite in SUITES]
        (root / "sources.list").write_text("\n".join(lines) + "\n")

    def options(self) -> list[str]:
        r = self.root
        return ["-o", f"Dir::Etc::SourceList={r / 'sources.list'}",
                "-o", "Dir::Etc::SourceParts=/dev/null",
                "-o", f"Dir::State::Lists={r / 'lists'}",
                "-o", f"Dir::Cache={r / 'cache'}",
                "-o", "Dir::State::status=/dev/null",
                "-o", "Debug::NoLocking=1",
                "-o", "APT::Architecture=amd64",
                "-o", "APT::Sandbox::User=root",
                "-o", "Acquire::Retries=2"]

    def update(self, force: bool = False) -> None:
        stamp = self.root / "updated"
        if not force and stamp.exists() and time.time() - stamp.stat().st_mtime < INDEX_MAX_AGE:
            return
        res = subprocess.run(["apt-get", *self.options(), "update"], capture_output=True,
                             text=True, timeout=600, check=False)
        if res.returncode != 0 or "Err:" in res.stdout:
            raise KernelFetchError(
                f"apt-get update of the private Debian index ({', '.join(SUITES)}) failed:\n"
                f"{(res.stdout + res.stderr).strip()[-1500:]}\nCheck that the mirror "
                f"{self.mirror!r} is reachable (or set MNH_DEBIAN_MIRROR) and try again.")
        stamp.touch()

    def packages(self) -> Iterator[dict[str, str]]:
        # apt may store the lists compressed (lz4, gz, ...): let apt decompress them.
        for f in sorted((self.root / "lists").glob("*_Packages*")):
            res = subprocess.run([APT_HELPER, "cat-file", str(f)], capture_output=True,
                                 text=True, errors="replace", timeout=300, check=False)
            if res.returncode != 0:
                raise KernelFetchError(f"Could not read the package index {f}: "
                                       f"{res.stderr.strip()}. Run with --refresh.")
            yield from parse_packages(res.stdout)

    def download(self, names: list[str], dest: Path) -> list[Path]:
        res = subprocess.run(["apt-get", *self.options(), "download", *names], cwd=dest,
                             capture_output=True, text=True, timeout=1800, check=False)
        if res.returncode != 0:
            raise KernelFetchError(
                f"apt-get download {' '.join(names)} failed:\n"
                f"{(res.stdout + res.stderr).strip()[-1500:]}\n"
                "Check the network path to the Debian mirror and try again.")
        return sorted(dest.glob("*.deb"))


def parse_packages(text: str) -> Iterator[dict[str, str]]:
    """Stanzas of a Debian Packages index (only the fields the harness needs)."""
    for stanza in text.split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            if k in ("Package", "Version", "Filename", "SHA256", "Size"):
                fields[k] = v.strip()
        if "Package" in fields:
            yield fields


def _upstream(ver: str) -> tuple[int, ...]:
    return tuple(int(x) for x in ver.split("."))


def candidates(stanzas: Iterator[dict[str, str]]) -> list[DebianPackage]:
    """Kernel packages with fanotify mount events, newest first."""
    names: dict[str, str] = {}
    for st in stanzas:
        names.setdefault(st["Package"], st["Version"])  # first seen wins (sid listed first)
    found: list[DebianPackage] = []
    for name, version in names.items():
        m = _PKG_RE.match(name)
        if not m:
            continue
        rel, up = m.group("rel"), _upstream(m.group("ver"))
        if up < MIN_FANOTIFY_MNT:
            continue
        if name.startswith("linux-binary-"):
            modules = f"linux-modules-{rel}"
            if modules not in names:
                continue
            found.append(DebianPackage(name, version, rel, up, (modules,)))
        elif m.group("unsigned"):
            found.append(DebianPackage(name, version, rel, up, ()))
    found.sort(key=lambda p: (p.upstream, p.release), reverse=True)
    # One entry per kernel release: prefer linux-binary (7.x packaging).
    seen: set[str] = set()
    unique = []
    for p in found:
        if p.release not in seen:
            seen.add(p.release)
            unique.append(p)
    return unique


def select(cands: list[DebianPackage], wanted: str | None) -> DebianPackage:
    if not cands:
        raise KernelFetchError(
            f"No Debian kernel with fanotify mount events (Linux "
            f"{'.'.join(map(str, MIN_FANOTIFY_MNT))}+) was found in {', '.join(SUITES)}. "
            "The index may be stale: run `harness kernel fetch debian --refresh`.")
    if not wanted:
        return cands[0]
    for p in cands:
        if wanted in (p.release, ".".join(map(str, p.upstream)), p.version):
            return p
    avail = ", ".join(".".join(map(str, p.upstream)) for p in cands[:12])
    raise KernelFetchError(
        f"Debian has no kernel {wanted!r} with fanotify mount events in {', '.join(SUITES)}. "
        f"Available (newest first): {avail}. Pick one of those, e.g. "
        f"`harness kernel fetch debian:{'.'.join(map(str, cands[0].upstream))}`.")


# --- fetching ------------------------------------------------------------------

def kernel_from_dir(d: Path, source: str = "debian") -> Kernel | None:
    meta = d / "kernel.json"
    if not meta.exists():
        return None
    data = json.loads(meta.read_text())
    return Kernel(image=d / data["image"], release=data["release"], source=source,
                  metadata=meta)


def cached_debian(wanted: str) -> Kernel | None:
    """An already-extracted Debian kernel matching ``wanted`` (no network)."""
    base = paths.cache_dir("kernels", "debian")
    for d in sorted(base.iterdir(), reverse=True):
        k = kernel_from_dir(d, "debian")
        if k is None:
            continue
        data = json.loads((d / "kernel.json").read_text())
        if wanted in (data["release"], data["upstream"], data["version"]):
            return k
    return None


def fetch(wanted: str | None = None, refresh: bool = False) -> Kernel:
    """Resolve, download and extract a prebuilt Debian kernel; cached."""
    if wanted and not refresh:
        hit = cached_debian(wanted)
        if hit is not None:
            return hit
    apt = PrivateApt(paths.cache_dir("debian-apt"), machine_mirror())
    apt.update(force=refresh)
    pkg = select(candidates(apt.packages()), wanted)
    dest = paths.cache_dir("kernels", "debian") / pkg.release
    hit = kernel_from_dir(dest, "debian")
    if hit is not None:
        return hit
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        debs_dir = work / "debs"
        debs_dir.mkdir()
        names = [f"{pkg.name}={pkg.version}", *(f"{c}={pkg.version}" for c in pkg.companions)]
        shown = Progress(f"fetching Debian's {pkg.name} {pkg.version}")
        with beating(shown):
            debs = apt.download(names, debs_dir)
        shown.close()
        root = work / "root"
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=600)
        moddir = root / "usr" / "lib" / "modules" / pkg.release
        image = moddir / "vmlinuz"
        if not image.exists():  # older packaging: /boot/vmlinuz-REL
            boot = root / "boot" / f"vmlinuz-{pkg.release}"
            if not boot.exists():
                raise KernelFetchError(f"{pkg.name} {pkg.version} has no vmlinuz where "
                                       "expected; report this with the package name.")
            moddir.mkdir(parents=True, exist_ok=True)
            shutil.move(str(boot), image)
        _depmod(root, pkg.release)
        (root / "kernel.json").write_text(json.dumps({
            "image": str(image.relative_to(root)), "release": pkg.release,
            "upstream": ".".join(map(str, pkg.upstream)), "version": pkg.version,
            "packages": names, "suites": list(SUITES),
            "sha256": {d.name: hashlib.sha256(d.read_bytes()).hexdigest() for d in debs},
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }, indent=2) + "\n")
        if dest.exists():
            shutil.rmtree(dest)
        root.rename(dest)
    k = kernel_from_dir(dest, "debian")
    assert k is not None
    return k


def _depmod(root: Path, release: str) -> None:
    """Generate modules.dep once, so virtme-ng does not redo it at every boot."""
    if shutil.which("depmod") is None:
        return
    link = root / "lib"
    if not link.exists():
        link.symlink_to("usr/lib")
    subprocess.run(["depmod", "-a", "-b", str(root), release], check=False, timeout=300,
                   capture_output=True)


