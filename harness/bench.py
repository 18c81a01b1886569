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
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mnh_guest import decode

from . import accel, bench_build, kernels
from .run import RunOptions, default_cpus, run
from .vmcmd import VmSpec, vng_command

Bench = Callable[[argparse.Namespace], dict[str, Any]]


def bench_decoder(args: argparse.Namespace) -> dict[str, Any]:
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


def _time_cmd(cmd: list[str], timeout: float) -> float:
    t0 = time.monotonic()
    subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=timeout, check=True)
    return time.monotonic() - t0


def bench_suite(args: argparse.Namespace) -> dict[str, Any]:
    """Boot-to-verdict of the fanotify suite vs a bare ``vng --exec true``, same run."""
    kernel = kernels.resolve(args.kernel)
    acc = accel.choose(kernel.image)
    cpus = default_cpus(acc.name)
    suite, bare = [], []
    with tempfile.TemporaryDirectory(prefix="mnh-bench-") as tmp:
        for i in range(args.boots):
            spec = VmSpec(kernel=kernel.image, accel=acc.name, guest_command=("true",),
                          cwd=Path(tmp), cpus=cpus)
            bare.append(_time_cmd(vng_command(spec), 600))
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


def bench_image(args: argparse.Namespace) -> dict[str, Any]:
    """Image mode: image build (cold, in a scratch cache; then cached) and boot-to-SSH
    under the same accelerator, next to a bare virtme-ng boot measured in the same run."""
    from . import image

    kernel = kernels.resolve(args.kernel)
    acc = accel.choose(kernel.image)
    cpus = default_cpus(acc.name)
    with tempfile.TemporaryDirectory(prefix="mnh-bench-image-") as scratch:
        saved = os.environ.get("MNH_CACHE_DIR")
        os.environ["MNH_CACHE_DIR"] = scratch       # a cold build: nothing cached
        try:
            t0 = time.monotonic()
            image.build()
            cold = time.monotonic() - t0
        finally:
            if saved is None:
                os.environ.pop("MNH_CACHE_DIR", None)
            else:
                os.environ["MNH_CACHE_DIR"] = saved
    img = image.build()                              # the real cache (built if missing)
    t0 = time.monotonic()
    image.build()
    cached = time.monotonic() - t0
    ready, to_ssh, image_total, bare = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="mnh-bench-") as tmp:
        for i in range(args.boots):
            spec = VmSpec(kernel=kernel.image, accel=acc.name, guest_command=("true",),
                          cwd=Path(tmp), cpus=cpus)
            bare.append(_time_cmd(vng_command(spec), 600))
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
    "build": bench_build.bench_build,
    "watch_queue_suite": bench_build.bench_watch_queue_suite,
    "image": bench_image,
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="harness.bench")
    p.add_argument("--out", type=Path, default=Path("bench/results.json"))
    p.add_argument("--only", action="append", choices=sorted(BENCHES), default=[])
    p.add_argument("--kernel", default="debian")
    p.add_argument("--patched-kernel", default="build")
    p.add_argument("--jobs", type=int, default=None, help="make -jN for the build bench")
    p.add_argument("--boots", type=int, default=3)
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    data: dict[str, Any] = {}
    if args.out.exists():
        data = json.loads(args.out.read_text())
    for name in args.only or list(BENCHES):
        print(f"bench: {name} ...", file=sys.stderr)
        data[name] = {**BENCHES[name](args), "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                       time.gmtime()),
                      "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "load_avg_1m": round(os.getloadavg()[0], 2)}}
        print(json.dumps({name: data[name]}, indent=2), file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
