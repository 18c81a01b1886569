"""Guest images: build a minimal Debian root file system, cache it, and check it before use.

``harness image build`` runs mmdebstrap (root mode, the ``essential`` variant plus the
packages of ``images/recipe.toml``), installs the files of ``images/`` (the init, the
sshd configuration), generates the guest's SSH host key and a client key pair on the
host, and packs the tree into a raw ext4 file with ``mke2fs -d`` (no loop mount). The
cache key is the content of the recipe files plus the suite, so the same recipe gives
the cached image and any edit gives a new one. The host key's fingerprint is recorded
beside the image; the SSH transport accepts no other key.

At run time nothing is fetched: ``resolve`` finds the image and ``check`` proves, without
booting, that it is an ext4 file system that holds the init and python3.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from harness import paths
from harness.errors import ImageError, PrerequisiteError
from harness.kernel import debian

log = logging.getLogger("harness")

RECIPE_DIR = paths.data_dir("images")
# The files whose content keys the image (the initramfs of modular kernels is keyed apart).
RECIPE_FILES = ("recipe.toml", "init", "sshd_config")
IMAGE_FILE = "rootfs.ext4"
META_FILE = "image.json"
CLIENT_KEY = "id_ed25519"
HOST_KEY_PUB = "ssh_host_ed25519_key.pub"
GUEST_INIT = "/sbin/mnh-init"
# What a guest image must hold for the harness to use it (checked without booting).
REQUIRED_FILES = ("/usr/sbin/mnh-init", "/usr/bin/python3", "/usr/sbin/sshd",
                  "/etc/ssh/ssh_host_ed25519_key", "/root/.ssh/authorized_keys")
EXT4_MAGIC_OFFSET = 0x438
EXT4_MAGIC = b"\x53\xef"
MMDEBSTRAP_TIMEOUT = 1800.0
TOOL_TIMEOUT = 300.0


@dataclass(frozen=True)
class Recipe:
    suite: str
    variant: str
    packages: tuple[str, ...]
    trim: tuple[str, ...]
    links: tuple[tuple[str, str], ...]     # (path in the image, target)
    headroom_mb: int
    label: str
    key: str                    # content hash of the recipe files and the suite


@dataclass(frozen=True)
class Image:
    """A built guest image and the SSH identity that goes with it."""

    directory: Path
    path: Path                  # the raw ext4 file
    suite: str
    key: str
    host_key: str               # "ssh-ed25519 AAAA..." (the only key the guest may present)
    host_fingerprint: str       # "SHA256:..."
    client_key: Path            # private key (OpenSSH format) root logs in with

    def to_json(self) -> dict[str, str]:
        return {"directory": str(self.directory), "path": str(self.path), "suite": self.suite,
                "key": self.key, "host_fingerprint": self.host_fingerprint}


# --- the recipe ---------------------------------------------------------------

def recipe_key(recipe_dir: Path, suite: str) -> str:
    h = hashlib.sha256(f"suite={suite}\n".encode())
    for name in RECIPE_FILES:
        data = (recipe_dir / name).read_bytes()
        h.update(f"{name} {len(data)}\n".encode())
        h.update(data)
    return h.hexdigest()[:16]


def load_recipe(suite: str | None = None, recipe_dir: Path = RECIPE_DIR) -> Recipe:
    try:
        data = tomllib.loads((recipe_dir / "recipe.toml").read_text())
        img = data["image"]
        chosen = suite or str(img["default_suite"])
        return Recipe(suite=chosen, variant=str(img.get("variant", "essential")),
                      packages=tuple(data["packages"]), trim=tuple(data["trim"]["paths"]),
                      links=tuple((str(k), str(v)) for k, v in data.get("links", {}).items()),
                      headroom_mb=int(img.get("headroom_mb", 384)),
                      label=str(img.get("label", "mnhroot")),
                      key=recipe_key(recipe_dir, chosen))
    except (OSError, KeyError, TypeError, ValueError, tomllib.TOMLDecodeError) as exc:
        raise ImageError(f"The image recipe in {recipe_dir} is unreadable or incomplete "
                         f"({type(exc).__name__}: {exc}). Restore images/recipe.toml, init and "
                         "sshd_config from the repository.") from exc


def mmdebstrap_command(recipe: Recipe, target: Path, mirror: str, quiet: bool) -> list[str]:
    """The mmdebstrap argv (pure): a directory tree, root mode, no recommends."""
    cmd = [
        "mmdebstrap",
        "--mode=root",                          # the harness runs as root; keeps ownership
        f"--variant={recipe.variant}",          # Essential: yes only, then our packages
        "--include=" + ",".join(recipe.packages),
        "--aptopt=APT::Install-Recommends \"false\"",
        "--dpkgopt=path-exclude=/usr/share/doc/*",   # never read in the guest
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--format=directory",                   # packed by mke2fs -d afterwards
    ]
    if quiet:
        cmd.append("--quiet")                   # no progress bars when nobody watches
    cmd += [recipe.suite, str(target), mirror]
    return cmd


def mke2fs_command(tree: Path, image: Path, size_mb: int, label: str) -> list[str]:
    """The mke2fs argv (pure): an ext4 file system populated from ``tree``."""
    return [
        "mke2fs",
        "-q",
        "-F",                    # a regular file, not a block device
        "-t", "ext4",
        "-L", label,
        "-m", "0",               # no blocks reserved for root: the guest is root
        "-E", "lazy_itable_init=0,lazy_journal_init=0",  # no background zeroing at boot
        "-d", str(tree),         # copy the tree in: no loop mount, ownership kept
        str(image), f"{size_mb}M",
    ]


# --- keys ---------------------------------------------------------------------

def _new_key() -> tuple[bytes, str]:
    """A fresh Ed25519 key: (private key in OpenSSH format, public line)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                           serialization.PublicFormat.OpenSSH).decode()
    return private, public


