"""Running the build's helper programs (git, dpkg-query, ccache, tar): argument lists only."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

log = logging.getLogger("harness")

# Commits the harness makes in its own work trees (the pristine base, quilt patches)
# must not depend on the user's git identity being configured.
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "mount-notify-harness",
    "GIT_AUTHOR_EMAIL": "harness@invalid",
    "GIT_COMMITTER_NAME": "mount-notify-harness",
    "GIT_COMMITTER_EMAIL": "harness@invalid",
}


def run(cmd: Sequence[str | Path], *, cwd: Path | None = None,
        env: Mapping[str, str] | None = None, check: bool = True,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (a list, never a shell string), capturing text output."""
    argv = [str(a) for a in cmd]
    log.debug("run: %s (in %s)", argv, cwd or ".")
    full_env = {**os.environ, **env} if env else None
    return subprocess.run(argv, cwd=cwd, env=full_env, check=check, text=True,
                          input=stdin, capture_output=True, errors="replace")


def git(repo: Path, *args: str | Path, check: bool = True,
        env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``git -C repo args...`` with the harness's own identity for the commits it makes."""
    return run(["git", "-C", repo, *args], env={**GIT_IDENTITY, **(env or {})}, check=check)
