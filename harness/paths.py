"""Where the harness keeps things: the XDG cache and the repository's own data."""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# A cache root given for a block of code (``cache_at``): the benchmarks time cold builds
# in a private cache this way, without touching the process environment.
_CACHE_AT: contextvars.ContextVar[Path | None] = contextvars.ContextVar("mnh_cache_at",
                                                                        default=None)


@contextlib.contextmanager
def cache_at(root: Path) -> Iterator[Path]:
    """Within the block (this thread or task only), the cache is ``root``."""
    token = _CACHE_AT.set(root)
    try:
        yield root
    finally:
        _CACHE_AT.reset(token)


def cache_root() -> Path:
    """The cache: the root of an enclosing ``cache_at``, else ``$MNH_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/mount-notify-harness``."""
    given = _CACHE_AT.get()
    if given is not None:
        return given
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
