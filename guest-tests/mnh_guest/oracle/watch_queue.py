"""The watch_queue oracle as a specification: what the series' own text says a watch gets.

Every rule below quotes the sentence it comes from: the ver #5 commit message of
"watch_queue: Implement mount topology and attribute change notifications [ver #5]"
and David Howells' replies in its review thread (seed 000), the comments the same patch
adds to include/uapi/linux/watch_queue.h and Documentation/watch_queue.rst, and the
series' 2018 cover letter (seed 004).  Where the text leaves a reading open, the rule
says so and names the reading it takes; where the port's own patches (0005, 0008) have
since written a reading down, the rule follows it and quotes it too, marked as the port's.

The model runs in four steps, each a table of rules:

1. ``EVENT_RULES``: the notifications an operation generates: subtype, the mount it is
   accounted to (``triggered_on``), the auxiliary mount, and the place it happened;
2. ``FLAG_RULES``: IS_NOW_RO, IS_SUBMOUNT, IS_RECURSIVE;
3. ``RECEIVES`` (which watches get each notification) and ``IN_SUBTREE`` (the flag);
4. ``REMOVAL``: what a watch gets when its mount goes away.

``watch_queue_impl`` predicts the same operations from the series' code (the walk of
post_mount_notification()); the verdict comes from this module.  Mount ids in records
are the reusable ids /proc/self/mountinfo shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..mounts import Mount
from .model import Citation, Record, Rule
from .topology import (
    MOUNT_ATTR_RDONLY,
    Change,
    Place,
    Table,
    diff,
    in_subtree,
    mount_point,
)

COMMIT = "ver #5 commit message (seed 000)"
THREAD = "David Howells, ver #5 review thread, 2020-07-23 (seed 000)"
UAPI = "include/uapi/linux/watch_queue.h as ver #5 patches it (seed 000)"
DOC = "Documentation/watch_queue.rst as ver #5 patches it (seed 000)"
SYSCALL = "sys_watch_mount() kernel-doc, fs/mount_notify.c, ver #5 (seed 000)"
COVER = "cover letter of the 2018 RFC, design decision (11) (seed 004; also seed 002)"
KAPI = "reference/kernel-apis.md section 1, the watch_queue core"
# The port's own text, where ver #5's leaves a reading open (not the series author's).
PORT_0005 = "patches/mount-notify-v5/0005, comment on notify_new_tree() (the port's)"
PORT_0008 = ("patches/mount-notify-v5/0008, Documentation/core-api/watch_queue.rst "
             "(the port's)")

SUBTREE_SENTENCE = Citation(COMMIT, "Mount notifications propagate up the tree towards the "
                            "root, so a watch will catch all of the events happening in the "
                            "subtree rooted at the watch.")
TRIGGERED_ON = Citation(COMMIT, "n->triggered_on indicates the ID of the mount to which the "
                        "change was accounted (e.g. the new parent of a new mount).")
AUXILIARY = Citation(COMMIT, "n->axiliary_mount indicates the ID of an additional mount that "
                     "was affected (e.g. a new mount itself) or 0.")


@dataclass(frozen=True)
class Watch:
    watch_id: int
    mount: int          # unique id of the watched mount
    rel: str            # directory within that mount, "/" for its root

    @property
    def place(self) -> Place:
        return Place(self.mount, self.rel)


@dataclass(frozen=True)
class Situation:
    """One operation: the snapshots around it, what changed, and the scenario's hints."""

    before: Table
    after: Table
    change: Change
    hints: Mapping[str, Any]

    def table(self, when: str) -> Table:
        return self.before if when == "before" else self.after


@dataclass(frozen=True)
class Event:
    """A notification the operation generates, before it is delivered to any watch."""

    subtype: str
    triggered_on: int            # unique id of the mount it is accounted to
    aux: int                     # unique id of the auxiliary mount, 0 for none
    place: Place                 # where it happened
    when: str                    # "before" or "after": the snapshot ``place`` is read in
    flags: frozenset[str] = frozenset()
    rules: tuple[str, ...] = field(default=())


@dataclass(frozen=True, kw_only=True)
class EventRule(Rule):
    produce: Callable[[Situation], list[Event]]


@dataclass(frozen=True, kw_only=True)
class FlagRule(Rule):
    flags: Callable[[Situation, Event], frozenset[str]]


@dataclass(frozen=True, kw_only=True)
class WatchRule(Rule):
    test: Callable[[Situation, Event, Watch], bool]


