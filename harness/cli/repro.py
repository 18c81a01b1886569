"""``harness repro``: the command line of race reproduction."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.workflows.repro import ReproOptions, report_text, repro


def from_args(a: argparse.Namespace) -> ReproOptions:
    return ReproOptions(kernel=a.kernel, debug=a.debug, scenarios=tuple(a.scenario),
                        runs=a.runs, until_fail=a.until_fail, duration=a.duration,
                        cpus=a.cpus, fresh_boot=a.fresh_boot, seconds=a.seconds,
                        memory=a.memory, results=a.results, boot_timeout=a.boot_timeout,
                        append=tuple(a.append))


def _main(a: argparse.Namespace) -> int:
    res = repro(from_args(a))
    print(report_text(res.summary))
    print(f"report: {res.results / 'repro.txt'}", file=sys.stderr)
    return res.exit_code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "repro", help="run stress scenarios many times; rates of each distinct failure",
        description="Exit status: 0 no failure; 1 failures found (see the report); 2 bad "
        "input or the guest could not run.")
    p.add_argument("--kernel", help="kernel to test (default: the series built, with "
                   "--debug the debug build)")
    p.add_argument("--debug", action="store_true",
                   help="build with kernel-config/debug.config (KASAN, lockdep)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="scenario (repeatable; default: every stress scenario)")
    p.add_argument("--runs", type=int, default=10, help="rounds per scenario")
    p.add_argument("--until-fail", action="store_true", help="stop at the first failure")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="time budget: start no new boot after it")
    p.add_argument("--cpus", type=int, default=2, help="guest vCPUs (default 2)")
    p.add_argument("--fresh-boot", action="store_true", help="one boot per round")
    p.add_argument("--seconds", type=float, default=2.0, help="duration of one round")
    p.add_argument("--memory", default="2G")
    p.add_argument("--append", action="append", default=[], metavar="ARG",
                   help="extra kernel argument (repeatable; it wins over the harness's own, "
                   "e.g. mitigations=auto for a distribution kernel's shipped mitigations)")
    p.add_argument("--results", type=Path, help="report directory (default: in the cache)")
    p.add_argument("--boot-timeout", type=float, default=600.0)
    p.set_defaults(func=_main)
