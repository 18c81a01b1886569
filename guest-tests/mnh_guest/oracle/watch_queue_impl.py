"""The watch_queue oracle as implemented: what the series' code posts, and to whom.

This is the second model of an operation (the first, the specification, is
``watch_queue``, and the verdict comes from it).  It copies the series' code on purpose:
where the two disagree, the operation is a finding.

- Events: notify_mount() calls of ver #5 and of the port's fixes 0004-0008:
  NEW_MOUNT on the parent for every mount an attach adds (notify_new_tree(), 0005),
  IS_NOW_RO from the new mount's attributes, IS_SUBMOUNT for an automount (0006);
  UNMOUNT on the parent in umount_mnt(); EXPIRY on the mount in mark_mounts_for_expiry();
  MOVE_FROM on the old parent (0004) and MOVE_TO on the new one in
  attach_recursive_mnt(); READONLY and SETATTR on the mount, one set for the mount a
  recursive mount_setattr(2) named (0005).
- Delivery: post_mount_notification() walks towards the namespace root, one dentry at a
  time within a mount and from a mount to its mount point; a watch on (mount, directory)
  gets the notification when the walk passes that directory, with IN_SUBTREE once the
  walk has left ``triggered_on``.  Since 0008 a topology record's walk starts at the
  auxiliary mount's mount point in ``triggered_on`` (``FROM_MOUNTPOINT``); before it,
  every walk started at the root of ``triggered_on`` (``FROM_ROOT``: ver #5 to 0007), so a
  watch on a directory of the parent that is not its root never saw the parent's own
  topology changes.  Attribute records and EXPIRY start at the mount's root either way.
- umount_tree(): since 0009 every UNMOUNT of an unmounted tree is posted before anything
  is detached (``POSTED_FIRST``), so the walks of the mounts below the top still reach the
  watches above it; up to 0008 the top was detached first and their walks ended inside
  the detached tree (``DETACHED_FIRST``), where no watch outside it could see them.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any, NamedTuple

from .model import Record
from .topology import MOUNT_ATTR_RDONLY, Change, Table, diff, mount_point, rel_in
from .watch_queue import Watch, removal

RULE = "as-implemented"
FROM_MOUNTPOINT = "mountpoint"     # the bundled series (0008 on)
FROM_ROOT = "root"                 # ver #5 as posted, and the port up to 0007
TOPOLOGY = frozenset({"NEW_MOUNT", "UNMOUNT", "MOVE_FROM", "MOVE_TO"})
POSTED_FIRST = "posted-first"      # umount_tree() posts, then detaches (0009 on)
DETACHED_FIRST = "detached-first"  # ver #5 to 0008: the top goes first


class Posted(NamedTuple):
    """One notify_mount() call: subtype, the table its walk runs in, trigger, aux, flags."""

    subtype: str
    table: Table
    trigger: int
    aux: int                # 0 for none
    flags: set[str]


def _start(p: Posted, walk_from: str) -> str:
    """The directory of the trigger where the walk starts."""
    if walk_from == FROM_ROOT or p.subtype not in TOPOLOGY:
        return "/"
    at = mount_point(p.table, p.aux) if p.aux in p.table else None
    return at.rel if at is not None and at.mount == p.trigger else "/"


def _up(mount: int, rel: str, in_subtree: bool) -> list[tuple[int, str, bool]]:
    """``rel`` and each directory above it, up to the mount's root."""
    points = [(mount, rel, in_subtree)]
    while rel != "/":
        rel = posixpath.dirname(rel)
        points.append((mount, rel, in_subtree))
    return points


def walk(table: Table, trigger: int, start: str = "/") -> list[tuple[int, str, bool]]:
    """(mount, directory, IN_SUBTREE) from ``start`` in ``trigger`` up to the namespace root."""
    cur = table.get(trigger)
    if cur is None:
        return []
    points = _up(cur.id, start, False)
    seen = {cur.id}
    while cur.parent in table and cur.parent != cur.id:
        parent = table[cur.parent]
        points += _up(parent.id, rel_in(parent, cur.point), True)
        if parent.id in seen:
            break
        seen.add(parent.id)
        cur = parent
    return points


