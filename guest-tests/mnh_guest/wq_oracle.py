"""The watch_queue oracle: which mount notifications a topology change must produce.

It encodes the series' documented semantics (the ver #5 commit message):
- a new mount: NEW_MOUNT on its parent (``triggered_on``), aux = the new mount,
  with IS_SUBMOUNT when it is an automount (hint ``submount``: the table cannot tell);
- an unmount: UNMOUNT on the parent, aux = the mount that went;
- an expiry (hint ``expiry``: an automount the kernel expired, which the table cannot
  tell from an unmount): EXPIRY on the expired mount itself, aux = 0, then its UNMOUNT;
- a move: MOVE_FROM on the old parent and MOVE_TO on the new one, aux = the mount;
- a new tree (recursive bind, attached clone, propagated copy): NEW_MOUNT for
  every mount of it, each on its own parent;
- a read-only change: READONLY on the mount, IS_NOW_RO saying what it is now;
- any attribute change (read-only included, as ver #5's bind remount does):
  SETATTR on the mount;
- a recursive attribute change: one record set, for the mount it was applied to,
  with IS_RECURSIVE;
- removing a watch (watch_mount(..., -1)): META/REMOVAL to that watch (the
  watch_queue core posts it); the watched mount going away: META/REMOVAL too;
- "Mount notifications propagate up the tree towards the root, so a watch will
  catch all of the events happening in the subtree rooted at the watch", with
  IN_SUBTREE set when the event did not happen at the watch itself.

Delivery is computed by walking from the triggering mount's root towards the
namespace root through the snapshot, as the kernel walks dentries: a watch on
(mount, directory) sees the event when the walk passes through that directory.
Mount ids in records are the 32-bit ids that /proc/self/mountinfo shows.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

from .mounts import Mount

MOUNT_ATTR_RDONLY = 0x1


@dataclass(frozen=True)
class Watch:
    watch_id: int
    mount: int          # unique id of the watched mount
    rel: str            # directory within that mount, "/" for its root


def rel_in(mount: Mount, abspath: str) -> str:
    """``abspath`` relative to ``mount``'s mount point ("/" for the mount point itself)."""
    base = mount.point.rstrip("/")
    rest = abspath[len(base):] if abspath.startswith(base) else abspath
    return posixpath.normpath("/" + rest.lstrip("/"))


def mount_at(table: dict[int, Mount], abspath: str) -> Mount:
    """The mount a path lookup of ``abspath`` lands in (the top of any stack)."""
    path = posixpath.normpath(abspath)
    best: Mount | None = None
    for m in table.values():
        p = m.point.rstrip("/") or "/"
        if path == p or path.startswith(p.rstrip("/") + "/") or p == "/":
            if best is None or len(p) > len(best.point.rstrip("/") or "/"):
                best = m
            elif len(p) == len(best.point.rstrip("/") or "/") and m.parent == best.id:
                best = m  # stacked on top of the previous best
    if best is None:
        raise LookupError(f"no mount covers {abspath}")
    return best


def walk(table: dict[int, Mount], trigger: int) -> list[tuple[int, str]]:
    """(mount, directory) points from ``trigger``'s root up to the namespace root."""
    points: list[tuple[int, str]] = []
    cur = table.get(trigger)
    if cur is None:
        return points
    points.append((cur.id, "/"))
    seen = {cur.id}
    while cur.parent in table and cur.parent != cur.id:
        parent = table[cur.parent]
        rel = rel_in(parent, cur.point)
        while True:
            points.append((parent.id, rel))
            if rel == "/":
                break
            rel = posixpath.dirname(rel)
        if parent.id in seen:
            break
        seen.add(parent.id)
        cur = parent
    return points


def deliver(table: dict[int, Mount], trigger: int, watches: list[Watch]
            ) -> list[tuple[Watch, bool]]:
    """The watches that see an event on ``trigger``, each with its IN_SUBTREE flag."""
    out = []
    pts = walk(table, trigger)
    for w in watches:
        for i, (mid, rel) in enumerate(pts):
            if mid == w.mount and rel == w.rel:
                out.append((w, i != 0))
                break
    return out


