"""harness.verdict.assign: one outcome per scenario from verdicts, console and boot result."""

from __future__ import annotations

from typing import Any

from harness.results.verdict import Outcome, ScenarioResult, assign
from harness.vm.supervise import BootResult, Timeouts

TIMEOUTS = Timeouts(boot=111, scenario=22, run=3333)
PANIC = [
    "[   18.240001] sysrq: Trigger a crash",
    "[   18.240200] Kernel panic - not syncing: sysrq triggered crash",
    "[   18.240300] Call Trace:",
    "[   18.241100] ---[ end Kernel panic - not syncing: sysrq triggered crash ]---",
]


def boot(rc: int | None = 0, timed_out: str = "") -> BootResult:
    return BootResult(returncode=rc, duration=1.0, timed_out=timed_out)


def run(names: list[str], verdicts: dict[str, dict[str, Any]], lines: list[str],
        b: BootResult) -> dict[str, ScenarioResult]:
    results = assign(names, "fanotify", verdicts, lines, b, TIMEOUTS, "out/console.log")
    assert [r.name for r in results] == names
    assert all(r.backend == "fanotify" for r in results)
    return {r.name: r for r in results}


def test_guest_verdicts_are_taken_as_they_are() -> None:
    lines = ["[ 1.0] mnh: runner start",
             "[ 1.1] mnh: scenario a start", "[ 1.2] mnh: scenario a end pass",
             "[ 1.3] mnh: scenario b start", "[ 1.4] mnh: scenario b end fail",
             "[ 1.5] mnh: scenario c start", "[ 1.6] mnh: scenario c end skip",
             "[ 1.7] mnh: runner done"]
    verdicts = {"a": {"outcome": "pass", "events": 3, "duration": 0.5},
                "b": {"outcome": "fail", "message": "missing ATTACH 0x1234"},
                "c": {"outcome": "skip", "message": "no fanotify mount events"}}
    r = run(["a", "b", "c"], verdicts, lines, boot())
    assert r["a"].outcome is Outcome.PASS
    assert (r["a"].events, r["a"].duration) == (3, 0.5)
    assert r["b"].outcome is Outcome.FAIL
    assert r["b"].message == "missing ATTACH 0x1234"
    assert r["c"].outcome is Outcome.SKIP
    assert all(not x.splats for x in r.values())


def test_splat_in_window_is_a_crash_even_if_the_guest_said_pass() -> None:
    lines = ["[ 1.0] mnh: runner start",
             "[ 1.1] mnh: scenario a start", "[ 1.2] mnh: scenario a end pass",
             "[ 1.3] mnh: scenario b start",
             "[ 1.4] ------------[ cut here ]------------",
             "[ 1.4] WARNING: CPU: 0 PID: 1 at fs/namespace.c:123 foo+0x1/0x2",
             "[ 1.4] ---[ end trace 0000000000000000 ]---",
             "[ 1.5] mnh: scenario b end pass",
             "[ 1.6] mnh: runner done"]
    verdicts = {"a": {"outcome": "pass"}, "b": {"outcome": "pass", "message": ""}}
    r = run(["a", "b"], verdicts, lines, boot())
    assert r["a"].outcome is Outcome.PASS
    assert r["b"].outcome is Outcome.CRASH
    assert "WARNING: CPU: 0 PID: 1 at fs/namespace.c:123" in r["b"].message
    assert "guest's own verdict was pass" in r["b"].message
    assert len(r["b"].splats) == 1
    assert r["b"].splats[0]["kind"] == "warning"
    assert r["b"].splats[0]["console_line"] == 5   # 1-based line of the cut-here line


def test_panic_stops_the_guest_later_scenarios_are_not_run() -> None:
    lines = ["[ 1.0] mnh: runner start",
             "[ 1.1] mnh: scenario mount start", "[ 1.2] mnh: scenario mount end pass",
             "[ 1.3] mnh: scenario selftest-panic start", *PANIC]
    r = run(["mount", "selftest-panic", "move"], {"mount": {"outcome": "pass"}}, lines,
            boot(rc=0))
    assert r["mount"].outcome is Outcome.PASS
    crash = r["selftest-panic"]
    assert crash.outcome is Outcome.CRASH
    assert crash.splats[0]["kind"] == "panic"
    assert "sysrq triggered crash" in crash.splats[0]["excerpt"]
    assert "guest's own verdict" not in crash.message
    assert r["move"].outcome is Outcome.ERROR
    assert r["move"].message.startswith("not run")
    assert "selftest-panic" in r["move"].message