def deliver(table: Table, trigger: int, watches: list[Watch], start: str = "/"
            ) -> list[tuple[Watch, bool]]:
    """The watches that see an event on ``trigger``, each with its IN_SUBTREE flag."""
    out = []
    pts = walk(table, trigger, start)
    for w in watches:
        for mid, rel, in_subtree in pts:
            if mid == w.mount and rel == w.rel:
                out.append((w, in_subtree))
                break
    return out


def _new_mounts(after: Table, c: Change, hints: Mapping[str, Any]) -> list[Posted]:
    out: list[Posted] = []
    for mid in c.added:
        m = after[mid]
        flags = {"IS_NOW_RO"} if m.attr & MOUNT_ATTR_RDONLY else set()
        if hints.get("submount"):
            flags.add("IS_SUBMOUNT")   # an automount (finish_automount())
        out.append(Posted("NEW_MOUNT", after, m.parent, mid, flags))
    return out


def _removals(before: Table, c: Change, hints: Mapping[str, Any],
              tree_unmount: str = POSTED_FIRST) -> list[Posted]:
    out: list[Posted] = []
    gone = set(c.removed)
    detached = {k: before[k] for k in gone}
    for mid in c.removed:
        m = before[mid]
        # Up to 0008 the top of an unmounted tree was detached first: the walk from its
        # children then ended inside the detached tree, which is all their table held.
        inside = m.parent in gone and tree_unmount == DETACHED_FIRST
        table = detached if inside else before
        if hints.get("expiry") and m.parent not in gone:
            # mark_mounts_for_expiry() posts EXPIRY on the expiring mount itself (no aux),
            # then umount_tree() unmounts it like any other unmount.
            out.append(Posted("EXPIRY", before, mid, 0, set()))
        out.append(Posted("UNMOUNT", table, m.parent, mid, set()))
    return out


def _moves(before: Table, after: Table, c: Change) -> list[Posted]:
    out: list[Posted] = []
    for mid in c.moved:
        out.append(Posted("MOVE_FROM", before, before[mid].parent, mid, set()))
        out.append(Posted("MOVE_TO", after, after[mid].parent, mid, set()))
    return out


def _attrs(after: Table, c: Change, hints: Mapping[str, Any]) -> list[Posted]:
    recursive_root = hints.get("recursive_root")
    changes = dict(c.attrs)
    if recursive_root is not None and changes and recursive_root in after:
        # One record set for the mount mount_setattr(2) named, whatever changed below it.
        changed = 0
        for bits, _ in changes.values():
            changed |= bits
        changes = {recursive_root: (changed, after[recursive_root].attr)}
    out: list[Posted] = []
    for mid, (changed, now) in changes.items():
        flags = {"IS_RECURSIVE"} if recursive_root is not None else set()
        if now & MOUNT_ATTR_RDONLY:
            flags.add("IS_NOW_RO")
        # do_reconfigure_mnt() -> set_mount_attributes(): READONLY when the R/O state
        # flipped, and SETATTR for any change of the mount's attributes.
        if changed & MOUNT_ATTR_RDONLY:
            out.append(Posted("READONLY", after, mid, 0, set(flags)))
        out.append(Posted("SETATTR", after, mid, 0, set(flags)))
    return out


def _old(before: Table, after: Table, mid: int) -> int:
    if mid == 0:
        return 0
    m = after.get(mid) or before.get(mid)
    return m.old_id if m else 0


def expected(before: Table, after: Table, watches: list[Watch], hints: Mapping[str, Any],
             walk_from: str = FROM_MOUNTPOINT,
             tree_unmount: str = POSTED_FIRST) -> list[Record]:
    """The records the series' code posts to ``watches`` for this change (by default the
    bundled series' code; the older behaviours for the tests that show what changed)."""
    c = diff(before, after)
    posted = (_new_mounts(after, c, hints) + _removals(before, c, hints, tree_unmount)
              + _moves(before, after, c) + _attrs(after, c, hints))
    gone = set(c.removed)
    out = [{**removal(w.watch_id), "rules": [RULE]} for w in watches if w.mount in gone]
    for p in posted:
        for w, in_subtree in deliver(p.table, p.trigger, watches, _start(p, walk_from)):
            f = p.flags | {"IN_SUBTREE"} if in_subtree else p.flags
            out.append({"kind": "mount", "event": p.subtype, "watch_id": w.watch_id,
                        "triggered_on": p.table[p.trigger].old_id,
                        "auxiliary_mount": _old(before, after, p.aux),
                        "flags": sorted(f), "rules": [RULE]})
    return out
