"""Both watch_queue models on the automount hints (IS_SUBMOUNT, EXPIRY), where they agree."""

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

ROOT, WS, NFS, SUB = 0x1000, 0x1001, 0x1002, 0x1003


def mount(mid: int, parent: int, point: str, fstype: str = "tmpfs") -> Mount:
    return Mount(id=mid, parent=parent, old_id=mid & 0xFFF, old_parent=parent & 0xFFF,
                 point=point, root="/", fstype=fstype, attr=0, propagation=0, peer_group=0,
                 master=0)


# / <- /ws (watched) <- /ws/mnt (NFS) <- /ws/mnt/sub (the automount)
BASE = {m.id: m for m in (mount(ROOT, ROOT, "/"), mount(WS, ROOT, "/ws"),
                          mount(NFS, WS, "/ws/mnt", "nfs4"))}
WITH_SUB = {**BASE, SUB: mount(SUB, NFS, "/ws/mnt/sub", "nfs4")}
WATCH = [Watch(1, WS, "/")]


def rec(event: str, trig: int, aux: int, *flags: str) -> dict[str, Any]:
    return {"kind": "mount", "event": event, "watch_id": 1, "triggered_on": trig & 0xFFF,
            "auxiliary_mount": aux & 0xFFF, "flags": sorted(flags)}


def expected(model: Model, *args: Any) -> list[dict[str, Any]]:
    """The model's records without the names of the rules behind them, in a fixed order."""
    return sorted(({k: v for k, v in r.items() if k != "rules"} for r in model(*args)),
                  key=repr)


def recs(*records: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(records, key=repr)


@MODELS
def test_plain_new_mount_has_no_submount_flag(model: Model) -> None:
    assert expected(model, BASE, WITH_SUB, WATCH, {}) == [rec("NEW_MOUNT", NFS, SUB, "IN_SUBTREE")]


@MODELS
def test_submount_hint_sets_is_submount(model: Model) -> None:
    assert expected(model, BASE, WITH_SUB, WATCH, {"submount": True}) == [
        rec("NEW_MOUNT", NFS, SUB, "IN_SUBTREE", "IS_SUBMOUNT")]


@MODELS
def test_plain_removal_is_one_unmount(model: Model) -> None:
    assert expected(model, WITH_SUB, BASE, WATCH, {}) == [rec("UNMOUNT", NFS, SUB, "IN_SUBTREE")]


@MODELS
def test_expiry_is_expiry_on_the_mount_itself_then_unmount_on_its_parent(model: Model) -> None:
    # mark_mounts_for_expiry(): notify_mount(mnt, NULL, EXPIRY), then umount_tree().
    assert expected(model, WITH_SUB, BASE, WATCH, {"expiry": True}) == recs(
        rec("EXPIRY", SUB, 0, "IN_SUBTREE"), rec("UNMOUNT", NFS, SUB, "IN_SUBTREE"))


def test_expiry_of_a_tree_reports_expiry_only_for_its_top() -> None:
    # Only the top was on the expiry list; the mount below it goes with the tree.  Since
    # 0009 its UNMOUNT is posted before the top is detached, so it reaches the watch; up
    # to 0008 it walked up from the detached tree and reached nothing (the finding in
    # test_wq_disagree.py).
    deeper = {**WITH_SUB, 0x1004: mount(0x1004, SUB, "/ws/mnt/sub/deeper", "nfs4")}
    assert expected(watch_queue_impl.expected, deeper, BASE, WATCH, {"expiry": True}) == recs(
        rec("EXPIRY", SUB, 0, "IN_SUBTREE"), rec("UNMOUNT", NFS, SUB, "IN_SUBTREE"),
        rec("UNMOUNT", SUB, 0x1004, "IN_SUBTREE"))

    def until_0008(before: Any, after: Any, w: Any, hints: Any) -> Any:
        return watch_queue_impl.expected(before, after, w, hints,
                                         tree_unmount=watch_queue_impl.DETACHED_FIRST)
    assert expected(until_0008, deeper, BASE, WATCH, {"expiry": True}) == recs(
        rec("EXPIRY", SUB, 0, "IN_SUBTREE"), rec("UNMOUNT", NFS, SUB, "IN_SUBTREE"))
