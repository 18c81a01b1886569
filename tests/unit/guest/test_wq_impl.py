"""mnh_guest.oracle.watch_queue_impl: the walk of post_mount_notification(), both starts."""

from __future__ import annotations

from mnh_guest.oracle.watch_queue_impl import FROM_MOUNTPOINT, FROM_ROOT, deliver, expected, walk
from mount_sim import Sim


def test_walk_goes_up_each_directory_then_crosses_to_the_parent_with_in_subtree() -> None:
    sim = Sim()
    ws = sim.mount("/ws")
    sub = sim.mount("/ws/w/sub")
    assert walk(sim.table, sub) == [
        (sub, "/", False), (ws, "/w/sub", True), (ws, "/w", True), (ws, "/", True),
        (sim.root, "/ws", True), (sim.root, "/", True)]
    assert walk(sim.table, ws, "/w/sub")[:3] == [
        (ws, "/w/sub", False), (ws, "/w", False), (ws, "/", False)]


def test_deliver_finds_a_directory_watch_only_on_the_walk() -> None:
    sim = Sim()
    sim.mount("/ws")
    w = sim.watch(3, "/ws/w")
    ws = sim.table[w.mount].id
    assert deliver(sim.table, ws, [w]) == []                      # from the root: missed
    assert deliver(sim.table, ws, [w], "/w/sub") == [(w, False)]  # from the mount point


def test_topology_records_start_at_the_mount_point_only_from_0008() -> None:
    sim = Sim()
    sim.mount("/ws")
    watches = [sim.watch(1, "/ws"), sim.watch(3, "/ws/w")]
    before = sim.snap()
    sim.mount("/ws/w/sub")
    after = sim.snap()
    got = {walk_from: sorted(r["watch_id"] for r in expected(before, after, watches, {},
                                                             walk_from))
           for walk_from in (FROM_ROOT, FROM_MOUNTPOINT)}
    assert got == {FROM_ROOT: [1], FROM_MOUNTPOINT: [1, 3]}
