"""The test data of the bisect end-to-end tests, assembled at test time.

- a series: the real patches/mount-notify-v5 (its series.toml and patches, named the
  same so it shares the real series' work tree, object directory and cached artifact
  for its first four patches) plus the test-only patches of harness/testing/data/bisect;
- a git history: Debian's pristine tree (the build cache's git repository), the real
  series applied with ``git am``, then the same test-only patches as commits.  It is kept
  in the cache as ``work/bisect-e2e/src`` with fixed commit dates, so the commits (and
  the cached artifacts keyed by them) are the same from one run to the next.
"""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from pathlib import Path

from harness import paths
from harness.build import patch, source
from harness.build.proc import GIT_IDENTITY, git

TEST_PATCHES = Path(__file__).resolve().parent / "data" / "bisect"
REAL = "mount-notify-v5"
FIXED_DATE = "2026-11-23T09:00:00+00:00"
CULPRIT_SUBJECT = "mount_notify: Stop posting MOVE_TO (test only: a regression)"


def extra_patches() -> list[Path]:
    return sorted(TEST_PATCHES.glob("*.patch"))


def real_count() -> int:
    """How many patches the real series has (the good end of the test range)."""
    return len(patch.load(paths.data_dir("patches") / REAL).patches)


def make_series(into: Path) -> Path:
    """patches/mount-notify-v5 + the test patches, as a series directory in ``into``."""
    real = paths.data_dir("patches") / REAL
    into.mkdir(parents=True, exist_ok=True)
    for f in real.iterdir():
        shutil.copyfile(f, into / f.name)
    names = tomllib.loads((real / "series.toml").read_text())["series"]["patches"]
    extra = [p.name for p in extra_patches()]
    for p in extra_patches():
        shutil.copyfile(p, into / p.name)
    toml = (into / "series.toml").read_text()
    listed = ", ".join(f'"{n}"' for n in [*names, *extra])
    start = toml.index("patches = [")
    end = toml.index("]", start) + 1
    (into / "series.toml").write_text(toml[:start] + f"patches = [{listed}]" + toml[end:])
    return into


def make_history() -> tuple[Path, str, str]:
    """(tree, good, bad): the git history, the commit of the last real patch, the tip."""
    base = source.debian_base()
    work = paths.cache_dir("work", "bisect-e2e")
    src = work / "src"
    real = patch.load(paths.data_dir("patches") / REAL)
    inputs = hashlib.sha256(base.commit.encode())
    for f in [*(q.path for q in real.patches), *extra_patches()]:
        inputs.update(f.read_bytes())
    key = inputs.hexdigest()
    marker = work / "history"
    env = {"GIT_COMMITTER_DATE": FIXED_DATE, **GIT_IDENTITY}
    with source.locked(work / "history.lock"):
        if not (src / ".git").exists():
            shutil.rmtree(src, ignore_errors=True)
            git(base.repo, "clone", "-q", "--shared", "--no-checkout", base.repo, src)
        recorded = marker.read_text().split() if marker.exists() else []
        if len(recorded) == 3 and recorded[0] == key:
            good, bad = recorded[1], recorded[2]
            git(src, "checkout", "-q", "-f", "-B", "e2e", bad)
            return src, good, bad
        # A run that died inside `git am` (a patch that did not apply, a signal) leaves
        # its session behind, and every later `git am` here would refuse to start.
        git(src, "am", "--abort", check=False)
        git(src, "checkout", "-q", "-f", "-B", "e2e", base.commit)
        for p in real.patches:
            git(src, "am", "-q", "--no-gpg-sign", p.path, env=env)
        good = git(src, "rev-parse", "HEAD").stdout.strip()
        for extra in extra_patches():
            git(src, "am", "-q", "--no-gpg-sign", extra, env=env)
        bad = git(src, "rev-parse", "HEAD").stdout.strip()
        marker.write_text(f"{key} {good} {bad}\n")
    return src, good, bad
