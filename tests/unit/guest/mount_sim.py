"""A mount namespace as a dict, for the oracle's pure tests: mount, move, umount by path.

Each call changes ``table`` the way the kernel changes the mount table (unique ids from
0x1000 up; the reusable id is the low 12 bits), so a test takes ``snap()`` before and
after an operation and feeds both to a model, as the guest does with statmount.
"""

from __future__ import annotations

from dataclasses import replace

from mnh_guest.mounts import Mount
from mnh_guest.oracle.topology import mount_at, rel_in
from mnh_guest.oracle.watch_queue import Watch

RDONLY, NOSUID = 0x1, 0x2


class Sim:
    def __init__(self) -> None:
        self.table: dict[int, Mount] = {}
        self.next_id = 0x1000
        self.root = self._add("/", None)

    def _add(self, point: str, parent: int | None, attr: int = 0, fstype: str = "tmpfs") -> int:
        mid = self.next_id
        self.next_id += 1
        par = mid if parent is None else parent
        self.table[mid] = Mount(id=mid, parent=par, old_id=mid & 0xFFF,
                                old_parent=par & 0xFFF, point=point, root="/", fstype=fstype,
                                attr=attr, propagation=0, peer_group=0, master=0)
        return mid

    def snap(self) -> dict[int, Mount]:
        return dict(self.table)

    def at(self, path: str) -> Mount:
        """The mount whose mount point is ``path`` (the top of a stack)."""
        m = mount_at(self.table, path)
        assert m.point == path, f"nothing is mounted on {path}"
        return m

    def mount(self, path: str, attr: int = 0, fstype: str = "tmpfs") -> int:
        return self._add(path, mount_at(self.table, path).id, attr, fstype)

    def below(self, mid: int) -> list[int]:
        """Every mount under ``mid`` (not ``mid`` itself)."""
        out: list[int] = []
        todo = [mid]
        while todo:
            cur = todo.pop()
            kids = [m.id for m in self.table.values() if m.parent == cur and m.id != cur]
            out += kids
            todo += kids
        return out

    def umount(self, path: str, lazy: bool = False) -> list[int]:
        m = self.at(path)
        kids = self.below(m.id)
        assert lazy or not kids, f"{path} is busy"
        for mid in [m.id, *kids]:
            del self.table[mid]
        return [m.id, *kids]

    def move(self, src: str, dst: str) -> None:
        m = self.at(src)
        parent = mount_at(self.table, dst)
        for mid in self.below(m.id):
            k = self.table[mid]
            self.table[mid] = replace(k, point=dst + k.point[len(src):])
        self.table[m.id] = replace(m, point=dst, parent=parent.id,
                                   old_parent=parent.old_id)

    def setattr(self, path: str, set_bits: int = 0, clr_bits: int = 0,
                recursive: bool = False) -> int:
        m = self.at(path)
        for mid in [m.id, *(self.below(m.id) if recursive else [])]:
            k = self.table[mid]
            self.table[mid] = replace(k, attr=(k.attr | set_bits) & ~clr_bits)
        return m.id

    def watch(self, watch_id: int, path: str) -> Watch:
        m = mount_at(self.table, path)
        return Watch(watch_id, m.id, rel_in(m, path))
