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
import json
import logging
import shlex
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness import paths
from harness.build import artifact, kconfig, make, patch, source
from harness.build.artifact import Artifact, BuildInputs
from harness.build.patch import Series
from harness.build.proc import git
from harness.build.source import Base
from harness.errors import BuildError, PatchError

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
    upto: int | None = None  # only the first k patches of the series (bisecting a series)


def reproducer(req: BuildRequest) -> str:
    """The one-line command that rebuilds this artifact."""
    words = ["harness", "build"]
    if req.tree is not None:
        words += ["--tree", str(req.tree)]
    if req.series is not None:
        words += ["--series", req.series]
    if req.upto is not None:
        words += ["--upto", str(req.upto)]
    for name in req.configs:
        words += ["--config", name]
    return shlex.join(words)   # a path with a space still pastes back as one word


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


def _read_marker(marker: Path, base: Base, full: Series | None,
                 src: Path) -> list[tuple[str, str]]:
    """What the work tree holds, as (patch hash, commit after it) per applied patch.

    ``applied`` is JSON since prefixes of a series are built; an older one-line marker
    ("<base commit> <series hash>") still counts when it names the full series."""
    if not marker.exists():
        return []
    text = marker.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        if data.get("base") != base.commit:
            return []
        return [(str(h), str(c)) for h, c in data.get("patches", [])]
    if full is None or full.format == "mbox":
        return []
    # The old marker names the hash of what was applied: the series, or a prefix of it
    # (a test series that starts with the real one).
    k = next((k for k in range(len(full.patches), 0, -1)
              if text == f"{base.commit} {full.prefix(k).content_hash()}\n"), 0)
    commits = git(src, "rev-list", "--reverse", f"{base.commit}..HEAD").stdout.split()
    if not k or len(commits) != k:
        return []
    return [(patch.patch_hash(p), c) for p, c in zip(full.patches[:k], commits, strict=True)]


def _prepare_tree(base: Base, series: Series | None, workdir: Path,
                  full: Series | None = None) -> tuple[Path, list[str]]:
    """The source tree to build: the series applied to a work tree of the base (or the
    user's own tree, in place, when there is no series).

    The work tree is moved only as far as needed: back to the last patch it shares
    with ``series`` (``git reset --hard`` rewrites only the files that differ), then
    forward through the rest.  Building the first k patches of a series after the
    whole series recompiles only what patches k+1.. touched."""
    if base.user_tree and series is None:
        return base.repo, []
    src = source.worktree(base, workdir.name)
    marker = workdir / "applied"
    held = _read_marker(marker, base, full, src)
    wanted = [patch.patch_hash(p) for p in series.patches] if series else []
    if held:
        source.check_worktree_clean(src)
    common = 0
    while common < min(len(held), len(wanted)) and held[common][0] == wanted[common]:
        common += 1
    head = git(src, "rev-parse", "HEAD").stdout.strip()
    target = held[common - 1][1] if common else base.commit
    if common == len(held) == len(wanted) and head == target:
        return src, []
    marker.unlink(missing_ok=True)
    source.reset_worktree(src, target)
    applied: list[str] = []
    record = held[:common]
    for p in series.patches[common:] if series is not None else ():
        assert series is not None
        applied += patch.apply_series(src, replace(series, patches=(p,)))
        record.append((patch.patch_hash(p), git(src, "rev-parse", "HEAD").stdout.strip()))
    marker.write_text(json.dumps({"base": base.commit, "patches": record}) + "\n")
    return src, applied


def tree_workdir(tree: Path) -> Path:
    """Where a --tree build in place keeps its objects: keyed by the tree's path, not its
    commit, so the next commit builds incrementally.  A tree kept in the cache as
    ``work/<name>/src`` (bisect's test histories) gets ``work/<name>/obj/`` beside it:
    the same relative layout as a series' work tree, so ccache hits across the two."""
    work = paths.cache_root().resolve() / "work"
    if tree.name == "src" and tree.parent.parent == work:
        return tree.parent
    tree_id = hashlib.sha256(str(tree).encode()).hexdigest()[:12]
    return paths.cache_dir("work", f"tree-{tree.name}-{tree_id}")


def _still_as_prepared(srctree: Path, head: str, requested: dict[str, str],
                       dotconfig: Path, fragments: list[kconfig.Fragment]) -> None:
    """Before publishing: the work tree is still at the commit it was prepared at and the
    final .config still has every option asked for. A tree moved or reconfigured under
    the build (a process that ignored the lock, an edit by hand) would otherwise be
    published under the hash of inputs it was not built from, and every later build of
    those inputs would boot it."""
    now = git(srctree, "rev-parse", "HEAD").stdout.strip()
    if now != head:
        raise BuildError(
            f"The work tree {srctree} moved from {head[:12]} to {now[:12]} during the "
            "build, so the kernel is not what was asked for; nothing was published. Is "
            "another process using the tree without its lock? Run the build again.")
    kconfig.verify(requested, dotconfig, srctree, [f.name for f in fragments])


def build(req: BuildRequest) -> Artifact:
    """Build (or find in the cache) the kernel ``req`` describes."""
    started = time.monotonic()
    full = patch.load(patch.resolve(req.series)) if req.series else None
    if req.upto is not None and full is None:
        raise PatchError("--upto K takes the first K patches of a series; give --series too.")
    series = full.prefix(req.upto) if full is not None and req.upto is not None else full
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
        workdir = tree_workdir(base.repo)
    else:
        workdir = paths.cache_dir(
            "work", base.key, source.safe_key(series.name if series else NO_SERIES))
    with source.locked(workdir / "lock"):
        srctree, applied = _prepare_tree(base, series, workdir, full)
        head = git(srctree, "rev-parse", "HEAD").stdout.strip()
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
            _still_as_prepared(srctree, head, requested, dotconfig, fragments)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    metadata: dict[str, Any] = {
        "digest": digest,
        "base": base.identity,
        "series": ({"name": series.name, "hash": inputs.series_hash,
                    "source": str(series.source), "applied_now": applied,
                    "patches": [p.path.name for p in series.patches], "upto": req.upto}
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
