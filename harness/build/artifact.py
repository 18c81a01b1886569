"""The artifact step: a content hash of the build's inputs, and the artifact cache.

``cache/builds/<hash>/`` holds bzImage, vmlinux, config, build.log and metadata.json.
A build is assembled in ``builds/.tmp-<hash>-<pid>/`` and renamed into place only when
complete, so an interrupted or failed build never leaves a half artifact under its hash;
a failed build keeps its log in ``builds/failed-<hash12>-<time>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness import paths
from harness.build.proc import run

# Bump when the way a kernel is built changes (make variables, fragment handling, ...):
# every cached artifact is then rebuilt.
# 2: fixed KBUILD_BUILD_TIMESTAMP/VERSION, so the same sources give the same image.
RECIPE_VERSION = 2

FILES = ("bzImage", "vmlinux", "config", "build.log", "metadata.json")


@dataclass(frozen=True)
class BuildInputs:
    """Everything that determines the kernel that comes out."""

    base: str  # Base.identity
    series_name: str | None
    series_hash: str | None
    config: str  # the merged fragments, rendered (kconfig.render)
    compiler: str
    recipe: int = RECIPE_VERSION

    def digest(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def config_hash(self) -> str:
        return hashlib.sha256(self.config.encode()).hexdigest()


def compiler_identity() -> str:
    """The first lines of ``gcc --version`` and ``ld --version``."""
    parts = []
    for tool in ("gcc", "ld"):
        try:
            out = run([tool, "--version"], check=False).stdout
        except FileNotFoundError:
            out = f"{tool} missing"
        parts.append(out.splitlines()[0] if out else f"{tool} ?")
    return "; ".join(parts)


@dataclass(frozen=True)
class Artifact:
    directory: Path
    metadata: dict[str, Any]

    @property
    def bzimage(self) -> Path:
        return self.directory / "bzImage"

    @property
    def vmlinux(self) -> Path:
        return self.directory / "vmlinux"

    @property
    def config(self) -> Path:
        return self.directory / "config"

    @property
    def log(self) -> Path:
        return self.directory / "build.log"


@dataclass(frozen=True)
class BuildMetadata:
    """metadata.json of an artifact, read in one place (pipeline.build writes it)."""

    digest: str
    base: str | None
    series_name: str | None
    series_source: str | None
    patches: tuple[str, ...]
    upto: int | None
    fragments: tuple[str, ...]
    srctree: Path | None
    reproducer: str

    @classmethod
    def load(cls, path: Path | None) -> BuildMetadata | None:
        """None for a kernel without metadata (a path, a Debian kernel) or an unreadable
        file; a metadata.json of an older harness still reads (missing keys are empty)."""
        if path is None or not path.is_file():
            return None
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(data, dict) or not ("digest" in data or "series" in data):
            return None   # kernel.json of a Debian kernel, or something else
        series = data.get("series")
        s = series if isinstance(series, dict) else {}
        name = s.get("name") if s else (str(series) if series else None)
        upto = s.get("upto")
        return cls(digest=str(data.get("digest", "")), base=data.get("base"),
                   series_name=name, series_source=s.get("source"),
                   patches=tuple(s.get("patches") or ()),
                   upto=upto if isinstance(upto, int) else None,
                   fragments=tuple(data.get("fragments") or ()),
                   srctree=Path(data["srctree"]) if data.get("srctree") else None,
                   reproducer=str(data.get("reproducer", "")))

    def summary(self) -> dict[str, Any]:
        """The ``build`` entry of results.json."""
        return {"digest": self.digest[:12], "base": self.base, "series": self.series_name,
                "patches_applied": len(self.patches),
                "last_patch": self.patches[-1] if self.patches else None, "upto": self.upto,
                "fragments": list(self.fragments), "reproducer": self.reproducer}


def builds_dir() -> Path:
    return paths.cache_dir("builds")


def lookup(digest: str) -> Artifact | None:
    """The cached artifact for ``digest``, if a complete one exists."""
    directory = builds_dir() / digest
    meta = directory / "metadata.json"
    if not meta.is_file() or not all((directory / f).exists() for f in FILES):
        return None
    return Artifact(directory, json.loads(meta.read_text()))


def staging_dir(digest: str) -> Path:
    path = builds_dir() / f".tmp-{digest}-{os.getpid()}"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir()
    return path


def failed_dir(digest: str) -> Path:
    return builds_dir() / f"failed-{digest[:12]}-{time.strftime('%Y%m%dT%H%M%S')}"


def publish(staging: Path, digest: str, metadata: dict[str, Any], *,
            replace: bool = False) -> Artifact:
    """Write metadata.json last and rename ``staging`` to ``builds/<digest>``.  If another
    process published the same digest meanwhile, keep theirs, unless ``replace`` (a
    forced rebuild): then the old one is renamed away first and deleted after."""
    (staging / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True)
                                           + "\n")
    final = builds_dir() / digest
    if replace and final.exists():
        old = builds_dir() / f".old-{digest}-{os.getpid()}"
        final.rename(old)
        shutil.rmtree(old)
    if final.exists() and lookup(digest) is None:
        shutil.rmtree(final)  # an old incomplete directory, e.g. from a crash of an
        # earlier recipe; a complete one is never replaced.
    try:
        staging.rename(final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    found = lookup(digest)
    assert found is not None, f"artifact {final} incomplete after publish"
    return found
