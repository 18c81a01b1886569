"""End to end on a prebuilt Debian kernel: upstream fanotify mount events.

One boot runs every fanotify scenario; these tests then assert on the decoded
logs the guest wrote: kinds of events, their order, and mount ids that match the
mount table (statmount/listmount unique ids).
"""

from __future__ import annotations

import pytest
from mnh_guest.scenarios import default_names

from harness.results.verdict import Outcome
from harness.testing.asserts import assert_events, assert_ids_in_tables, assert_oracle_agrees
from harness.testing.plugin import scenario_log
from harness.workflows.run import RunResult

pytestmark = pytest.mark.vm

SCENARIOS = tuple(default_names("fanotify"))


def test_every_scenario_passes(fanotify_suite: RunResult) -> None:
    bad = {r.name: f"{r.outcome}: {r.message}" for r in fanotify_suite.scenarios
           if r.outcome is not Outcome.PASS}
    assert not bad, f"results in {fanotify_suite.results_dir}: {bad}"
    assert [r.name for r in fanotify_suite.scenarios] == list(SCENARIOS)


def test_results_files(fanotify_suite: RunResult) -> None:
    d = fanotify_suite.results_dir
    for f in ("results.json", "junit.xml", "results.ktap", "console.log", "command.json"):
        assert (d / f).stat().st_size > 0, f
    ktap = (d / "results.ktap").read_text()
    assert ktap.startswith("KTAP version 1") and f"1..{len(SCENARIOS)}" in ktap
    # The kernel console and the scenario output are kept apart.
    assert "mnh: runner start" in (d / "console.log").read_text()
    assert "Linux version" not in (d / "guest" / "runner.stdout").read_text()


@pytest.mark.parametrize("name", SCENARIOS)
def test_oracle_and_ids(fanotify_suite: RunResult, name: str) -> None:
    log = scenario_log(fanotify_suite, name)
    assert log.header["backend"] == "fanotify"
    assert_oracle_agrees(log)
    assert_ids_in_tables(log)
    assert fanotify_suite.scenario(name).events == sum(len(o.events) for o in log.ops)


def test_mount(fanotify_suite: RunResult) -> None:
    log = scenario_log(fanotify_suite, "mount")
    op = log.op("mount tmpfs on a")
    assert_events(op, ["ATTACH"])
    (new,) = op.new_mounts()
    assert new["fstype"] == "tmpfs" and new["point"].endswith("/a")
    assert op.records[0]["mnt_id"] == new["id"]
    bind = log.op("bind a onto b")
    assert_events(bind, ["ATTACH"])
    # A recursive bind of a (which has a/sub below it) attaches two mounts.
    assert_events(log.op("recursive bind"), ["ATTACH", "ATTACH"])
    # So does attaching a detached open_tree(OPEN_TREE_CLONE | AT_RECURSIVE) copy of it.
    clone = log.op("attach an open_tree")
    assert_events(clone, ["ATTACH", "ATTACH"])
    assert {r["mnt_id"] for r in clone.records} == {m["id"] for m in clone.new_mounts()}


def test_unmount(fanotify_suite: RunResult) -> None:
    log = scenario_log(fanotify_suite, "unmount")
    op = log.op("umount a")
    assert_events(op, ["DETACH"])
    assert op.records[0]["mnt_id"] == op.gone_mounts()[0]["id"]
    lazy = log.op("lazy umount")
    assert_events(lazy, ["DETACH"] * 3)
    assert {r["mnt_id"] for r in lazy.records} == {m["id"] for m in lazy.gone_mounts()}
    assert_events(log.op("umount the watched mount w"), ["DETACH"])


def test_move_is_one_event(fanotify_suite: RunResult) -> None:
    log = scenario_log(fanotify_suite, "move")
    moved_id = log.op("mount tmpfs on a").records[0]["mnt_id"]
    for label in ("MS_MOVE", "move_mount"):
        op = log.op(label)
        assert_events(op, ["ATTACH|DETACH"])
        assert op.records[0]["mnt_id"] == moved_id
        assert op.before[moved_id]["point"] != op.after[moved_id]["point"]
    # A mount namespace mark sees every move the same way, wherever the parents are.
    for label in ("MS_MOVE in/p to in/q", "move_mount in/q to out/r", "MS_MOVE out/r to in/s"):
        assert_events(log.op(label), ["ATTACH|DETACH"])


def test_propagation_counts_copies(fanotify_suite: RunResult) -> None:
    log = scenario_log(fanotify_suite, "propagation")
    counts = [len(log.op(f"bind shared onto shared/b{i}").events) for i in (1, 2, 3)]
    # Each bind of a shared mount onto itself doubles the peer group's copies.
    assert counts == [1, 2, 4]
    leaf = log.op("mount tmpfs on shared/leaf")
    assert len(leaf.events) == len(leaf.new_mounts()) == 8
    assert set(leaf.events) == {"ATTACH"}
    # The slave receives the master's mounts: one more copy than the peers alone.
    leaf2 = log.op("mount tmpfs on shared/leaf2")
    assert len(leaf2.events) == len(leaf2.new_mounts()) == len(leaf.new_mounts()) + 1
    assert_events(log.op("mount tmpfs on slave/own"), ["ATTACH"])


def test_fsmount(fanotify_suite: RunResult) -> None:
    log = scenario_log(fanotify_suite, "fsmount")
    op = log.op("fsopen/fsmount/move_mount")
    assert_events(op, ["ATTACH"])
    assert op.records[0]["mnt_id"] not in op.before
    assert op.records[0]["mnt_id"] in op.after
    assert_events(log.op("umount new"), ["DETACH"])


def test_other_namespace_is_silent(fanotify_suite: RunResult) -> None:
    log = scenario_log(fanotify_suite, "namespaces")
    assert_events(log.op("mount tmpfs on x in another"), [])
    assert_events(log.op("mount tmpfs on x here"), ["ATTACH"])


def test_attribute_changes_are_silent_upstream(fanotify_suite: RunResult) -> None:
    """Upstream fanotify has no read-only or attribute events: the oracle expects none."""
    for name in ("remount-ro", "setattr"):
        log = scenario_log(fanotify_suite, name)
        attr_ops = [o for o in log.ops if "remount" in o.label or "setattr" in o.label]
        assert attr_ops, name
        for op in attr_ops:
            assert_events(op, [])
        assert all(c["ok"] for c in log.checks), log.checks


def test_expire_two_step(fanotify_suite: RunResult) -> None:
    log = scenario_log(fanotify_suite, "expire")
    assert [o.errno for o in log.ops] == [None, 22, 11, 16, 11, None]  # EINVAL EAGAIN EBUSY
    assert_events(log.op("MNT_EXPIRE, second call"), ["DETACH"])
