"""The one decoder of notification records, shared by the guest and the host.

Everything about a record's layout is data: ``FANOTIFY`` describes the upstream
fanotify mount events, and watch_queue layouts (``WatchLayout``) are built from a
series' metadata (``patches/<series>/series.toml``, section ``[abi]``), so a
second version of a series is a second table, not new code.

Malformed input never raises out of the decoders and never loops: each problem
becomes a ``Problem`` carrying its byte offset. A bad length stops decoding (nothing
after it can be trusted); a watch_queue record of an unknown type or too short for
its layout is reported and skipped, since its length field still frames it.
"""

from __future__ import annotations

import gc
import itertools
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# --- fanotify (include/uapi/linux/fanotify.h) --------------------------------

FAN_MNT_ATTACH = 0x01000000
FAN_MNT_DETACH = 0x02000000
FAN_Q_OVERFLOW = 0x00004000
FAN_EVENT_INFO_TYPE_MNT = 7
FANOTIFY_METADATA_VERSION = 3
FAN_NOFD = -1

_FAN_META = struct.Struct("<IBBHQii")      # event_len, vers, reserved, metadata_len, mask, fd, pid
_FAN_INFO_HDR = struct.Struct("<BBH")       # info_type, pad, len
_FAN_INFO_MNT = struct.Struct("<BBHIQ")     # hdr, 4 bytes hole, u64 mnt_id (offset 8)
_FAN_MASK_NAMES = ((FAN_MNT_ATTACH, "ATTACH"), (FAN_MNT_DETACH, "DETACH"),
                   (FAN_Q_OVERFLOW, "OVERFLOW"))


@dataclass(frozen=True)
class Problem:
    """A decode error: what was wrong and where (byte offset in the buffer)."""

    offset: int
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": "decode-error", "offset": self.offset, "message": self.message}


class FanEvent(NamedTuple):
    """One fanotify mount event; ``raw`` is a view into the buffer it came from."""

    offset: int
    mask: int
    mnt_id: int | None
    pid: int
    length: int
    buf: bytes

    @property
    def raw(self) -> bytes:
        return self.buf[self.offset:self.offset + self.length]

    @property
    def kind(self) -> str:
        names = [n for bit, n in _FAN_MASK_NAMES if self.mask & bit]
        return "|".join(names) or f"MASK({self.mask:#x})"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "fanotify", "event": self.kind, "mask": self.mask,
                "mnt_id": self.mnt_id, "pid": self.pid, "offset": self.offset,
                "raw": self.raw.hex()}


# The common case: every event is the 40-byte metadata + mount-info pair.
_MNT_EVENT_LEN = _FAN_META.size + _FAN_INFO_MNT.size
_WORD1 = FANOTIFY_METADATA_VERSION | (_FAN_META.size << 16)          # vers, reserved, meta_len
_WORD6 = FAN_EVENT_INFO_TYPE_MNT | (_FAN_INFO_MNT.size << 16)       # info type, pad, len


def _decode_uniform(buf: bytes) -> list[FanEvent | Problem] | None:
    """Columnar decode of a buffer made only of standard mount events, else None."""
    n = len(buf)
    if n == 0 or n % _MNT_EVENT_LEN or sys.byteorder != "little":
        return None
    mv = memoryview(buf)
    words, quads, swords = mv.cast("I"), mv.cast("Q"), mv.cast("i")   # pid is signed
    step_w, step_q = _MNT_EVENT_LEN // 4, _MNT_EVENT_LEN // 8
    count = n // _MNT_EVENT_LEN
    # Every event the standard length, version and metadata length, and one mount info
    # record of the standard size (list.count runs in C; a set of a million ints does not).
    if (words[0::step_w].tolist().count(_MNT_EVENT_LEN) != count
            or words[1::step_w].tolist().count(_WORD1) != count
            or words[6::step_w].tolist().count(_WORD6) != count):
        return None
    # tuple.__new__(FanEvent, row) for each row, called by map itself (a partial in
    # between cost a third of the rate).
    rows = zip(range(0, n, _MNT_EVENT_LEN), quads[1::step_q].tolist(),
               quads[4::step_q].tolist(), swords[5::step_w].tolist(),
               itertools.repeat(_MNT_EVENT_LEN, count), itertools.repeat(buf, count),
               strict=True)
    # A million new tuples set off the cyclic collector over and over (3.11), though
    # none of them can be part of a cycle: it waits until the list is built.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return list(map(tuple.__new__, itertools.repeat(FanEvent, count), rows))
    finally:
        if collecting:
            gc.enable()


