"""The fanotify oracle as a specification: the mount events a change must produce.

Upstream fanotify mount events (Linux 6.15): a group made with ``FAN_REPORT_MNT`` and a
``FAN_MARK_MNTNS`` mark on a mount namespace gets ``FAN_MNT_ATTACH`` and
``FAN_MNT_DETACH``, each with the unique id of the mount.  The rules quote
reference/kernel-apis.md section 3, which states these facts from
include/uapi/linux/fanotify.h, commit 0f46d81f2bce ("fanotify: notify on mount attach and
detach") (in v6.15) and its selftests; the text of that commit message and of
fanotify(7)/fanotify_mark(2) is not among the files these rules were written from, so
the quotes are of the reference file, not of the man pages.  There is no as-implemented
model of fanotify: its rules are not a copy of fs/namespace.c, so there is nothing to
compare them with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..mounts import Mount
from .model import Citation, Record, Rule
from .topology import Change, diff

KAPI = "reference/kernel-apis.md section 3"
LWN = "LWN, 'Mount notifications', 2024-07-03 (seed 003)"
NEVER_MERGED = Citation(KAPI, "Mount events are never merged.")


@dataclass(frozen=True, kw_only=True)
class FanRule(Rule):
    produce: Callable[[Change], list[Record]]


def _event(name: str, rule: str, mid: int) -> Record:
    return {"event": name, "mnt_id": mid, "rules": [rule]}


def _attach(c: Change) -> list[Record]:
    return [_event("ATTACH", "attach", mid) for mid in c.added]


def _detach(c: Change) -> list[Record]:
    return [_event("DETACH", "detach", mid) for mid in c.removed]


def _move(c: Change) -> list[Record]:
    return [_event("ATTACH|DETACH", "move", mid) for mid in c.moved]


def _attributes(c: Change) -> list[Record]:
    """Nothing, whatever attributes changed."""
    return []


def _namespace(c: Change) -> list[Record]:
    """Nothing of its own: the snapshots (listmount of the caller's namespace, which is
    the marked one) hold no other namespace's mounts, so the other rules see none."""
    return []


ATTACH = FanRule(
    name="attach",
    says="every mount that appears in the namespace is one ATTACH naming it",
    cites=(Citation(KAPI, "| `FAN_MNT_ATTACH` / `FAN_MNT_DETACH` | 0x01000000 / 0x02000000 |"),
           NEVER_MERGED,
           Citation(KAPI, "propagate (a shared root bound 4 times yields 15 ATTACH)")),
    open="'Every mount' (each mount of an attached tree, each copy propagation makes) is "
         "read from the selftest's count: 1 + 2 + 4 + 8 mounts, 15 events.",
    produce=_attach)

DETACH = FanRule(
    name="detach",
    says="every mount that leaves the namespace is one DETACH naming it",
    cites=(Citation(KAPI, "bind (ATTACH then DETACH)"), NEVER_MERGED),
    open="Each mount of an unmounted tree (a lazy unmount included) leaves the namespace "
         "with it, so each is one DETACH.",
    produce=_detach)

MOVE = FanRule(
    name="move",
    says="a moved mount (another parent, or another place in its parent) is one "
         "ATTACH|DETACH naming it",
    cites=(Citation(KAPI, "A move is ONE event with mask ATTACH|DETACH."),
           Citation(KAPI, "move (one ATTACH|DETACH)")),
    open="'Moved' is read as the mount the operation moved; the mounts below it keep "
         "their place in their parents and get nothing.",
    produce=_move)

NO_ATTRIBUTES = FanRule(
    name="no-attributes",
    says="attribute changes (read-only, nosuid, ...) produce nothing",
    cites=(Citation(KAPI, "No read-only/attribute-change events upstream."),),
    produce=_attributes)

NAMESPACE = FanRule(
    name="namespace",
    says="only mounts of the marked mount namespace are reported",
    cites=(Citation(KAPI, "| `FAN_MARK_MNTNS` (mark type) | 0x00000110; the fd argument is "
                    "an nsfs fd, e.g. `/proc/self/ns/mnt` |"),
           Citation(LWN, "There are use cases where you want to watch all of the mounts in "
                    "a container, Brauner said, so that is where a mount-namespace watch "
                    "would make sense;")),
    produce=_namespace)

MNT_ID = Rule(
    name="mnt-id",
    says="an event names its mount by the unique 64-bit id (statmount), not the reusable "
         "id of mountinfo",
    cites=(Citation(KAPI, "`mnt_id` is the unique 64-bit mount id."),))

EVENT_RULES: tuple[FanRule, ...] = (ATTACH, DETACH, MOVE, NO_ATTRIBUTES, NAMESPACE)
RULES: tuple[Rule, ...] = (*EVENT_RULES, MNT_ID)


def expected(before: dict[int, Mount], after: dict[int, Mount],
             hints: dict[str, Any] | None = None) -> list[Record]:
    """The events the change from ``before`` to ``after`` must produce."""
    c = diff(before, after)
    out: list[Record] = []
    for rule in EVENT_RULES:
        out += rule.produce(c)
    return out


def key(record: Record) -> tuple[Any, ...]:
    return (record.get("event"), record.get("mnt_id"))


def identity(record: Record) -> Any:
    return record.get("mnt_id")
