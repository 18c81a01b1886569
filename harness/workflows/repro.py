"""``harness repro``: run racing scenarios many times and say how often each failure
shows up.

A *run* is one round of one stress scenario.  Rounds run inside one boot (the guest
reads ``mnh.stress_rounds`` and ``mnh.stress_seconds`` from its command line) unless
``--fresh-boot`` asks for a boot per round.  A boot that dies (a panic, a KASAN report
with panic_on_warn, a hang) ends its round as a failure and the next boot carries on
with the rounds left.

Every failure gets a fingerprint (``harness.triage``); each distinct one keeps its
console excerpt, its trace symbolized with the build's vmlinux, the run directory, and
a command that reproduces it.  The report gives per scenario and per fingerprint the
rate with a 95% Wilson interval.
"""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnh_guest.scenarios import BY_NAME, stress_names

from harness import paths, signals
from harness.build import kconfig
from harness.build.artifact import BuildMetadata
from harness.build.pipeline import BuildRequest, build
from harness.errors import HarnessError, ReproError, signal_name
from harness.kernel import resolve
from harness.kernel.abi import DEFAULT_SERIES
from harness.kernel.image import Kernel
from harness.results import triage
from harness.results.verdict import Outcome, ScenarioResult
from harness.vm.supervise import Timeouts
from harness.workflows.run import RunOptions, RunResult, run

log = logging.getLogger("harness")

MAX_ROUNDS_PER_BOOT = 20
MAX_INFRA_ERRORS = 3
ROUND_OVERHEAD = 45.0     # seconds per round on top of its duration: setup, join, cleanup




@dataclass(frozen=True)
class ReproOptions:
    kernel: str | None = None          # default: the series built (with --debug: + debug)
    debug: bool = False
    scenarios: tuple[str, ...] = ()    # default: every stress scenario
    runs: int = 10
    until_fail: bool = False
    duration: float | None = None      # seconds of budget (stops starting new rounds)
    cpus: int = 2
    fresh_boot: bool = False
    seconds: float = 2.0               # per round
    memory: str = "2G"
    results: Path | None = None
    boot_timeout: float = 600.0
    append: tuple[str, ...] = ()       # the user's kernel arguments (after the harness's)


@dataclass
class RoundResult:
    scenario: str
    boot: int
    n: int
    ok: bool
    ops: int = 0
    seconds: float = 0.0
    fingerprint: str = ""
    problems: list[str] = field(default_factory=list)


@dataclass
class Failure:
    """One distinct failure (by fingerprint) and where it was first seen."""

    fingerprint: str
    scenario: str
    count: int = 0
    first_run: str = ""
    excerpt: str = ""
    symbolized: str = ""
    reproducer: str = ""


# --- pure parts ------------------------------------------------------------------------

def boot_append(rounds: int, seconds: float) -> tuple[str, ...]:
    return (f"mnh.stress_rounds={rounds}", f"mnh.stress_seconds={seconds:g}")


def boot_timeouts(rounds: int, seconds: float, scenarios: int,
                  boot: float) -> tuple[Timeouts, float]:
    """(host timeouts, guest per-scenario timeout) for a boot of ``rounds`` rounds."""
    per_scenario = rounds * (seconds + ROUND_OVERHEAD) + 60.0
    return Timeouts(boot=boot, scenario=per_scenario + 60.0,
                    run=boot + scenarios * (per_scenario + 60.0)), per_scenario


