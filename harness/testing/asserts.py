"""A small assertion API over scenario logs, for host-side pytest tests.

A failure shows the operations, and for each one the expected and the received
records side by side, so a reader sees what the kernel did without opening the log.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import DecodeError


@dataclass(frozen=True)
class Op:
    seq: int
    label: str
    ok: bool
    errno: int | None
    records: list[dict[str, Any]]
    expected: list[dict[str, Any]]
    missing: list[dict[str, Any]]
    unexpected: list[dict[str, Any]]
    wrong: list[dict[str, Any]]
    before: dict[int, dict[str, Any]]
    after: dict[int, dict[str, Any]]

    @property
    def events(self) -> list[str]:
        return [str(r.get("event")) for r in self.records if r.get("kind") != "decode-error"]

    def new_mounts(self) -> list[dict[str, Any]]:
        return [m for i, m in self.after.items() if i not in self.before]

    def gone_mounts(self) -> list[dict[str, Any]]:
        return [m for i, m in self.before.items() if i not in self.after]


@dataclass
class ScenarioLog:
    path: Path
    header: dict[str, Any] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    verdict: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ScenarioLog:
        if not path.exists():
            raise DecodeError(f"scenario log {path} does not exist (the scenario did not run "
                              "or the guest died before writing it)")
        log = cls(path)
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            try:
                e = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DecodeError(f"{path}:{lineno}: not JSON ({exc.msg})") from exc
            kind = e.get("kind")
            if kind == "header":
                log.header = e
            elif kind == "op":
                log.ops.append(Op(
                    seq=e["seq"], label=e["label"], ok=bool(e.get("ok")), errno=e.get("errno"),
                    records=e.get("records", []), expected=e.get("expected", []),
                    missing=e.get("missing", []), unexpected=e.get("unexpected", []),
                    wrong=e.get("wrong", []),
                    before={m["id"]: m for m in e.get("before", [])},
                    after={m["id"]: m for m in e.get("after", [])}))
            elif kind == "check":
                log.checks.append(e)
            elif kind == "verdict":
                log.verdict = e
        return log

    def op(self, label_prefix: str) -> Op:
        for o in self.ops:
            if o.label.startswith(label_prefix):
                return o
        raise AssertionError(f"no operation starting with {label_prefix!r} in {self.path}; "
                             f"operations: {[o.label for o in self.ops]}")


def _fmt(r: dict[str, Any]) -> str:
    if r.get("kind") == "decode-error":
        return f"DECODE ERROR @{r.get('offset')}: {r.get('message')}"
    ident = r.get("mnt_id")
    ident_s = f"{ident:#x}" if isinstance(ident, int) else str(ident)
    extra = ""
    if "fields" in r:
        extra = " " + " ".join(f"{k}={v}" for k, v in r["fields"].items())
    if r.get("flags"):
        extra += " flags=" + ",".join(r["flags"])
    return f"{r.get('event')} {ident_s}{extra}"


def side_by_side(ops: list[Op]) -> str:
    """Operations with expected and received records in two columns."""
    out = [f"{'':4}{'expected (oracle)':<40} | received (kernel)"]
    for o in ops:
        out.append(f"op {o.seq}: {o.label}" + (f"  errno={o.errno}" if o.errno else "") +
                   ("" if o.ok else "   <-- MISMATCH"))
        left = [_fmt(r) for r in o.expected]
        right = [_fmt(r) for r in o.records]
        for i in range(max(len(left), len(right), 1)):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            out.append(f"{'':4}{a:<40} | {b}")
    return "\n".join(out)


def assert_oracle_agrees(log: ScenarioLog) -> None:
    """Every operation's records match what the topology diff says they must be."""
    bad = [o for o in log.ops if o.missing or o.unexpected or o.wrong]
    if bad or not log.ops:
        raise AssertionError(f"{log.path}: oracle disagrees on "
                             f"{[o.seq for o in bad] or 'no operations at all'}\n"
                             + side_by_side(log.ops))


def assert_events(op: Op, expected: list[str], ordered: bool = False) -> None:
    """The kinds of events ``op`` produced, as a multiset (or in order)."""
    got = op.events
    same = got == expected if ordered else Counter(got) == Counter(expected)
    if not same:
        raise AssertionError(f"op {op.seq} '{op.label}': expected events {expected}, got {got}\n"
                             + side_by_side([op]))


def assert_ids_in_tables(log: ScenarioLog) -> None:
    """Every event's mount id is a unique id the mount table showed before or after."""
    problems = []
    for o in log.ops:
        known = set(o.before) | set(o.after)
        for r in o.records:
            if r.get("kind") == "decode-error":
                problems.append(f"op {o.seq}: {_fmt(r)}")
            elif r.get("mnt_id") not in known:
                problems.append(f"op {o.seq}: {_fmt(r)} names no mount in the snapshots")
    if problems:
        raise AssertionError("\n".join(problems) + "\n" + side_by_side(log.ops))
