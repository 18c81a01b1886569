"""What a scenario works with: a private mount namespace, a workspace, a backend, a log.

Every operation goes through ``Context.op``: the mount table is snapshotted before
and after, the backend's queue is drained, the oracle derives what should have been
reported from the topology diff, and the comparison is logged as one JSON line
(operations, raw bytes, decoded records, expectations, snapshots).

The oracle predicts each operation twice: from the specification (``expected``, the
verdict) and, on watch-queue, from a model of the series' code.  An operation on which
the two disagree is a finding: its line carries both (``expected_spec``,
``expected_impl``), and the scenario fails with a message that begins with ``FINDING``.
"""

from __future__ import annotations

import errno
import json
import os
import time
import traceback
from collections.abc import Callable
from typing import Any, Protocol

from . import mounts, sysc
from .oracle import match
from .oracle.model import FINDING, Prediction, describe_disagreement


class ScenarioSkipped(Exception):
    """The scenario cannot run here (a missing kernel feature); not a failure."""


class ScenarioFailed(Exception):
    """The kernel did not behave as the oracle or the scenario expects."""


class Backend(Protocol):
    name: str

    def open(self, workspace: str | None = None) -> None: ...
    def close(self) -> None: ...
    def drain(self, deadline: float, want: int) -> tuple[bytes, list[dict[str, Any]]]: ...
    def expected(self, before: dict[int, mounts.Mount], after: dict[int, mounts.Mount],
                 hints: dict[str, Any]) -> Prediction: ...
    def take_problems(self) -> list[str]: ...
    def key(self, record: dict[str, Any]) -> tuple[Any, ...]: ...
    def identity(self, record: dict[str, Any]) -> Any: ...


