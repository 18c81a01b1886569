"""``harness bisect``: find the patch of a series, or the commit of a tree, that broke a
scenario; each step builds incrementally, boots, runs the scenarios ``--runs`` times.

Two modes:

- ``--series NAME --good K --bad K``: the first k patches of the series on its base
  (``BuildRequest.upto``), all in the series' one work tree and object directory;
- ``--tree PATH --good REV --bad REV``: the first-parent commits of a clean kernel git
  tree, checked out in place and built in the tree's object directory.

``--step`` tests the tree's HEAD once and exits with a ``git bisect run`` code (0 good,
1 bad, 125 skip), for histories you would rather hand to ``git bisect`` itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness import paths, signals
from harness.build import kconfig, patch, source
from harness.build.artifact import Artifact
from harness.build.pipeline import BuildRequest, build
from harness.build.proc import git
from harness.errors import (
    BisectError,
    BuildError,
    ConfigError,
    HarnessError,
    PatchError,
    signal_name,
)
from harness.vm.supervise import Timeouts
from harness.workflows.bisect_search import (
    SearchResult,
    Step,
    StepLog,
    Verdict,
    decide,
    git_code,
    report_lines,
    run_outcome,
    search,
)
from harness.workflows.run import RunOptions, run

log = logging.getLogger("harness")

PYTEST_TIMEOUT = 3600.0


@dataclass(frozen=True)
class BisectOptions:
    """What ``harness bisect`` was asked for (the Namespace stops in register/_main)."""

    series: str | None = None
    tree: Path | None = None
    base: Path | None = None            # series mode: a git tree as the base, not Debian's
    good: str | None = None
    bad: str | None = None
    scenarios: tuple[str, ...] = ("move",)
    pytest_args: tuple[str, ...] = ()   # a pytest selection instead of scenarios
    backend: str = "watch-queue"
    runs: int = 1
    threshold: int = 1
    confirm: int = 2
    results: Path | None = None
    configs: tuple[str, ...] = kconfig.DEFAULT_FRAGMENTS
    cpus: int | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    step_only: bool = False
    rebuild: bool = False               # build every step even when its artifact is cached

    def params(self) -> dict[str, Any]:
        """What identifies the bisect in its step log (resuming needs the same)."""
        return {"series": self.series, "tree": str(self.tree) if self.tree else None,
                "base": str(self.base) if self.base else None,
                "good": self.good, "bad": self.bad, "scenarios": list(self.scenarios),
                "pytest": list(self.pytest_args), "backend": self.backend,
                "runs": self.runs, "threshold": self.threshold, "configs": list(self.configs),
                "cpus": self.cpus}


@dataclass(frozen=True)
class Candidate:
    label: str
    rev: str                                   # commit id, or k for a series
    request: BuildRequest
    checkout: str | None = None                # commit to check out first (tree mode)


# --- candidates ----------------------------------------------------------------------

def _rev(tree: Path, rev: str, what: str) -> str:
    proc = git(tree, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise BisectError(f"The {what} revision {rev!r} is not a commit of {tree}; check the "
                          "name (`git -C TREE log --oneline`) or fetch it first.")
    return proc.stdout.strip()


def check_tree(tree: Path) -> Path:
    """A clean kernel git checkout, or a clear error."""
    tree = tree.resolve()
    if not tree.is_dir():
        raise BisectError(f"--tree {tree} does not exist; give the top of a kernel git tree.")
    source.check_kernel_tree(tree)
    top = git(tree, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0 or Path(top.stdout.strip()) != tree:
        raise BisectError(f"{tree} is not the top of a git checkout; bisecting needs its "
                          "history (`git clone` the tree, or drop --tree and use --series).")
    status = git(tree, "status", "--porcelain", "--untracked-files=no").stdout.splitlines()
    if status:
        raise BisectError(f"The tree {tree} has uncommitted changes ({'; '.join(status[:3])});"
                          " bisect checks out other commits there, so commit or stash them "
                          "first (`git stash`).")
    return tree


def tree_candidates(opts: BisectOptions) -> list[Candidate]:
    assert opts.tree is not None
    tree = check_tree(opts.tree)
    if not opts.good or not opts.bad:
        raise BisectError("--tree needs --good REV and --bad REV.")
    good, bad = _rev(tree, opts.good, "good"), _rev(tree, opts.bad, "bad")
    if git(tree, "merge-base", "--is-ancestor", good, bad, check=False).returncode != 0:
        raise BisectError(f"The good revision {opts.good} is not an ancestor of the bad "
                          f"revision {opts.bad}; swap them, or pick a good one on bad's "
                          "history.")
    revs = [good, *git(tree, "rev-list", "--reverse", "--first-parent",
                       f"{good}..{bad}").stdout.split()]
    if len(revs) < 2:
        raise BisectError(f"{opts.good} and {opts.bad} are the same commit: nothing to bisect.")
    out = []
    for sha in revs:
        subject = git(tree, "log", "-1", "--format=%s", sha).stdout.strip()
        out.append(Candidate(label=f"{sha[:12]} {subject}", rev=sha, checkout=sha,
                             request=BuildRequest(tree=tree, configs=opts.configs)))
    return out


def series_candidates(opts: BisectOptions) -> list[Candidate]:
    assert opts.series is not None
    series = patch.load(patch.resolve(opts.series))
    n = len(series.patches)

    def count(value: str | None, default: int, what: str) -> int:
        if value is None:
            return default
        try:
            k = int(value)
        except ValueError:
            raise BisectError(f"--{what} {value!r}: with --series it is a number of patches "
                              f"(0..{n}).") from None
        if not 0 <= k <= n:
            raise BisectError(f"--{what} {k} is outside the series {series.name} "
                              f"({n} patches): choose 0..{n}.")
        return k

    good, bad = count(opts.good, 0, "good"), count(opts.bad, n, "bad")
    if good >= bad:
        raise BisectError(f"--good {good} must be fewer patches than --bad {bad}.")
    out = []
    for k in range(good, bad + 1):
        name = series.patches[k - 1].path.name if k else "the base alone"
        out.append(Candidate(label=f"k={k} {name}", rev=str(k),
                             request=BuildRequest(series=opts.series, upto=k, tree=opts.base,
                                                  configs=opts.configs)))
    return out


# --- one step --------------------------------------------------------------------------

def image_hash(art: Artifact) -> str:
    return hashlib.sha256(art.bzimage.read_bytes()).hexdigest()


Runner = Callable[[Artifact, Path], str]   # (kernel, run directory) -> pass/fail/skip


class Stepper:
    """Builds and tests candidates, recording each step in the log.  ``runner`` boots
    the kernel and runs the scenarios (or the pytest selection); the unit tests give
    their own, which reads the fake kernel tree's image instead of booting it."""

    def __init__(self, opts: BisectOptions, candidates: list[Candidate], steplog: StepLog,
                 results: Path, runner: Runner | None = None) -> None:
        self.opts = opts
        self.candidates = candidates
        self.log = steplog
        self.results = results
        self.runner = runner or self._one_run

    def _build(self, c: Candidate, phase: str) -> Artifact:
        if c.checkout is not None and self.opts.tree is not None:
            proc = git(self.opts.tree, "checkout", "-q", "--detach", c.checkout, check=False)
            if proc.returncode != 0:
                raise BisectError(f"Could not check out {c.label} in {self.opts.tree}: "
                                  f"{proc.stderr.strip()}. Clean the tree (`git status`) and "
                                  "run the same bisect again: it resumes from its log.")
        force = self.opts.rebuild and phase != "confirm"
        return build(replace(c.request, force=force))

    def _one_run(self, art: Artifact, where: Path) -> str:
        if self.opts.pytest_args:
            env = {**os.environ, "MNH_PATCHED_KERNEL": str(art.directory),
                   "MNH_RESULTS": str(where)}
            cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                   *self.opts.pytest_args]
            where.mkdir(parents=True, exist_ok=True)
            with open(where / "pytest.log", "wb") as out:
                try:
                    rc = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, timeout=PYTEST_TIMEOUT,
                                        check=False).returncode
                except subprocess.TimeoutExpired:
                    return "skip"
            return {0: "pass", 1: "fail"}.get(rc, "skip")
        try:
            result = run(RunOptions(kernel=str(art.directory), backend=self.opts.backend,
                                    scenarios=self.opts.scenarios, results=where,
                                    cpus=self.opts.cpus, timeouts=self.opts.timeouts))
        except HarnessError as exc:
            log.warning("run skipped (infrastructure): %s", exc)
            return "skip"
        return run_outcome([str(r.outcome) for r in result.scenarios])

    def test(self, index: int, phase: str, runs: int | None = None) -> Step:
        c = self.candidates[index]
        if (done := self.log.find(c.rev, phase)) is not None:
            log.info("%s: %s (from the step log)", c.label, done.verdict)
            return done
        runs = runs or self.opts.runs
        print(f"bisect: {phase} {c.label} ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            art = self._build(c, phase)
        except (BuildError, PatchError, ConfigError) as exc:
            step = Step(index, c.label, c.rev, Verdict.SKIP, build_s=time.monotonic() - t0,
                        message=f"{type(exc).__name__}: "
                                + " ".join(x.strip() for x in str(exc).splitlines()[:3]),
                        phase=phase)
            self.log.add(step)
            return step
        build_s = round(time.monotonic() - t0, 1)
        digest = image_hash(art)
        step = Step(index, c.label, c.rev, Verdict.SKIP, build_s=build_s, image_sha256=digest,
                    artifact=str(art.directory), phase=phase)
        same = next((s for s in self.log.steps if s.image_sha256 == digest
                     and s.phase != "confirm" and s.verdict is not Verdict.SKIP), None)
        if same is not None and phase != "confirm":
            step.runs, step.verdict, step.same_image_as = list(same.runs), same.verdict, same.rev
            step.logs = list(same.logs)
            self.log.add(step)
            return step
        t1 = time.monotonic()
        for i in range(runs):
            where = self.results / f"{phase}-{index:03d}-{c.rev[:12]}" / f"run-{i + 1}"
            step.runs.append(self.runner(art, where))
            step.logs.append(str(where))
            fails = step.runs.count("fail")
            if phase != "confirm" and (fails >= self.opts.threshold or (
                    "pass" in step.runs and fails + runs - i - 1 < self.opts.threshold)):
                break  # decided either way
        step.test_s = round(time.monotonic() - t1, 1)
        step.verdict = decide(step.runs, self.opts.threshold)
        self.log.add(step)
        return step


# --- the whole bisect --------------------------------------------------------------------

@dataclass
class BisectResult:
    outcome: SearchResult | None
    confirmed: bool
    summary: str
    steps: list[Step]
    results: Path

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome is not None and self.confirmed else 3


def _endpoint_error(step: Step, which: str, other: Step | None = None) -> BisectError:
    if step.verdict is Verdict.SKIP:
        if other is not None and other.verdict is Verdict.SKIP:
            what = "both ends of the range fail to build or boot, so no commit can be tested"
        else:
            what = f"the {which} end {step.label} could not be tested"
        reason = step.message or "every run was an infrastructure error"
        return BisectError(f"Cannot bisect: {what} ({reason}). Fix the build (its log is "
                           "named above) or pick other endpoints.")
    if which == "good":
        return BisectError(f"The good end {step.label} fails ({step.counts()}; logs: "
                           f"{', '.join(step.logs)}): the regression is older than the range. "
                           "Pick an older --good.")
    return BisectError(f"The bad end {step.label} passes ({step.counts()}; logs: "
                       f"{', '.join(step.logs)}): nothing to bisect, or the failure is flaky; "
                       "raise --runs or lower --threshold.")


def bisect(opts: BisectOptions, runner: Runner | None = None) -> BisectResult:
    if (opts.series is None) == (opts.tree is None) and not opts.step_only:
        raise BisectError("Give exactly one of --series NAME (bisect the patches of a series) "
                          "or --tree PATH --good REV --bad REV (bisect commits).")
    if opts.runs < 1 or not 1 <= opts.threshold <= opts.runs:
        raise BisectError(f"--threshold {opts.threshold} must be between 1 and --runs "
                          f"{opts.runs}.")
    candidates = tree_candidates(opts) if opts.tree is not None else series_candidates(opts)
    results = (opts.results or paths.cache_dir("bisect") / time.strftime("%Y%m%d-%H%M%S"))
    results = results.resolve()
    steplog = StepLog(results / "bisect.jsonl", opts.params())
    stepper = Stepper(opts, candidates, steplog, results, runner)
    original = _head(opts.tree) if opts.tree is not None else None
    try:
        good = stepper.test(0, "endpoint")
        if good.verdict is Verdict.SKIP:
            raise _endpoint_error(good, "good", stepper.test(len(candidates) - 1, "endpoint"))
        if good.verdict is not Verdict.GOOD:
            raise _endpoint_error(good, "good")
        bad = stepper.test(len(candidates) - 1, "endpoint")
        if bad.verdict is not Verdict.BAD:
            raise _endpoint_error(bad, "bad")
        outcome = search(len(candidates), lambda i, phase: stepper.test(i, phase))
        confirmed = False
        assert outcome.culprit is not None and outcome.parent is not None
        if not outcome.ambiguous and opts.confirm > 0:
            c = stepper.test(outcome.culprit, "confirm", opts.confirm)
            p = stepper.test(outcome.parent, "confirm", opts.confirm)
            confirmed = (c.runs.count("fail") == opts.confirm
                         and p.runs.count("pass") == opts.confirm)
        elif not outcome.ambiguous:
            confirmed = True
    except KeyboardInterrupt as exc:   # SIGINT, SIGTERM, SIGHUP: the steps so far stay
        with signals.deferred():
            write_report(BisectResult(None, False, f"Interrupted by {signal_name(exc)} "
                                      f"after {len(steplog.steps)} step(s); run the same "
                                      "command with the same --results to resume.",
                                      list(steplog.steps), results), opts)
        raise
    finally:
        if opts.tree is not None and original is not None:
            git(opts.tree, "checkout", "-q", original, check=False)
    culprit = candidates[outcome.culprit]
    parent = candidates[outcome.parent]
    if outcome.ambiguous:
        suspects = [candidates[i].label for i in [*outcome.ambiguous, outcome.culprit]]
        summary = (f"The first bad candidate is one of: {', '.join(suspects)} (those before "
                   f"the last could not be tested); the last good is {parent.label}.")
    else:
        state = (f"confirmed: it failed {opts.confirm}/{opts.confirm} runs and its parent "
                 f"passed {opts.confirm}/{opts.confirm}" if confirmed and opts.confirm else
                 "NOT confirmed: the culprit or its parent behaved differently when run again "
                 "(a flaky failure; raise --runs and --threshold)" if opts.confirm else
                 "not re-run (--confirm 0)")
        summary = f"Culprit: {culprit.label} ({state}). Last good: {parent.label}."
    res = BisectResult(outcome, confirmed, summary, list(steplog.steps), results)
    write_report(res, opts)
    return res


def _head(tree: Path) -> str:
    ref = git(tree, "symbolic-ref", "-q", "--short", "HEAD", check=False).stdout.strip()
    return ref or git(tree, "rev-parse", "HEAD").stdout.strip()


def write_report(res: BisectResult, opts: BisectOptions) -> None:
    lines = report_lines(res.steps, res.summary)
    (res.results / "report.txt").write_text("\n".join(lines) + "\n")
    culprit = res.outcome.culprit if res.outcome is not None else None
    (res.results / "report.json").write_text(json.dumps({
        "params": opts.params(), "summary": res.summary, "confirmed": res.confirmed,
        "culprit_index": culprit,
        "steps": [s.to_json() for s in res.steps]}, indent=2, sort_keys=True) + "\n")


def step_once(opts: BisectOptions, runner: Runner | None = None) -> int:
    """``--step``: the tree's HEAD, tested ``--runs`` times; a ``git bisect run`` code."""
    assert opts.tree is not None
    tree = check_tree(opts.tree)
    head = git(tree, "rev-parse", "HEAD").stdout.strip()
    subject = git(tree, "log", "-1", "--format=%s", head).stdout.strip()
    cand = Candidate(label=f"{head[:12]} {subject}", rev=head,
                     request=BuildRequest(tree=tree, configs=opts.configs))
    results = (opts.results or paths.cache_dir("bisect", "steps")).resolve()
    steplog = StepLog(results / f"step-{head[:12]}.jsonl", {**opts.params(), "head": head})
    step = Stepper(opts, [cand], steplog, results, runner).test(0, "step")
    print(report_lines([step], f"{cand.label}: {step.verdict}")[1])
    return git_code(step.verdict)


# --- command line -------------------------------------------------------------------------
