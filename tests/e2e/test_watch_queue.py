"""End to end on the patched kernel: the mount-notification series (watch_queue).

The kernel is built from linux-source-6.12 plus patches/mount-notify-v5 (or taken
from the build cache); one boot runs every watch-queue scenario.
"""

from __future__ import annotations

import pytest

from harness.asserts import assert_oracle_agrees
from harness.plugin import scenario_log
from harness.run import RunResult
from harness.verdict import Outcome

pytestmark = [pytest.mark.vm, pytest.mark.build]


def test_kernel_is_the_patched_build(watch_queue_suite: RunResult) -> None:
    k = watch_queue_suite.kernel
    assert k.source == "build" and k.metadata is not None and k.vmlinux is not None
    assert (watch_queue_suite.results_dir / "guest" / "abi.json").exists()


def test_new_mount_record_matches_mountinfo(watch_queue_suite: RunResult) -> None:
    r = watch_queue_suite.scenario("basic")
    assert r.outcome is Outcome.PASS, r.message
    log = scenario_log(watch_queue_suite, "basic")
    op = log.op("mount tmpfs on a")
    (rec,) = [x for x in op.records if x.get("event") == "NEW_MOUNT"]
    (new,) = op.new_mounts()
    parent = op.after[new["parent"]]
    assert rec["fields"]["auxiliary_mount"] == new["old_id"]
    assert rec["fields"]["triggered_on"] == parent["old_id"]
    assert rec["watch_id"] == 1
    assert all(c["ok"] for c in log.checks), log.checks
    assert_oracle_agrees(log)


def test_key_notifications_still_work(watch_queue_suite: RunResult) -> None:
    r = watch_queue_suite.scenario("keys")
    assert r.outcome is Outcome.PASS, r.message


def test_no_crash_and_no_infrastructure_error(watch_queue_suite: RunResult) -> None:
    bad = {r.name: f"{r.outcome}: {r.message}" for r in watch_queue_suite.scenarios
           if r.outcome in (Outcome.CRASH, Outcome.ERROR, Outcome.TIMEOUT)}
    assert not bad, bad