class Log:
    """A JSON-lines log, flushed line by line so a crash loses at most one line."""

    def __init__(self, path: str) -> None:
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, kind: str, **fields: Any) -> None:
        fields = {"kind": kind, "t": round(time.monotonic(), 6), **fields}
        self._f.write(json.dumps(fields, sort_keys=True, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _table(snap: dict[int, mounts.Mount]) -> list[dict[str, Any]]:
    return [m.to_json() for m in snap.values()]


class Context:
    """The handle a scenario function receives."""

    def __init__(self, name: str, backend: Backend, log: Log, workspace: str,
                 drain_timeout: float = 1.0) -> None:
        self.name = name
        self.backend = backend
        self.log = log
        self.workspace = workspace
        self.drain_timeout = drain_timeout
        self.failures: list[str] = []
        self.findings: list[str] = []       # operations the two oracle models disagree on
        self.seq = 0
        self.events = 0
        self.last_records: list[dict[str, Any]] = []

    def path(self, *parts: str) -> str:
        return os.path.join(self.workspace, *parts)

    def mkdir(self, *parts: str) -> str:
        p = self.path(*parts)
        os.makedirs(p, exist_ok=True)
        return p

    def op(self, label: str, fn: Callable[[], Any], *, expect_errno: int | None = None,
           hints: dict[str, Any] | None = None) -> Any:
        """Run one operation and check what the backend reported against the oracle.

        ``hints`` tell the oracle what the mount table cannot: e.g. ``recursive_root``
        (the unique id a recursive attribute change was applied to).
        """
        self.seq += 1
        before = mounts.snapshot()
        result: Any = None
        err: int | None = None
        try:
            result = fn()
        except OSError as exc:
            err = exc.errno
            if expect_errno is None:
                self.log.write("op", seq=self.seq, label=label, errno=err,
                               error=str(exc), before=_table(before))
                raise ScenarioFailed(f"{label}: unexpected error {exc}") from exc
        after = mounts.snapshot()
        prediction = self.backend.expected(before, after, hints or {})
        expected = prediction.spec
        raw, received = self.backend.drain(time.monotonic() + self.drain_timeout,
                                           prediction.want())
        self.events += sum(1 for r in received if r.get("kind") != "decode-error")
        self.last_records = received
        diff = match.compare(expected, received, self.backend.key, self.backend.identity)
        diff["counters"] = self.backend.take_problems()
        finding = self._finding(label, prediction, received)
        ok = not any(diff.values()) and not finding
        if expect_errno is not None and err != expect_errno:
            ok = False
            self.failures.append(f"{label}: expected errno {errno.errorcode.get(expect_errno)}, "
                                 f"got {errno.errorcode.get(err or 0, 'success')}")
        self.log.write("op", seq=self.seq, label=label, ok=ok,
                       errno=err, result=result if isinstance(result, int | str) else None,
                       raw=raw.hex(), records=received, expected=expected, **diff, **finding,
                       before=_table(before), after=_table(after))
        if any(diff.values()):
            self.failures.append(f"op {self.seq} '{label}': " + "; ".join(
                f"{k}={v}" for k, v in diff.items() if v))
        return result

    def _finding(self, label: str, prediction: Prediction,
                 received: list[dict[str, Any]]) -> dict[str, Any]:
        """The log fields of a disagreement between the two models ({} when they agree)."""
        d = prediction.disagreement(self.backend.key, self.backend.identity)
        if not d:
            return {}
        text = describe_disagreement(d)
        self.findings.append(f"op {self.seq} '{label}': {text}")
        return {"finding": text, "expected_spec": prediction.spec,
                "expected_impl": prediction.impl,
                "received_matches": self._which(prediction, received)}

    def _which(self, prediction: Prediction, received: list[dict[str, Any]]) -> str:
        """Which model the kernel's records match: "spec", "impl" or "neither"."""
        for name, recs in (("spec", prediction.spec), ("impl", prediction.impl or [])):
            d = match.compare(recs, received, self.backend.key, self.backend.identity)
            if not any(d.values()):
                return name
        return "neither"

    def message(self) -> str:
        """The verdict's message: findings first (FINDING ...), then failures."""
        parts = [f"{FINDING} on " + "; ".join(self.findings)] if self.findings else []
        return "; ".join(parts + self.failures)

    def check(self, cond: bool, message: str) -> None:
        self.log.write("check", ok=bool(cond), message=message)
        if not cond:
            self.failures.append(message)


def _fail_message(ctx: Context | None, exc: ScenarioFailed) -> str:
    """A scenario stopped by a failure still reports the findings made before it."""
    if ctx is None or not ctx.findings or str(exc).startswith(FINDING):
        return str(exc)
    return f"{ctx.message()}; {exc}"


def run_in_namespace(name: str, fn: Callable[[Context], None], backend: Backend,
                     log_path: str) -> dict[str, Any]:
    """Run one scenario in a fresh private mount namespace (call in a forked child)."""
    log = Log(log_path)
    start = time.monotonic()
    ctx: Context | None = None
    try:
        sysc.unshare(sysc.CLONE_NEWNS)
        sysc.mount(None, "/", None, sysc.MS_REC | sysc.MS_PRIVATE)
        workspace = f"/tmp/mnh-{name}"
        os.makedirs(workspace, exist_ok=True)
        sysc.mount("mnh-ws", workspace, "tmpfs", 0, "mode=0755")
        log.write("header", scenario=name, backend=backend.name, kernel=os.uname().release,
                  mountinfo=mounts.mountinfo(), mounts=_table(mounts.snapshot()))
        backend.open(workspace)
        ctx = Context(name, backend, log, workspace)
        fn(ctx)
        if ctx.findings or ctx.failures:
            raise ScenarioFailed(ctx.message())
        verdict: dict[str, Any] = {"outcome": "pass", "message": ""}
    except ScenarioSkipped as exc:
        verdict = {"outcome": "skip", "message": str(exc)}
    except ScenarioFailed as exc:
        verdict = {"outcome": "fail", "message": _fail_message(ctx, exc)}
    except Exception as exc:
        verdict = {"outcome": "error", "message": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc()}
    finally:
        backend.close()
    verdict["events"] = ctx.events if ctx is not None else 0
    verdict["duration"] = round(time.monotonic() - start, 3)
    log.write("verdict", **verdict)
    log.close()
    return verdict
