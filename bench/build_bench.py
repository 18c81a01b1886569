"""Benchmarks of the patched kernel: its build (cold, one-file rebuild, cached no-op) and
the watch-queue suite on it (boot to first scenario, guest time, guest decode rate).

The cold build runs in a private cache (empty ccache, new work tree) that borrows only
the extracted pristine source, so the shared cache is neither used nor disturbed.
Build times depend on what else the machine does: the load average is recorded beside
them, and the suite is reported next to a bare boot of the same kernel.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.options import BenchOptions
from harness import paths
from harness.build import pipeline, source
from harness.build.pipeline import BuildRequest
from harness.build.proc import git
from harness.kernel import resolve
from harness.vm import accel
from harness.vm.guest import default_cpus
from harness.vm.vngcmd import VmSpec, vng_command
from harness.workflows.run import RunOptions, run

SERIES = "mount-notify-v5"
# What the targets are stated for: the series on base + mount-notify.
FRAGMENTS = ("base", "mount-notify")
TOUCHED = "fs/mount_notify.c"


@contextmanager
def private_cache() -> Iterator[Path]:
    """A throw-away cache root that shares only the pristine sources with the real one."""
    base = source.debian_base()          # extracted (once) in the real cache
    real_sources = paths.cache_root() / "sources"
    root = Path(tempfile.mkdtemp(prefix="mnh-bench-cache-"))
    (root / "sources").symlink_to(real_sources)
    try:
        with paths.cache_at(root):
            yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
        git(base.repo, "worktree", "prune", check=False)


def _timed_build(req: BuildRequest) -> tuple[float, dict[str, Any]]:
    load = os.getloadavg()[0]
    t0 = time.monotonic()
    art = pipeline.build(req)
    return time.monotonic() - t0, {**art.metadata, "load_avg_1m_before": round(load, 2)}


def bench_build(args: BenchOptions) -> dict[str, Any]:
    """Cold build, rebuild after touching fs/mount_notify.c, and a cached no-op."""
    req = BuildRequest(series=SERIES, configs=FRAGMENTS, jobs=args.jobs)
    with private_cache():
        cold_s, cold = _timed_build(req)
        (Path(cold["srctree"]) / TOUCHED).touch()
        touched_s, touched = _timed_build(
            BuildRequest(series=SERIES, configs=FRAGMENTS, jobs=args.jobs, force=True))
        noop_s, _ = _timed_build(req)
    return {
        "series": SERIES, "fragments": list(FRAGMENTS), "jobs": args.jobs or os.cpu_count(),
        "cold_build_s": round(cold_s, 1), "cold_ccache_hit_rate": cold["ccache_hit_rate"],
        "cold_load_avg_1m_before": cold["load_avg_1m_before"],
        "touch_rebuild_s": round(touched_s, 1), "touched": TOUCHED,
        "touch_load_avg_1m_before": touched["load_avg_1m_before"],
        "cached_noop_s": round(noop_s, 2),
        "targets_s": {"cold_build": 480, "touch_rebuild": 45, "cached_noop": 5},
    }


def bare_boot(kernel: Path, acc: str, cpus: int, timeout: float = 600.0,
              plain: bool = True, hardware_modules: bool = False) -> float:
    """Seconds of one ``vng --run KERNEL --exec true``: the floor every suite is measured
    against, with the same accelerator and vCPUs as the suite's own boots. ``plain``:
    what vng does by itself (udev's drivers, default mitigations); otherwise with the
    harness's kernel arguments, and its driver blacklist unless ``hardware_modules``."""
    with tempfile.TemporaryDirectory(prefix="mnh-bench-") as tmp:
        spec = VmSpec(kernel=kernel, accel=acc, guest_command=("true",), cwd=Path(tmp),
                      cpus=cpus, plain=plain, hardware_modules=hardware_modules)
        t0 = time.monotonic()
        subprocess.run(vng_command(spec), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=timeout, check=True)
        return time.monotonic() - t0


def bench_vng_speedups(args: BenchOptions) -> dict[str, Any]:
    """What the harness's boot arguments buy on a distribution kernel (Debian's, which
    has modules and mitigations): bare boots, alternating, of vng's own command line,
    with FAST_APPEND only (hardware modules allowed), and with FAST_APPEND plus the
    driver blacklist (what every harness boot gets). Cited by harness/vm/vngcmd.py."""
    kernel = resolve.kernel(args.kernel)
    acc = accel.choose(kernel.image).name
    cpus = default_cpus(acc)
    sides: dict[str, list[float]] = {"plain": [], "fast_append": [], "fast_and_blacklist": []}
    for _ in range(args.boots):
        sides["plain"].append(bare_boot(kernel.image, acc, cpus))
        sides["fast_append"].append(bare_boot(kernel.image, acc, cpus, plain=False,
                                              hardware_modules=True))
        sides["fast_and_blacklist"].append(bare_boot(kernel.image, acc, cpus, plain=False))
    med = {k: statistics.median(v) for k, v in sides.items()}
    return {"kernel": kernel.release, "accel": acc, "cpus": cpus, "boots": args.boots,
            **{f"{k}_s": [round(x, 2) for x in v] for k, v in sides.items()},
            **{f"{k}_median_s": round(m, 2) for k, m in med.items()},
            "ratio_harness_to_plain": round(med["fast_and_blacklist"] / med["plain"], 3)}


def bench_watch_queue_suite(args: BenchOptions) -> dict[str, Any]:
    """The whole watch-queue suite in one boot of the patched kernel, next to a bare boot."""
    kernel = resolve.kernel(args.patched_kernel)
    acc = accel.choose(kernel.image).name
    bare = bare_boot(kernel.image, acc, default_cpus(acc))
    with tempfile.TemporaryDirectory(prefix="mnh-bench-") as tmp:
        t0 = time.monotonic()
        r = run(RunOptions(kernel=args.patched_kernel, backend="watch-queue",
                           results=Path(tmp) / "suite"))
        wall = time.monotonic() - t0
        failed = {s.name: str(s.outcome) for s in r.scenarios if str(s.outcome) != "pass"}
        rate = None
        overrun = r.log_path("overrun")
        if overrun.exists():
            for line in overrun.read_text().splitlines():
                entry = json.loads(line)
                if entry.get("kind") == "overrun":
                    rate = entry.get("decode_rate_per_s")
    return {
        "kernel": kernel.release, "accel": acc, "scenarios": len(r.scenarios),
        "not_passed": failed,
        "boot_to_first_scenario_s": r.boot.booted_at,
        "suite_guest_s": round(sum(s.duration for s in r.scenarios), 2),
        "suite_wall_s": round(wall, 2), "bare_boot_s": round(bare, 2),
        "ratio_suite_to_bare": round(wall / bare, 3),
        "overrun_guest_decode_records_per_s": rate,
        "targets": {"suite_guest_s": 60, "boot_to_first_scenario_s": 6},
    }
