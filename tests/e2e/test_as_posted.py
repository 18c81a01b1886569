"""End to end: the series as posted (its first patches, no fixes) against the fixed one.

``build@posted`` builds the first ``[posted] patches`` of the bundled series, in the
same object directory as the full series (only what the fixes touched recompiles),
and boots it with every default watch-queue scenario. The series' ``[posted]`` table
records what that run finds; this test keeps the table (and README.md's report, which
quotes it) honest: exactly those scenarios fail or crash, each blamed on the kernel,
and each of them passes on the fixed series.
"""

from __future__ import annotations

import json

import pytest
from mnh_guest.scenarios import default_names

from harness.kernel import abi
from harness.results.verdict import Outcome
from harness.testing.plugin import GuestRun
from harness.vm.supervise import Timeouts
from harness.workflows.run import RunResult

pytestmark = [pytest.mark.vm, pytest.mark.build]

POSTED = abi.posted(abi.DEFAULT_SERIES)


def test_the_posted_table_names_failures_and_crashes() -> None:
    """The loops below check each name in [posted]; an empty table would make them pass
    without checking anything."""
    assert POSTED.kernel_failures and POSTED.crashes, "series.toml [posted] lists nothing"
    unknown = set(POSTED.kernel_failures + POSTED.crashes) - set(default_names("watch-queue"))
    assert not unknown, f"[posted] names scenarios outside the default suite: {unknown}"


@pytest.fixture(scope="module")
def posted_run(guest_run: GuestRun) -> RunResult:
    # The posted series oopses in bad-input and then hangs at poweroff (the oops left
    # namespace_sem held): a short shutdown deadline keeps that to 20 s.
    return guest_run(f"build:{abi.DEFAULT_SERIES}@posted", backend="watch-queue",
                     timeouts=Timeouts(shutdown=20.0), tag="watch-queue-posted")


def test_build_is_the_posted_prefix(posted_run: RunResult) -> None:
    info = json.loads((posted_run.results_dir / "results.json").read_text())
    assert info["build"]["series"] == abi.DEFAULT_SERIES
    assert info["build"]["patches_applied"] == POSTED.patches
    assert info["build"]["upto"] == POSTED.patches


def test_posted_fails_exactly_where_the_series_table_says(posted_run: RunResult) -> None:
    assert [r.name for r in posted_run.scenarios] == default_names("watch-queue")
    got = {r.name: (str(r.outcome), r.blame, r.message[:160]) for r in posted_run.scenarios
           if r.outcome is not Outcome.PASS}
    want = {n: ("fail", "kernel") for n in POSTED.kernel_failures}
    want |= {n: ("crash", "kernel") for n in POSTED.crashes}
    assert {n: v[:2] for n, v in got.items()} == want, (
        f"results in {posted_run.results_dir}: {got}; update [posted] in series.toml "
        "and README.md's report if the port changed")


def test_posted_crash_is_the_null_deref_on_removal(posted_run: RunResult) -> None:
    assert POSTED.crashes
    for name in POSTED.crashes:
        r = posted_run.scenario(name)
        assert r.splats and "NULL pointer dereference" in r.splats[0]["title"], r.message


def test_fixes_make_every_posted_failure_pass(posted_run: RunResult,
                                             watch_queue_suite: RunResult) -> None:
    assert POSTED.kernel_failures + POSTED.crashes
    for name in POSTED.kernel_failures + POSTED.crashes:
        r = watch_queue_suite.scenario(name)
        assert r.outcome is Outcome.PASS, f"{name} on the fixed series: {r.message}"
