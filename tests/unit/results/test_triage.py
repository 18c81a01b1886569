"""harness.results.triage: fingerprints of splats, Wilson intervals; the pure parts of
harness.workflows.repro."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from harness.cli import repro as cli_repro
from harness.results import triage
from harness.results.verdict import Outcome, ScenarioResult
from harness.workflows import repro

KASAN = """\
[   12.345678] BUG: KASAN: slab-use-after-free in post_mount_notification+0x1a2/0x4c0
[   12.345679] Read of size 8 at addr ffff888004a1b2c8 by task python3/231
[   12.345680] CPU: 1 UID: 0 PID: 231 Comm: python3 Not tainted 6.12.117 #1
[   12.345681] Call Trace:
[   12.345682]  <TASK>
[   12.345683]  dump_stack_lvl+0x5d/0x80
[   12.345684]  print_report+0xc1/0x5e0
[   12.345685]  ? post_mount_notification+0x1a2/0x4c0
[   12.345686]  kasan_report+0xb9/0xf0
[   12.345687]  post_mount_notification+0x1a2/0x4c0
[   12.345688]  notify_mount+0x110/0x1c0
[   12.345689]  umount_tree+0x3f1/0x8a0
[   12.345690]  do_umount+0x2c5/0x4f0
[   12.345691]  path_umount+0x13c/0x1b0
[   12.345692]  __x64_sys_umount+0xf2/0x120
[   12.345693]  do_syscall_64+0x5f/0x170
"""


def test_frames_skip_the_reporting_machinery_and_unreliable_frames() -> None:
    assert triage.frames(KASAN)[:4] == ["post_mount_notification", "notify_mount",
                                        "umount_tree", "do_umount"]


def test_frames_put_rip_first() -> None:
    text = "RIP: 0010:remove_watch_from_object+0x3c/0x2a0\nCall Trace:\n mntput_no_expire+0x1/0x2\n"
    assert triage.frames(text) == ["remove_watch_from_object", "mntput_no_expire"]


def test_same_bug_same_fingerprint_across_addresses_and_pids() -> None:
    other = KASAN.replace("ffff888004a1b2c8", "ffff888007777777").replace("231", "999") \
        .replace("+0x1a2/0x4c0", "+0x1b0/0x4c0")
    a = triage.splat_fingerprint("kasan", KASAN.splitlines()[0][15:], KASAN)
    b = triage.splat_fingerprint("kasan", other.splitlines()[0][15:], other)
    assert a == b
    assert a == ("kasan: BUG: KASAN: slab-use-after-free in post_mount_notification | "
                 "post_mount_notification < notify_mount < umount_tree < do_umount")
    assert len(triage.short_id(a)) == 10


@pytest.mark.parametrize(("k", "n", "lo", "hi"), [
    (0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (0, 0, 0.0, 1.0),
    (1, 100, 0.0018, 0.0545)])
def test_wilson(k: int, n: int, lo: float, hi: float) -> None:
    got = triage.wilson(k, n)
    assert got == pytest.approx((lo, hi), abs=1e-4)


def test_rate_text() -> None:
    assert triage.rate_text(0, 10) == "0/10 = 0.0% (95% CI 0.0-27.8%)"


def test_decode_command_is_a_list() -> None:
    assert triage.decode_command(Path("/src"), Path("/b/vmlinux")) == [
        "/src/scripts/decode_stacktrace.sh", "/b/vmlinux", "/src"]


def test_symbolize_without_sources_is_empty(tmp_path: Path) -> None:
    assert triage.symbolize(KASAN, None, None) == ""
    assert triage.symbolize(KASAN, tmp_path, tmp_path / "vmlinux") == ""


def test_boot_parameters_and_timeouts() -> None:
    assert repro.boot_append(5, 2.0) == ("mnh.stress_rounds=5", "mnh.stress_seconds=2")
    t, guest = repro.boot_timeouts(5, 2.0, 3, 600.0)
    assert guest == 5 * (2.0 + repro.ROUND_OVERHEAD) + 60
    assert t.scenario > guest and t.run > 3 * guest and t.boot == 600.0


def _log(tmp_path: Path, rounds: list[dict[str, object]]) -> Path:
    p = tmp_path / "s.jsonl"
    p.write_text("".join(json.dumps({"kind": "round", **r}) + "\n" for r in rounds)
                 + '{"kind": "round", "n": 9, "ok"')  # a line cut short by a crash
    return p


def test_classify_rounds_problems_and_a_crash(tmp_path: Path) -> None:
    logged = repro.rounds_from_log(_log(tmp_path, [
        {"n": 1, "ok": True, "ops": 100, "seconds": 2.0},
        {"n": 2, "ok": False, "ops": 50, "seconds": 2.0,
         "problems": ["watch_mount add: unexpected EFAULT [path '/tmp/x', id 7]"]}]))
    assert [d["n"] for d in logged] == [1, 2]
    crash = ScenarioResult("stress-race", "watch-queue", Outcome.CRASH, message="kernel kasan",
                           splats=[{"kind": "kasan", "title": KASAN.splitlines()[0][15:],
                                    "excerpt": KASAN}])
    rounds, excerpts = repro.classify(crash, logged, 5, boot=1)
    assert [(r.n, r.ok) for r in rounds] == [(1, True), (2, False), (3, False)]
    assert rounds[1].fingerprint == "fail: stress-race: watch_mount add: unexpected EFAULT"
    assert rounds[2].fingerprint.startswith("kasan: ") and rounds[2].fingerprint in excerpts


def test_classify_splat_after_the_last_round_fails_that_round(tmp_path: Path) -> None:
    logged = repro.rounds_from_log(_log(tmp_path, [{"n": 1, "ok": True}]))
    warn = ScenarioResult("stress-lazy", "watch-queue", Outcome.CRASH,
                          splats=[{"kind": "warning", "title": "WARNING: CPU: 0 PID: 1 at x",
                                   "excerpt": "WARNING: CPU: 0 PID: 1 at x"}])
    rounds, _ = repro.classify(warn, logged, 1, boot=2)
    assert [(r.n, r.ok, r.boot) for r in rounds] == [(1, False, 2)]


def test_classify_infrastructure_error_yields_no_rounds() -> None:
    lost = ScenarioResult("stress-race", "watch-queue", Outcome.ERROR, message="lost")
    assert repro.classify(lost, [], 3, boot=1) == ([], {})


def test_summary_rates_per_scenario_and_fingerprint() -> None:
    rounds = [repro.RoundResult("stress-race", 1, i, i != 3, ops=100, seconds=2.0,
                                fingerprint="" if i != 3 else "fp") for i in range(1, 11)]
    failures = {"fp": repro.Failure("fp", "stress-race", count=1, first_run="r",
                                    reproducer="harness repro ...")}
    s = repro.summarize(rounds, failures)
    race = s["scenarios"]["stress-race"]
    assert (race["runs"], race["failures"], race["ops_per_s"]) == (10, 1, 50.0)
    assert race["text"] == "1/10 = 10.0% (95% CI 1.8-40.4%)"
    (fp,) = s["fingerprints"].values()
    assert fp["count"] == 1 and fp["runs"] == 10 and fp["reproducer"] == "harness repro ..."
    text = repro.report_text(s)
    assert "stress-race" in text and "reproduce:  harness repro ..." in text


def test_reproducer_line() -> None:
    opts = repro.ReproOptions(cpus=4, seconds=3.0, runs=5, fresh_boot=True)
    assert repro.reproducer("/b/x", "stress-lazy", opts) == (
        "harness repro --kernel /b/x --scenario stress-lazy --cpus 4 --seconds 3 --runs 20 "
        "--until-fail --fresh-boot")


def test_reproducer_keeps_the_users_kernel_arguments_quoted() -> None:
    opts = repro.ReproOptions(append=("mitigations=auto", "mnh.note=a b"))
    line = repro.reproducer("/b/my kernel", "stress-race", opts)
    assert line.endswith("--append mitigations=auto --append 'mnh.note=a b'")
    assert "--kernel '/b/my kernel'" in line
    args = cli_repro.from_args(argparse.Namespace(
        kernel=None, debug=False, scenario=[], runs=1, until_fail=False, duration=None,
        cpus=2, fresh_boot=False, seconds=1.0, memory="2G", results=None, boot_timeout=60.0,
        append=["mitigations=auto"]))
    assert args.append == ("mitigations=auto",)
