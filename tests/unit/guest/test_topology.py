"""mnh_guest.oracle.topology: places, subtrees, and what an operation changed."""

from __future__ import annotations

from mnh_guest.oracle.topology import (
    Place,
    diff,
    in_subtree,
    mount_at,
    mount_point,
    moved,
    rel_in,
    within,
)
from mount_sim import NOSUID, Sim


def workspace() -> tuple[Sim, int]:
    sim = Sim()
    return sim, sim.mount("/ws")


def test_rel_in_and_mount_at_take_the_top_of_a_stack() -> None:
    sim, ws = workspace()
    over = sim.mount("/ws")
    assert mount_at(sim.table, "/ws/a/b").id == over
    assert rel_in(sim.table[ws], "/ws/a/b") == "/a/b"
    assert rel_in(sim.table[ws], "/ws") == "/"


def test_mount_point_is_a_directory_of_the_parent() -> None:
    sim, ws = workspace()
    a = sim.mount("/ws/x/a")
    assert mount_point(sim.table, a) == Place(ws, "/x/a")
    assert mount_point(sim.table, sim.root) is None


def test_within_is_the_directory_or_below_it_in_one_mount() -> None:
    assert within(Place(1, "/w/sub"), Place(1, "/w"))
    assert within(Place(1, "/w"), Place(1, "/w"))
    assert not within(Place(1, "/wx"), Place(1, "/w"))        # a sibling with a longer name
    assert not within(Place(2, "/w/sub"), Place(1, "/w"))
    assert within(Place(1, "/anything"), Place(1, "/"))


def test_in_subtree_crosses_mount_points_up_to_the_top() -> None:
    sim, ws = workspace()
    sub = sim.mount("/ws/w/sub")
    deep = sim.mount("/ws/w/sub/x")
    top = Place(ws, "/w")
    assert in_subtree(sim.table, Place(deep, "/"), top)
    assert in_subtree(sim.table, Place(sub, "/x"), top)
    assert in_subtree(sim.table, Place(ws, "/w/sub"), top)
    assert not in_subtree(sim.table, Place(ws, "/out/o"), top)
    assert not in_subtree(sim.table, Place(ws, "/"), top)         # the mount holding w


def test_a_mount_over_the_watched_directory_is_in_its_subtree() -> None:
    sim, ws = workspace()
    over = sim.mount("/ws/w")
    assert in_subtree(sim.table, Place(over, "/y"), Place(ws, "/w"))


def test_moved_is_the_mount_moved_not_the_mounts_below_it() -> None:
    sim, _ = workspace()
    a = sim.mount("/ws/a")
    child = sim.mount("/ws/a/sub")
    before = sim.snap()
    sim.move("/ws/a", "/ws/b")
    after = sim.snap()
    assert moved(before, after, a)
    assert not moved(before, after, child)
    assert after[child].point == "/ws/b/sub"
    assert diff(before, after).moved == (a,)


def test_diff_lists_parents_first_and_attribute_bits() -> None:
    sim, ws = workspace()
    before = sim.snap()
    a = sim.mount("/ws/a")
    sub = sim.mount("/ws/a/sub")
    sim.setattr("/ws", set_bits=NOSUID)
    after = sim.snap()
    c = diff(before, after)
    assert c.added == (a, sub) and c.removed == () and c.moved == ()
    assert c.attrs == {ws: (NOSUID, NOSUID)}
    assert diff(after, before).removed == (a, sub)
