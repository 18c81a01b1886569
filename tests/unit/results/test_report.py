"""harness.results.report: JUnit XML, KTAP and the results.json summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.results import report
from harness.results.verdict import Outcome, ScenarioResult


def results() -> list[ScenarioResult]:
    splat = {"kind": "panic", "title": "Kernel panic", "excerpt": "Kernel panic - not syncing",
             "console_line": 3}
    return [
        ScenarioResult("mount", "fanotify", Outcome.PASS, duration=1.5, events=2),
        ScenarioResult("move", "fanotify", Outcome.FAIL, "missing ATTACH\nsecond line",
                       duration=0.25),
        ScenarioResult("umount", "fanotify", Outcome.SKIP, "no fanotify mount events"),
        ScenarioResult("panic", "fanotify", Outcome.CRASH, "kernel panic during the scenario",
                       splats=[splat]),
        ScenarioResult("hang", "fanotify", Outcome.TIMEOUT, "no verdict within 90 s"),
        ScenarioResult("lost", "fanotify", Outcome.ERROR,
                       "The guest went away\nArtifacts kept in: /tmp/x"),
    ]


def test_summary_counts_every_outcome() -> None:
    assert report.summary(results()) == {"pass": 1, "fail": 1, "skip": 1, "error": 1,
                                         "crash": 1, "timeout": 1}


def test_junit_parses_with_the_right_counts(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    report.write_junit(path, "mnh", results())
    root = ET.parse(path).getroot()
    assert root.tag == "testsuite"
    assert root.attrib["tests"] == "6"
    assert root.attrib["failures"] == "1"
    assert root.attrib["errors"] == "3"     # crash + timeout + error
    assert root.attrib["skipped"] == "1"
    assert root.attrib["time"] == "1.750"
    cases = {tc.attrib["name"]: tc for tc in root.iter("testcase")}
    assert list(cases) == ["mount", "move", "umount", "panic", "hang", "lost"]
    assert cases["mount"].attrib["classname"] == "mnh.fanotify"
    assert list(cases["mount"]) == []
    assert cases["move"].find("failure") is not None
    assert cases["umount"].find("skipped") is not None
    err = cases["panic"].find("error")
    assert err is not None and err.attrib["type"] == "crash"
    assert "Kernel panic - not syncing" in (err.text or "")
    hang = cases["hang"].find("error")
    assert hang is not None and hang.attrib["type"] == "timeout"


def test_junit_survives_control_characters_from_the_console(tmp_path: Path) -> None:
    # Kernel consoles and guest messages can carry NULs and escape sequences; the XML
    # must still parse.
    bad = "garbage \x00\x1b[31mred\x1b[0m \x07 end"
    r = [ScenarioResult("x", "fanotify", Outcome.CRASH, bad,
                        splats=[{"kind": "oops", "title": "t", "excerpt": bad,
                                 "console_line": 1}])]
    path = tmp_path / "junit.xml"
    report.write_junit(path, "mnh", r)
    err = ET.parse(path).getroot().find("testcase/error")
    assert err is not None
    assert "red" in err.attrib["message"] and "end" in (err.text or "")


def test_ktap() -> None:
    text = report.ktap("mnh", results())
    lines = text.splitlines()
    assert lines[0] == "KTAP version 1"
    assert "1..6" in lines[:3]
    results_lines = [x for x in lines if x.startswith(("ok ", "not ok "))]
    assert results_lines == [
        "ok 1 mount",
        "not ok 2 move",
        "ok 3 umount # SKIP no fanotify mount events",
        "not ok 4 panic",
        "not ok 5 hang",
        "not ok 6 lost",
    ]
    assert "# missing ATTACH" in lines and "# second line" in lines
    # Every other line is a diagnostic: multi-line messages must not break the format.
    others = [x for x in lines[3:] if x not in results_lines]
    assert others and all(x.startswith("#") for x in others), others
    assert text.endswith("\n")


def test_write_json(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    report.write_json(path, {"kernel": "6.16"}, results())
    data = json.loads(path.read_text())
    assert data["kernel"] == "6.16"
    assert [s["outcome"] for s in data["scenarios"]] == ["pass", "fail", "skip", "crash",
                                                        "timeout", "error"]
    assert data["summary"]["crash"] == 1
    assert not (tmp_path / "results.tmp").exists()


def test_table_shows_first_message_line() -> None:
    t = report.table(results()).splitlines()
    assert t[0].split()[:3] == ["scenario", "backend", "outcome"]
    assert len(t) == 7
    assert "missing ATTACH" in t[2] and "second line" not in t[2]


def test_ktap_multiline_skip_keeps_the_result_line_whole() -> None:
    r = [ScenarioResult("a", "fanotify", Outcome.SKIP, "no feature\nsee dmesg")]
    lines = report.ktap("mnh", r).splitlines()
    assert lines[-1] == "ok 1 a # SKIP no feature"
    assert "# see dmesg" in lines
