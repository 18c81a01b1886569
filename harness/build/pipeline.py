"""The build stage end to end: source -> patch -> configure -> compile -> artifact.

Directory layout under the harness cache::

    sources/<package>_<version>/       pristine tree, one git commit (source.py)
    work/<base>/<series>/src/          git worktree of the base, series applied
    work/<base>/<series>/obj/<cfg>/    make O= directory, one per merged configuration
    work/tree-<name>-<id>/obj/<cfg>/   make O= for a --tree built in place (no series)
    builds/<hash>/                     published artifacts (artifact.py)
    ccache/                            compiler cache shared by all of the above

One object directory per (base, series, configuration): a rebuild after touching a
file, or after editing one patch, recompiles only what changed; switching between
configurations (base / debug) does not throw the other's objects away; and a new series
starts from ccache hits because src/ and obj/<cfg>/ sit at the same relative position
for every series.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import paths
from . import artifact, kconfig, make, patch, source
from .artifact import Artifact, BuildInputs
from .patch import Series
from .source import Base

log = logging.getLogger("harness")

NO_SERIES = "pristine"


@dataclass(frozen=True)
class BuildRequest:
    """What ``harness build`` was asked for (built from the command line by command.py)."""

    series: str | None = None  # a name under patches/, or a path
    tree: Path | None = None  # the user's kernel git tree, instead of Debian's source
    configs: tuple[str, ...] = kconfig.DEFAULT_FRAGMENTS
    jobs: int | None = None
    force: bool = False
    ccache: bool = True


def reproducer(req: BuildRequest) -> str:
    """The one-line command that rebuilds this artifact."""
    words = ["harness", "build"]
    if req.tree is not None:
        words += ["--tree", str(req.tree)]
    if req.series is not None:
        words += ["--series", req.series]
    for name in req.configs:
        words += ["--config", name]
    return " ".join(words)


def _base_for(req: BuildRequest, series: Series | None) -> Base:
    if req.tree is not None:
        return source.user_base(req.tree)
    spec = series.base if series else patch.BaseSpec()
    package = spec.package or source.DEFAULT_PACKAGE
    base = source.debian_base(package, spec.tarball)
    if spec.version and spec.version not in base.identity:
        log.warning("series %s names base version %s, but %s is installed; building on "
                    "the installed one", series.name if series else "", spec.version,
                    base.identity)
    return base


def _prepare_tree(base: Base, series: Series | None, workdir: Path) -> tuple[Path, list[str]]:
    """The source tree to build: the series applied to a work tree of the base (or the
    user's own tree, in place, when there is no series)."""
    if base.user_tree and series is None:
        return base.repo, []
    src = source.worktree(base, workdir.name)
    wanted = f"{base.commit} {series.content_hash() if series else NO_SERIES}\n"
    marker = workdir / "applied"
    if marker.exists() and marker.read_text() == wanted:
        source.check_worktree_clean(src)
        return src, []
    marker.unlink(missing_ok=True)
    source.reset_worktree(src, base.commit)
    applied = patch.apply_series(src, series) if series else []
    marker.write_text(wanted)
    return src, applied


def build(req: BuildRequest) -> Artifact:
    """Build (or find in the cache) the kernel ``req`` describes."""
    started = time.monotonic()
    series = patch.load(patch.resolve(req.series)) if req.series else None
    base = _base_for(req, series)
    fragments = [kconfig.load_fragment(name) for name in req.configs]
    if series is not None and series.require:
        fragments.append(kconfig.requirement_fragment(series.require))
    requested = kconfig.merge(fragments)
    inputs = BuildInputs(base=base.identity,
                         series_name=series.name if series else None,
                         series_hash=series.content_hash() if series else None,
                         config=kconfig.render(requested),
                         compiler=artifact.compiler_identity())
    digest = inputs.digest()
    if not req.force and (found := artifact.lookup(digest)) is not None:
        log.info("cached: %s", found.directory)
        return found

    if base.user_tree and series is None:
        # Keyed by the tree's path, not its commit: the next commit builds incrementally.
        tree_id = hashlib.sha256(str(base.repo).encode()).hexdigest()[:12]
        workdir = paths.cache_dir("work", f"tree-{base.repo.name}-{tree_id}")
    else:
        workdir = paths.cache_dir(
            "work", base.key, source.safe_key(series.name if series else NO_SERIES))
    with source.locked(workdir / "lock"):
        srctree, applied = _prepare_tree(base, series, workdir)
        settings = make.MakeSettings(srctree=srctree,
                                     objdir=workdir / "obj" / inputs.config_hash()[:12],
                                     jobs=req.jobs or make.default_jobs(), ccache=req.ccache)
        prefix = make.make_prefix(settings)
        env = make.make_env(paths.cache_dir("ccache") if req.ccache else None)
        dotconfig = kconfig.configure(prefix, settings.objdir, srctree, requested,
                                      [f.name for f in fragments], env)
        staging = artifact.staging_dir(digest)
        try:
            result = make.build(settings, staging / "build.log",
                                keep_on_failure=artifact.failed_dir(digest))
            shutil.copyfile(result.bzimage, staging / "bzImage")
            shutil.copyfile(result.vmlinux, staging / "vmlinux")
            shutil.copyfile(dotconfig, staging / "config")
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    metadata: dict[str, Any] = {
        "digest": digest,
        "base": base.identity,
        "series": ({"name": series.name, "hash": inputs.series_hash,
                    "source": str(series.source), "applied_now": applied}
                   if series else None),
        "fragments": list(req.configs),
        "config_hash": inputs.config_hash(),
        "compiler": inputs.compiler,
        "recipe": inputs.recipe,
        "duration_s": round(time.monotonic() - started, 1),
        "ccache_hit_rate": (round(result.ccache_hit_rate, 3)
                            if result.ccache_hit_rate is not None else None),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "srctree": str(srctree),
        "objdir": str(settings.objdir),
        "reproducer": reproducer(req),
    }
    published = artifact.publish(staging, digest, metadata, replace=req.force)
    log.info("built %s in %.0f s", published.directory, metadata["duration_s"])
    return published
