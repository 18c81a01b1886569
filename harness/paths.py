"""Where the harness keeps things: the XDG cache and the repository's own data."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """The cache: ``$MNH_CACHE_DIR``, else ``$XDG_CACHE_HOME/mount-notify-harness``."""
    override = os.environ.get("MNH_CACHE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "mount-notify-harness"


def cache_dir(*parts: str) -> Path:
    """A subdirectory of the cache, created on demand."""
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(name: str) -> Path:
    """A data directory of the repository (``patches``, ``kernel-config``, ``guest-tests``)."""
    return REPO_ROOT / name
