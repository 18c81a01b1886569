"""harness.results.scan: kernel splats and scenario markers in realistic console excerpts."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.results import scan

DATA = Path(__file__).parent / "data" / "console"


def sample(name: str) -> list[str]:
    """A console excerpt from tests/unit/results/data/console/NAME.log, one string per line."""
    return (DATA / f"{name}.log").read_text().splitlines()


CLEAN_BOOT = sample("clean-boot")
SYSRQ_PANIC = sample("sysrq-panic")
WARNING = sample("warning")
KASAN = sample("kasan")
LOCKDEP = sample("lockdep")
RCU_STALL = sample("rcu-stall")
HUNG_TASK = sample("hung-task")
OOPS = sample("oops")


def test_clean_boot_has_no_splat() -> None:
    assert scan.find_splats(CLEAN_BOOT) == []


def test_sysrq_panic_is_one_panic_splat() -> None:
    splats = scan.find_splats(SYSRQ_PANIC)
    assert [(s.kind, s.line) for s in splats] == [("panic", 2)]
    s = splats[0]
    assert s.title == "Kernel panic - not syncing: sysrq triggered crash"
    assert "sysrq_handle_crash" in s.excerpt
    # The excerpt is timestamp-free and ends with the panic's own end line.
    assert s.excerpt.splitlines()[-1].startswith("---[ end Kernel panic")
    assert "[   18." not in s.excerpt


def test_long_panic_end_line_is_not_a_second_panic() -> None:
    # A call trace longer than the excerpt: the "---[ end Kernel panic - not syncing ..."
    # line then falls outside the excerpt, and must not count as a new panic.
    trace = [f"[   18.2407{i:02d}]  frame_{i}+0x1/0x2" for i in range(scan.EXCERPT_LINES + 5)]
    text = SYSRQ_PANIC[:7] + trace + SYSRQ_PANIC[7:]
    assert [s.kind for s in scan.find_splats(text)] == ["panic"]


def test_warning_title_is_the_warning_line_not_cut_here() -> None:
    splats = scan.find_splats(WARNING)
    assert len(splats) == 1
    s = splats[0]
    assert s.kind == "warning"
    assert s.line == 1
    assert s.title == "WARNING: CPU: 0 PID: 1 at fs/namespace.c:123 foo+0x1/0x2"
    assert s.excerpt.splitlines()[0] == "------------[ cut here ]------------"
    assert s.excerpt.splitlines()[-1] == "---[ end trace 0000000000000000 ]---"


def test_warning_without_cut_here() -> None:
    splats = scan.find_splats(WARNING[2:])
    assert [(s.kind, s.line, s.title) for s in splats] == [
        ("warning", 0, "WARNING: CPU: 0 PID: 1 at fs/namespace.c:123 foo+0x1/0x2")]


@pytest.mark.parametrize(("text", "kind", "line", "title_start"), [
    (KASAN, "kasan", 1, "BUG: KASAN: slab-use-after-free in mnt_notify"),
    (LOCKDEP, "lockdep", 1, "WARNING: possible circular locking dependency detected"),
    (RCU_STALL, "rcu-stall", 0, "rcu: INFO: rcu_preempt detected stalls"),
    (HUNG_TASK, "hung-task", 0, "INFO: task foo:123 blocked for more than 120 seconds."),
    (OOPS, "bug", 0, "BUG: kernel NULL pointer dereference"),
    (["[ 1.0] rcu: INFO: rcu_sched self-detected stall on CPU"], "rcu-stall", 0, "rcu: INFO"),
    (["[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:1]"], "soft-lockup", 0,
     "watchdog: BUG: soft lockup"),
    (["[ 1.0] kernel BUG at fs/namespace.c:42!"], "bug", 0, "kernel BUG at fs/namespace.c:42!"),
    (["[ 1.0] list_add corruption. prev->next should be next"], "list-corruption", 0,
     "list_add corruption"),
])
def test_splat_kinds(text: list[str], kind: str, line: int, title_start: str) -> None:
    splats = scan.find_splats(text)
    assert len(splats) == 1, splats
    assert splats[0].kind == kind
    assert splats[0].line == line
    assert splats[0].title.startswith(title_start)


def test_oops_excerpt_stops_at_end_trace() -> None:
    s = scan.find_splats(OOPS)[0]
    assert "Oops: Oops: 0000 [#1]" in s.excerpt
    assert s.excerpt.splitlines()[-1] == "---[ end trace 0000000000000000 ]---"
    assert "after the trace" not in s.excerpt


def test_excerpt_is_bounded() -> None:
    text = HUNG_TASK + [f"[  150.1] filler {i}" for i in range(200)]
    s = scan.find_splats(text)[0]
    assert len(s.excerpt.splitlines()) == scan.EXCERPT_LINES


def test_two_splats_are_both_found_and_inner_lines_not_rescanned() -> None:
    text = OOPS + CLEAN_BOOT + WARNING
    splats = scan.find_splats(text)
    assert [s.kind for s in splats] == ["bug", "warning"]
    assert splats[1].line == len(OOPS) + len(CLEAN_BOOT) + 1


def test_splat_in_next_scenario_is_not_swallowed_by_previous_excerpt() -> None:
    # A hung-task report has no end line, so its excerpt runs for EXCERPT_LINES; a WARNING
    # in the next scenario a few lines later must still be found on its own.
    text = ["[ 1.0] mnh: scenario a start", *HUNG_TASK, "[ 2.0] mnh: scenario a end pass",
            *WARNING]
    splats = scan.find_splats(text)
    assert [(s.kind, s.line) for s in splats] == [("hung-task", 1), ("warning", 6)]
    assert "mnh:" not in splats[0].excerpt


def test_strip_time() -> None:
    assert scan.strip_time("[   18.236094] mnh: runner start") == "mnh: runner start"
    assert scan.strip_time("no timestamp [1.0]") == "no timestamp [1.0]"


def test_find_markers() -> None:
    text = [
        "[    1.000000] mnh: runner start",
        "[   18.236094] mnh: scenario mount start",
        "[   18.300000] some kernel line",
        "[   18.400000] mnh: scenario mount end pass",
        "[   18.500000] mnh: scenario move start",
        "[   19.000000] mnh: scenario move end timeout",
        "[   19.100000] mnh: runner done",
        "[   19.200000] mnh: something else",
    ]
    assert scan.find_markers(text) == [
        scan.Marker(0, "runner start"),
        scan.Marker(1, "start", "mount", ""),
        scan.Marker(3, "end", "mount", "pass"),
        scan.Marker(4, "start", "move", ""),
        scan.Marker(5, "end", "move", "timeout"),
        scan.Marker(6, "runner done"),
    ]


def test_scenario_windows() -> None:
    text = [
        "mnh: runner start",                  # 0
        "mnh: scenario mount start",          # 1
        "x",                                  # 2
        "mnh: scenario mount end pass",       # 3
        "mnh: scenario move start",           # 4
        "mnh: scenario umount start",         # 5: move never ended
        "y",                                  # 6
        "z",                                  # 7
    ]
    windows = scan.scenario_windows(scan.find_markers(text), len(text))
    assert windows == {"mount": (1, 4), "move": (4, 5), "umount": (5, 8)}


def test_scenario_windows_ignores_end_of_other_scenario() -> None:
    markers = scan.find_markers(["mnh: scenario a start", "mnh: scenario b end pass", "x"])
    assert scan.scenario_windows(markers, 3) == {"a": (0, 3)}


def test_window_runs_to_next_start_so_late_splats_are_kept() -> None:
    from harness.results.scan import find_markers, scenario_windows

    lines = ["mnh: scenario a start", "mnh: scenario a end pass",
             "WARNING: CPU: 0 PID: 9 at fs/namespace.c:1 f+0x1/0x2",
             "mnh: scenario b start", "mnh: scenario b end pass", "mnh: runner done",
             "BUG: KASAN: slab-use-after-free in x"]
    w = scenario_windows(find_markers(lines), len(lines))
    assert w["a"] == (0, 3) and w["b"] == (3, 7)
