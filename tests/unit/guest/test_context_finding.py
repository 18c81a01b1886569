"""mnh_guest.context: an operation the two oracle models disagree on is a finding.

A fake backend hands ``Context.op`` a prediction and the records "the kernel" sent; the
mount table is not read (``mounts.snapshot`` is replaced), so nothing here needs a kernel.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mnh_guest import context, mounts
from mnh_guest.oracle import watch_queue
from mnh_guest.oracle.model import FINDING, Prediction

ROOT_WATCH = {"kind": "mount", "event": "NEW_MOUNT", "watch_id": 1, "triggered_on": 2,
              "auxiliary_mount": 3, "flags": []}
DIR_WATCH = {**ROOT_WATCH, "watch_id": 3, "flags": ["IN_SUBTREE"]}


def received(rec: dict[str, Any]) -> dict[str, Any]:
    """A record as the decoder gives it: the ids in ``fields``."""
    return {"kind": "mount", "event": rec["event"], "watch_id": rec["watch_id"],
            "flags": rec["flags"], "fields": {"triggered_on": rec["triggered_on"],
                                              "auxiliary_mount": rec["auxiliary_mount"]}}


class FakeBackend:
    name = "fake"

    def __init__(self, prediction: Prediction, records: list[dict[str, Any]]) -> None:
        self.prediction, self.records, self.wanted = prediction, records, -1

    def open(self, workspace: str | None = None) -> None: ...
    def close(self) -> None: ...

    def drain(self, deadline: float, want: int) -> tuple[bytes, list[dict[str, Any]]]:
        self.wanted = want
        return b"", self.records

    def expected(self, before: Any, after: Any, hints: dict[str, Any]) -> Prediction:
        return self.prediction

    def take_problems(self) -> list[str]:
        return []

    key = staticmethod(watch_queue.key)
    identity = staticmethod(watch_queue.identity)


def run_op(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: FakeBackend
           ) -> tuple[context.Context, dict[str, Any]]:
    monkeypatch.setattr(mounts, "snapshot", lambda: {})
    log = context.Log(str(tmp_path / "s.jsonl"))
    ctx = context.Context("s", backend, log, str(tmp_path), drain_timeout=0.0)
    ctx.op("mount tmpfs on w/sub", lambda: None)
    log.close()
    (line,) = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    return ctx, line


def test_disagreeing_models_log_both_and_fail_with_a_finding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(Prediction([ROOT_WATCH, DIR_WATCH], [ROOT_WATCH]),
                          [received(ROOT_WATCH)])            # the kernel does as implemented
    ctx, line = run_op(tmp_path, monkeypatch, backend)
    assert backend.wanted == 2
    assert line["expected"] == line["expected_spec"] == [ROOT_WATCH, DIR_WATCH]
    assert line["expected_impl"] == [ROOT_WATCH]
    assert line["received_matches"] == "impl" and line["ok"] is False
    assert line["missing"] == [DIR_WATCH]                   # the verdict is the spec's
    assert "only the spec predicts NEW_MOUNT to watch 3" in line["finding"]
    message = ctx.message()
    assert message.startswith(f"{FINDING} on op 1 'mount tmpfs on w/sub': only the spec")
    assert "missing=" in message


def test_a_kernel_that_follows_the_spec_still_leaves_the_finding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(Prediction([ROOT_WATCH, DIR_WATCH], [ROOT_WATCH]),
                          [received(ROOT_WATCH), received(DIR_WATCH)])
    ctx, line = run_op(tmp_path, monkeypatch, backend)
    assert line["received_matches"] == "spec" and line["missing"] == []
    assert ctx.failures == [] and ctx.message().startswith(FINDING)


def test_agreeing_models_are_a_plain_pass(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(Prediction([ROOT_WATCH], [ROOT_WATCH]), [received(ROOT_WATCH)])
    ctx, line = run_op(tmp_path, monkeypatch, backend)
    assert line["ok"] is True
    assert not {"finding", "expected_spec", "expected_impl"} & line.keys()
    assert ctx.message() == ""


def test_a_failure_that_stops_the_scenario_keeps_the_findings_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(Prediction([ROOT_WATCH, DIR_WATCH], [ROOT_WATCH]),
                          [received(ROOT_WATCH)])
    ctx, _ = run_op(tmp_path, monkeypatch, backend)
    text = context._fail_message(ctx, context.ScenarioFailed("umount a: unexpected error"))
    assert text.startswith(FINDING) and text.endswith("umount a: unexpected error")
    assert context._fail_message(None, context.ScenarioFailed("x")) == "x"
