"""Facts of the mount tree that both backends' rules are written in.

A ``Place`` is a directory of a mount: a watch is on one, an event happens at one.
``diff`` says what an operation changed, from two snapshots keyed by unique mount id:
the mounts it added and removed (parents first), the mounts it moved, and the mounts
whose attributes changed.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from ..mounts import Mount

MOUNT_ATTR_RDONLY = 0x1
Table = dict[int, Mount]


@dataclass(frozen=True)
class Place:
    mount: int          # unique id
    rel: str            # directory within the mount, "/" for its root


def rel_in(mount: Mount, abspath: str) -> str:
    """``abspath`` relative to ``mount``'s mount point ("/" for the mount point itself)."""
    base = mount.point.rstrip("/")
    rest = abspath[len(base):] if abspath.startswith(base) else abspath
    return posixpath.normpath("/" + rest.lstrip("/"))


def mount_at(table: Table, abspath: str) -> Mount:
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


def is_root(table: Table, mid: int) -> bool:
    m = table[mid]
    return m.parent == m.id or m.parent not in table


def mount_point(table: Table, mid: int) -> Place | None:
    """Where mount ``mid`` is attached: a directory of its parent (None for the root)."""
    if is_root(table, mid):
        return None
    m = table[mid]
    return Place(m.parent, rel_in(table[m.parent], m.point))


def within(place: Place, top: Place) -> bool:
    """``place`` is ``top`` or a directory below it, in the same mount."""
    if place.mount != top.mount:
        return False
    return top.rel == "/" or place.rel == top.rel or place.rel.startswith(top.rel + "/")


def in_subtree(table: Table, place: Place, top: Place) -> bool:
    """``place`` is in the subtree rooted at ``top``: below it in its mount, or in a mount
    attached (at any depth) at or below it."""
    seen: set[int] = set()
    cur: Place | None = place
    while cur is not None and cur.mount in table and cur.mount not in seen:
        if within(cur, top):
            return True
        seen.add(cur.mount)
        cur = mount_point(table, cur.mount)
    return False


def depth(table: Table, mid: int) -> int:
    d = 0
    cur = table[mid]
    while cur.parent in table and cur.parent != cur.id and d < 10000:
        cur = table[cur.parent]
        d += 1
    return d


def moved(before: Table, after: Table, mid: int) -> bool:
    """Mount ``mid`` has another parent, or another place in the same parent.

    A mount below a moved mount keeps its place in its parent: its path changes, but it
    was not moved (the kernel moves one mount, and its subtree goes with it).
    """
    return mount_point(before, mid) != mount_point(after, mid)


@dataclass(frozen=True)
class Change:
    added: tuple[int, ...]                    # parents first
    removed: tuple[int, ...]                  # parents first
    moved: tuple[int, ...]
    attrs: dict[int, tuple[int, int]]         # mount -> (attribute bits changed, bits now)


def diff(before: Table, after: Table) -> Change:
    both = sorted(before.keys() & after.keys())
    return Change(
        added=tuple(sorted(after.keys() - before.keys(), key=lambda i: (depth(after, i), i))),
        removed=tuple(sorted(before.keys() - after.keys(),
                            key=lambda i: (depth(before, i), i))),
        moved=tuple(mid for mid in both if moved(before, after, mid)),
        attrs={mid: (before[mid].attr ^ after[mid].attr, after[mid].attr) for mid in both
               if before[mid].attr != after[mid].attr})
