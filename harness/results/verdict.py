"""From what the guest wrote and what the console shows to one outcome per scenario.

Outcomes are distinct on purpose: ``fail`` is the kernel misbehaving as observed by
a scenario, ``crash`` a kernel splat during the scenario, ``timeout`` a scenario or
guest that stopped answering, ``error`` an infrastructure problem (never counted as a
kernel failure), ``skip`` a missing feature.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.errors import LostVMError
from harness.results import scan
from harness.vm.supervise import BootResult, Timeouts


class Outcome(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"
    ERROR = "error"
    CRASH = "crash"
    TIMEOUT = "timeout"


BLAME: dict[Outcome, str] = {
    Outcome.PASS: "", Outcome.SKIP: "", Outcome.FAIL: "kernel", Outcome.CRASH: "kernel",
    Outcome.ERROR: "harness", Outcome.TIMEOUT: "unknown",
}


@dataclass
class ScenarioResult:
    name: str
    backend: str
    outcome: Outcome
    message: str = ""
    events: int = 0
    duration: float = 0.0
    log: str = ""
    splats: list[dict[str, Any]] = field(default_factory=list)

    @property
    def blame(self) -> str:
        """Whose fault a non-pass is: "kernel" (the kernel under test disagreed with the
        oracle or a checked errno, or crashed: on a series build, the series is wrong),
        "harness" (the scenario code or the guest infrastructure failed), "unknown"
        (a timeout: a hung kernel or a hung scenario), "" for pass and skip."""
        return BLAME[self.outcome]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["outcome"] = str(self.outcome)
        d["blame"] = self.blame
        return d


def _splat_json(s: scan.Splat) -> dict[str, Any]:
    return {"kind": s.kind, "title": s.title, "excerpt": s.excerpt, "console_line": s.line + 1}


def assign(names: list[str], backend: str, verdicts: dict[str, dict[str, Any]],
           console_lines: list[str], boot: BootResult, timeouts: Timeouts,
           console_path: str = "console.log") -> list[ScenarioResult]:
    """One result per requested scenario, in order."""
    splats = scan.find_splats(console_lines)
    markers = scan.find_markers(console_lines)
    windows = scan.scenario_windows(markers, len(console_lines))
    runner_line = next((m.line for m in markers if m.what == "runner start"), None)
    boot_splats = [s for s in splats if runner_line is None or s.line < runner_line]
    results: list[ScenarioResult] = []
    started = [m.scenario for m in markers if m.what == "start"]
    stopped_in = started[-1] if started else ""
    for name in names:
        v = verdicts.get(name)
        w = windows.get(name)
        r = ScenarioResult(name, backend, Outcome.ERROR)
        if v is not None:
            r.outcome = Outcome(v.get("outcome", "error"))
            r.message = str(v.get("message", ""))
            r.events = int(v.get("events", 0))
            r.duration = float(v.get("duration", 0.0))
        in_window = [s for s in splats if w is not None and w[0] <= s.line < w[1]]
        if in_window:
            r.outcome = Outcome.CRASH
            first = in_window[0]
            r.message = f"kernel {first.kind} during the scenario: {first.title}" + (
                f" (the guest's own verdict was {v['outcome']}: {v.get('message', '')})"
                if v else "")
            r.splats = [_splat_json(s) for s in in_window]
        elif v is not None:
            pass
        elif boot.interrupted:
            r.message = (f"interrupted: the run was stopped by {boot.interrupted} "
                         f"{'during' if w is not None else 'before'} this scenario, which had "
                         "no verdict yet; the guest was stopped")
        elif w is not None:
            if boot.timed_out in (f"scenario:{name}", "run"):
                r.outcome = Outcome.TIMEOUT
                limit = timeouts.scenario if boot.timed_out != "run" else timeouts.run
                r.message = (f"no verdict within {limit:.0f} s (host watchdog: {boot.timed_out}); "
                             "the guest was stopped")
            else:
                r.message = str(LostVMError(
                    f"The guest went away during scenario {name!r} without a verdict and without "
                    f"a kernel splat (vng exit status {boot.returncode}). Look at the end of "
                    f"{console_path} for what the guest printed last, then rerun the scenario."))
        elif runner_line is None:
            if boot_splats:
                r.outcome = Outcome.CRASH
                r.message = f"kernel {boot_splats[0].kind} before the runner started: " \
                            f"{boot_splats[0].title}"
                r.splats = [_splat_json(s) for s in boot_splats]
            elif boot.timed_out in ("boot", "run"):
                r.outcome = Outcome.TIMEOUT
                r.message = (f"the guest did not start the scenario runner within "
                             f"{timeouts.boot:.0f} s; see {console_path}")
            else:
                r.message = (f"the guest exited (vng status {boot.returncode}) before starting the "
                             f"scenario runner; see {console_path} and guest/runner.stderr")
        else:
            r.message = f"not run: the guest stopped during scenario {stopped_in or '?'}"
        results.append(r)
    return results