def fingerprint(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line ("ssh-ed25519 AAAA... comment")."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _write(path: Path, data: bytes | str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


# --- building -----------------------------------------------------------------

class _Stages:
    """Progress on stderr, one line per stage; silent when stderr is not a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0
        self.start = time.monotonic()
        self.enabled = sys.stderr.isatty()

    def step(self, text: str) -> None:
        self.n += 1
        log.info("image: %s", text)
        if self.enabled:
            print(f"image: [{self.n}/{self.total}] {text} "
                  f"({time.monotonic() - self.start:.0f} s)", file=sys.stderr, flush=True)


def _check_build_tools() -> None:
    missing = [t for t in ("mmdebstrap", "mke2fs") if shutil.which(t) is None]
    if missing:
        raise PrerequisiteError(f"Building a guest image needs {', '.join(missing)}, which "
                                "is not installed. Run `harness doctor --install` (Debian "
                                "packages mmdebstrap, e2fsprogs).")
    if os.geteuid() != 0:
        raise PrerequisiteError("Building a guest image runs mmdebstrap in root mode (the "
                                "tree's ownership must be right); run it as root.")


def _run(cmd: list[str], what: str, timeout: float, capture: bool = True) -> None:
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=capture,
                             text=True, errors="replace", timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"{what} did not finish within {timeout:.0f} s; check the network "
                         "path to the Debian mirror and run `harness image build` "
                         "again.") from exc
    if res.returncode != 0:
        out = ((res.stdout or "") + (res.stderr or "")).strip()[-2000:]
        raise ImageError(f"{what} failed with status {res.returncode}:\n{out}\nFix the cause "
                         "above (a package name in images/recipe.toml, the mirror) and run "
                         "`harness image build` again.")


def image_dir(recipe: Recipe) -> Path:
    return paths.cache_dir("images") / f"{recipe.suite}-{recipe.key}"


def build(suite: str | None = None, force: bool = False) -> Image:
    """Build the image of ``suite`` (default: the recipe's), or return the cached one."""
    recipe = load_recipe(suite)
    dest = image_dir(recipe)
    if not force:
        try:
            return load(dest)
        except ImageError:
            pass
    _check_build_tools()
    mirror = debian.machine_mirror()
    stages = _Stages(4)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".build-") as tmp:
        work = Path(tmp)
        tree = work / "root"
        stages.step(f"mmdebstrap {recipe.suite} ({len(recipe.packages)} packages and their "
                    "dependencies)")
        _run(mmdebstrap_command(recipe, tree, mirror, quiet=not sys.stderr.isatty()),
             "mmdebstrap", MMDEBSTRAP_TIMEOUT, capture=not sys.stderr.isatty())
        stages.step("installing the init, sshd configuration and keys")
        versions = _customise(recipe, tree, work)
        stages.step("packing the tree into ext4")
        size_mb = _tree_mb(tree) + recipe.headroom_mb
        raw = work / IMAGE_FILE
        _run(mke2fs_command(tree, raw, size_mb, recipe.label), "mke2fs", TOOL_TIMEOUT)
        stages.step("checking the image")
        host_pub = (work / HOST_KEY_PUB).read_text().strip()
        meta = {"suite": recipe.suite, "key": recipe.key, "variant": recipe.variant,
                "packages": list(recipe.packages), "installed": versions,
                "size_mb": size_mb, "host_key": host_pub,
                "host_fingerprint": fingerprint(host_pub),
                "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "build_seconds": round(time.monotonic() - stages.start, 1)}
        (work / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(tree)
        check(raw)
        if dest.exists():
            shutil.rmtree(dest)
        work.rename(dest)
        # TemporaryDirectory's cleanup tolerates the directory having moved away.
    return load(dest)


def _customise(recipe: Recipe, tree: Path, work: Path) -> dict[str, str]:
    """Install the harness's files and keys into ``tree``; the package versions."""
    for rel in recipe.trim:
        p = tree / rel
        if p.is_dir():
            shutil.rmtree(p)
            p.mkdir()
    _write(tree / "usr/sbin/mnh-init", (RECIPE_DIR / "init").read_bytes(), 0o755)
    _write(tree / "etc/ssh/sshd_config", (RECIPE_DIR / "sshd_config").read_bytes(), 0o644)
    for old in (tree / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    host_priv, host_pub = _new_key()
    _write(tree / "etc/ssh/ssh_host_ed25519_key", host_priv, 0o600)
    _write(tree / "etc/ssh/ssh_host_ed25519_key.pub", host_pub + " root@mnh-guest\n", 0o644)
    client_priv, client_pub = _new_key()
    _write(work / CLIENT_KEY, client_priv, 0o600)
    _write(work / (CLIENT_KEY + ".pub"), client_pub + " mount-notify-harness\n", 0o644)
    _write(work / HOST_KEY_PUB, host_pub + "\n", 0o644)
    (tree / "root/.ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(tree / "root/.ssh/authorized_keys", client_pub + " mount-notify-harness\n", 0o600)
    _write(tree / "etc/hostname", "mnh-guest\n", 0o644)
    _write(tree / "etc/fstab", "# the init mounts everything itself\n", 0o644)
    for rel, target in recipe.links:
        link = tree / rel
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    res = subprocess.run(["dpkg-query", "--admindir", str(tree / "var/lib/dpkg"), "-W",
                          "-f", "${Package} ${Version}\n"], capture_output=True, text=True,
                         timeout=TOOL_TIMEOUT, check=False)
    return dict(line.split(" ", 1) for line in res.stdout.splitlines() if " " in line)


def _tree_mb(tree: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(tree):
        for name in files + dirs:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size + 4096
    return total // (1024 * 1024) + 1


# --- using ----------------------------------------------------------------------

def load(directory: Path) -> Image:
    """The image in ``directory`` (a cache entry), with its recorded host key."""
    meta_path = directory / META_FILE
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        host_key = str(meta["host_key"])
        return Image(directory=directory, path=directory / IMAGE_FILE, suite=str(meta["suite"]),
                     key=str(meta["key"]), host_key=host_key,
                     host_fingerprint=fingerprint(host_key),
                     client_key=directory / CLIENT_KEY)
    except (OSError, KeyError, IndexError, ValueError, json.JSONDecodeError) as exc:
        raise ImageError(f"{directory} is not a guest image built by `harness image build` "
                         f"({meta_path.name} is missing or unreadable: {exc}). Build one with "
                         "`harness image build` and pass its directory or suite name.") from exc


def resolve(spec: str) -> Image:
    """``--image``: a directory printed by ``harness image build``, or a suite name."""
    p = Path(spec).expanduser()
    if p.is_dir():
        return load(p)
    if p.is_file() and p.name == IMAGE_FILE:
        return load(p.parent)
    if "/" in spec or p.suffix:
        raise ImageError(f"Guest image {spec!r} does not exist. Build one with `harness image "
                         "build [--suite NAME]` and pass the directory it prints (or just the "
                         "suite name).")
    recipe = load_recipe(spec)
    d = image_dir(recipe)
    if not (d / META_FILE).exists():
        raise ImageError(f"No guest image for suite {spec!r} with the current recipe in the "
                         f"cache. Build it first: `harness image build --suite {spec}` (this "
                         "needs the Debian mirror; running it later does not).")
    return load(d)


def check(raw: Path) -> None:
    """Prove, without booting, that ``raw`` is an ext4 image the harness can use."""
    try:
        with open(raw, "rb") as f:
            f.seek(EXT4_MAGIC_OFFSET)
            magic = f.read(2)
    except OSError as exc:
        raise ImageError(f"Cannot read the guest image {raw}: {exc}. Rebuild it with "
                         "`harness image build --force`.") from exc
    if magic != EXT4_MAGIC:
        raise ImageError(f"{raw} is not an ext4 file system (no superblock magic at byte "
                         f"{EXT4_MAGIC_OFFSET:#x}): the image is corrupt or not one of ours. "
                         "Rebuild it with `harness image build --force`.")
    try:
        fsck = subprocess.run(["e2fsck", "-n", "-f", str(raw)], capture_output=True,
                              text=True, errors="replace", timeout=TOOL_TIMEOUT, check=False)
    except FileNotFoundError as exc:
        raise PrerequisiteError("e2fsck is missing; run `harness doctor --install` "
                                "(package e2fsprogs).") from exc
    except subprocess.TimeoutExpired as exc:
        raise ImageError(f"e2fsck of {raw} took longer than {TOOL_TIMEOUT:.0f} s; the image is "
                         "probably damaged. Rebuild it with `harness image build "
                         "--force`.") from exc
    if fsck.returncode not in (0, 1):
        tail = (fsck.stdout + fsck.stderr).strip().splitlines()[-3:]
        raise ImageError(f"The guest image {raw} is corrupt (e2fsck -n exit status "
                         f"{fsck.returncode}: {' / '.join(tail)}). Rebuild it with "
                         "`harness image build --force`.")
    missing = [f for f in REQUIRED_FILES if not _exists_in(raw, f)]
    if missing:
        what = ("python3 (the scenario runner needs it)" if "/usr/bin/python3" in missing
                else ", ".join(missing))
        raise ImageError(f"The guest image {raw} lacks {what}. It was not built by this "
                         "recipe or was altered; rebuild it with `harness image build "
                         "--force` (the recipe installs python3, openssh-server and the "
                         "init).")


def _exists_in(raw: Path, path: str) -> bool:
    """Whether ``path`` exists in the ext4 image (debugfs, read-only), following symlinks."""
    for _ in range(8):
        res = subprocess.run(["debugfs", "-R", f"stat {path}", str(raw)], capture_output=True,
                             text=True, errors="replace", timeout=TOOL_TIMEOUT, check=False)
        if res.returncode != 0 or "Inode:" not in res.stdout:
            return False
        if "Type: symlink" not in res.stdout:
            return True
        m = re.search(r'Fast link dest: "(.*)"', res.stdout)
        if m:
            link = m.group(1)
        else:  # a slow symlink: the target is the file's data
            link = subprocess.run(["debugfs", "-R", f"cat {path}", str(raw)],
                                  capture_output=True, text=True, errors="replace",
                                  timeout=TOOL_TIMEOUT, check=False).stdout.strip()
        if not link:
            return False
        path = os.path.normpath(link if link.startswith("/")
                                else os.path.join(os.path.dirname(path), link))
    return False