# --- 1. what an operation generates ------------------------------------------------------

def _new_mounts(s: Situation) -> list[Event]:
    out = []
    for mid in s.change.added:
        at = mount_point(s.after, mid)
        if at is not None:
            out.append(Event("NEW_MOUNT", at.mount, mid, at, "after"))
    return out


def _unmounts(s: Situation) -> list[Event]:
    out = []
    for mid in s.change.removed:
        at = mount_point(s.before, mid)
        if at is not None:
            out.append(Event("UNMOUNT", at.mount, mid, at, "before"))
    return out


def _expiries(s: Situation) -> list[Event]:
    if not s.hints.get("expiry"):
        return []
    gone = set(s.change.removed)
    return [Event("EXPIRY", mid, 0, Place(mid, "/"), "before")
            for mid in s.change.removed if s.before[mid].parent not in gone]


def _moves_from(s: Situation) -> list[Event]:
    out = []
    for mid in s.change.moved:
        at = mount_point(s.before, mid)
        if at is not None:
            out.append(Event("MOVE_FROM", at.mount, mid, at, "before"))
    return out


def _moves_to(s: Situation) -> list[Event]:
    out = []
    for mid in s.change.moved:
        at = mount_point(s.after, mid)
        if at is not None:
            out.append(Event("MOVE_TO", at.mount, mid, at, "after"))
    return out


def _attr_event(subtype: str, mid: int) -> Event:
    return Event(subtype, mid, 0, Place(mid, "/"), "after")


def _readonly(s: Situation) -> list[Event]:
    if s.hints.get("recursive_root") is not None:
        return []
    return [_attr_event("READONLY", mid) for mid, (bits, _now) in s.change.attrs.items()
            if bits & MOUNT_ATTR_RDONLY]


def _setattr(s: Situation) -> list[Event]:
    if s.hints.get("recursive_root") is not None:
        return []
    return [_attr_event("SETATTR", mid) for mid in s.change.attrs]


def _recursive(s: Situation) -> list[Event]:
    root = s.hints.get("recursive_root")
    if root is None or root not in s.after or not s.change.attrs:
        return []
    bits = 0
    for changed, _now in s.change.attrs.values():
        bits |= changed
    readonly = [_attr_event("READONLY", root)] if bits & MOUNT_ATTR_RDONLY else []
    return [*readonly, _attr_event("SETATTR", root)]


NEW_MOUNT = EventRule(
    name="new-mount",
    says="every mount that appears is one NEW_MOUNT on its parent, aux the new mount, "
         "happening at its mount point",
    cites=(Citation(UAPI, "NOTIFY_MOUNT_NEW_MOUNT = 0, /* New mount added */"),
           TRIGGERED_ON, AUXILIARY),
    open="Whether attaching a tree (a recursive bind, a clone, the copies propagation "
         "makes) is one record or one per mount is not said; read with the subtree "
         "sentence, every mount that appears in a watched subtree is an event there, so "
         "one NEW_MOUNT per mount, each on its own parent.",
    produce=_new_mounts)

UNMOUNT = EventRule(
    name="unmount",
    says="every mount that goes is one UNMOUNT on the parent it left, aux that mount, "
         "happening at its old mount point",
    cites=(Citation(UAPI, "NOTIFY_MOUNT_UNMOUNT = 1, /* Mount removed manually */"),
           TRIGGERED_ON, AUXILIARY,
           Citation(PORT_0005, "a watch must hear of every mount that appears in its "
                    "subtree, just as it hears of every mount that a lazy unmount takes "
                    "away."),
           Citation(PORT_0008, "a watch on a directory sees a mount being attached, "
                    "unmounted or moved where the mountpoint is that directory or below it")),
    open="Which mount an unmount is accounted to is only given by analogy ('the new "
         "parent of a new mount'): the parent it left.  For the mounts below the top of an "
         "unmounted tree (a lazy unmount) ver #5's text does not say whether they are "
         "still 'in the subtree rooted at the watch' when they go; this rule reads the "
         "subtree as it was before the operation, so a watch hears of every mount the "
         "operation took out of its subtree, as it hears of every mount an attach adds "
         "(the port's 0005 says so in as many words).  The series' code detaches the top "
         "first, and the walks of the mounts below it end in the detached tree.",
    produce=_unmounts)

