"""Compare what arrived with what the oracle expected: missing, unexpected, wrong-field."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

Record = dict[str, Any]


def compare(expected: list[Record], received: list[Record],
            key: Callable[[Record], tuple[Any, ...]],
            identity: Callable[[Record], Any]) -> dict[str, list[Any]]:
    """Match records by ``key``; pair leftovers by ``identity`` into wrong-field reports."""
    exp = Counter(key(r) for r in expected)
    got = Counter(key(r) for r in received if r.get("kind") != "decode-error")
    missing_keys = list((exp - got).elements())
    unexpected_keys = list((got - exp).elements())
    by_key_exp = {key(r): r for r in expected}
    by_key_got = {key(r): r for r in received if r.get("kind") != "decode-error"}
    missing = [by_key_exp[k] for k in missing_keys]
    unexpected = [by_key_got[k] for k in unexpected_keys]
    wrong = []
    for m in list(missing):
        for u in unexpected:
            if identity(m) == identity(u):
                wrong.append({"expected": m, "received": u})
                missing.remove(m)
                unexpected.remove(u)
                break
    errors = [r for r in received if r.get("kind") == "decode-error"]
    return {"missing": missing, "unexpected": unexpected, "wrong": wrong, "decode_errors": errors}
