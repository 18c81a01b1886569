"""What a rule is, and what the oracle predicts for one operation.

A rule is data (its name, what it predicts, the sentences it comes from, and what those
sentences leave open) plus one small function (in the module that holds the rule).  A
backend predicts an operation twice: from the specification model (the verdict) and,
where there is one, from a model of the code as implemented.  When the two disagree the
operation is a finding, whatever the kernel did.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .match import compare

Record = dict[str, Any]
FINDING = "finding: spec and implementation models disagree"


@dataclass(frozen=True)
class Citation:
    """One sentence a rule comes from, quoted exactly, and where it is."""

    source: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Rule:
    """A rule's description; its function lives beside it in the rules module."""

    name: str
    says: str                      # what the rule predicts, in one sentence
    cites: tuple[Citation, ...]
    open: str = ""                 # what the cited text leaves open, and the reading taken


@dataclass(frozen=True)
class Prediction:
    """The records one operation must produce: per specification, and as implemented."""

    spec: list[Record]
    impl: list[Record] | None = None       # None: no as-implemented model for this backend

    def want(self) -> int:
        """How many records to wait for: the larger prediction, so none bleeds into the
        next operation."""
        return max(len(self.spec), len(self.impl or []))

    def disagreement(self, key: Callable[[Record], tuple[Any, ...]],
                     identity: Callable[[Record], Any]) -> dict[str, list[Any]]:
        """Records only the spec predicts ("spec_only") and only the impl ("impl_only")."""
        if self.impl is None:
            return {}
        d = compare(self.spec, self.impl, key, identity)
        wrong = d["wrong"]
        spec_only = d["missing"] + [w["expected"] for w in wrong]
        impl_only = d["unexpected"] + [w["received"] for w in wrong]
        if not spec_only and not impl_only:
            return {}
        return {"spec_only": spec_only, "impl_only": impl_only}


def brief(record: Record) -> str:
    """A record in a few words, for a finding's message."""
    f = record.get("fields", record)
    flags = ",".join(record.get("flags", ())) or "-"
    if record.get("kind") == "mount":
        return (f"{record.get('event')} to watch {record.get('watch_id')} on "
                f"{f.get('triggered_on')} aux {f.get('auxiliary_mount')} [{flags}]")
    if "mnt_id" in record:
        return f"{record.get('event')} {record.get('mnt_id'):#x}"
    return f"{record.get('event')} to watch {record.get('watch_id')}"


def describe_disagreement(d: dict[str, list[Any]]) -> str:
    parts = []
    if d.get("spec_only"):
        parts.append("only the spec predicts " + ", ".join(brief(r) for r in d["spec_only"]))
    if d.get("impl_only"):
        parts.append("only the implementation predicts "
                     + ", ".join(brief(r) for r in d["impl_only"]))
    return "; ".join(parts)
