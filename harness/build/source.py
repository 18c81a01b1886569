"""The source step: a pristine base tree, and a work tree per series.

Two kinds of base:

- Debian's ``linux-source-X.Y`` tarball (the default).  It is extracted once into
  ``cache/sources/<package>_<version>/`` and committed into a git repository there
  (about a minute, once per package version).  The extraction happens in a ``.partial``
  directory renamed into place only when the commit exists, so an interrupted extraction
  is redone, never half-used.  The checkout is never modified afterwards.
- A user's own kernel tree (``--tree PATH``): it must be a clean git checkout; its HEAD
  commit is the base.

Why git rather than a hardlinked copy: a ``cp -al`` copy is faster to make (seconds
against ~25 s for ``git worktree add``) but shares inodes with the pristine tree, so an
editor writing in place or a ``touch`` would silently alter the pristine copy.  A
worktree is made once per (base, series) and kept, so later builds reuse it; re-applying
a changed series is ``git reset --hard`` to the base commit, which rewrites only the files
that differ, so make recompiles only what the patches touch.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import paths
from harness.build.proc import git, run
from harness.errors import BuildError, HarnessError, PatchError, PrerequisiteError
from harness.progress import Progress, beating

log = logging.getLogger("harness")

DEFAULT_PACKAGE = "linux-source-6.12"
BASE_TAG = "harness-base"
# What makes a directory a kernel tree we can build for x86_64.
KERNEL_TREE_MARKERS = ("Makefile", "Kconfig", "arch/x86")


@dataclass(frozen=True)
class Base:
    """A base commit in a git repository, and how to name it."""

    identity: str  # goes into the artifact hash: "debian:PKG=VERSION" or "git:SHA"
    key: str  # filesystem-safe name for cache directories
    repo: Path  # the git repository holding ``commit``
    commit: str
    user_tree: bool  # True for --tree: the user's checkout, buildable in place


def safe_key(text: str) -> str:
    """A name usable as one path component: ``linux-source-6.12=6.12.1-1~deb12u1`` ->
    ``linux-source-6.12_6.12.1-1_deb12u1``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "_"


def tarball_path(package: str) -> Path:
    """Where Debian's ``linux-source-X.Y`` package installs its tarball."""
    return Path("/usr/src") / f"{package}.tar.xz"


def installed_version(package: str) -> str:
    """The installed version of a Debian package (``dpkg-query``)."""
    try:
        proc = run(["dpkg-query", "-W", "-f=${Version}", package], check=False)
    except FileNotFoundError as exc:
        raise PrerequisiteError(
            f"dpkg-query is missing, so the version of {package} cannot be read; build from "
            "a git tree instead with `harness build --tree PATH`.") from exc
    if proc.returncode != 0 or not proc.stdout.strip():
        raise PrerequisiteError(
            f"The Debian package {package} is not installed; install it with "
            f"`apt-get install {package}`, or build from a git tree with --tree PATH.")
    return proc.stdout.strip()


# How long a harness process waits for another one's build of the same tree (a cold
# build of the default config takes ~8 min here, a debug one ~20).
LOCK_TIMEOUT = 3600.0


