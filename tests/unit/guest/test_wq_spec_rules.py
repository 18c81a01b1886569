"""mnh_guest.oracle.watch_queue: one test (or more) per specification rule.

Each test builds a mount table, takes snapshots before and after one operation, and
checks the records the specification model says each watch must receive.  Watch 1 is
on the workspace's root (a mount root), as every scenario has it.
"""

from __future__ import annotations

from typing import Any

from mnh_guest.mounts import Mount
from mnh_guest.oracle import watch_queue
from mnh_guest.oracle.watch_queue import Watch
from mount_sim import NOSUID, RDONLY, Sim

TESTED = {"new-mount", "unmount", "expiry", "move-from", "move-to", "readonly", "setattr",
          "recursive", "is-now-ro", "is-submount", "is-recursive", "receives", "in-subtree",
          "removal", "explicit-removal"}

Rec = tuple[str, int, int, int, tuple[str, ...]]


def unique(old: int | None) -> int:
    """The Sim's unique id of a reusable id (its low 12 bits); 0 stays 0."""
    return old | 0x1000 if old else 0


def records(before: dict[int, Mount], after: dict[int, Mount], watches: list[Watch],
            **hints: Any) -> list[Rec]:
    """(event, watch, triggered_on, aux, flags) of every mount record, sorted, with the
    unique ids of the mounts."""
    return sorted((r["event"], r["watch_id"], unique(r["triggered_on"]),
                   unique(r["auxiliary_mount"]), tuple(r["flags"]))
                  for r in watch_queue.expected(before, after, watches, hints)
                  if r["kind"] == "mount")


def setup() -> tuple[Sim, int, list[Watch]]:
    sim = Sim()
    ws = sim.mount("/ws")
    return sim, ws, [sim.watch(1, "/ws")]


IS = ("IN_SUBTREE",)


def test_every_rule_is_tested_and_cites_its_source() -> None:
    assert {r.name for r in watch_queue.RULES} == TESTED
    for r in watch_queue.RULES:
        assert r.says and r.cites and all(c.source and c.text for c in r.cites), r.name


# --- events --------------------------------------------------------------------------------

def test_new_mount_is_on_the_parent_with_the_new_mount_as_aux() -> None:
    sim, ws, watches = setup()
    before = sim.snap()
    a = sim.mount("/ws/a")
    assert records(before, sim.snap(), watches) == [("NEW_MOUNT", 1, ws, a, ())]


def test_new_mount_of_a_tree_is_one_per_mount_each_on_its_parent() -> None:
    sim, ws, watches = setup()
    before = sim.snap()
    c = sim.mount("/ws/c")
    sub = sim.mount("/ws/c/sub")
    assert records(before, sim.snap(), watches) == [
        ("NEW_MOUNT", 1, ws, c, ()), ("NEW_MOUNT", 1, c, sub, IS)]


def test_unmount_is_on_the_parent_it_left() -> None:
    sim, ws, watches = setup()
    a = sim.mount("/ws/a")
    before = sim.snap()
    sim.umount("/ws/a")
    assert records(before, sim.snap(), watches) == [("UNMOUNT", 1, ws, a, ())]


def test_unmount_of_a_tree_reaches_the_watch_for_every_mount_it_held() -> None:
    sim, ws, watches = setup()
    a = sim.mount("/ws/a")
    x, y = sim.mount("/ws/a/x"), sim.mount("/ws/a/y")
    before = sim.snap()
    sim.umount("/ws/a", lazy=True)
    assert records(before, sim.snap(), watches) == [
        ("UNMOUNT", 1, ws, a, ()), ("UNMOUNT", 1, a, x, IS), ("UNMOUNT", 1, a, y, IS)]


def test_expiry_is_on_the_expired_mount_itself_then_its_unmount() -> None:
    sim, _, watches = setup()
    nfs = sim.mount("/ws/mnt", fstype="nfs4")
    sub = sim.mount("/ws/mnt/sub", fstype="nfs4")
    before = sim.snap()
    sim.umount("/ws/mnt/sub")
    assert records(before, sim.snap(), watches, expiry=True) == [
        ("EXPIRY", 1, sub, 0, IS), ("UNMOUNT", 1, nfs, sub, IS)]
    assert records(before, sim.snap(), watches) == [("UNMOUNT", 1, nfs, sub, IS)]


def test_expiry_of_a_tree_is_for_its_top_only() -> None:
    sim, _, watches = setup()
    nfs = sim.mount("/ws/mnt", fstype="nfs4")
    sub = sim.mount("/ws/mnt/sub", fstype="nfs4")
    deeper = sim.mount("/ws/mnt/sub/deeper", fstype="nfs4")
    before = sim.snap()
    sim.umount("/ws/mnt/sub", lazy=True)
    assert records(before, sim.snap(), watches, expiry=True) == [
        ("EXPIRY", 1, sub, 0, IS), ("UNMOUNT", 1, nfs, sub, IS), ("UNMOUNT", 1, sub, deeper, IS)]


