"""End to end on the patched kernel: the mount-notification series (watch_queue).

The kernel is built from linux-source-6.12 plus patches/mount-notify-v5 (or taken
from the build cache); one boot runs every watch-queue scenario, and these tests
assert on the decoded logs the guest wrote. Ids in records are the reusable ids of
/proc/self/mountinfo (``old_id`` in the snapshots); the snapshots are keyed by the
unique 64-bit ids of statmount/listmount.
"""

from __future__ import annotations

import errno
import itertools
from typing import Any

import pytest
from mnh_guest.scenarios import default_names

from harness.results.verdict import Outcome
from harness.testing.asserts import Op, assert_events, assert_oracle_agrees, side_by_side
from harness.testing.plugin import scenario_log
from harness.workflows.run import RunResult

pytestmark = [pytest.mark.vm, pytest.mark.build]

SCENARIOS = tuple(default_names("watch-queue"))
MOUNT_ATTR_RDONLY = 0x1


def _by_watch(op: Op, watch_id: int) -> list[dict[str, Any]]:
    return [r for r in op.records if r.get("watch_id") == watch_id]


def _old_id(op: Op, unique: int) -> int:
    m = op.after.get(unique) or op.before[unique]
    return int(m["old_id"])


def test_kernel_is_the_patched_build(watch_queue_suite: RunResult) -> None:
    k = watch_queue_suite.kernel
    assert k.source == "build" and k.metadata is not None and k.vmlinux is not None
    assert (watch_queue_suite.results_dir / "guest" / "abi.json").exists()


def test_every_scenario_passes(watch_queue_suite: RunResult) -> None:
    bad = {r.name: f"{r.outcome}: {r.message}" for r in watch_queue_suite.scenarios
           if r.outcome is not Outcome.PASS}
    assert not bad, f"results in {watch_queue_suite.results_dir}: {bad}"
    assert [r.name for r in watch_queue_suite.scenarios] == list(SCENARIOS)


@pytest.mark.parametrize("name", [n for n in SCENARIOS if n != "keys"])
def test_oracle_agrees(watch_queue_suite: RunResult, name: str) -> None:
    log = scenario_log(watch_queue_suite, name)
    assert log.header["backend"] == "watch-queue"
    assert_oracle_agrees(log)
    assert all(c["ok"] for c in log.checks), [c for c in log.checks if not c["ok"]]


def test_new_mount_record_matches_mountinfo(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "basic")
    op = log.op("mount tmpfs on a")
    (rec,) = [x for x in op.records if x.get("event") == "NEW_MOUNT"]
    (new,) = op.new_mounts()
    parent = op.after[new["parent"]]
    assert rec["fields"]["auxiliary_mount"] == new["old_id"]
    assert rec["fields"]["triggered_on"] == parent["old_id"]
    assert rec["watch_id"] == 1
    assert "IN_SUBTREE" not in rec["flags"]


def _assert_one_new_mount_per_mount(op: Op) -> None:
    recs = _by_watch(op, 1)
    got = sorted((r["fields"]["triggered_on"], r["fields"]["auxiliary_mount"]) for r in recs)
    want = sorted((op.after[m["parent"]]["old_id"], m["old_id"]) for m in op.new_mounts())
    assert [r["event"] for r in recs] == ["NEW_MOUNT"] * len(want) and got == want, \
        side_by_side([op])


def test_mount_variants(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "mount")
    for label, count in (("mount tmpfs on a", 1), ("bind a onto b", 1),
                         ("recursive bind a onto c", 2), ("attach an open_tree", 2)):
        op = log.op(label)
        assert len(op.new_mounts()) == count, label
        _assert_one_new_mount_per_mount(op)