EXPIRY = EventRule(
    name="expiry",
    says="an automount the kernel expired (hint 'expiry') is EXPIRY on the expired mount "
         "itself, aux 0, besides its UNMOUNT; for a tree, on its top only",
    cites=(Citation(UAPI, "NOTIFY_MOUNT_EXPIRY = 2, /* Automount expired */"), AUXILIARY),
    open="Which mount EXPIRY is accounted to is not said: read as the mount that expired "
         "(nothing else was affected, so aux is 0); that its removal is still an "
         "UNMOUNT is read from 'Mount removed manually' not excluding it.  The snapshots "
         "cannot tell an expiry from an unmount: the scenario says so.",
    produce=_expiries)

MOVE_FROM = EventRule(
    name="move-from",
    says="a moved mount is MOVE_FROM on the parent it left, aux the mount, happening at "
         "its old mount point",
    cites=(Citation(UAPI, "NOTIFY_MOUNT_MOVE_FROM = 5, /* Mount moved from here */"),
           Citation(THREAD, "You get up to two messages in that case:"),
           Citation(THREAD, "but either message may get filtered because the event "
                    "occurred outside of your watched tree.")),
    open="'Moved' is read as the mount the operation moved (another parent, or another "
         "place in the same parent); the mounts below it keep their place in their "
         "parents and are not moved.",
    produce=_moves_from)

MOVE_TO = EventRule(
    name="move-to",
    says="a moved mount is MOVE_TO on its new parent, aux the mount, happening at its new "
         "mount point",
    cites=(Citation(UAPI, "NOTIFY_MOUNT_MOVE_TO = 6, /* Mount moved to here (compare "
                    "op_id) */"),
           Citation(THREAD, "You get up to two messages in that case:")),
    open="As for move-from.",
    produce=_moves_to)

READONLY = EventRule(
    name="readonly",
    says="a mount whose read-only state flipped is READONLY on that mount, aux 0, "
         "happening at its root",
    cites=(Citation(UAPI, "NOTIFY_MOUNT_READONLY = 3, /* Mount R/O state changed */"),
           Citation(THREAD, "Sorry, that should be \"mount\".")),
    open="The commit message says 'if the superblock becomes R/O'; its author corrected "
         "that to the mount, which this rule follows (MOUNT_ATTR_RDONLY of the mount).",
    produce=_readonly)

SETATTR = EventRule(
    name="setattr",
    says="a mount whose attributes changed (read-only included) is SETATTR on that mount, "
         "aux 0, happening at its root",
    cites=(Citation(UAPI, "NOTIFY_MOUNT_SETATTR = 4, /* Mount attributes changed */"),),
    open="Whether a read-only flip is READONLY alone or READONLY and SETATTR is not said; "
         "read-only is one of the mount's attributes, so both.",
    produce=_setattr)

RECURSIVE = EventRule(
    name="recursive",
    says="an attribute change applied recursively (hint 'recursive_root') is one READONLY "
         "(if any mount's R/O state flipped) and one SETATTR, on the mount it was applied to",
    cites=(Citation(COMMIT, "n->watch.info & NOTIFY_MOUNT_IS_RECURSIVE if true indicates "
                    "that the notifcation was generated by an event (eg. SETATTR) that was "
                    "applied recursively.  The notification is only generated for the "
                    "object that initially triggered it."),),
    open="Whether READONLY is part of the one notification is not said: read as the same "
         "pair a non-recursive change makes, for the one mount.",
    produce=_recursive)

EVENT_RULES: tuple[EventRule, ...] = (NEW_MOUNT, UNMOUNT, EXPIRY, MOVE_FROM, MOVE_TO,
                                      READONLY, SETATTR, RECURSIVE)


# --- 2. flags ----------------------------------------------------------------------------

def _is_now_ro(s: Situation, e: Event) -> frozenset[str]:
    subject = {"NEW_MOUNT": e.aux, "READONLY": e.triggered_on,
               "SETATTR": e.triggered_on}.get(e.subtype)
    m = s.after.get(subject) if subject is not None else None
    return frozenset({"IS_NOW_RO"}) if m is not None and m.attr & MOUNT_ATTR_RDONLY \
        else frozenset()


def _is_submount(s: Situation, e: Event) -> frozenset[str]:
    return frozenset({"IS_SUBMOUNT"}) if e.subtype == "NEW_MOUNT" and s.hints.get("submount") \
        else frozenset()


def _is_recursive(s: Situation, e: Event) -> frozenset[str]:
    attr = e.subtype in ("READONLY", "SETATTR")
    return frozenset({"IS_RECURSIVE"}) if attr and s.hints.get("recursive_root") is not None \
        else frozenset()


