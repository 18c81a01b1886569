"""Reading the kernel console: scenario markers and kernel splats.

The guest runner writes ``mnh: scenario NAME start|end OUTCOME`` into /dev/kmsg, so
the console says which scenario was running when the kernel complained. Splat
patterns are a table (title, regex) in the spirit of syzkaller's report titles.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (kind, pattern). Order matters: the first match on a line names the splat.
SPLATS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((k, re.compile(p)) for k, p in (
    ("panic", r"Kernel panic - not syncing"),
    ("kasan", r"BUG: KASAN: "),
    ("lockdep", r"WARNING: (possible circular locking|possible recursive locking|"
                r"inconsistent lock state|suspicious RCU usage|bad unlock balance|"
                r"lock held when returning)"),
    ("lockdep", r"INFO: possible (irq lock inversion|circular locking)"),
    ("rcu-stall", r"rcu: INFO: \S+ (self-)?detected stalls?"),
    ("rcu-stall", r"INFO: rcu_\w+ (self-)?detected stall"),
    ("hung-task", r"INFO: task \S+ blocked for more than \d+ seconds"),
    ("soft-lockup", r"watchdog: BUG: soft lockup"),
    ("hard-lockup", r"watchdog: .*hard LOCKUP"),
    ("bug", r"BUG: (unable to handle|kernel NULL pointer|sleeping function|scheduling while|"
            r"spinlock|workqueue lockup|Bad page|Bad rss|KFENCE|kernel)"),
    ("bug", r"kernel BUG at "),
    ("oops", r"Oops: |general protection fault|invalid opcode: "),
    ("warning", r"WARNING: CPU: \d+ PID: \d+ at "),
    ("warning", r"------------\[ cut here \]------------"),
    ("list-corruption", r"list_(add|del) corruption"),
))
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_MARKER = re.compile(r"mnh: (?P<what>runner start|runner done|scenario (?P<name>\S+) "
                     r"(?P<phase>start|end)(?: (?P<outcome>\S+))?)")
EXCERPT_LINES = 40


@dataclass(frozen=True)
class Splat:
    kind: str
    line: int          # index into the console's lines
    title: str
    excerpt: str


@dataclass(frozen=True)
class Marker:
    line: int
    what: str          # "runner start", "runner done", "start", "end"
    scenario: str = ""
    outcome: str = ""


def strip_time(line: str) -> str:
    return _TIMESTAMP.sub("", line)


def find_splats(lines: list[str]) -> list[Splat]:
    """Every kernel splat in the console, with an excerpt that follows it."""
    splats: list[Splat] = []
    skip_until = -1
    for i, raw in enumerate(lines):
        if i <= skip_until:
            continue
        text = strip_time(raw)
        if text.startswith("---[ end "):
            continue  # the closing line of a splat ("---[ end Kernel panic - not syncing")
        for kind, pat in SPLATS:
            if pat.search(text):
                end = i + 1
                while end < len(lines) and end - i < EXCERPT_LINES:
                    t = strip_time(lines[end])
                    if _MARKER.search(t):
                        break  # a scenario boundary: what follows belongs to the next one
                    end += 1
                    if "---[ end trace" in t or "---[ end Kernel panic" in t:
                        break
                # The cut-here line is followed by its WARNING line: report that one.
                title = text.strip()
                if kind == "warning" and "cut here" in text and i + 1 < len(lines):
                    title = strip_time(lines[i + 1]).strip()
                splats.append(Splat(kind, i, title[:200],
                                    "\n".join(strip_time(x) for x in lines[i:end])))
                skip_until = end - 1
                break
    return splats


def find_markers(lines: list[str]) -> list[Marker]:
    out = []
    for i, line in enumerate(lines):
        if "mnh: " not in line:
            continue
        m = _MARKER.search(line)
        if not m:
            continue
        if m.group("name"):
            out.append(Marker(i, m.group("phase"), m.group("name"), m.group("outcome") or ""))
        else:
            out.append(Marker(i, m.group("what")))
    return out


def scenario_windows(markers: list[Marker], total: int) -> dict[str, tuple[int, int]]:
    """Console line range [start, end) of each scenario that started.

    A window runs to the next scenario's start marker (or the end of the log), not
    to its own end marker: the kernel reports some problems after the fact (a
    deferred mntput, an RCU callback, a hung-task scan), and such a splat belongs to
    the scenario that ran last rather than to nobody.
    """
    starts = [m for m in markers if m.what == "start"]
    windows: dict[str, tuple[int, int]] = {}
    for i, mk in enumerate(starts):
        end = starts[i + 1].line if i + 1 < len(starts) else total
        windows[mk.scenario] = (mk.line, end)
    return windows
