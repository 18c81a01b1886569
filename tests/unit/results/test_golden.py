"""The report writers against golden files (as tuxrun keeps its results): one run with
every outcome, written as results.json, junit.xml and results.ktap, compared byte for
byte with tests/unit/results/golden/. After an intended change of a format, regenerate
them with ``MNH_REGEN_GOLDEN=1 pytest tests/unit/results/test_golden.py`` and review the
diff like code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.results import report
from harness.results.verdict import Outcome, ScenarioResult

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("MNH_REGEN_GOLDEN") == "1"
RUN = {"kernel": {"image": "/k/bzImage", "release": "6.12.0-mnh", "source": "build"},
       "backend": "watch-queue", "accel": {"name": "tcg", "reason": "forced"},
       "build": {"series": "mount-notify-v5", "patches_applied": 7},
       "started": "2026-12-01T00:00:00Z", "boot": {"returncode": 0, "notes": []}}


def every_outcome() -> list[ScenarioResult]:
    splat = {"kind": "oops", "title": "BUG: kernel NULL pointer dereference",
             "excerpt": "BUG: kernel NULL pointer dereference, address: 0000000000000010\n"
                        "RIP: 0010:post_mount_notification+0x2a/0x1c0", "console_line": 812}
    return [
        ScenarioResult("mount", "watch-queue", Outcome.PASS, events=7, duration=0.81,
                       log="guest/scenarios/mount.jsonl"),
        ScenarioResult("move", "watch-queue", Outcome.FAIL,
                       "op 3: move_mount /w/a -> /w/b: MISSING MOVE_FROM on 101\n"
                       "UNEXPECTED MOVE_FROM on 104 <&> control chars \x01 survive",
                       events=11, duration=1.25),
        ScenarioResult("bad-input", "watch-queue", Outcome.CRASH,
                       "kernel oops during the scenario: BUG: kernel NULL pointer dereference",
                       duration=0.4, splats=[splat]),
        ScenarioResult("overrun", "watch-queue", Outcome.TIMEOUT,
                       "no verdict within 90 s (host watchdog: scenario:overrun)"),
        ScenarioResult("filters", "watch-queue", Outcome.ERROR,
                       "interrupted: the run was stopped by SIGTERM during this scenario"),
        ScenarioResult("automount-expiry", "watch-queue", Outcome.SKIP,
                       "nfsd is not available in this kernel"),
    ]


def written(tmp_path: Path) -> dict[str, bytes]:
    results = every_outcome()
    report.write_json(tmp_path / "results.json", RUN, results)
    report.write_junit(tmp_path / "junit.xml", "mount-notify.watch-queue", results)
    (tmp_path / "results.ktap").write_text(report.ktap("mount-notify.watch-queue", results))
    return {n: (tmp_path / n).read_bytes() for n in ("results.json", "junit.xml",
                                                      "results.ktap")}


@pytest.mark.parametrize("name", ["results.json", "junit.xml", "results.ktap"])
def test_writer_matches_its_golden_file(tmp_path: Path, name: str) -> None:
    got = written(tmp_path)[name]
    golden = GOLDEN / name
    if REGEN:
        GOLDEN.mkdir(exist_ok=True)
        golden.write_bytes(got)
    assert golden.exists(), f"{golden} is missing: run with MNH_REGEN_GOLDEN=1 to write it"
    assert got.decode() == golden.read_text(), (
        f"{name} differs from {golden}; if the change is intended, regenerate with "
        "MNH_REGEN_GOLDEN=1 and review the diff")
