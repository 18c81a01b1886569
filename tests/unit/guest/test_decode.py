"""mnh_guest.decode: fanotify and watch_queue records built by hand, malformed input, fuzz."""

from __future__ import annotations

import random
import struct

import pytest
from mnh_guest.decode import (
    FAN_MNT_ATTACH,
    FAN_MNT_DETACH,
    FAN_Q_OVERFLOW,
    FanEvent,
    Problem,
    WatchLayout,
    WatchRecord,
    decode_fanotify,
    decode_watch_queue,
)

# --- fanotify -------------------------------------------------------------------


def fan_event(mask: int, mnt_id: int | None = None, pid: int = 42, vers: int = 3,
              event_len: int | None = None, meta_len: int = 24,
              info_len: int = 16, info_type: int = 7) -> bytes:
    info = b""
    if mnt_id is not None:
        info = struct.pack("<BBHIQ", info_type, 0, info_len, 0, mnt_id)
    length = 24 + len(info) if event_len is None else event_len
    return struct.pack("<IBBHQii", length, vers, 0, meta_len, mask, -1, pid) + info


def test_fanotify_attach_and_move() -> None:
    buf = (fan_event(FAN_MNT_ATTACH, 0x1000000000001, pid=7)
           + fan_event(FAN_MNT_ATTACH | FAN_MNT_DETACH, 0x1000000000002)
           + fan_event(FAN_MNT_DETACH, 3))
    out = decode_fanotify(buf)
    assert all(isinstance(e, FanEvent) for e in out)
    events = [e for e in out if isinstance(e, FanEvent)]
    assert [(e.kind, e.mnt_id, e.offset) for e in events] == [
        ("ATTACH", 0x1000000000001, 0),
        ("ATTACH|DETACH", 0x1000000000002, 40),
        ("DETACH", 3, 80),
    ]
    assert events[0].pid == 7
    assert events[0].raw == buf[:40]
    j = events[1].to_json()
    assert (j["event"], j["mnt_id"], j["raw"]) == ("ATTACH|DETACH", 0x1000000000002,
                                                   buf[40:80].hex())


def test_fanotify_overflow_without_info_record() -> None:
    out = decode_fanotify(fan_event(FAN_Q_OVERFLOW))
    assert len(out) == 1 and isinstance(out[0], FanEvent)
    assert (out[0].kind, out[0].mnt_id) == ("OVERFLOW", None)


def test_fanotify_unknown_mask_and_other_info_record_are_kept() -> None:
    ev = fan_event(0x8, mnt_id=5, info_type=1)   # an info record of another type
    out = decode_fanotify(ev)
    assert isinstance(out[0], FanEvent)
    assert (out[0].kind, out[0].mnt_id) == ("MASK(0x8)", None)


def test_empty_buffer() -> None:
    assert decode_fanotify(b"") == []
    assert decode_watch_queue(b"") == []


GOOD = fan_event(FAN_MNT_ATTACH, 9)


@pytest.mark.parametrize(("bad", "offset", "words"), [
    (GOOD[:10], 40, "truncated event header"),
    (fan_event(FAN_MNT_ATTACH, 9, event_len=0), 40, "bad event length 0"),
    (fan_event(FAN_MNT_ATTACH, 9, event_len=23), 40, "bad event length 23"),
    (fan_event(FAN_MNT_ATTACH, 9, meta_len=41), 40, "bad event length"),
    (fan_event(FAN_MNT_ATTACH, 9, event_len=400), 40, "runs past the buffer"),
    (GOOD[:39], 40, "runs past the buffer"),
    (fan_event(FAN_MNT_ATTACH, 9, vers=2), 40, "version 2"),
    (fan_event(FAN_MNT_ATTACH, 9, info_len=0), 64, "bad info record length 0"),
    (fan_event(FAN_MNT_ATTACH, 9, info_len=17), 64, "bad info record length 17"),
    (fan_event(FAN_MNT_ATTACH, 9, info_len=8), 64, "mount info record too short (8 bytes)"),
    (struct.pack("<IBBHQii", 26, 3, 0, 24, FAN_MNT_ATTACH, -1, 1) + b"\x07\x00", 64,
     "truncated info record header"),
    (struct.pack("<IBBHQii", 32, 3, 0, 24, FAN_MNT_ATTACH, -1, 1)
     + struct.pack("<BBHI", 7, 0, 8, 0), 64, "mount info record too short"),
], ids=["short-header", "len-0", "len-23", "meta-len", "len-past-end", "cut-event",
        "version", "info-len-0", "info-len-past-event", "info-len-8", "info-hdr-cut",
        "mnt-info-short"])
