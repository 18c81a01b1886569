"""``nox -s bench``: speed figures, written to bench/results.json.

Figures that depend on a noisy machine are reported next to a reference measured
in the same run, as ratios. Each benchmark updates only its own key, so a partial
run (``--only NAME``) keeps the other figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnh_guest import decode

from bench import build_bench
from bench.options import BenchOptions
from harness import paths
from harness.kernel import resolve
from harness.vm import accel
from harness.vm.guest import default_cpus
from harness.workflows.run import RunOptions, run

Bench = Callable[[BenchOptions], dict[str, Any]]


def bench_decoder(args: BenchOptions) -> dict[str, Any]:
    """Host decoder throughput on a large synthetic log of fanotify mount events."""
    n = args.records
    buf = b"".join(struct.pack("<IBBHQiiBBHIQ", 40, 3, 0, 24,
                               decode.FAN_MNT_ATTACH if i % 3 else decode.FAN_MNT_DETACH,
                               -1, 1000 + i % 7, 7, 0, 16, 0, 0x80000000 + i)
                   for i in range(n))
    wall, cpu = [], []
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        out = decode.decode_fanotify(buf)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert len(out) == n and isinstance(out[-1], decode.FanEvent)
    # The checking path (a buffer that is not uniform) for comparison.
    odd = buf + b"\0" * 3
    t0 = time.process_time()
    slow = decode.decode_fanotify(odd)
    slow_cpu = time.process_time() - t0
    return {"records": n, "records_per_s_wall": round(n / min(wall)),
            "records_per_s_cpu": round(n / min(cpu)),
            "checking_path_records_per_s_cpu": round((len(slow) - 1) / slow_cpu),
            "target_records_per_s": 1_000_000}


def bench_suite(args: BenchOptions) -> dict[str, Any]:
    """Boot-to-verdict of the fanotify suite vs a bare ``vng --exec true``, same run."""
    kernel = resolve.kernel(args.kernel)
    acc = accel.choose(kernel.image)
    cpus = default_cpus(acc.name)
    suite, bare = [], []
    with tempfile.TemporaryDirectory(prefix="mnh-bench-") as tmp:
        for i in range(args.boots):
            bare.append(build_bench.bare_boot(kernel.image, acc.name, cpus))
            t0 = time.monotonic()
            r = run(RunOptions(kernel=args.kernel, results=Path(tmp) / f"suite-{i}"))
            suite.append(time.monotonic() - t0)
            if not r.passed:
                raise SystemExit(f"bench: the suite did not pass: {r.results_dir}")
    med_s, med_b = statistics.median(suite), statistics.median(bare)
    return {"kernel": kernel.release, "accel": acc.name, "cpus": cpus, "boots": args.boots,
            "suite_s": [round(x, 2) for x in suite], "bare_vng_s": [round(x, 2) for x in bare],
            "suite_median_s": round(med_s, 2), "bare_vng_median_s": round(med_b, 2),
            "ratio_suite_to_bare": round(med_s / med_b, 3), "target_ratio": 1.3}


def bench_bisect(args: BenchOptions) -> dict[str, Any]:
    """A whole series bisect (harness.testing.history: the real series + a dropped MOVE_TO
    between comment-only patches), every step rebuilt incrementally, then confirmed."""
    from harness.testing.history import make_series, real_count
    from harness.workflows.bisect import BisectOptions, bisect

    with tempfile.TemporaryDirectory(prefix="mnh-bench-") as tmp:
        series = make_series(Path(tmp) / "series")
        t0 = time.monotonic()
        n = real_count()
        res = bisect(BisectOptions(series=str(series), good=str(n), bad=str(n + 3), confirm=2,
                                   rebuild=True, results=Path(tmp) / "bisect"))
        total = time.monotonic() - t0
    tested = [s for s in res.steps if s.phase != "confirm" and not s.same_image_as]
    steps = [{"phase": s.phase, "candidate": s.label, "verdict": str(s.verdict),
              "build_s": s.build_s, "test_s": s.test_s, "same_image_as": s.same_image_as}
             for s in res.steps]
    return {"summary": res.summary, "total_s": round(total, 1), "steps": steps,
            "step_cost_s_mean": round(statistics.mean(s.build_s + s.test_s for s in tested), 1),
            "build_s_mean": round(statistics.mean(s.build_s for s in tested), 1),
            "boot_and_scenario_s_mean": round(statistics.mean(s.test_s for s in tested), 1),
            "target_total_s": 600}


def bench_stress(args: BenchOptions) -> dict[str, Any]:
    """Stress iterations per second inside one boot of the patched kernel (2 vCPUs)."""
    from harness.workflows.repro import ReproOptions, repro

    with tempfile.TemporaryDirectory(prefix="mnh-bench-") as tmp:
        t0 = time.monotonic()
        res = repro(ReproOptions(kernel=args.patched_kernel, runs=args.rounds, seconds=3.0,
                                 cpus=2, results=Path(tmp) / "repro"))
        wall = time.monotonic() - t0
    scen = res.summary["scenarios"]
    round_s = sum(r.seconds for r in res.rounds)
    return {"kernel": Path(str(res.summary["kernel"])).name, "cpus": 2,
            "rounds_per_scenario": args.rounds,
            "seconds_per_round": 3.0, "boots": res.boots, "wall_s": round(wall, 1),
            "ops_per_s": {k: v["ops_per_s"] for k, v in scen.items()},
            "failures": {k: v["failures"] for k, v in scen.items()},
            "rounds_per_s_of_boot": round(len(res.rounds) / wall, 3),
            "share_of_boot_in_rounds": round(round_s / wall, 3)}




def bench_image(args: BenchOptions) -> dict[str, Any]:
    """Image mode: image build (cold, in a scratch cache; then cached) and boot-to-SSH
    under the same accelerator, next to a bare virtme-ng boot measured in the same run."""
    from harness.vm import image

    kernel = resolve.kernel(args.kernel)
    acc = accel.choose(kernel.image)
    cpus = default_cpus(acc.name)
    with tempfile.TemporaryDirectory(prefix="mnh-bench-image-") as scratch, \
            paths.cache_at(Path(scratch)):           # a cold build: nothing cached
        t0 = time.monotonic()
        image.build()
        cold = time.monotonic() - t0
    img = image.build()                              # the real cache (built if missing)
    t0 = time.monotonic()
    image.build()
    cached = time.monotonic() - t0
    ready, to_ssh, image_total, bare = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="mnh-bench-") as tmp:
        for i in range(args.boots):
            bare.append(build_bench.bare_boot(kernel.image, acc.name, cpus))
            t0 = time.monotonic()
            r = run(RunOptions(kernel=args.kernel, image=str(img.directory),
                               scenarios=("mount",), results=Path(tmp) / f"image-{i}"))
            image_total.append(time.monotonic() - t0)
            if not r.passed:
                raise SystemExit(f"bench: the image-mode run did not pass: {r.results_dir}")
            info = json.loads((r.results_dir / "results.json").read_text())["image_mode"]
            ready.append(info["ready_s"])
            to_ssh.append(info["ssh_s"])
    med_ssh, med_bare = statistics.median(to_ssh), statistics.median(bare)
    return {"kernel": kernel.release, "accel": acc.name, "cpus": cpus, "boots": args.boots,
            "image_build_cold_s": round(cold, 1), "image_build_cached_s": round(cached, 3),
            "boot_to_ready_s": ready, "boot_to_ssh_s": to_ssh,
            "image_run_mount_scenario_s": [round(x, 2) for x in image_total],
            "bare_vng_s": [round(x, 2) for x in bare],
            "boot_to_ssh_median_s": round(med_ssh, 2), "bare_vng_median_s": round(med_bare, 2),
            "ratio_boot_to_ssh_to_bare_vng": round(med_ssh / med_bare, 3)}


BENCHES: dict[str, Bench] = {
    "decoder": bench_decoder,
    "fanotify_suite": bench_suite,
    "build": build_bench.bench_build,
    "watch_queue_suite": build_bench.bench_watch_queue_suite,
    "vng_speedups": build_bench.bench_vng_speedups,
    "image": bench_image,
    "bisect_series": bench_bisect,
    "stress": bench_stress,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--out", type=Path, default=Path("bench/results.json"))
    p.add_argument("--only", action="append", choices=sorted(BENCHES), default=[])
    p.add_argument("--kernel", default="debian")
    p.add_argument("--patched-kernel", default="build")
    p.add_argument("--jobs", type=int, default=None, help="make -jN for the build bench")
    p.add_argument("--boots", type=int, default=3)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args(argv)
    args = BenchOptions(kernel=a.kernel, patched_kernel=a.patched_kernel, jobs=a.jobs,
                        boots=a.boots, records=a.records, repeat=a.repeat, rounds=a.rounds)
    out: Path = a.out
    data: dict[str, Any] = {}
    if out.exists():
        data = json.loads(out.read_text())
    failed = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for name in a.only or list(BENCHES):
        print(f"bench: {name} ...", file=sys.stderr)
        try:
            figures = BENCHES[name](args)
        except Exception as exc:   # one broken bench must not cost the others' figures
            print(f"bench: {name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            failed.append(name)
            continue
        data[name] = {**figures, "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                           time.gmtime()),
                      "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "load_avg_1m": round(os.getloadavg()[0], 2)}}
        print(json.dumps({name: data[name]}, indent=2), file=sys.stderr)
        # Written after every bench: an interrupted run keeps what it measured.
        out.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