def test_move_from_and_move_to_each_reach_the_watches_of_their_side() -> None:
    sim, ws, watches = setup()
    inner = sim.mount("/ws/in")
    watches.append(sim.watch(2, "/ws/in"))
    p = sim.mount("/ws/in/p")
    before = sim.snap()
    sim.move("/ws/in/p", "/ws/out/r")       # only the source inside watch 2's subtree
    assert records(before, sim.snap(), watches) == [
        ("MOVE_FROM", 1, inner, p, IS), ("MOVE_FROM", 2, inner, p, ()),
        ("MOVE_TO", 1, ws, p, ())]
    before = sim.snap()
    sim.move("/ws/out/r", "/ws/in/s")       # only the destination inside
    assert records(before, sim.snap(), watches) == [
        ("MOVE_FROM", 1, ws, p, ()), ("MOVE_TO", 1, inner, p, IS), ("MOVE_TO", 2, inner, p, ())]


def test_move_of_a_tree_is_for_the_moved_mount_only() -> None:
    sim, ws, watches = setup()
    a = sim.mount("/ws/a")
    sim.mount("/ws/a/sub")
    before = sim.snap()
    sim.move("/ws/a", "/ws/b")
    assert records(before, sim.snap(), watches) == [
        ("MOVE_FROM", 1, ws, a, ()), ("MOVE_TO", 1, ws, a, ())]


def test_readonly_flip_is_readonly_and_setattr() -> None:
    sim, _, watches = setup()
    b = sim.mount("/ws/b")
    before = sim.snap()
    sim.setattr("/ws/b", set_bits=RDONLY)
    ro = ("IN_SUBTREE", "IS_NOW_RO")
    assert records(before, sim.snap(), watches) == [
        ("READONLY", 1, b, 0, ro), ("SETATTR", 1, b, 0, ro)]
    after = sim.snap()
    assert records(after, before, watches) == [
        ("READONLY", 1, b, 0, IS), ("SETATTR", 1, b, 0, IS)]


def test_setattr_alone_for_other_attributes() -> None:
    sim, _, watches = setup()
    a = sim.mount("/ws/a")
    before = sim.snap()
    sim.setattr("/ws/a", set_bits=NOSUID)
    assert records(before, sim.snap(), watches) == [("SETATTR", 1, a, 0, IS)]


def test_recursive_change_is_one_set_for_the_mount_it_was_applied_to() -> None:
    sim, _, watches = setup()
    c = sim.mount("/ws/c", attr=RDONLY)       # already read-only: only the one below flips
    sim.mount("/ws/c/sub")
    before = sim.snap()
    sim.setattr("/ws/c", set_bits=RDONLY, recursive=True)
    flags = ("IN_SUBTREE", "IS_NOW_RO", "IS_RECURSIVE")
    assert records(before, sim.snap(), watches, recursive_root=c) == [
        ("READONLY", 1, c, 0, flags), ("SETATTR", 1, c, 0, flags)]


# --- flags ---------------------------------------------------------------------------------

def test_is_now_ro_on_a_new_read_only_mount() -> None:
    sim, ws, watches = setup()
    before = sim.snap()
    a = sim.mount("/ws/a", attr=RDONLY)
    assert records(before, sim.snap(), watches) == [("NEW_MOUNT", 1, ws, a, ("IS_NOW_RO",))]


def test_is_now_ro_says_what_the_mount_is_on_a_setattr_that_keeps_it_read_only() -> None:
    sim, _, watches = setup()
    a = sim.mount("/ws/a", attr=RDONLY)
    before = sim.snap()
    sim.setattr("/ws/a", set_bits=NOSUID)
    assert records(before, sim.snap(), watches) == [
        ("SETATTR", 1, a, 0, ("IN_SUBTREE", "IS_NOW_RO"))]


def test_is_submount_on_an_automount() -> None:
    sim, _, watches = setup()
    nfs = sim.mount("/ws/mnt", fstype="nfs4")
    before = sim.snap()
    sub = sim.mount("/ws/mnt/sub", fstype="nfs4")
    assert records(before, sim.snap(), watches, submount=True) == [
        ("NEW_MOUNT", 1, nfs, sub, ("IN_SUBTREE", "IS_SUBMOUNT"))]


def test_is_recursive_only_with_the_hint() -> None:
    sim, _, watches = setup()
    c = sim.mount("/ws/c")
    before = sim.snap()
    sim.setattr("/ws/c", set_bits=NOSUID, recursive=True)
    assert records(before, sim.snap(), watches, recursive_root=c) == [
        ("SETATTR", 1, c, 0, ("IN_SUBTREE", "IS_RECURSIVE"))]
    assert records(before, sim.snap(), watches) == [("SETATTR", 1, c, 0, IS)]


# --- delivery ------------------------------------------------------------------------------

def test_receives_a_mount_below_a_plain_directory_watch() -> None:
    sim, ws, watches = setup()
    watches.append(sim.watch(3, "/ws/w"))
    before = sim.snap()
    sub = sim.mount("/ws/w/sub")
    assert records(before, sim.snap(), watches) == [
        ("NEW_MOUNT", 1, ws, sub, ()), ("NEW_MOUNT", 3, ws, sub, ())]


