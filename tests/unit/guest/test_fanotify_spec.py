"""mnh_guest.oracle.fanotify: one test per specification rule, on snapshots before and after."""

from __future__ import annotations

from typing import Any

from mnh_guest.backends.fanotify import FanotifyBackend
from mnh_guest.mounts import Mount
from mnh_guest.oracle import fanotify
from mount_sim import NOSUID, RDONLY, Sim

TESTED = {"attach", "detach", "move", "no-attributes", "namespace", "mnt-id"}


def events(before: dict[int, Mount], after: dict[int, Mount]) -> list[tuple[str, int]]:
    return sorted((r["event"], r["mnt_id"]) for r in fanotify.expected(before, after))


def workspace() -> tuple[Sim, int]:
    sim = Sim()
    return sim, sim.mount("/ws")


def test_every_rule_is_tested_and_cites_its_source() -> None:
    assert {r.name for r in fanotify.RULES} == TESTED
    for r in fanotify.RULES:
        assert r.says and r.cites and all(c.source and c.text for c in r.cites), r.name


def test_no_change_expects_nothing() -> None:
    sim, _ = workspace()
    assert fanotify.expected(sim.snap(), sim.snap()) == []


def test_attach_is_one_event_per_mount_that_appears() -> None:
    sim, _ = workspace()
    before = sim.snap()
    a = sim.mount("/ws/a")
    sub = sim.mount("/ws/a/sub")       # a tree attached at once (a recursive bind, a clone)
    assert events(before, sim.snap()) == [("ATTACH", a), ("ATTACH", sub)]


def test_detach_is_one_event_per_mount_that_goes_a_lazy_tree_included() -> None:
    sim, _ = workspace()
    a = sim.mount("/ws/a")
    x, y = sim.mount("/ws/a/x"), sim.mount("/ws/a/y")
    before = sim.snap()
    sim.umount("/ws/a", lazy=True)
    assert events(before, sim.snap()) == [("DETACH", a), ("DETACH", x), ("DETACH", y)]


def test_move_is_one_attach_detach_for_the_moved_mount_only() -> None:
    sim, _ = workspace()
    a = sim.mount("/ws/a")
    sim.mount("/ws/a/sub")            # goes with a, keeps its place in a: not moved
    before = sim.snap()
    sim.move("/ws/a", "/ws/b")
    assert events(before, sim.snap()) == [("ATTACH|DETACH", a)]


def test_move_within_the_same_parent_is_a_move() -> None:
    sim, _ = workspace()
    a = sim.mount("/ws/a")
    before = sim.snap()
    sim.move("/ws/a", "/ws/c")
    assert events(before, sim.snap()) == [("ATTACH|DETACH", a)]


def test_no_attributes_read_only_or_other_produce_nothing() -> None:
    sim, _ = workspace()
    sim.mount("/ws/a")
    before = sim.snap()
    sim.setattr("/ws/a", set_bits=RDONLY | NOSUID)
    assert fanotify.expected(before, sim.snap()) == []


def test_namespace_only_the_snapshot_namespace_counts() -> None:
    # A mount made in another namespace is in neither snapshot of this one: nothing.
    sim, _ = workspace()
    before = sim.snap()
    other = Sim()
    other.mount("/ws/x")
    assert fanotify.expected(before, sim.snap()) == []


def test_mnt_id_is_the_unique_id_and_the_backend_keys_on_it() -> None:
    sim, _ = workspace()
    before = sim.snap()
    a = sim.mount("/ws/a")
    (rec,) = FanotifyBackend.expected(before, sim.snap()).spec
    assert rec["mnt_id"] == a and a > 0xFFF and rec["rules"] == ["attach"]
    received: dict[str, Any] = {"kind": "fanotify", "event": "ATTACH", "mnt_id": a, "pid": 1}
    assert FanotifyBackend.key(rec) == FanotifyBackend.key(received)
    assert FanotifyBackend.expected(before, sim.snap()).impl is None