def rounds_from_log(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            d = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if d.get("kind") == "round":
            out.append(d)
    return out


def classify(result: ScenarioResult, logged: list[dict[str, Any]], asked: int,
             boot: int) -> tuple[list[RoundResult], dict[str, str]]:
    """The rounds of one scenario in one boot, and the excerpt of each new fingerprint.

    A splat fails the round that was running (the one after the last logged) or, when
    every round finished, the last one; a timeout fails the round that was running; an
    infrastructure error with nothing logged yields no rounds at all."""
    rounds: list[RoundResult] = []
    excerpts: dict[str, str] = {}
    for d in logged:
        problems = [str(p) for p in d.get("problems", [])]
        fp = "" if d.get("ok") else triage.failure_fingerprint(
            result.name, problems[0] if problems else "round failed")
        rounds.append(RoundResult(result.name, boot, int(d.get("n", 0)), bool(d.get("ok")),
                                  int(d.get("ops", 0)), float(d.get("seconds", 0.0)), fp,
                                  problems))
    bad_fp = ""
    if result.outcome is Outcome.CRASH and result.splats:
        s = result.splats[0]
        bad_fp = triage.splat_fingerprint(s["kind"], s["title"], s["excerpt"])
        excerpts[bad_fp] = s["excerpt"]
    elif result.outcome is Outcome.TIMEOUT:
        bad_fp = f"timeout: {result.name}: {triage.normalize(result.message)[:120]}"
    if bad_fp:
        if len(rounds) < asked:
            rounds.append(RoundResult(result.name, boot, len(rounds) + 1, False,
                                      fingerprint=bad_fp, problems=[result.message]))
        elif rounds:
            last = rounds[-1]
            last.ok, last.fingerprint = False, bad_fp
            last.problems = [result.message, *last.problems]
    return rounds, excerpts


def summarize(rounds: list[RoundResult], failures: dict[str, Failure]) -> dict[str, Any]:
    per: dict[str, Any] = {}
    for name in sorted({r.scenario for r in rounds}):
        mine = [r for r in rounds if r.scenario == name]
        bad = sum(not r.ok for r in mine)
        lo, hi = triage.wilson(bad, len(mine))
        secs = sum(r.seconds for r in mine)
        per[name] = {"runs": len(mine), "failures": bad, "rate": bad / len(mine),
                     "ci95": [round(lo, 4), round(hi, 4)],
                     "text": triage.rate_text(bad, len(mine)),
                     "ops": sum(r.ops for r in mine),
                     "ops_per_s": round(sum(r.ops for r in mine) / secs, 1) if secs else None}
    fps = {}
    for fp, f in failures.items():
        n = sum(1 for r in rounds if r.scenario == f.scenario)
        lo, hi = triage.wilson(f.count, n)
        fps[triage.short_id(fp)] = {
            "fingerprint": fp, "scenario": f.scenario, "count": f.count, "runs": n,
            "rate": f.count / n if n else 0.0, "ci95": [round(lo, 4), round(hi, 4)],
            "text": triage.rate_text(f.count, n), "first_run": f.first_run,
            "reproducer": f.reproducer}
    return {"scenarios": per, "fingerprints": fps}


def report_text(summary: dict[str, Any]) -> str:
    lines = [f"{'scenario':<16} {'rate of failing runs':<44} {'ops/s':>8}"]
    for name, s in summary["scenarios"].items():
        lines.append(f"{name:<16} {s['text']:<44} {s['ops_per_s'] or 0:>8}")
    if summary["fingerprints"]:
        lines += ["", "distinct failures:"]
        for fid, f in summary["fingerprints"].items():
            lines += [f"  [{fid}] {f['fingerprint']}", f"      {f['text']}",
                      f"      first seen: {f['first_run']}",
                      f"      reproduce:  {f['reproducer']}"]
    else:
        lines += ["", "no failure found"]
    return "\n".join(lines)


def reproducer(kernel: str, scenario: str, opts: ReproOptions) -> str:
    words = ["harness", "repro", "--kernel", kernel, "--scenario", scenario,
             "--cpus", str(opts.cpus), "--seconds", f"{opts.seconds:g}", "--runs",
             str(max(opts.runs, 20)), "--until-fail"]
    if opts.fresh_boot:
        words.append("--fresh-boot")
    for arg in opts.append:
        words += ["--append", arg]
    return shlex.join(words)


# --- running -----------------------------------------------------------------------------

def _kernel(opts: ReproOptions) -> str:
    if opts.kernel is not None:
        return opts.kernel
    configs = kconfig.DEFAULT_FRAGMENTS + (("debug",) if opts.debug else ())
    return str(build(BuildRequest(series=DEFAULT_SERIES, configs=configs)).directory)


@dataclass
class ReproResult:
    rounds: list[RoundResult]
    failures: dict[str, Failure]
    summary: dict[str, Any]
    results: Path
    boots: int

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0


def repro(opts: ReproOptions) -> ReproResult:
    names = list(opts.scenarios) or stress_names()
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ReproError(f"Unknown scenario(s) {', '.join(unknown)}; `harness run "
                         "--list-scenarios` lists them (the stress ones are marked).")
    if opts.runs < 1 or opts.cpus < 1 or opts.seconds <= 0:
        raise ReproError("--runs, --cpus and --seconds must be positive.")
    kernel_spec = _kernel(opts)
    kernel = resolve.kernel(kernel_spec)
    results = (opts.results or paths.cache_dir("repro") / time.strftime("%Y%m%d-%H%M%S"))
    results = results.resolve()
    results.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    rounds: list[RoundResult] = []
    failures: dict[str, Failure] = {}
    srctree, vmlinux = _symbol_sources(kernel)

    def done(name: str) -> int:
        return sum(1 for r in rounds if r.scenario == name)

    interrupted: KeyboardInterrupt | None = None
    try:
        boots = _rounds(opts, names, kernel_spec, results, rounds, failures, started,
                        srctree, vmlinux, done)
    except KeyboardInterrupt as exc:   # SIGINT, SIGTERM, SIGHUP: report what was run
        interrupted = exc
        boots = len(list(results.glob("boot-*")))
    summary = summarize(rounds, failures)
    summary.update(kernel=kernel_spec, cpus=opts.cpus, seconds_per_round=opts.seconds,
                   fresh_boot=opts.fresh_boot, boots=boots,
                   wall_s=round(time.monotonic() - started, 1),
                   interrupted=signal_name(interrupted) if interrupted else "")
    with signals.deferred():
        (results / "repro.json").write_text(json.dumps(summary, indent=2, sort_keys=True)
                                            + "\n")
        (results / "repro.txt").write_text(report_text(summary) + "\n")
    if interrupted is not None:
        raise interrupted
    return ReproResult(rounds, failures, summary, results, boots)


def _rounds(opts: ReproOptions, names: list[str], kernel_spec: str, results: Path,
            rounds: list[RoundResult], failures: dict[str, Failure], started: float,
            srctree: Path | None, vmlinux: Path | None,
            done: Callable[[str], int]) -> int:
    """Boot after boot until every scenario has its rounds (or the budget is spent);
    ``rounds`` and ``failures`` grow as results come in. Returns the boots made."""
    boots = infra = 0
    while True:
        left = {n: opts.runs - done(n) for n in names if done(n) < opts.runs}
        if not left:
            break
        if opts.until_fail and failures:
            break
        if opts.duration is not None and time.monotonic() - started > opts.duration:
            break
        per_boot = 1 if opts.fresh_boot else min(max(left.values()), MAX_ROUNDS_PER_BOOT)
        if opts.duration is not None and not opts.fresh_boot:
            remaining = opts.duration - (time.monotonic() - started)
            per_boot = max(1, min(per_boot, int(remaining // (opts.seconds * len(left)) or 1)))
        boots += 1
        timeouts, guest_timeout = boot_timeouts(per_boot, opts.seconds, len(left),
                                                opts.boot_timeout)
        where = results / f"boot-{boots:03d}"
        print(f"repro: boot {boots}: {per_boot} round(s) of {', '.join(left)} on "
              f"{opts.cpus} vCPU(s)", file=sys.stderr, flush=True)
        try:
            result = run(RunOptions(kernel=kernel_spec, backend="watch-queue",
                                    scenarios=tuple(left), results=where, cpus=opts.cpus,
                                    memory=opts.memory, timeouts=timeouts,
                                    guest_timeout=guest_timeout,
                                    append=(*boot_append(per_boot, opts.seconds),
                                            *opts.append)))
        except HarnessError as exc:
            log.warning("boot %d: %s", boots, exc)
            result = None
        got = 0
        for sr in result.scenarios if result is not None else []:
            new, excerpts = classify(sr, rounds_from_log(result.log_path(sr.name)) if result
                                     else [], per_boot, boots)
            got += len(new)
            for r in new:
                if r.ok:
                    continue
                f = failures.get(r.fingerprint)
                if f is None:
                    f = failures[r.fingerprint] = _new_failure(
                        r, result, excerpts.get(r.fingerprint, ""), kernel_spec, opts,
                        results, srctree, vmlinux)
                f.count += 1
            rounds += new
        if got == 0:
            infra += 1
            if infra >= MAX_INFRA_ERRORS:
                raise ReproError(
                    f"{infra} boots in a row produced no round at all (see {where}); the guest "
                    "does not start or the scenarios cannot run. Try `harness run --kernel "
                    f"{kernel_spec} --backend watch-queue --scenario basic` first.",
                    artifacts=results)
        else:
            infra = 0
    return boots


def _symbol_sources(kernel: Kernel) -> tuple[Path | None, Path | None]:
    meta = BuildMetadata.load(kernel.metadata)
    return (meta.srctree if meta is not None else None), kernel.vmlinux


def _new_failure(r: RoundResult, result: RunResult | None, excerpt: str, kernel: str,
                 opts: ReproOptions, results: Path, srctree: Path | None,
                 vmlinux: Path | None) -> Failure:
    f = Failure(r.fingerprint, r.scenario,
                first_run=str(result.results_dir) if result is not None else "",
                excerpt=excerpt or "\n".join(r.problems),
                reproducer=reproducer(kernel, r.scenario, opts))
    d = results / "failures" / triage.short_id(r.fingerprint)
    d.mkdir(parents=True, exist_ok=True)
    if excerpt:
        f.symbolized = triage.symbolize(excerpt, srctree, vmlinux)
    (d / "fingerprint.txt").write_text(f.fingerprint + "\n")
    (d / "excerpt.txt").write_text(f.excerpt + "\n")
    (d / "reproduce.sh").write_text(f"#!/bin/sh\n{f.reproducer}\n")
    if f.symbolized:
        (d / "symbolized.txt").write_text(f.symbolized)
    if result is not None:
        (d / "run").symlink_to(result.results_dir)
    return f


# --- command line ---------------------------------------------------------------------------
