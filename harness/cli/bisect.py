"""``harness bisect``: the command line of the patch and commit bisect."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.build import kconfig
from harness.errors import BisectError
from harness.vm.supervise import Timeouts
from harness.workflows.bisect import BisectOptions, bisect, step_once
from harness.workflows.bisect_search import clamp_exit, report_lines


def from_args(a: argparse.Namespace) -> BisectOptions:
    return BisectOptions(series=a.series, tree=a.tree, base=a.base, good=a.good, bad=a.bad,
                         scenarios=tuple(a.scenario) or ("move",),
                         pytest_args=tuple(a.pytest), backend=a.backend, runs=a.runs,
                         threshold=1 if a.threshold is None else a.threshold,
                         confirm=a.confirm, results=a.results,
                         configs=tuple(a.configs or kconfig.DEFAULT_FRAGMENTS), cpus=a.cpus,
                         timeouts=Timeouts(boot=a.boot_timeout, scenario=a.scenario_timeout,
                                           run=a.run_timeout),
                         step_only=a.step, rebuild=a.rebuild)


def _main(a: argparse.Namespace) -> int:
    opts = from_args(a)
    if opts.step_only:
        if opts.tree is None:
            raise BisectError("--step tests the HEAD of a tree: give --tree PATH.")
        return clamp_exit(step_once(opts))  # whatever happens, never abort git bisect run
    res = bisect(opts)
    print("\n".join(report_lines(res.steps, res.summary)))
    print(f"report: {res.results / 'report.txt'}", file=sys.stderr)
    return res.exit_code


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bisect", help="find the patch or commit that broke a scenario",
        description="Bisect the patches of a series (--series, first k patches) or the "
        "commits of a kernel tree (--tree). Exit status: 0 culprit found and confirmed; "
        "3 found but not confirmed, or ambiguous; 2 bad input or an infrastructure error. "
        "With --step: 0 good, 1 bad, 125 skip (for `git bisect run`).")
    p.add_argument("--series", metavar="NAME|PATH", help="bisect the patches of this series")
    p.add_argument("--tree", type=Path, metavar="PATH", help="bisect commits of this git tree")
    p.add_argument("--base", type=Path, metavar="PATH", help="with --series: apply the "
                   "series to this clean git tree instead of Debian's linux-source")
    p.add_argument("--good", metavar="REV|K", help="known good: a commit, or a number of "
                   "patches with --series (default 0)")
    p.add_argument("--bad", metavar="REV|K", help="known bad: a commit, or a number of "
                   "patches with --series (default: all)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="scenario to run at each step (repeatable; default: move)")
    p.add_argument("--pytest", action="append", default=[], metavar="ARG",
                   help="run this pytest selection instead (repeatable; the step's kernel is "
                   "passed as MNH_PATCHED_KERNEL)")
    p.add_argument("--backend", default="watch-queue", choices=("fanotify", "watch-queue"))
    p.add_argument("--runs", type=int, default=1, help="runs per step (flaky failures)")
    p.add_argument("--threshold", type=int, default=None,
                   help="failures among --runs that make a step bad (default: 1)")
    p.add_argument("--confirm", type=int, default=2,
                   help="re-runs of the culprit and of its parent at the end (0: none)")
    p.add_argument("--results", type=Path, help="report and step log directory; running the "
                   "same bisect with the same directory resumes it")
    p.add_argument("--config", dest="configs", action="append", metavar="FRAGMENT")
    p.add_argument("--cpus", type=int, default=None)
    p.add_argument("--boot-timeout", type=float, default=Timeouts.boot)
    p.add_argument("--scenario-timeout", type=float, default=Timeouts.scenario)
    p.add_argument("--run-timeout", type=float, default=Timeouts.run)
    p.add_argument("--rebuild", action="store_true",
                   help="build every step even if its artifact is cached (timing a bisect)")
    p.add_argument("--step", action="store_true",
                   help="test the HEAD of --tree once; exit 0/1/125 for `git bisect run`")
    p.set_defaults(func=_main)