def expected(before: dict[int, Mount], after: dict[int, Mount], watches: list[Watch],
             hints: dict[str, Any]) -> list[dict[str, Any]]:
    """The records a watch queue must receive for the change from ``before`` to ``after``."""
    events: list[tuple[str, dict[int, Mount], int, int, set[str]]] = []
    # New mounts, parents before children (a new tree is reported from the top).
    added = sorted(after.keys() - before.keys(), key=lambda i: _depth(after, i))
    for mid in added:
        m = after[mid]
        flags = {"IS_NOW_RO"} if m.attr & MOUNT_ATTR_RDONLY else set()
        if hints.get("submount"):
            flags.add("IS_SUBMOUNT")   # an automount (finish_automount())
        events.append(("NEW_MOUNT", after, m.parent, mid, flags))
    removed = sorted(before.keys() - after.keys(), key=lambda i: _depth(before, i))
    gone = set(removed)
    for mid in removed:
        m = before[mid]
        # The top of an unmounted tree is detached first; the walk from its children
        # then ends inside the detached tree, which is all their table holds.
        table = before if m.parent not in gone else {k: before[k] for k in gone}
        if hints.get("expiry") and m.parent not in gone:
            # mark_mounts_for_expiry() posts EXPIRY on the expiring mount itself (no aux),
            # then umount_tree() unmounts it like any other unmount.
            events.append(("EXPIRY", before, mid, 0, set()))
        events.append(("UNMOUNT", table, m.parent, mid, set()))
    for mid in sorted(before.keys() & after.keys()):
        b, a = before[mid], after[mid]
        if (b.parent, b.point) != (a.parent, a.point):
            events.append(("MOVE_FROM", before, b.parent, mid, set()))
            events.append(("MOVE_TO", after, a.parent, mid, set()))
    recursive_root = hints.get("recursive_root")
    changes: dict[int, tuple[int, int]] = {}     # mount -> (attr bits changed, attr now)
    for mid in sorted(before.keys() & after.keys()):
        changed = before[mid].attr ^ after[mid].attr
        if changed:
            changes[mid] = (changed, after[mid].attr)
    if recursive_root is not None and changes and recursive_root in after:
        # "only generated for the object that initially triggered it": one record set
        # for the mount the change was applied to, whatever mounts below it changed.
        changed = 0
        for bits, _ in changes.values():
            changed |= bits
        changes = {recursive_root: (changed, after[recursive_root].attr)}
    for mid, (changed, now) in changes.items():
        flags = {"IS_RECURSIVE"} if recursive_root is not None else set()
        if now & MOUNT_ATTR_RDONLY:
            flags.add("IS_NOW_RO")
        # As ver #5 does for a bind remount: READONLY when the R/O state flipped,
        # and SETATTR for any change of the mount's attributes (R/O included).
        if changed & MOUNT_ATTR_RDONLY:
            events.append(("READONLY", after, mid, 0, set(flags)))
        events.append(("SETATTR", after, mid, 0, set(flags)))
    out = []
    for w in watches:
        if w.mount in gone:
            out.append({"kind": "meta", "event": "REMOVAL", "watch_id": w.watch_id,
                        "flags": []})
    for name, table, trig, aux, flags in events:
        for w, in_subtree in deliver(table, trig, watches):
            f = set(flags)
            if in_subtree:
                f.add("IN_SUBTREE")
            out.append({"kind": "mount", "event": name, "watch_id": w.watch_id,
                        "triggered_on": table[trig].old_id if trig in table else None,
                        "auxiliary_mount": _old(before, after, aux),
                        "flags": sorted(f)})
    return out


def _old(before: dict[int, Mount], after: dict[int, Mount], mid: int) -> int:
    if mid == 0:
        return 0
    m = after.get(mid) or before.get(mid)
    return m.old_id if m else 0


def _depth(table: dict[int, Mount], mid: int) -> int:
    d = 0
    cur = table[mid]
    while cur.parent in table and cur.parent != cur.id and d < 10000:
        cur = table[cur.parent]
        d += 1
    return d


def key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record.get("event"), record.get("watch_id"),
            record.get("fields", record).get("triggered_on"),
            record.get("fields", record).get("auxiliary_mount"),
            tuple(sorted(record.get("flags", ()))))


def identity(record: dict[str, Any]) -> Any:
    f = record.get("fields", record)
    return (record.get("event"), f.get("triggered_on"), f.get("auxiliary_mount"))
