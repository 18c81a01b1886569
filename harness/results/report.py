"""Results on disk: results.json, JUnit XML, KTAP, and a table for the terminal."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.results.verdict import Outcome, ScenarioResult


def write_json(path: Path, run: dict[str, Any], results: Sequence[ScenarioResult]) -> None:
    data = {**run, "scenarios": [r.to_json() for r in results],
            "summary": summary(results)}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    tmp.replace(path)


def summary(results: Sequence[ScenarioResult]) -> dict[str, int]:
    counts = {str(o): 0 for o in Outcome}
    for r in results:
        counts[str(r.outcome)] += 1
    return counts


# Characters XML 1.0 cannot carry at all (a console may hold NULs and escape sequences).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def write_junit(path: Path, suite: str, results: Sequence[ScenarioResult]) -> None:
    counts = summary(results)
    ts = ET.Element("testsuite", name=suite, tests=str(len(results)),
                    failures=str(counts["fail"]),
                    errors=str(counts["error"] + counts["crash"] + counts["timeout"]),
                    skipped=str(counts["skip"]),
                    time=f"{sum(r.duration for r in results):.3f}")
    for r in results:
        tc = ET.SubElement(ts, "testcase", classname=f"{suite}.{r.backend}", name=r.name,
                           time=f"{r.duration:.3f}")
        if r.outcome is Outcome.FAIL:
            ET.SubElement(tc, "failure", message=_xml(r.message[:500])).text = _xml(r.message)
        elif r.outcome in (Outcome.ERROR, Outcome.CRASH, Outcome.TIMEOUT):
            el = ET.SubElement(tc, "error", type=str(r.outcome), message=_xml(r.message[:500]))
            el.text = _xml("\n\n".join([r.message, *(s["excerpt"] for s in r.splats)]))
        elif r.outcome is Outcome.SKIP:
            ET.SubElement(tc, "skipped", message=_xml(r.message[:500]))
    ET.ElementTree(ts).write(path, encoding="utf-8", xml_declaration=True)


def ktap(suite: str, results: Sequence[ScenarioResult]) -> str:
    lines = ["KTAP version 1", f"# suite: {suite}", f"1..{len(results)}"]
    for i, r in enumerate(results, 1):
        ok = "ok" if r.outcome in (Outcome.PASS, Outcome.SKIP) else "not ok"
        # Multi-line messages: only the first line goes on the result line, every
        # other line becomes a "#" diagnostic, or the KTAP would not parse.
        first, *rest = _xml(r.message).splitlines() or [""]
        directive = f" # SKIP {first}" if r.outcome is Outcome.SKIP else ""
        if r.outcome not in (Outcome.PASS, Outcome.SKIP, Outcome.FAIL):
            lines.append(f"# {r.name}: {r.outcome}: {first}")
            lines.extend(f"# {x}" for x in rest[:20])
        elif r.outcome is Outcome.FAIL:
            lines.extend(f"# {x}" for x in [first, *rest][:20])
        elif r.outcome is Outcome.SKIP:
            lines.extend(f"# {x}" for x in rest[:20])
        lines.append(f"{ok} {i} {r.name}{directive}")
    return "\n".join(lines) + "\n"


def table(results: Sequence[ScenarioResult]) -> str:
    w = max([len(r.name) for r in results] + [8])
    rows = [f"{'scenario':<{w}}  {'backend':<11} {'outcome':<8} {'events':>6} {'secs':>6}  message"]
    for r in results:
        msg = r.message.splitlines()[0][:90] if r.message else ""
        rows.append(f"{r.name:<{w}}  {r.backend:<11} {r.outcome!s:<8} {r.events:>6} "
                    f"{r.duration:>6.2f}  {msg}")
    return "\n".join(rows)