IS_NOW_RO = FlagRule(
    name="is-now-ro",
    says="IS_NOW_RO on READONLY and SETATTR when the mount is read-only afterwards, and on "
         "NEW_MOUNT when the new mount is read-only",
    cites=(Citation(COMMIT, "n->watch.info & NOTIFY_MOUNT_IS_NOW_RO will be used for "
                    "NOTIFY_MOUNT_READONLY, being set if the superblock becomes R/O, and "
                    "being cleared otherwise, and for NOTIFY_MOUNT_NEW_MOUNT, being set if "
                    "the new mount is a submount (e.g. an automount)."),
           Citation(THREAD, "Sorry, that should be \"mount\"."),
           Citation(THREAD, "That should read \"if the new mount is readonly\"."),
           Citation(UAPI, "#define NOTIFY_MOUNT_IS_NOW_RO WATCH_INFO_FLAG_2 /* Mount "
                    "changed to R/O */")),
    open="The corrections are taken (the mount, not the superblock; 'readonly', not "
         "'submount').  SETATTR is not among the flag's documented uses: read as saying "
         "what the mount is now, as for READONLY ('being cleared otherwise').",
    flags=_is_now_ro)

IS_SUBMOUNT = FlagRule(
    name="is-submount",
    says="IS_SUBMOUNT on the NEW_MOUNT of a mount the kernel made (hint 'submount')",
    cites=(Citation(COMMIT, "n->watch.info & NOTIFY_MOUNT_IS_SUBMOUNT if true indicates that "
                    "the NOTIFY_MOUNT_NEW_MOUNT notification is in response to a mount "
                    "performed by the kernel (e.g. an automount)."),),
    open="The snapshots cannot tell who made a mount: the scenario says so.",
    flags=_is_submount)

IS_RECURSIVE = FlagRule(
    name="is-recursive",
    says="IS_RECURSIVE on the READONLY and SETATTR of a change applied recursively",
    cites=RECURSIVE.cites,
    flags=_is_recursive)

FLAG_RULES: tuple[FlagRule, ...] = (IS_NOW_RO, IS_SUBMOUNT, IS_RECURSIVE)


# --- 3. delivery -------------------------------------------------------------------------

def _receives(s: Situation, e: Event, w: Watch) -> bool:
    return in_subtree(s.table(e.when), e.place, w.place)


def _in_subtree(s: Situation, e: Event, w: Watch) -> bool:
    return e.triggered_on != w.mount


RECEIVES = WatchRule(
    name="receives",
    says="a watch receives every notification that happens in the subtree rooted at the "
         "watched directory: in that directory, below it in its mount, or in any mount "
         "attached (at any depth) at or below it; the watched directory need not be a "
         "mount root",
    cites=(SUBTREE_SENTENCE,
           Citation(COMMIT, "In this case, it would let me monitor the mount topology subtree "
                    "rooted at \"/\" for events."),
           Citation(DOC, "Notifications of this type indicate changes to mount attributes "
                    "and the mount topology within the subtree at the indicated point.")),
    open="Where a notification happens is not said.  Read: a topology change (NEW_MOUNT, "
         "UNMOUNT, MOVE_FROM, MOVE_TO) happens at the mount point it concerns, an attribute "
         "change or EXPIRY at the root of its mount.  So a watch on a plain directory hears "
         "of mounts attached, moved or detached below it, but not of attribute changes of "
         "the mount that holds it (that mount's root is above the watch).",
    test=_receives)

IN_SUBTREE = WatchRule(
    name="in-subtree",
    says="IN_SUBTREE is clear when the notification is accounted to (triggered_on) the "
         "mount the watch is in, wherever in that mount the watch is, and set otherwise",
    cites=(Citation(COMMIT, "n->watch.info & NOTIFY_MOUNT_IN_SUBTREE if true indicates that "
                    "the notifcation was generated in the mount subtree rooted at the watch, "
                    "and not actually in the watch itself."),
           Citation(UAPI, "#define NOTIFY_MOUNT_IN_SUBTREE WATCH_INFO_FLAG_0 /* Event not "
                    "actually at watched dentry */"),
           TRIGGERED_ON,
           Citation(SYSCALL, "@filename: Path to mount to place the watch upon"),
           Citation(PORT_0008, "with ``NOTIFY_MOUNT_IN_SUBTREE`` clear (the record is "
                    "triggered on the mount the directory is in), and the events on the "
                    "mounts below it, with the flag set.")),
    open="'The watch itself' is not defined for a watch on a directory that is not a mount "
         "root.  Read, with 'Path to mount to place the watch upon', as the mount the "
         "watch is placed upon: a notification accounted to that mount is generated in the "
         "watch itself.  The port's 0008 documents the same.  Other readings: only a watch "
         "on that mount's root is 'the watch itself'; or ('at watched dentry') only a "
         "change at the watched directory, which would set the flag on every NEW_MOUNT a "
         "watch on a mount root gets, as ver #5's own code does not.",
    test=_in_subtree)