def decode_fanotify(buf: bytes) -> list[FanEvent | Problem]:
    """Decode a buffer read from a fanotify group initialised with FAN_REPORT_MNT."""
    buf = bytes(buf)
    fast = _decode_uniform(buf)
    if fast is not None:
        return fast
    out: list[FanEvent | Problem] = []
    off = 0
    n = len(buf)
    meta = _FAN_META
    while off < n:
        if n - off < meta.size:
            out.append(Problem(off, f"truncated event header: {n - off} of {meta.size} bytes"))
            break
        event_len, vers, _res, meta_len, mask, _fd, pid = meta.unpack_from(buf, off)
        if vers != FANOTIFY_METADATA_VERSION:
            out.append(Problem(off, f"unknown fanotify metadata version {vers}"))
            break
        if event_len < meta.size or meta_len < meta.size or meta_len > event_len:
            out.append(Problem(off, f"bad event length {event_len} (metadata {meta_len})"))
            break
        if off + event_len > n:
            out.append(Problem(off, f"event length {event_len} runs past the buffer "
                                    f"({n - off} bytes left)"))
            break
        mnt_id = None
        ioff = off + meta_len
        end = off + event_len
        bad = None
        while ioff < end:
            if end - ioff < _FAN_INFO_HDR.size:
                bad = Problem(ioff, "truncated info record header")
                break
            itype, _pad, ilen = _FAN_INFO_HDR.unpack_from(buf, ioff)
            if ilen < _FAN_INFO_HDR.size or ioff + ilen > end:
                bad = Problem(ioff, f"bad info record length {ilen}")
                break
            if itype == FAN_EVENT_INFO_TYPE_MNT:
                if ilen < _FAN_INFO_MNT.size:
                    bad = Problem(ioff, f"mount info record too short ({ilen} bytes)")
                    break
                mnt_id = _FAN_INFO_MNT.unpack_from(buf, ioff)[4]
            ioff += ilen
        if bad is not None:
            out.append(bad)
            break
        out.append(FanEvent(off, mask, mnt_id, pid, event_len, buf))
        off = end
    return out


# --- watch_queue (include/uapi/linux/watch_queue.h) --------------------------

WATCH_TYPE_META = 0
WATCH_TYPE_KEY_NOTIFY = 1
WATCH_META_REMOVAL_NOTIFICATION = 0
WATCH_META_LOSS_NOTIFICATION = 1
WATCH_INFO_LENGTH = 0x7F
WATCH_INFO_ID = 0xFF00
WATCH_INFO_TYPE_INFO = 0xFFFF0000
_WQ_HDR = struct.Struct("<II")

KEY_SUBTYPES = {0: "INSTANTIATED", 1: "UPDATED", 2: "LINKED", 3: "UNLINKED", 4: "CLEARED",
                5: "REVOKED", 6: "INVALIDATED", 7: "SETATTR"}
_STRUCT_CODES = {1: "B", 2: "H", 4: "I", 8: "Q"}


@dataclass(frozen=True)
class WatchLayout:
    """A watch_queue record layout of one series version (from its metadata)."""

    name: str
    watch_type: int
    subtypes: dict[int, str]
    flags: dict[str, int]                       # name -> bit mask in the info word
    fields: tuple[tuple[str, int, int], ...]    # (name, offset, size) from byte 0
    record_size: int

    @classmethod
    def from_abi(cls, abi: dict[str, Any]) -> WatchLayout:
        """Build from a series' ``[abi]`` table (see patches/*/series.toml)."""
        fields = tuple(sorted(((str(k), int(v[0]), int(v[1]))
                               for k, v in abi["record"].items()), key=lambda f: f[1]))
        return cls(name=str(abi.get("layout", "?")), watch_type=int(abi["watch_type"]),
                   subtypes={int(v): str(k) for k, v in abi["subtypes"].items()},
                   flags={str(k): int(v) for k, v in abi["flags"].items()},
                   fields=fields, record_size=int(abi["record_size"]))