@contextmanager
def locked(lock_path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path``; other harness processes wait, at most
    ``timeout`` seconds, and are told who holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    holder = lock_path.with_name(lock_path.name + ".holder")
    with lock_path.open("a") as handle:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                who = _read_holder(holder)
                if not told:
                    log.warning("waiting for %s, which holds %s", who, lock_path)
                    told = True
                if time.monotonic() > deadline:
                    raise BuildError(
                        f"Another harness process ({who}) has held {lock_path} for over "
                        f"{timeout:.0f} s. Wait for it to finish, or stop it if it is stuck; "
                        "the lock goes with its process, so nothing needs cleaning up."
                    ) from None
                time.sleep(1.0)
        try:
            holder.write_text(f"pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n")
            yield
        finally:
            holder.unlink(missing_ok=True)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_holder(holder: Path) -> str:
    try:
        return holder.read_text().strip() or "a process"
    except OSError:
        return "a process"


def debian_base(package: str = DEFAULT_PACKAGE, tarball: Path | None = None) -> Base:
    """The pristine tree of Debian's ``package``, extracted and committed on first use."""
    tarball = tarball or tarball_path(package)
    if not tarball.is_file():
        raise PrerequisiteError(
            f"The kernel source tarball {tarball} is missing; install it with "
            f"`apt-get install {package}`, or build from a git tree with --tree PATH.")
    version = installed_version(package)
    key = safe_key(f"{package}_{version}")
    sources = paths.cache_dir("sources")
    final = sources / key
    with locked(sources / f"{key}.lock"):
        if not (final / ".complete").is_file():
            _extract(tarball, sources, key)
    tree = _single_subdir(final)
    commit = git(tree, "rev-parse", f"{BASE_TAG}^{{commit}}").stdout.strip()
    return Base(identity=f"debian:{package}={version}", key=key, repo=tree, commit=commit,
                user_tree=False)


def _single_subdir(directory: Path) -> Path:
    subdirs = [p for p in directory.iterdir() if p.is_dir()]
    if len(subdirs) != 1:
        raise HarnessError(f"Expected one source directory in {directory}, found "
                           f"{len(subdirs)}; delete {directory} and run the build again.")
    return subdirs[0]


def _extract(tarball: Path, sources: Path, key: str) -> None:
    partial = sources / f"{key}.partial"
    final = sources / key
    for stale in (partial, final):
        if stale.exists():
            log.info("removing incomplete extraction %s", stale)
            shutil.rmtree(stale)
    partial.mkdir()
    log.warning("extracting %s once into the harness cache (about a minute)", tarball.name)
    shown = Progress(f"extracting {tarball.name} into the cache")
    with beating(shown):
        shown.update("tar")
        run(["tar", "-xf", tarball, "-C", partial])
        tree = _single_subdir(partial)
        git(tree, "init", "-q")
        shown.update("git add (the pristine tree, kept as the base of every build)")
        # -f: Debian's .gitignore ignores everything at the top level.  Light compression:
        # the objects are written once and read locally.
        git(tree, "-c", "core.compression=1", "-c", "core.looseCompression=1",
            "add", "-f", "-A", ".")
        git(tree, "commit", "-q", "--no-verify", "-m", f"{tarball.name} (pristine)")
        git(tree, "tag", BASE_TAG)
    shown.close(f"extracted {tarball.name} in {shown.elapsed():.0f} s")
    (partial / ".complete").write_text(f"{tarball}\n")
    partial.rename(final)


def check_kernel_tree(tree: Path) -> None:
    """Refuse a directory that is not an x86 kernel tree."""
    missing = [m for m in KERNEL_TREE_MARKERS if not (tree / m).exists()]
    if missing:
        raise HarnessError(
            f"{tree} is not a kernel source tree (missing {', '.join(missing)}); pass the "
            "top directory of a Linux checkout to --tree.")


def user_base(tree: Path) -> Base:
    """The HEAD commit of the user's clean kernel checkout ``tree``."""
    tree = tree.resolve()
    check_kernel_tree(tree)
    top = git(tree, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0 or Path(top.stdout.strip()) != tree:
        raise HarnessError(
            f"{tree} is not the top of a git checkout; --tree needs a git tree so that the "
            "build can be identified by its commit (run `git init && git add -A && git "
            "commit` there, or drop --tree to use the Debian source).")
    if (tree / ".config").exists() or (tree / "include" / "config").exists():
        raise HarnessError(
            f"The tree {tree} has been configured in place (.config present), which breaks "
            "out-of-tree builds; run `make mrproper` there first.")
    status = git(tree, "status", "--porcelain").stdout.splitlines()
    if status:
        shown = "; ".join(line.strip() for line in status[:5])
        more = f" (and {len(status) - 5} more)" if len(status) > 5 else ""
        raise HarnessError(
            f"The tree {tree} has uncommitted changes: {shown}{more}. The build is "
            "identified by its commit, so commit or stash them first (`git stash -u`).")
    commit = git(tree, "rev-parse", "HEAD").stdout.strip()
    return Base(identity=f"git:{commit}", key=safe_key(f"git-{commit[:12]}"), repo=tree,
                commit=commit, user_tree=True)


def worktree(base: Base, name: str) -> Path:
    """The work tree for series ``name`` on ``base``: a ``git worktree`` of the base
    commit in ``work/<base>/<series>/src``, created on first use and kept for
    incremental builds.  The object directories live beside it, in ``.../obj/``."""
    path = paths.cache_dir("work", base.key, safe_key(name)) / "src"
    if not (path / ".git").exists():
        if path.exists():
            shutil.rmtree(path)
        git(base.repo, "worktree", "prune")
        log.warning("creating work tree %s", path)
        shown = Progress("creating the work tree")
        with beating(shown):
            git(base.repo, "worktree", "add", "--detach", "-f", path, base.commit)
        shown.close()
    return path


def check_worktree_clean(path: Path) -> None:
    """Refuse to build a work tree someone edited: the artifact would be published under
    the hash of the unedited inputs.  (Touching a file is fine: git sees no change.)"""
    changed = git(path, "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    if changed:
        shown = "; ".join(line.strip() for line in changed[:5])
        raise HarnessError(
            f"The work tree {path} has local edits ({shown}); a build from it would not "
            "match its cache key. Turn them into a patch of the series (git -C "
            f"{path} format-patch), or discard them with `git -C {path} checkout .`.")


def reset_worktree(path: Path, commit: str) -> None:
    """Put a work tree back on the base commit (before re-applying a changed series)."""
    git(path, "am", "--abort", check=False)
    proc = git(path, "reset", "-q", "--hard", commit, check=False)
    if proc.returncode != 0:
        raise PatchError(f"Could not reset the work tree {path} to {commit[:12]}: "
                         f"{proc.stderr.strip()}. Delete {path} and run the build again.")