# --- 4. removal --------------------------------------------------------------------------

REMOVAL = Rule(
    name="removal",
    says="a watch whose mount leaves the namespace gets META/REMOVAL (a watch on a "
         "directory lives in the mount that holds it)",
    cites=(Citation(COVER, "(11) The watch must be removed if either the watch buffer is "
                    "destroyed or the watched object is destroyed."),
           Citation(KAPI, "Removal: when a watched object goes away the queue gets a "
                    "META/REMOVAL record")),
    open="When a lazily unmounted mount is destroyed (its last reference) the table does "
         "not show: read as when it leaves the namespace.")

EXPLICIT_REMOVAL = Rule(
    name="explicit-removal",
    says="watch_mount(path, -1) removes the watch on path, which gets META/REMOVAL",
    cites=(Citation(SYSCALL, "@watch_id: The watch ID to be placed in the notification (-1 "
                    "to remove watch)"),),
    open="That an explicit removal posts META/REMOVAL is the watch_queue core's doing "
         "(remove_watch_from_object()), not said in the series' text.")

RULES: tuple[Rule, ...] = (*EVENT_RULES, *FLAG_RULES, RECEIVES, IN_SUBTREE, REMOVAL,
                           EXPLICIT_REMOVAL)


# --- the model ---------------------------------------------------------------------------

def events(s: Situation) -> list[Event]:
    """Every notification the operation generates, with its flags and the rules behind it."""
    out = []
    for er in EVENT_RULES:
        for e in er.produce(s):
            flags, rules = set(e.flags), [er.name]
            for fr in FLAG_RULES:
                extra = fr.flags(s, e)
                if extra:
                    flags |= extra
                    rules.append(fr.name)
            out.append(replace(e, flags=frozenset(flags), rules=tuple(rules)))
    return out


def _old(s: Situation, mid: int) -> int:
    if mid == 0:
        return 0
    m: Mount | None = s.after.get(mid) or s.before.get(mid)
    return m.old_id if m else 0


def _record(s: Situation, e: Event, w: Watch) -> Record:
    flags, rules = set(e.flags), [*e.rules, RECEIVES.name]
    if IN_SUBTREE.test(s, e, w):
        flags.add("IN_SUBTREE")
        rules.append(IN_SUBTREE.name)
    return {"kind": "mount", "event": e.subtype, "watch_id": w.watch_id,
            "triggered_on": _old(s, e.triggered_on), "auxiliary_mount": _old(s, e.aux),
            "flags": sorted(flags), "rules": rules}


def removal(watch_id: int, rule: Rule = REMOVAL) -> Record:
    return {"kind": "meta", "event": "REMOVAL", "watch_id": watch_id, "flags": [],
            "rules": [rule.name]}


def explicit_removal(watch_id: int) -> Record:
    return removal(watch_id, EXPLICIT_REMOVAL)


def expected(before: Table, after: Table, watches: list[Watch],
             hints: Mapping[str, Any]) -> list[Record]:
    """The records a watch queue must receive for the change from ``before`` to ``after``."""
    s = Situation(before, after, diff(before, after), hints)
    gone = set(s.change.removed)
    out = [removal(w.watch_id) for w in watches if w.mount in gone]
    for e in events(s):
        out += [_record(s, e, w) for w in watches if RECEIVES.test(s, e, w)]
    return out


def key(record: Record) -> tuple[Any, ...]:
    f = record.get("fields", record)
    return (record.get("event"), record.get("watch_id"), f.get("triggered_on"),
            f.get("auxiliary_mount"), tuple(sorted(record.get("flags", ()))))


def identity(record: Record) -> Any:
    f = record.get("fields", record)
    return (record.get("event"), f.get("triggered_on"), f.get("auxiliary_mount"))
