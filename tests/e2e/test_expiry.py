"""End to end: a real automount and its expiry by the kernel, over loopback NFSv4.

The guest serves NFS to itself, mounts the export inside the watched workspace,
reads a directory that crosses into a second file system (the client automounts
it) and waits until nfs_expire_automounts() expires that submount. Both designs:

- watch_queue (patched kernel): NEW_MOUNT with IS_SUBMOUNT on the NFS mount, then
  EXPIRY on the submount itself followed by UNMOUNT on its parent;
- fanotify (prebuilt Debian kernel): ATTACH for the submount, DETACH when it expires.

When the scenario is in a backend's default list it runs in that backend's shared
suite boot; otherwise it gets a boot of its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from mnh_guest.scenarios import default_names

from harness.results.verdict import Outcome
from harness.testing.asserts import (
    Op,
    ScenarioLog,
    assert_events,
    assert_ids_in_tables,
    assert_oracle_agrees,
    side_by_side,
)
from harness.testing.plugin import GuestRun, scenario_log
from harness.workflows.run import RunResult

pytestmark = pytest.mark.vm

NAME = "automount-expiry"


def _result(request: pytest.FixtureRequest, guest_run: GuestRun, backend: str,
            suite: str, kernel_option: str) -> RunResult:
    if NAME in default_names(backend):
        result: RunResult = request.getfixturevalue(suite)
        return result
    kernel = str(request.config.getoption(kernel_option))
    return guest_run(kernel, (NAME,), backend=backend, tag=f"{backend}-{NAME}")


@pytest.fixture(scope="module")
def fanotify_run(request: pytest.FixtureRequest, guest_run: GuestRun) -> RunResult:
    return _result(request, guest_run, "fanotify", "fanotify_suite", "--mnh-kernel")


@pytest.fixture(scope="module")
def watch_queue_run(request: pytest.FixtureRequest, guest_run: GuestRun) -> RunResult:
    return _result(request, guest_run, "watch-queue", "watch_queue_suite",
                   "--mnh-patched-kernel")


def _passed_log(result: RunResult) -> ScenarioLog:
    r = result.scenario(NAME)
    log = scenario_log(result, NAME)
    assert r.outcome is Outcome.PASS, (f"{r.outcome}: {r.message} (results in "
                                       f"{result.results_dir})\n" + side_by_side(log.ops))
    return log


def _submount(op: Op) -> dict[str, Any]:
    """The one mount the automount added: nfs4, on mnt/sub, below the NFS mount."""
    (sub,) = op.new_mounts()
    assert sub["fstype"] == "nfs4" and sub["point"].endswith("/mnt/sub"), sub
    assert op.after[sub["parent"]]["fstype"] == "nfs4", op.after[sub["parent"]]
    return sub


# --- fanotify ------------------------------------------------------------------------

def test_fanotify_scenario_passes(fanotify_run: RunResult) -> None:
    log = _passed_log(fanotify_run)
    assert log.header["backend"] == "fanotify"
    assert_oracle_agrees(log)
    assert_ids_in_tables(log)


def test_fanotify_automount_is_attach_and_expiry_is_detach(fanotify_run: RunResult) -> None:
    log = scenario_log(fanotify_run, NAME)
    auto = log.op("automount")
    sub = _submount(auto)
    assert_events(auto, ["ATTACH"])
    assert auto.records[0]["mnt_id"] == sub["id"]
    expiry = log.op("expiry")
    assert [m["id"] for m in expiry.gone_mounts()] == [sub["id"]]
    assert_events(expiry, ["DETACH"])
    assert expiry.records[0]["mnt_id"] == sub["id"]
    assert_events(log.op("umount mnt"), ["DETACH"])


# --- watch_queue (the series, patched kernel) ---------------------------------------

@pytest.mark.build
def test_watch_queue_scenario_passes(watch_queue_run: RunResult) -> None:
    log = _passed_log(watch_queue_run)
    assert log.header["backend"] == "watch-queue"
    assert_oracle_agrees(log)


@pytest.mark.build
def test_watch_queue_automount_is_new_mount_with_is_submount(
        watch_queue_run: RunResult) -> None:
    log = scenario_log(watch_queue_run, NAME)
    auto = log.op("automount")
    sub = _submount(auto)
    nfs = auto.after[sub["parent"]]
    assert_events(auto, ["NEW_MOUNT"])
    (rec,) = auto.records
    assert rec["fields"]["triggered_on"] == nfs["old_id"]
    assert rec["fields"]["auxiliary_mount"] == sub["old_id"]
    assert set(rec["flags"]) == {"IN_SUBTREE", "IS_SUBMOUNT"}, side_by_side([auto])
    # A mount made with mount(2) is not a submount.
    (plain,) = log.op("mount nfs4").records
    assert "IS_SUBMOUNT" not in plain["flags"]


@pytest.mark.build
def test_watch_queue_expiry_is_expiry_then_unmount(watch_queue_run: RunResult) -> None:
    log = scenario_log(watch_queue_run, NAME)
    sub = _submount(log.op("automount"))
    expiry = log.op("expiry")
    assert [m["id"] for m in expiry.gone_mounts()] == [sub["id"]]
    assert_events(expiry, ["EXPIRY", "UNMOUNT"], ordered=True)
    exp, unmount = expiry.records
    # EXPIRY is about the expired mount itself; the UNMOUNT is on its parent.
    assert (exp["fields"]["triggered_on"], exp["fields"]["auxiliary_mount"]) == \
        (sub["old_id"], 0)
    assert (unmount["fields"]["triggered_on"], unmount["fields"]["auxiliary_mount"]) == \
        (expiry.before[sub["parent"]]["old_id"], sub["old_id"])
    assert all("IN_SUBTREE" in r["flags"] for r in expiry.records)
