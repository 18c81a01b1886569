"""The in-guest scenario runner: ``python3 -m mnh_guest.run --results DIR ...``.

Each scenario runs in a forked child, in its own mount namespace, under a timeout.
The verdict of each scenario is written atomically to
``DIR/scenarios/NAME.verdict.json``; markers written to /dev/kmsg put the scenario
boundaries into the kernel console so the host can tell which scenario a kernel
splat belongs to. The host, not this runner, decides "crash".
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from typing import Any

from . import context
from .backends import fanotify, watch_queue
from .scenarios import BY_NAME, default_names

BACKENDS = ("fanotify", "watch-queue")
MARKER = "mnh:"


def kmsg(message: str) -> None:
    """Write a marker line into the kernel log (best effort)."""
    try:
        fd = os.open("/dev/kmsg", os.O_WRONLY)
        try:
            os.write(fd, f"<5>{MARKER} {message}\n".encode())
        finally:
            os.close(fd)
    except OSError:
        pass


def write_json(path: str, data: dict[str, Any]) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def make_backend(name: str, abi: dict[str, Any] | None) -> context.Backend:
    if name == "fanotify":
        return fanotify.FanotifyBackend()
    if abi is None:
        raise SystemExit("the watch-queue backend needs --abi (the series' [abi] as JSON)")
    return watch_queue.WatchQueueBackend(abi)


def runner_verdict(path: str, name: str, backend_name: str, outcome: str, message: str,
                   start: float) -> dict[str, Any]:
    """Write the verdict the runner gives itself when the scenario could not (no events)."""
    verdict = {"scenario": name, "backend": backend_name, "outcome": outcome,
               "message": message, "events": 0, "duration": round(time.monotonic() - start, 3)}
    write_json(path, verdict)
    return verdict


def run_one(name: str, backend_name: str, outdir: str, timeout: float,
            abi: dict[str, Any] | None = None) -> dict[str, Any]:
    log_path = os.path.join(outdir, f"{name}.jsonl")
    verdict_path = os.path.join(outdir, f"{name}.verdict.json")
    kmsg(f"scenario {name} start")
    start = time.monotonic()
    # Imported here, in the runner, not in the forked child: the next scenario of the
    # same module finds it already loaded. A module that fails to import costs this
    # scenario (an error), not the rest of the run.
    try:
        func = BY_NAME[name].func
    except Exception as exc:  # whatever the import raised: the harness's failure
        verdict = runner_verdict(verdict_path, name, backend_name, "error",
                                 f"cannot load {BY_NAME[name].target}: "
                                 f"{type(exc).__name__}: {exc}", start)
        kmsg(f"scenario {name} end error")
        return verdict
    pid = os.fork()
    if pid == 0:  # child
        code = 0
        try:
            verdict = context.run_in_namespace(name, func,
                                               make_backend(backend_name, abi), log_path)
            write_json(verdict_path, {"scenario": name, "backend": backend_name, **verdict})
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    status: int | None = None
    while status is None:
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            break
        if timeout and time.monotonic() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            verdict = runner_verdict(verdict_path, name, backend_name, "timeout",
                                     f"no verdict after {timeout:.0f} s; the guest runner "
                                     "killed it", start)
            kmsg(f"scenario {name} end timeout")
            return verdict
        time.sleep(0.02)
    if os.path.exists(verdict_path):
        with open(verdict_path, encoding="utf-8") as f:
            verdict = json.load(f)
    else:
        verdict = runner_verdict(verdict_path, name, backend_name, "error",
                                 f"scenario process ended with status {status} and no "
                                 "verdict", start)
    kmsg(f"scenario {name} end {verdict['outcome']}")
    return verdict


def wait_ack(path: str, timeout: float) -> bool:
    """Wait until ``path`` exists (the host took the last verdict), at most ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mnh_guest.run")
    p.add_argument("--results", required=True)
    p.add_argument("--backend", default="fanotify", choices=BACKENDS)
    p.add_argument("--abi", help="JSON file with the series' [abi] table (watch-queue)")
    p.add_argument("--scenario", action="append", default=[])
    p.add_argument("--scenario-file", help="a file with one scenario name a line, after "
                   "any --scenario (the host's way: argv travels on the kernel command line)")
    p.add_argument("--timeout", type=float, default=60.0,
                   help="per-scenario timeout in seconds (0: none; the host's watchdog acts)")
    p.add_argument("--ack-timeout", type=float, default=0.0,
                   help="after each scenario, wait up to this long for the host to create "
                   "scenarios/NAME.ack (image mode: the host copies each verdict out before "
                   "the next scenario can crash the guest); 0: do not wait")
    args = p.parse_args(argv)
    names = list(args.scenario)
    if args.scenario_file:
        with open(args.scenario_file) as f:
            names += [line.strip() for line in f if line.strip()]
    names = names or default_names(args.backend)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    abi = watch_queue.load_abi(args.abi) if args.abi else None
    outdir = os.path.join(args.results, "scenarios")
    os.makedirs(outdir, exist_ok=True)
    write_json(os.path.join(args.results, "runner.json"),
               {"started": time.time(), "kernel": os.uname().release, "python": sys.version,
                "backend": args.backend, "scenarios": names})
    kmsg("runner start")
    failed = 0
    for name in names:
        verdict = run_one(name, args.backend, outdir, args.timeout, abi)
        failed += verdict["outcome"] not in ("pass", "skip")
        if args.ack_timeout > 0:
            wait_ack(os.path.join(outdir, f"{name}.ack"), args.ack_timeout)
    kmsg("runner done")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