def test_started_without_verdict_and_scenario_watchdog_is_a_timeout() -> None:
    lines = ["mnh: runner start", "mnh: scenario a start", "mnh: scenario a end pass",
             "mnh: scenario hang start"]
    r = run(["a", "hang", "b"], {"a": {"outcome": "pass"}}, lines,
            boot(rc=-9, timed_out="scenario:hang"))
    assert r["hang"].outcome is Outcome.TIMEOUT
    assert "22 s" in r["hang"].message
    assert "scenario:hang" in r["hang"].message
    assert r["b"].outcome is Outcome.ERROR
    assert "not run" in r["b"].message and "hang" in r["b"].message


def test_run_watchdog_is_a_timeout_with_the_run_limit() -> None:
    lines = ["mnh: runner start", "mnh: scenario hang start"]
    r = run(["hang"], {}, lines, boot(rc=-9, timed_out="run"))
    assert r["hang"].outcome is Outcome.TIMEOUT
    assert "3333 s" in r["hang"].message


def test_watchdog_of_another_scenario_is_not_this_ones_timeout() -> None:
    lines = ["mnh: runner start", "mnh: scenario a start"]
    r = run(["a"], {}, lines, boot(rc=-9, timed_out="scenario:other"))
    assert r["a"].outcome is Outcome.ERROR


def test_started_without_verdict_and_no_timeout_is_a_lost_vm_error() -> None:
    lines = ["mnh: runner start", "mnh: scenario a start", "something"]
    r = run(["a"], {}, lines, boot(rc=1))
    assert r["a"].outcome is Outcome.ERROR
    assert "went away" in r["a"].message
    assert "'a'" in r["a"].message
    assert "vng exit status 1" in r["a"].message
    assert "out/console.log" in r["a"].message


def test_runner_never_started_and_boot_splat_is_a_crash_for_all() -> None:
    lines = ["[ 0.5] Run /init as init process", *PANIC]
    r = run(["a", "b"], {}, lines, boot(rc=0))
    for name in ("a", "b"):
        assert r[name].outcome is Outcome.CRASH
        assert "before the runner started" in r[name].message
        assert "Kernel panic - not syncing: sysrq triggered crash" in r[name].message
        assert [s["kind"] for s in r[name].splats] == ["panic"]


def test_runner_never_started_and_boot_watchdog_is_a_timeout() -> None:
    r = run(["a", "b"], {}, ["[ 0.5] Run /init as init process"], boot(rc=-15, timed_out="boot"))
    assert [x.outcome for x in r.values()] == [Outcome.TIMEOUT, Outcome.TIMEOUT]
    assert "111 s" in r["a"].message


def test_runner_never_started_and_guest_exited_is_an_error() -> None:
    r = run(["a"], {}, ["[ 0.5] Run /init as init process"], boot(rc=255))
    assert r["a"].outcome is Outcome.ERROR
    assert "status 255" in r["a"].message
    assert "before starting the scenario runner" in r["a"].message


def test_splat_before_runner_start_does_not_crash_scenarios_that_ran() -> None:
    lines = ["[ 0.1] WARNING: CPU: 0 PID: 1 at drivers/foo.c:1 bar+0x1/0x2",
             "[ 0.2] ---[ end trace 0000000000000000 ]---",
             "mnh: runner start", "mnh: scenario a start", "mnh: scenario a end pass"]
    r = run(["a"], {"a": {"outcome": "pass"}}, lines, boot())
    assert r["a"].outcome is Outcome.PASS


def test_to_json_outcome_is_a_plain_string() -> None:
    r = run(["a"], {"a": {"outcome": "pass"}}, ["mnh: runner start"], boot())
    d = r["a"].to_json()
    assert d["outcome"] == "pass" and type(d["outcome"]) is str
    assert d["name"] == "a"
