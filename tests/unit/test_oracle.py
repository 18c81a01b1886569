"""mnh_guest.oracle.compare and the fanotify oracle (FanotifyBackend.expected)."""

from __future__ import annotations

from typing import Any

from mnh_guest.fanotify import FanotifyBackend
from mnh_guest.mounts import Mount
from mnh_guest.oracle import compare

ROOT = 0x1000


def mount(mid: int, parent: int = ROOT, point: str = "/", **kw: Any) -> Mount:
    fields: dict[str, Any] = dict(id=mid, parent=parent, old_id=mid & 0xFFF,
                                  old_parent=parent & 0xFFF, point=point, root="/",
                                  fstype="tmpfs", attr=0, propagation=0, peer_group=0, master=0)
    fields.update(kw)
    return Mount(**fields)


def table(*mounts: Mount) -> dict[int, Mount]:
    return {m.id: m for m in mounts}


BEFORE = table(mount(ROOT, parent=ROOT), mount(0x1001, point="/tmp"),
               mount(0x1002, point="/mnt"), mount(0x1003, parent=0x1001, point="/tmp/a"))


def test_no_change_expects_nothing() -> None:
    assert FanotifyBackend.expected(BEFORE, dict(BEFORE)) == []


def test_new_mount_is_attach_removed_is_detach() -> None:
    after = dict(BEFORE)
    del after[0x1002]
    after[0x1004] = mount(0x1004, parent=0x1001, point="/tmp/b")
    assert FanotifyBackend.expected(BEFORE, after) == [
        {"event": "ATTACH", "mnt_id": 0x1004},
        {"event": "DETACH", "mnt_id": 0x1002},
    ]


def test_moved_mount_is_attach_and_detach_in_one_event() -> None:
    after = dict(BEFORE)
    after[0x1003] = mount(0x1003, parent=0x1002, point="/mnt/a")     # new parent
    after[0x1002] = mount(0x1002, point="/srv")                      # same parent, new point
    assert FanotifyBackend.expected(BEFORE, after) == [
        {"event": "ATTACH|DETACH", "mnt_id": 0x1002},
        {"event": "ATTACH|DETACH", "mnt_id": 0x1003},
    ]


def test_attribute_change_alone_is_no_event() -> None:
    after = dict(BEFORE)
    after[0x1001] = mount(0x1001, point="/tmp", attr=1, propagation=1 << 20)
    assert FanotifyBackend.expected(BEFORE, after) == []


def fan(event: str, mnt_id: int) -> dict[str, Any]:
    return {"kind": "fanotify", "event": event, "mnt_id": mnt_id, "pid": 1}


def cmp(expected: list[dict[str, Any]], received: list[dict[str, Any]]
        ) -> dict[str, list[Any]]:
    return compare(expected, received, FanotifyBackend.key, FanotifyBackend.identity)


def test_compare_all_matched() -> None:
    exp = [{"event": "ATTACH", "mnt_id": 1}, {"event": "DETACH", "mnt_id": 2}]
    got = [fan("DETACH", 2), fan("ATTACH", 1)]          # order does not matter
    assert cmp(exp, got) == {"missing": [], "unexpected": [], "wrong": [],
                             "decode_errors": []}


def test_compare_missing_and_unexpected() -> None:
    exp = [{"event": "ATTACH", "mnt_id": 1}, {"event": "ATTACH", "mnt_id": 2}]
    got = [fan("ATTACH", 1), fan("DETACH", 3)]
    d = cmp(exp, got)
    assert d["missing"] == [{"event": "ATTACH", "mnt_id": 2}]
    assert d["unexpected"] == [fan("DETACH", 3)]
    assert d["wrong"] == []


def test_compare_same_id_different_event_is_wrong() -> None:
    exp = [{"event": "ATTACH|DETACH", "mnt_id": 5}, {"event": "ATTACH", "mnt_id": 6}]
    got = [fan("ATTACH", 5), fan("ATTACH", 6)]
    d = cmp(exp, got)
    assert d["wrong"] == [{"expected": {"event": "ATTACH|DETACH", "mnt_id": 5},
                           "received": fan("ATTACH", 5)}]
    assert d["missing"] == [] and d["unexpected"] == []


def test_compare_duplicates_count() -> None:
    exp = [{"event": "ATTACH", "mnt_id": 1}]
    got = [fan("ATTACH", 1), fan("ATTACH", 1)]
    d = cmp(exp, got)
    assert d["unexpected"] == [fan("ATTACH", 1)]
    assert d["missing"] == [] and d["wrong"] == []
    d2 = cmp(exp * 2, [fan("ATTACH", 1)])
    assert d2["missing"] == [{"event": "ATTACH", "mnt_id": 1}]


def test_compare_sets_decode_errors_apart() -> None:
    err = {"kind": "decode-error", "offset": 40, "message": "truncated"}
    d = cmp([{"event": "ATTACH", "mnt_id": 1}], [fan("ATTACH", 1), err])
    assert d == {"missing": [], "unexpected": [], "wrong": [], "decode_errors": [err]}
