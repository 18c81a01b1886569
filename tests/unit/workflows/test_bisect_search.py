"""harness.workflows.bisect_search: exit codes for git bisect run, step verdicts,
the search, the step log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.workflows.bisect_search import (
    GIT_BAD,
    GIT_GOOD,
    GIT_SKIP,
    BisectError,
    Step,
    StepLog,
    Verdict,
    clamp_exit,
    decide,
    git_code,
    report_lines,
    run_outcome,
    search,
)


@pytest.mark.parametrize(("code", "mapped"), [
    (0, 0), (1, 1), (125, 125), (127, 127), (255, GIT_BAD), (128, GIT_BAD), (-9, GIT_BAD),
    (None, GIT_BAD)])
def test_clamp_exit_never_above_127(code: int | None, mapped: int) -> None:
    assert clamp_exit(code) == mapped


def test_git_codes() -> None:
    assert [git_code(v) for v in Verdict] == [GIT_GOOD, GIT_BAD, GIT_SKIP] == [0, 1, 125]


@pytest.mark.parametrize(("outcomes", "run"), [
    (["pass", "pass"], "pass"),
    (["pass", "fail"], "fail"),
    (["crash"], "fail"),          # a splat is the kernel's fault
    (["timeout", "pass"], "fail"),
    (["error"], "skip"),          # a lost VM tests nothing
    (["pass", "error"], "skip"),
    (["skip"], "skip"),           # a missing feature tests nothing either
    ([], "skip"),
])
def test_run_outcome(outcomes: list[str], run: str) -> None:
    assert run_outcome(outcomes) == run


@pytest.mark.parametrize(("runs", "threshold", "verdict"), [
    (["pass"], 1, Verdict.GOOD),
    (["fail"], 1, Verdict.BAD),
    (["pass", "fail", "pass"], 1, Verdict.BAD),
    (["pass", "fail", "pass"], 2, Verdict.GOOD),   # one flaky failure below the threshold
    (["fail", "skip", "fail"], 2, Verdict.BAD),
    (["skip", "skip"], 1, Verdict.SKIP),
])
def test_decide(runs: list[str], threshold: int, verdict: Verdict) -> None:
    assert decide(runs, threshold) is verdict


def _tester(first_bad: int, skips: frozenset[int] = frozenset()):  # type: ignore[no-untyped-def]
    tested: list[int] = []

    def test(i: int, phase: str) -> Step:
        tested.append(i)
        v = Verdict.SKIP if i in skips else Verdict.BAD if i >= first_bad else Verdict.GOOD
        return Step(i, f"c{i}", str(i), v)
    return test, tested


@pytest.mark.parametrize("first_bad", range(1, 9))
def test_search_finds_the_first_bad(first_bad: int) -> None:
    test, tested = _tester(first_bad)
    out = search(9, test)
    assert (out.culprit, out.parent, out.ambiguous) == (first_bad, first_bad - 1, [])
    assert len(tested) <= 3, "log2(9) steps at most"


def test_search_steps_around_skips() -> None:
    test, tested = _tester(5, frozenset({4}))
    out = search(9, test)
    assert tested == [4, 3, 5], "the skipped middle is replaced by its nearest neighbour"
    assert (out.culprit, out.parent, out.ambiguous) == (5, 3, [4])


def test_search_all_skipped_is_ambiguous() -> None:
    test, _ = _tester(3, frozenset({1, 2, 3}))
    out = search(5, test)
    assert out.parent == 0 and out.culprit == 4 and out.ambiguous == [1, 2, 3]


def test_step_log_round_trip_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "bisect.jsonl"
    params = {"series": "s", "good": "4", "bad": "7"}
    log = StepLog(path, params)
    step = Step(1, "k=5 0005.patch", "5", Verdict.GOOD, runs=["pass"], build_s=61.2,
                image_sha256="ab", logs=["/r/run-1"], phase="bisect")
    log.add(step)
    again = StepLog(path, params)
    assert again.steps == [step] and again.find("5", "bisect") == step
    assert again.find("5", "confirm") is None
    first = json.loads(path.read_text().splitlines()[0])
    assert first == {"header": params}
    with pytest.raises(BisectError, match="belongs to another bisect"):
        StepLog(path, {**params, "bad": "6"})


def test_report_lists_every_step() -> None:
    steps = [Step(0, "k=4 0004-fix.patch", "4", Verdict.GOOD, runs=["pass", "pass"],
                  build_s=30, test_s=80, logs=["r/a"], phase="endpoint"),
             Step(1, "k=5 0005-comment.patch", "5", Verdict.GOOD, runs=["pass", "pass"],
                  same_image_as="4", logs=["r/a"]),
             Step(2, "k=6 0006-drop.patch", "6", Verdict.BAD, runs=["fail"], build_s=70,
                  test_s=40, logs=["r/b"])]
    lines = report_lines(steps, "Culprit: k=6")
    assert lines[0].split() == ["phase", "candidate", "verdict", "runs", "build", "test", "logs"]
    assert "endpoint  k=4 0004-fix.patch" in lines[1] and "pass=2" in lines[1]
    assert "(image identical to 4)" in lines[2]
    assert "bad" in lines[3] and "fail=1" in lines[3] and "r/b" in lines[3]
    assert lines[-1] == "Culprit: k=6"