def test_unmount_and_removal_of_the_watched_mount(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "unmount")
    plain = log.op("umount a")
    assert_events(plain, ["UNMOUNT"])
    (gone,) = plain.gone_mounts()
    assert plain.records[0]["fields"]["auxiliary_mount"] == gone["old_id"]
    # A lazy unmount of a three-mount tree: the watch hears of every mount that goes
    # (the series' "a watch will catch all of the events happening in the subtree"; 0009
    # posts them before the top is detached): the top on its parent, the two below it on
    # the top, with IN_SUBTREE.
    lazy = log.op("lazy umount")
    assert len(lazy.gone_mounts()) == 3
    assert_events(lazy, ["UNMOUNT"] * 3)
    gone = {m["old_id"]: m for m in lazy.gone_mounts()}
    by_aux = {r["fields"]["auxiliary_mount"]: r for r in lazy.records}
    assert set(by_aux) == set(gone), side_by_side([lazy])
    (top,) = [i for i, m in gone.items() if m["old_parent"] not in gone]
    assert "IN_SUBTREE" not in by_aux[top]["flags"]
    for i, m in gone.items():
        assert by_aux[i]["fields"]["triggered_on"] == m["old_parent"]
        if i != top:
            assert "IN_SUBTREE" in by_aux[i]["flags"], side_by_side([lazy])
    op = log.op("umount the watched mount w")
    assert_events(op, ["UNMOUNT", "REMOVAL"])
    (removal,) = [r for r in op.records if r["event"] == "REMOVAL"]
    (unmount,) = [r for r in op.records if r["event"] == "UNMOUNT"]
    assert removal["watch_id"] == 7 and unmount["watch_id"] == 1
    assert removal["fields"]["id"] == op.gone_mounts()[0]["old_id"]


def test_move_by_where_the_parents_are(watch_queue_suite: RunResult) -> None:
    """Watch 2 is on the mount at "in": it sees the half of a move that touches it."""
    log = scenario_log(watch_queue_suite, "move")
    for label in ("MS_MOVE a to b", "move_mount b to c"):
        assert_events(log.op(label), ["MOVE_FROM", "MOVE_TO"])
    cases = (("MS_MOVE in/p to in/q", ["MOVE_FROM", "MOVE_TO"]),
             ("move_mount in/q to out/r", ["MOVE_FROM"]),
             ("MS_MOVE out/r to in/s", ["MOVE_TO"]))
    for label, inner in cases:
        op = log.op(label)
        assert sorted(r["event"] for r in _by_watch(op, 2)) == sorted(inner), side_by_side([op])
        assert sorted(r["event"] for r in _by_watch(op, 1)) == ["MOVE_FROM", "MOVE_TO"]
        for r in _by_watch(op, 2):
            assert "IN_SUBTREE" not in r["flags"]   # the event is on the watched mount
        (moved,) = [i for i in op.before if op.before[i]["point"] != op.after[i]["point"]]
        for r in op.records:
            assert r["fields"]["auxiliary_mount"] == _old_id(op, moved)
        from_rec = next(r for r in _by_watch(op, 1) if r["event"] == "MOVE_FROM")
        to_rec = next(r for r in _by_watch(op, 1) if r["event"] == "MOVE_TO")
        assert from_rec["fields"]["triggered_on"] == _old_id(op, op.before[moved]["parent"])
        assert to_rec["fields"]["triggered_on"] == _old_id(op, op.after[moved]["parent"])


def test_is_now_ro_says_what_the_mount_is(watch_queue_suite: RunResult) -> None:
    """Each flip is READONLY + SETATTR (as ver #5's bind remount posts them), once."""
    log = scenario_log(watch_queue_suite, "remount-ro")
    ops = [o for o in log.ops if "read-only" in o.label or "read-write" in o.label]
    assert len(ops) == 6
    for op in ops:
        # With AT_RECURSIVE too: one record set, for the mount the call named.
        assert_events(op, ["READONLY", "SETATTR"])
        by_old = {m["old_id"]: m for m in op.after.values()}
        for r in op.records:
            m = by_old[r["fields"]["triggered_on"]]
            assert ("IS_NOW_RO" in r["flags"]) == bool(m["attr"] & MOUNT_ATTR_RDONLY), \
                side_by_side([op])
            assert ("IS_RECURSIVE" in r["flags"]) == ("AT_RECURSIVE" in op.label)
            assert m["point"].endswith("/b" if "AT_RECURSIVE" not in op.label else "/c")


