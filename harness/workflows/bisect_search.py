"""Bisecting, the pure part: step verdicts, ``git bisect run`` exit codes, the search,
and the step log it resumes from.

A *candidate* is one kernel to try: the first k patches of a series, or one commit of
a tree.  Candidates are in order, oldest first; the first is the known-good end and the
last the known-bad end.  A *step* tests one candidate ``runs`` times and records the
outcome of each run as ``pass``, ``fail`` or ``skip`` (a build failure, or an
infrastructure error such as a lost VM: never counted against the kernel).

The step log is JSON lines (``bisect.jsonl``): a header with the parameters, then one
line per step.  Re-running the same bisect with the same results directory reads it back
and tests only what is missing, so an interrupted bisect resumes where it stopped.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import BisectError

# What ``git bisect run`` understands: 0 good, 1..124 and 126..127 bad, 125 skip; any
# code above 127 aborts the whole bisect (virtme-ng exits 255 on a guest panic).
GIT_GOOD, GIT_BAD, GIT_SKIP = 0, 1, 125




class Verdict(enum.StrEnum):
    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"


def git_code(verdict: Verdict) -> int:
    return {Verdict.GOOD: GIT_GOOD, Verdict.BAD: GIT_BAD, Verdict.SKIP: GIT_SKIP}[verdict]


def clamp_exit(code: int | None) -> int:
    """Any process status as something ``git bisect run`` accepts: a signal or a status
    above 127 (vng's 255 on panic) is a failure of the kernel under test (1), never an
    abort of the bisect."""
    if code is None or code < 0 or code > 127:
        return GIT_BAD
    return code


def run_outcome(outcomes: Sequence[str]) -> str:
    """One boot's scenario outcomes (harness.results.verdict.Outcome values) -> pass/fail/skip.

    fail, crash and timeout are the kernel's fault; error (lost VM, runner never
    started) and skip (a feature missing) test nothing, so the run is skipped."""
    got = set(outcomes)
    if got & {"fail", "crash", "timeout"}:
        return "fail"
    if not got or got - {"pass"}:
        return "skip"
    return "pass"


def decide(runs: Sequence[str], threshold: int) -> Verdict:
    """Bad when failures reach ``threshold``; good when some run passed and failures
    stayed below it; skip when no run tested anything."""
    fails = sum(r == "fail" for r in runs)
    if fails >= threshold:
        return Verdict.BAD
    if any(r == "pass" for r in runs):
        return Verdict.GOOD
    return Verdict.SKIP


@dataclass
class Step:
    """One tested candidate, as the step log records it."""

    index: int                  # position in the candidate list
    label: str                  # "k=5 (0005-foo.patch)" or a commit's short id and subject
    rev: str                    # the commit id, or the number of patches
    verdict: Verdict
    runs: list[str] = field(default_factory=list)
    build_s: float = 0.0
    test_s: float = 0.0
    image_sha256: str = ""
    same_image_as: str = ""     # the rev whose identical image was tested instead
    artifact: str = ""
    logs: list[str] = field(default_factory=list)
    message: str = ""
    phase: str = "bisect"       # "endpoint", "bisect", "confirm"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = str(self.verdict)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Step:
        return cls(**{**d, "verdict": Verdict(d["verdict"])})

    def counts(self) -> str:
        return " ".join(f"{k}={self.runs.count(k)}" for k in ("pass", "fail", "skip")
                        if self.runs.count(k))


class StepLog:
    """``bisect.jsonl``: the header, then one line per step, flushed as they come."""

    def __init__(self, path: Path, params: dict[str, Any]) -> None:
        self.path = path
        self.params = params
        self.steps: list[Step] = []
        if path.exists():
            lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
            if lines and lines[0].get("header") != params:
                raise BisectError(
                    f"{path} belongs to another bisect ({lines[0].get('header')}); give a new "
                    "--results directory, or repeat that bisect's own arguments to resume it.")
            self.steps = [Step.from_json(x["step"]) for x in lines[1:] if "step" in x]
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"header": params}, sort_keys=True) + "\n")

    def add(self, step: Step) -> None:
        self.steps.append(step)
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step.to_json()}, sort_keys=True) + "\n")

    def find(self, rev: str, phase: str) -> Step | None:
        return next((s for s in self.steps if s.rev == rev and s.phase == phase), None)


@dataclass
class SearchResult:
    """How a bisect ended."""

    culprit: int | None               # index of the first bad candidate
    parent: int | None                # index of the last good one before it
    ambiguous: list[int] = field(default_factory=list)  # skipped candidates in between


Tester = Callable[[int, str], Step]   # (candidate index, phase) -> the step's result


def search(n: int, test: Tester) -> SearchResult:
    """Binary search over candidates 0..n-1, 0 known good and n-1 known bad (the caller
    has checked both).  A skipped candidate is stepped around, nearest to the middle
    first; if only skipped candidates separate the last good from the first bad, the
    culprit is one of them and the outcome says which."""
    lo, hi = 0, n - 1
    skipped: set[int] = set()
    while hi - lo > 1:
        inside = [i for i in range(lo + 1, hi) if i not in skipped]
        if not inside:
            return SearchResult(culprit=hi, parent=lo,
                                ambiguous=sorted(skipped & set(range(lo, hi))))
        mid = (lo + hi) // 2
        pick = min(inside, key=lambda i: (abs(i - mid), i))
        step = test(pick, "bisect")
        if step.verdict is Verdict.SKIP:
            skipped.add(pick)
        elif step.verdict is Verdict.BAD:
            hi = pick
        else:
            lo = pick
    return SearchResult(culprit=hi, parent=lo)


# --- the report ----------------------------------------------------------------------

def report_lines(steps: Sequence[Step], summary: str) -> list[str]:
    """The human-readable report: one line per step, then the conclusion."""
    out = [f"{'phase':<9} {'candidate':<44} {'verdict':<7} {'runs':<20} {'build':>7} "
           f"{'test':>7}  logs"]
    for s in steps:
        label = s.label if len(s.label) <= 44 else s.label[:41] + "..."
        extra = f" (image identical to {s.same_image_as})" if s.same_image_as else ""
        logs = ", ".join(s.logs) or s.message
        out.append(f"{s.phase:<9} {label:<44} {s.verdict!s:<7} {s.counts():<20} "
                   f"{s.build_s:>6.0f}s {s.test_s:>6.0f}s  {logs}{extra}")
    out.append("")
    out.append(summary)
    return out
