"""Both watch_queue models on trees and attributes, where they agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mnh_guest.mounts import Mount
from mnh_guest.oracle import watch_queue, watch_queue_impl
from mnh_guest.oracle.watch_queue import Watch

Model = Callable[..., list[dict[str, Any]]]
MODELS = pytest.mark.parametrize("model", [watch_queue.expected, watch_queue_impl.expected],
                                 ids=["spec", "impl"])

ROOT = 0x1000
WS = 0x1001          # the watched workspace, mounted on /ws
RO = 0x1


def mount(mid: int, parent: int, point: str, attr: int = 0) -> Mount:
    return Mount(id=mid, parent=parent, old_id=mid & 0xFFF, old_parent=parent & 0xFFF,
                 point=point, root="/", fstype="tmpfs", attr=attr, propagation=0,
                 peer_group=0, master=0)


def table(*mounts: Mount) -> dict[int, Mount]:
    return {m.id: m for m in mounts}


BASE = (mount(ROOT, ROOT, "/"), mount(WS, ROOT, "/ws"))
WATCH = [Watch(1, WS, "/")]


def events(exp: list[dict[str, Any]]) -> list[tuple[str, int, int, tuple[str, ...]]]:
    return sorted((r["event"], r["triggered_on"], r["auxiliary_mount"], tuple(r["flags"]))
                  for r in exp)


@MODELS
def test_every_mount_of_an_attached_tree_is_a_new_mount_on_its_own_parent(model: Model) -> None:
    before = table(*BASE)
    after = table(*BASE, mount(0x1002, WS, "/ws/c"), mount(0x1003, 0x1002, "/ws/c/sub"))
    assert events(model(before, after, WATCH, {})) == [
        ("NEW_MOUNT", 0x001, 0x002, ()),
        ("NEW_MOUNT", 0x002, 0x003, ("IN_SUBTREE",)),
    ]


@MODELS
def test_read_only_flip_is_readonly_and_setattr_with_is_now_ro(model: Model) -> None:
    b = mount(0x1002, WS, "/ws/b")
    before = table(*BASE, b)
    after = table(*BASE, mount(0x1002, WS, "/ws/b", attr=RO))
    assert events(model(before, after, WATCH, {})) == [
        ("READONLY", 0x002, 0, ("IN_SUBTREE", "IS_NOW_RO")),
        ("SETATTR", 0x002, 0, ("IN_SUBTREE", "IS_NOW_RO")),
    ]
    back = events(model(after, before, WATCH, {}))
    assert back == [("READONLY", 0x002, 0, ("IN_SUBTREE",)), ("SETATTR", 0x002, 0, ("IN_SUBTREE",))]


@MODELS
def test_other_attribute_change_is_setattr_only(model: Model) -> None:
    before = table(*BASE, mount(0x1002, WS, "/ws/a"))
    after = table(*BASE, mount(0x1002, WS, "/ws/a", attr=0x2))      # nosuid
    assert events(model(before, after, WATCH, {})) == [
        ("SETATTR", 0x002, 0, ("IN_SUBTREE",))]


@MODELS
def test_recursive_change_is_one_record_set_for_the_mount_it_was_applied_to(model: Model) -> None:
    tree = (mount(0x1002, WS, "/ws/c"), mount(0x1003, 0x1002, "/ws/c/sub"))
    before = table(*BASE, *tree)
    after = table(*BASE, mount(0x1002, WS, "/ws/c", attr=RO),
                  mount(0x1003, 0x1002, "/ws/c/sub", attr=RO))
    flags = ("IN_SUBTREE", "IS_NOW_RO", "IS_RECURSIVE")
    assert events(model(before, after, WATCH, {"recursive_root": 0x1002})) == [
        ("READONLY", 0x002, 0, flags), ("SETATTR", 0x002, 0, flags)]


@MODELS
def test_recursive_change_below_an_unchanged_root_is_reported_on_the_root(model: Model) -> None:
    tree = (mount(0x1002, WS, "/ws/c", attr=RO), mount(0x1003, 0x1002, "/ws/c/sub"))
    before = table(*BASE, *tree)
    after = table(*BASE, mount(0x1002, WS, "/ws/c", attr=RO),
                  mount(0x1003, 0x1002, "/ws/c/sub", attr=RO))
    flags = ("IN_SUBTREE", "IS_NOW_RO", "IS_RECURSIVE")
    assert events(model(before, after, WATCH, {"recursive_root": 0x1002})) == [
        ("READONLY", 0x002, 0, flags), ("SETATTR", 0x002, 0, flags)]


@MODELS
def test_watched_mount_going_away_owes_its_watch_a_removal(model: Model) -> None:
    w = mount(0x1002, WS, "/ws/w")
    exp = model(table(*BASE, w), table(*BASE), [*WATCH, Watch(7, 0x1002, "/")], {})
    assert {(r["event"], r["watch_id"]) for r in exp} == {("UNMOUNT", 1), ("REMOVAL", 7)}