@dataclass(frozen=True)
class WatchRecord:
    """One watch_queue record, decoded."""

    offset: int
    type: int
    subtype: int
    kind: str              # "mount", "key", "meta", or "unknown"
    name: str              # subtype name
    watch_id: int
    flags: tuple[str, ...]
    fields: dict[str, int] = field(default_factory=dict)
    raw: bytes = b""

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "event": self.name, "type": self.type,
                "subtype": self.subtype, "watch_id": self.watch_id, "flags": list(self.flags),
                "fields": self.fields, "offset": self.offset, "raw": self.raw.hex()}


def decode_watch_queue(buf: bytes, layouts: tuple[WatchLayout, ...] = ()
                       ) -> list[WatchRecord | Problem]:
    """Decode records read from a notification pipe."""
    by_type = {lay.watch_type: lay for lay in layouts}
    out: list[WatchRecord | Problem] = []
    off = 0
    n = len(buf)
    while off < n:
        if n - off < _WQ_HDR.size:
            out.append(Problem(off, f"truncated record header: {n - off} of 8 bytes"))
            break
        word, info = _WQ_HDR.unpack_from(buf, off)
        rtype, subtype = word & 0xFFFFFF, word >> 24
        length = info & WATCH_INFO_LENGTH
        if length < _WQ_HDR.size:
            out.append(Problem(off, f"record length {length} is shorter than its header"))
            break
        if off + length > n:
            out.append(Problem(off, f"record length {length} runs past the buffer "
                                    f"({n - off} bytes left)"))
            break
        wid = (info & WATCH_INFO_ID) >> 8
        raw = bytes(buf[off:off + length])
        out.append(_watch_record(off, rtype, subtype, wid, info, raw, by_type))
        off += length
    return out


def _watch_record(off: int, rtype: int, subtype: int, wid: int, info: int, raw: bytes,
                  by_type: dict[int, WatchLayout]) -> WatchRecord | Problem:
    if rtype == WATCH_TYPE_META:
        name = {0: "REMOVAL", 1: "LOSS"}.get(subtype, f"META({subtype})")
        fields = {"id": struct.unpack_from("<Q", raw, 8)[0]} if len(raw) >= 16 else {}
        return WatchRecord(off, rtype, subtype, "meta", name, wid, (), fields, raw)
    if rtype == WATCH_TYPE_KEY_NOTIFY:
        fields = {}
        if len(raw) >= 16:
            fields = dict(zip(("key_id", "aux"), struct.unpack_from("<II", raw, 8), strict=True))
        name = KEY_SUBTYPES.get(subtype, f"KEY({subtype})")
        return WatchRecord(off, rtype, subtype, "key", name, wid, (), fields, raw)
    lay = by_type.get(rtype)
    if lay is None:
        return Problem(off, f"unknown record type {rtype} (subtype {subtype})")
    if len(raw) < lay.record_size:
        return Problem(off, f"{lay.name} record is {len(raw)} bytes, layout says "
                            f"{lay.record_size}")
    fields = {fname: struct.unpack_from("<" + _STRUCT_CODES[size], raw, foff)[0]
              for fname, foff, size in lay.fields}
    flags = tuple(fname for fname, bit in lay.flags.items() if info & bit)
    name = lay.subtypes.get(subtype, f"SUBTYPE({subtype})")
    return WatchRecord(off, rtype, subtype, "mount", name, wid, flags, fields, raw)


def describe(record: object, where: Callable[[int | None], str] | None = None) -> str:
    """One line for a decoded record, as ``harness decode`` and the live watch print it;
    ``where(mount_id)`` may add where that mount is (the live watch knows its table)."""
    at = where or (lambda _mid: "")
    if isinstance(record, Problem):
        return f"DECODE ERROR at offset {record.offset}: {record.message}"
    if isinstance(record, FanEvent):
        mid = f"{record.mnt_id:#x}" if record.mnt_id is not None else "-"
        return f"{record.kind:<14} mnt_id={mid}{at(record.mnt_id)}"
    if isinstance(record, WatchRecord):
        fields = " ".join(f"{k}={v}" for k, v in record.fields.items())
        trig = record.fields.get("triggered_on")
        suffix = at(int(trig)) if isinstance(trig, int) else ""
        return (f"{record.name:<14} id={record.watch_id} flags={','.join(record.flags) or '-'} "
                f"{fields}{suffix}")
    return repr(record)