def test_setattr_never_claims_read_only(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "setattr")
    changes = [o for o in log.ops if "mount_setattr" in o.label or "remount" in o.label]
    assert len(changes) == 10
    for op in changes:
        assert_events(op, ["SETATTR"])
        assert "IS_NOW_RO" not in op.records[0]["flags"], side_by_side([op])
    counters = [o.records[0]["fields"]["attr_changes"] for o in changes]
    assert all((b - a) % 2**32 > 0 for a, b in itertools.pairwise(counters)), \
        counters


def test_expire_two_step(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "expire")
    assert [o.errno for o in log.ops] == [None, errno.EINVAL, errno.EAGAIN, errno.EBUSY,
                                          errno.EAGAIN, None]
    assert_events(log.op("MNT_EXPIRE, second call"), ["UNMOUNT"])


def test_bad_input_errnos(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "bad-input")
    got = {o.label.removeprefix("watch_mount with "): o.errno for o in log.ops
           if o.label.startswith("watch_mount")}
    assert got == {
        "unknown at_flags": errno.EINVAL, "watch id 256": errno.EINVAL,
        "watch id -2": errno.EINVAL, "an ordinary pipe as the queue": errno.EINVAL,
        "a regular file as the queue": errno.EINVAL,
        "a path that does not exist": errno.ENOENT, "a non-directory": errno.ENOTDIR,
        "watch_mount on a directory without search permission, as nobody": errno.EACCES,
    }
    assert log.op("remove a watch (id -1) from a mount that never had one").errno == \
        errno.EBADSLT
    # Nothing was registered by the failed calls: only watch 1 reports.
    for label in ("mount tmpfs on a after", "mount tmpfs on private/m"):
        op = log.op(label)
        assert [r["watch_id"] for r in op.records] == [1], side_by_side([op])


def test_overrun_loss_and_resync(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "overrun")
    messages = {c["message"].split(" (")[0]: c["ok"] for c in log.checks}
    assert any(m.startswith("a LOSS record") for m in messages), messages
    assert all(messages.values()), messages
    assert any("reader's model equals the kernel's" in m for m in messages)


def test_filters_and_watch_removal(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "filters")
    op = log.op("mount tmpfs on a/sub")
    assert sorted(r["watch_id"] for r in op.records) == [1, 9]
    assert [r["watch_id"] for r in log.op("mount tmpfs on b").records] == [1]
    (removal,) = log.op("remove watch 9").records
    assert (removal["event"], removal["watch_id"]) == ("REMOVAL", 9)
    assert [r["watch_id"] for r in log.op("mount tmpfs on a/c").records] == [1]
    assert all(c["ok"] for c in log.checks), log.checks


def test_propagation_one_record_per_copy(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "propagation")
    mounting = [op for op in log.ops if op.new_mounts()]
    assert len(mounting) >= 2, "the scenario attached no mounts: nothing was checked"
    for op in mounting:
        _assert_one_new_mount_per_mount(op)
    # The slave receives the master's mounts: one copy more than the peers alone.
    assert len(log.op("mount tmpfs on shared/leaf2").new_mounts()) == \
        len(log.op("mount tmpfs on shared/leaf ").new_mounts()) + 1
    assert len(log.op("mount tmpfs on slave/own").new_mounts()) == 1


def test_other_namespace_is_silent(watch_queue_suite: RunResult) -> None:
    log = scenario_log(watch_queue_suite, "namespaces")
    assert_events(log.op("mount tmpfs on x in another"), [])
    assert_events(log.op("mount tmpfs on x here"), ["NEW_MOUNT"])


def test_key_notifications_still_work(watch_queue_suite: RunResult) -> None:
    r = watch_queue_suite.scenario("keys")
    assert r.outcome is Outcome.PASS, r.message