def test_fanotify_malformed_after_a_good_event(bad: bytes, offset: int, words: str) -> None:
    # A good event after the bad one too, unless the bad one is cut short by the buffer end.
    cut = words in ("truncated event header", "runs past the buffer")
    out = decode_fanotify(GOOD + bad + (b"" if cut else GOOD))
    assert isinstance(out[0], FanEvent) and out[0].mnt_id == 9
    assert len(out) == 2, out          # decoding stops at the problem
    p = out[1]
    assert isinstance(p, Problem)
    assert p.offset == offset
    assert words in p.message
    assert p.to_json() == {"kind": "decode-error", "offset": offset, "message": p.message}


# --- watch_queue ----------------------------------------------------------------

ABI = {"layout": "v5", "watch_type": 2, "record_size": 32,
       "subtypes": {"NEW_MOUNT": 0, "UNMOUNT": 1},
       "flags": {"IN_SUBTREE": 0x10000, "IS_NOW_RO": 0x40000},
       "record": {"triggered_on": [8, 4], "auxiliary_mount": [12, 4],
                  "topology_changes": [16, 4], "attr_changes": [20, 4],
                  "aux_topology_changes": [24, 4]}}
LAYOUTS = (WatchLayout.from_abi(ABI),)


def wq(rtype: int, subtype: int, payload: bytes, wid: int = 0, flags: int = 0,
       length: int | None = None) -> bytes:
    n = 8 + len(payload) if length is None else length
    return struct.pack("<II", rtype | subtype << 24, n | wid << 8 | flags) + payload


def mount_record(subtype: int, wid: int, flags: int, *values: int) -> bytes:
    return wq(2, subtype, struct.pack("<5I", *values) + b"\0" * 4, wid, flags)


def test_layout_from_abi() -> None:
    lay = LAYOUTS[0]
    assert (lay.name, lay.watch_type, lay.record_size) == ("v5", 2, 32)
    assert lay.subtypes == {0: "NEW_MOUNT", 1: "UNMOUNT"}
    assert [f[0] for f in lay.fields] == ["triggered_on", "auxiliary_mount",
                                          "topology_changes", "attr_changes",
                                          "aux_topology_changes"]


def test_mount_records() -> None:
    buf = (mount_record(0, 3, 0x10000, 100, 101, 5, 0, 1)
           + mount_record(1, 4, 0x40000 | 0x10000, 200, 0, 6, 1, 0))
    out = decode_watch_queue(buf, LAYOUTS)
    assert all(isinstance(r, WatchRecord) for r in out)
    a, b = (r for r in out if isinstance(r, WatchRecord))
    assert (a.kind, a.name, a.watch_id, a.flags, a.offset) == ("mount", "NEW_MOUNT", 3,
                                                               ("IN_SUBTREE",), 0)
    assert a.fields == {"triggered_on": 100, "auxiliary_mount": 101, "topology_changes": 5,
                        "attr_changes": 0, "aux_topology_changes": 1}
    assert (b.name, b.watch_id, b.offset) == ("UNMOUNT", 4, 32)
    assert set(b.flags) == {"IN_SUBTREE", "IS_NOW_RO"}
    assert b.to_json()["raw"] == buf[32:].hex()


def test_meta_loss_and_removal() -> None:
    buf = wq(0, 1, b"", wid=2) + wq(0, 0, struct.pack("<Q", 0xDEADBEEF), wid=3)
    loss, removal = decode_watch_queue(buf, LAYOUTS)
    assert isinstance(loss, WatchRecord) and isinstance(removal, WatchRecord)
    assert (loss.kind, loss.name, loss.watch_id, loss.fields) == ("meta", "LOSS", 2, {})
    assert (removal.name, removal.watch_id, removal.offset) == ("REMOVAL", 3, 8)
    assert removal.fields == {"id": 0xDEADBEEF}


def test_key_records() -> None:
    buf = wq(1, 1, struct.pack("<II", 0x1234, 7)) + wq(1, 99, struct.pack("<II", 1, 2))
    upd, unknown = decode_watch_queue(buf)
    assert isinstance(upd, WatchRecord) and isinstance(unknown, WatchRecord)
    assert (upd.kind, upd.name, upd.fields) == ("key", "UPDATED", {"key_id": 0x1234, "aux": 7})
    assert unknown.name == "KEY(99)"


def test_unknown_type_is_a_problem() -> None:
    out = decode_watch_queue(wq(9, 0, b"\0" * 8), LAYOUTS)
    assert len(out) == 1 and isinstance(out[0], Problem)
    assert out[0].offset == 0 and "unknown record type 9" in out[0].message