def test_receives_nothing_from_outside_the_watched_directory() -> None:
    sim, ws, watches = setup()
    watches.append(sim.watch(3, "/ws/w"))
    before = sim.snap()
    o = sim.mount("/ws/wo/o")                # a sibling whose name starts with "w"
    assert records(before, sim.snap(), watches) == [("NEW_MOUNT", 1, ws, o, ())]


def test_receives_below_a_directory_of_a_mount_below_the_workspace() -> None:
    sim, _, watches = setup()
    m = sim.mount("/ws/m")
    watches += [sim.watch(2, "/ws/m"), sim.watch(4, "/ws/m/d")]
    before = sim.snap()
    e = sim.mount("/ws/m/d/e")
    assert records(before, sim.snap(), watches) == [
        ("NEW_MOUNT", 1, m, e, IS), ("NEW_MOUNT", 2, m, e, ()), ("NEW_MOUNT", 4, m, e, ())]


def test_receives_attribute_changes_below_the_watch_not_of_the_mount_holding_it() -> None:
    sim, _, watches = setup()
    m = sim.mount("/ws/m")
    e = sim.mount("/ws/m/d/e")
    watches.append(sim.watch(4, "/ws/m/d"))
    before = sim.snap()
    sim.setattr("/ws/m", set_bits=NOSUID)
    assert records(before, sim.snap(), watches) == [("SETATTR", 1, m, 0, IS)]
    before = sim.snap()
    sim.setattr("/ws/m/d/e", set_bits=NOSUID)
    assert records(before, sim.snap(), watches) == [
        ("SETATTR", 1, e, 0, IS), ("SETATTR", 4, e, 0, IS)]


def test_receives_a_mount_over_the_watched_directory_and_what_is_mounted_in_it() -> None:
    sim, ws, watches = setup()
    watches.append(sim.watch(3, "/ws/w"))
    before = sim.snap()
    over = sim.mount("/ws/w")
    assert records(before, sim.snap(), watches) == [
        ("NEW_MOUNT", 1, ws, over, ()), ("NEW_MOUNT", 3, ws, over, ())]
    before = sim.snap()
    y = sim.mount("/ws/w/y")
    assert records(before, sim.snap(), watches) == [
        ("NEW_MOUNT", 1, over, y, IS), ("NEW_MOUNT", 3, over, y, IS)]


def test_in_subtree_is_clear_for_every_watch_in_the_triggering_mount() -> None:
    sim, ws, watches = setup()
    m = sim.mount("/ws/m")
    watches += [sim.watch(2, "/ws/m"), sim.watch(3, "/ws/m/d")]    # m's root; a dir of m
    before = sim.snap()
    e = sim.mount("/ws/m/d/e")
    assert records(before, sim.snap(), watches) == [
        ("NEW_MOUNT", 1, m, e, IS), ("NEW_MOUNT", 2, m, e, ()), ("NEW_MOUNT", 3, m, e, ())]
    before = sim.snap()
    x = sim.mount("/ws/m/d/e/x")                  # accounted to e: below every watch
    assert records(before, sim.snap(), watches) == [
        ("NEW_MOUNT", 1, e, x, IS), ("NEW_MOUNT", 2, e, x, IS), ("NEW_MOUNT", 3, e, x, IS)]
    before = sim.snap()
    g = sim.mount("/ws/g")
    assert records(before, sim.snap(), watches) == [("NEW_MOUNT", 1, ws, g, ())]


# --- removal -------------------------------------------------------------------------------

def test_removal_for_every_watch_in_a_mount_that_goes() -> None:
    sim, ws, watches = setup()
    m = sim.mount("/ws/m")
    watches += [sim.watch(2, "/ws/m"), sim.watch(4, "/ws/m/d")]
    before = sim.snap()
    sim.umount("/ws/m")
    got = watch_queue.expected(before, sim.snap(), watches, {})
    assert sorted((r["event"], r["watch_id"]) for r in got) == [
        ("REMOVAL", 2), ("REMOVAL", 4), ("UNMOUNT", 1)]
    assert [r["rules"] for r in got if r["event"] == "REMOVAL"] == [["removal"], ["removal"]]
    assert records(before, sim.snap(), watches)[-1] == ("UNMOUNT", 1, ws, m, ())


def test_explicit_removal_is_a_meta_removal_for_that_watch() -> None:
    assert watch_queue.explicit_removal(9) == {
        "kind": "meta", "event": "REMOVAL", "watch_id": 9, "flags": [],
        "rules": ["explicit-removal"]}


def test_records_name_the_rules_behind_them() -> None:
    sim, _, watches = setup()
    sim.mount("/ws/m")
    watches.append(sim.watch(2, "/ws/m"))
    before = sim.snap()
    sim.mount("/ws/m/sub", attr=RDONLY)
    got = {r["watch_id"]: r["rules"] for r in watch_queue.expected(before, sim.snap(),
                                                                    watches, {})}
    assert got == {1: ["new-mount", "is-now-ro", "receives", "in-subtree"],
                   2: ["new-mount", "is-now-ro", "receives"]}
