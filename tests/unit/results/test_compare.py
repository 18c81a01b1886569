"""harness compare: column heads name the series and its patch count; [kernel] blames."""

from __future__ import annotations

from harness.results import compare


def _run(backend: str, outcomes: dict[str, str], build: dict[str, object] | None) -> dict:
    return {"backend": backend, "build": build, "kernel": {"release": "6.12.117"},
            "scenarios": [{"name": n, "outcome": o, "events": 2,
                           "blame": "kernel" if o == "fail" else ""}
                          for n, o in outcomes.items()]}


def test_label_names_series_and_patch_count() -> None:
    posted = _run("watch-queue", {}, {"series": "mount-notify-v5", "patches_applied": 3})
    assert compare.label(posted) == "watch-queue@mount-notify-v5:3"
    assert compare.label(_run("fanotify", {}, None)) == "fanotify@6.12.117"


def test_matrix_marks_kernel_failures_and_missing_scenarios() -> None:
    posted = _run("watch-queue", {"mount": "fail", "move": "pass"},
                  {"series": "s", "patches_applied": 3})
    fixed = _run("watch-queue", {"mount": "pass"}, {"series": "s", "patches_applied": 6})
    text = compare.matrix([(compare.label(posted), posted), (compare.label(fixed), fixed)])
    lines = text.splitlines()
    assert "watch-queue@s:3" in lines[0] and "watch-queue@s:6" in lines[0]
    mount = next(x for x in lines if x.startswith("mount"))
    assert "fail [kernel] (2)" in mount and "pass (2)" in mount
    move = next(x for x in lines if x.startswith("move"))
    assert move.rstrip().endswith("-")
