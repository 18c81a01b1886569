"""The compile step: ``make bzImage`` out of tree, with ccache, niced, logged.

The command line is built by pure functions (lists, never shell strings); :func:`build`
runs it in its own process group, writes every line to the build log, shows a one-line
counter on stderr when stderr is a terminal, and on failure raises BuildError with the
first compiler errors (``file:line: error: ...``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from harness import paths
from harness import progress as progress_mod
from harness.errors import BuildError, PrerequisiteError
from harness.progress import LOG_INTERVAL

log = logging.getLogger("harness")

TARGETS = ("bzImage",)  # vmlinux is a by-product
BZIMAGE = Path("arch/x86/boot/bzImage")
NICE = 10  # the machine is shared with VMs booting
BUILD_TIMESTAMP = "Thu Jan  1 00:00:00 UTC 1970"

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_ERROR = re.compile(r"^(\S+?):(\d+)(?::\d+)?: (?:fatal )?error: ")
_OTHER_ERROR = re.compile(r"(^make(\[\d+\])?: \*\*\* .*)|(undefined reference to)|"
                          r"(^ld: .*)|(^ERROR: .*)")
_KBUILD_STEP = re.compile(r"^\s{2}([A-Z][A-Z0-9_]*)\s+(\S.*)$")


@dataclass(frozen=True)
class MakeSettings:
    srctree: Path
    objdir: Path
    jobs: int
    ccache: bool = True
    nice: int = NICE


def default_jobs() -> int:
    return len(os.sched_getaffinity(0))


def make_prefix(s: MakeSettings) -> list[str]:
    """``[nice -n N] make -C SRC O=OBJ -jN CC=...``: everything but the targets."""
    cmd: list[str] = ["nice", "-n", str(s.nice)] if s.nice else []
    cmd += ["make", "-C", str(s.srctree), f"O={s.objdir}", f"-j{s.jobs}"]
    if s.ccache:
        cmd.append("CC=ccache gcc")
    # Keep the build host out of the artifact (uname -v, /proc/version).
    cmd += ["KBUILD_BUILD_USER=harness", "KBUILD_BUILD_HOST=harness",
            # ... and the time and build count, so the same sources give the same image
            # (bisect recognises a commit whose kernel is one it already tested).
            f"KBUILD_BUILD_TIMESTAMP={BUILD_TIMESTAMP}", "KBUILD_BUILD_VERSION=1"]
    return cmd


def make_command(s: MakeSettings, targets: Sequence[str] = TARGETS) -> list[str]:
    return [*make_prefix(s), *targets]


def make_env(ccache_dir: Path | None, statslog: Path | None = None) -> dict[str, str]:
    """Environment additions for make: ccache's directory and statistics log; no colour
    in diagnostics."""
    env = {"GCC_COLORS": "", "LC_ALL": "C"}
    if ccache_dir is not None:
        env["CCACHE_DIR"] = str(ccache_dir)
        # Work trees are laid out as .../<series>/src and .../<series>/obj/<config>, so
        # with paths made relative to the cache root, the compiler command lines of two
        # series (or two configs) are the same and share cache entries.  NOHASHDIR: with
        # -g ccache would otherwise hash the object directory itself (the cost: DWARF's
        # comp_dir may name the object directory of the build that filled the entry).
        env["CCACHE_BASEDIR"] = str(paths.cache_root())
        env["CCACHE_NOHASHDIR"] = "1"
        if statslog is not None:
            env["CCACHE_STATSLOG"] = str(statslog)
    return env


# --- ccache statistics ---------------------------------------------------------------
# Per build, through CCACHE_STATSLOG (one "# file" line, then the counters it bumped, per
# compilation): global ``ccache --print-stats`` snapshots are wrong as soon as another
# build shares the cache directory (or someone zeroes it) meanwhile.

def hit_rate(statslog: str) -> float | None:
    """Cache hits / cacheable compilations in a CCACHE_STATSLOG; None if nothing was
    compiled."""
    lines = statslog.splitlines()
    hits = sum(line in ("direct_cache_hit", "preprocessed_cache_hit") for line in lines)
    misses = sum(line == "cache_miss" for line in lines)
    return hits / (hits + misses) if hits + misses else None


# --- errors --------------------------------------------------------------------------

def first_errors(log_text: str, limit: int = 5) -> list[str]:
    """The first compiler errors (``file:line[:col]: error: ...``) in a build log; failing
    that, the first make/linker error lines."""
    lines = [_ANSI.sub("", line) for line in log_text.splitlines()]
    errors = [line for line in lines if _ERROR.match(line)]
    if not errors:
        errors = [line for line in lines if _OTHER_ERROR.search(line)]
    return errors[:limit]


def tree_relative(line: str, objdir: Path, srctree: Path) -> str:
    """``../../src/fs/namespace.c:11:28: error: ...`` (ccache's base_dir makes the compiler
    see relative paths) -> ``fs/namespace.c:11:28: error: ...``."""
    path, sep, rest = line.partition(":")
    try:
        relative = (objdir / path).resolve().relative_to(srctree.resolve())
    except ValueError:
        return line
    return f"{relative}{sep}{rest}"


# --- progress ------------------------------------------------------------------------

class Progress:
    """The build's progress (``harness.progress``): the kbuild step count and the latest
    step, ``[  123] CC fs/namespace.o``, live on a terminal and every half minute in a
    log, where a cold build would otherwise be minutes of silence."""

    def __init__(self, stream: TextIO | None = None, interval: float = LOG_INTERVAL) -> None:
        self.shown = progress_mod.Progress("building the kernel", stream, interval)
        self.count = 0

    def line(self, text: str) -> None:
        m = _KBUILD_STEP.match(text)
        if not m:
            return
        self.count += 1
        self.shown.update(f"[{self.count:5d}] {m.group(1)} {m.group(2)}")

    def close(self) -> None:
        self.shown.close()


# --- running -------------------------------------------------------------------------

def check_prerequisites(ccache: bool) -> None:
    tools = ["make", "gcc", "flex", "bison", "bc", *(["ccache"] if ccache else [])]
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        raise PrerequisiteError(
            f"Missing build tools: {', '.join(missing)}; install them (Debian: apt-get "
            "install build-essential flex bison bc libelf-dev libssl-dev ccache).")


def run_logged(cmd: Sequence[str], log_path: Path, env: Mapping[str, str],
               progress: Progress | None = None) -> int:
    """Run ``cmd`` in its own process group, appending its output to ``log_path``; return
    its exit status.  Interrupting the harness stops the whole make tree."""
    log.info("make: %s", shlex.join(cmd))
    with log_path.open("a") as logfile:
        logfile.write("$ " + shlex.join(cmd) + "\n")
        logfile.flush()
        proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                env={**os.environ, **env}, text=True, errors="replace",
                                start_new_session=True)
        assert proc.stdout is not None
        heartbeat = (progress_mod.beating(progress.shown) if progress is not None
                     else contextlib.nullcontext())
        try:
            with heartbeat:   # a silent link step still gets its line in a log
                for line in proc.stdout:
                    logfile.write(line)
                    if progress is not None:
                        progress.line(line.rstrip("\n"))
                return proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
            raise
        finally:
            if progress is not None:
                progress.close()


@dataclass(frozen=True)
class CompileResult:
    bzimage: Path
    vmlinux: Path
    ccache_hit_rate: float | None


def build(settings: MakeSettings, log_path: Path, *, keep_on_failure: Path) -> CompileResult:
    """Build bzImage (and vmlinux) in ``settings.objdir``; raise BuildError on failure,
    with the log copied to ``keep_on_failure``."""
    check_prerequisites(settings.ccache)
    ccache_dir = paths.cache_dir("ccache") if settings.ccache else None
    statslog = log_path.with_name("ccache-stats.log")
    statslog.unlink(missing_ok=True)
    env = make_env(ccache_dir, statslog)
    status = run_logged(make_command(settings), log_path, env, Progress())
    rate = hit_rate(statslog.read_text()) if statslog.exists() else None
    statslog.unlink(missing_ok=True)
    if status != 0:
        keep_on_failure.mkdir(parents=True, exist_ok=True)
        kept = keep_on_failure / "build.log"
        shutil.copyfile(log_path, kept)
        config = settings.objdir / ".config"
        if config.exists():
            shutil.copyfile(config, keep_on_failure / "config")
        errors = [tree_relative(e, settings.objdir, settings.srctree)
                  for e in first_errors(kept.read_text(errors="replace"))]
        shown = "\n  ".join(errors) if errors else "(no compiler error found; see the log)"
        raise BuildError(
            f"The kernel build failed (make exited with {status}). First errors:\n  {shown}\n"
            "Fix the patch or fragment that causes it and run `harness build` again; the "
            "object directory is kept, so the next build only redoes what changed.",
            artifacts=keep_on_failure)
    return CompileResult(bzimage=settings.objdir / BZIMAGE,
                         vmlinux=settings.objdir / "vmlinux",
                         ccache_hit_rate=rate)