def test_mount_record_without_its_layout_is_a_problem() -> None:
    out = decode_watch_queue(mount_record(0, 1, 0, 1, 2, 3, 4, 5))
    assert isinstance(out[0], Problem) and "unknown record type 2" in out[0].message


def test_short_mount_record_is_a_problem() -> None:
    out = decode_watch_queue(wq(2, 0, b"\0" * 8), LAYOUTS)
    assert isinstance(out[0], Problem) and "16 bytes, layout says 32" in out[0].message


LOSS = wq(0, 1, b"")


@pytest.mark.parametrize(("bad", "words"), [
    (LOSS[:5], "truncated record header"),
    (wq(0, 1, b"", length=0), "length 0 is shorter"),
    (wq(0, 1, b"", length=7), "length 7 is shorter"),
    (wq(0, 0, b"\0" * 8, length=40), "runs past the buffer"),
], ids=["short-header", "length-0", "length-7", "length-past-end"])
def test_watch_queue_malformed_stops(bad: bytes, words: str) -> None:
    cut = words == "truncated record header"
    out = decode_watch_queue(LOSS + bad + (b"" if cut else LOSS), LAYOUTS)
    assert isinstance(out[0], WatchRecord)
    p = out[-1]
    assert isinstance(p, Problem), out
    assert p.offset == 8
    assert words in p.message
    assert len(out) == 2           # stops there, does not loop on a zero length


# --- fuzz -----------------------------------------------------------------------

def _mutations(rng: random.Random, seeds: list[bytes], n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        if rng.random() < 0.5:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(301))))
            continue
        b = bytearray(rng.choice(seeds) * rng.randrange(1, 4))
        for _ in range(rng.randrange(1, 6)):
            if b:
                b[rng.randrange(len(b))] = rng.randrange(256)
        out.append(bytes(b[:rng.randrange(len(b) + 1)]))
    return out


def test_fuzz_never_raises_and_always_ends() -> None:
    rng = random.Random(20250601)
    fan_seeds = [GOOD, fan_event(FAN_MNT_DETACH | FAN_MNT_ATTACH, 1) + GOOD]
    wq_seeds = [LOSS, mount_record(0, 1, 0x10000, 1, 2, 3, 4, 5),
                wq(1, 1, struct.pack("<II", 1, 2)) + wq(0, 0, b"\0" * 8)]
    for buf in _mutations(rng, fan_seeds, 2000):
        out = decode_fanotify(buf)
        assert all(isinstance(x, FanEvent | Problem) for x in out)
        assert sum(isinstance(x, Problem) for x in out) <= 1
        assert len(out) <= len(buf) // 24 + 1
    for buf in _mutations(rng, wq_seeds, 2000):
        out2 = decode_watch_queue(buf, LAYOUTS)
        assert all(isinstance(x, WatchRecord | Problem) for x in out2)
        assert len(out2) <= len(buf) // 8 + 1


def test_fast_path_agrees_with_the_checking_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # decode_fanotify has a columnar fast path for buffers of standard 40-byte mount
    # events; it must give exactly what the checking loop gives.
    from mnh_guest import decode

    rng = random.Random(7)
    bufs = []
    for _ in range(200):
        bufs.append(b"".join(
            fan_event(rng.choice([FAN_MNT_ATTACH, FAN_MNT_DETACH, FAN_MNT_ATTACH | FAN_MNT_DETACH,
                                  rng.getrandbits(64)]),
                      rng.getrandbits(64), pid=rng.randrange(-2**31, 2**31))
            for _ in range(rng.randrange(1, 20))))

    def view(out: list[FanEvent | Problem]) -> list[tuple[object, ...]]:
        return [(e.offset, e.mask, e.mnt_id, e.pid, e.raw, e.kind) if isinstance(e, FanEvent)
                else (e.offset, e.message) for e in out]

    assert all(decode._decode_uniform(b) is not None for b in bufs)   # the fast path ran
    fast = [view(decode_fanotify(b)) for b in bufs]
    monkeypatch.setattr(decode, "_decode_uniform", lambda buf: None)
    slow = [view(decode_fanotify(b)) for b in bufs]
    assert fast == slow


def test_uniform_fast_path_leaves_the_collector_as_it_found_it() -> None:
    import gc

    event = struct.pack("<IBBHQiiBBHIQ", 40, 3, 0, 24, FAN_MNT_ATTACH, -1, 7, 7, 0, 16,
                        0, 0x80000001)
    assert gc.isenabled()
    assert [e.mnt_id for e in decode_fanotify(event * 3)] == [0x80000001] * 3
    assert gc.isenabled()
    gc.disable()
    try:
        decode_fanotify(event * 3)
        assert not gc.isenabled()
    finally:
        gc.enable()
