"""Triage of failures found by ``harness repro``: fingerprints, symbolized traces, rates.

A fingerprint names a failure so that two runs hitting the same bug count together:
for a kernel splat, its kind, its title with addresses and numbers taken out, and the
top frames of its call trace (syzkaller's idea of a report title, kept small); for a
scenario failure, the scenario and its first problem, numbers taken out.
"""

from __future__ import annotations

import hashlib
import math
import re
import subprocess
from pathlib import Path

TOP_FRAMES = 4
# Frames of the reporting machinery, not of the bug.
_NOISE = re.compile(
    r"^(dump_stack\w*|show_stack|print_report|print_address_description\w*|kasan_\w+|"
    r"__kasan_\w+|report_bug|handle_bug|exc_invalid_op|asm_exc_\w+|__warn\w*|warn_slowpath\w*|"
    r"panic|__might_\w+|___might_sleep|lockdep_\w+|__lock_acquire|lock_acquire|"
    r"print_\w+_bug|check_\w+|validate_chain|__bfs\w*|mark_lock\w*|debug_\w+|"
    r"__list_\w+_valid\w*|__stack_chk_fail|do_syscall_64|entry_SYSCALL_64\w*|x64_sys_call)$")
_FRAME = re.compile(r"^\s*(\? )?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
_RIP = re.compile(r"RIP: [0-9a-f]{4}:([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
_OFFSET = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+")
_ADDR = re.compile(r"0x[0-9a-f]+|\b[0-9a-f]{8,16}\b|\d+")
_TIME = re.compile(r"^\[\s*\d+\.\d+\]\s?")


def frames(excerpt: str) -> list[str]:
    """The function names of a splat's call trace, faulting function first; frames
    marked ``?`` (unreliable) and the reporting machinery left out."""
    out: list[str] = []
    for raw in excerpt.splitlines():
        line = _TIME.sub("", raw)
        m = _RIP.search(line)
        if m:
            out.append(m.group(1))
            continue
        m = _FRAME.match(line)
        if m and not m.group(1):
            out.append(m.group(2))
    seen: list[str] = []
    for f in out:
        if not _NOISE.match(f) and f not in seen:
            seen.append(f)
    return seen


def normalize(text: str) -> str:
    """Function offsets dropped; addresses, ids and counts replaced by ``N``; whitespace
    squeezed."""
    return " ".join(_ADDR.sub("N", _OFFSET.sub("", text)).split())


def splat_fingerprint(kind: str, title: str, excerpt: str) -> str:
    top = frames(excerpt)[:TOP_FRAMES]
    return f"{kind}: {normalize(title)}" + (f" | {' < '.join(top)}" if top else "")


_DETAIL = re.compile(r"\[[^]]*\]")


def failure_fingerprint(scenario: str, problem: str) -> str:
    """A scenario's own failure: its first problem, without the bracketed details (paths,
    ids) that differ from one run of the same bug to the next."""
    return f"fail: {scenario}: {normalize(_DETAIL.sub('', problem))[:160]}"


def short_id(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()[:10]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% for z = 1.96)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate_text(k: int, n: int) -> str:
    lo, hi = wilson(k, n)
    pct = 100 * k / n if n else 0.0
    return f"{k}/{n} = {pct:.1f}% (95% CI {100 * lo:.1f}-{100 * hi:.1f}%)"


def decode_command(srctree: Path, vmlinux: Path) -> list[str]:
    """``scripts/decode_stacktrace.sh VMLINUX BASE_PATH``: symbolizes a trace on stdin."""
    return [str(srctree / "scripts" / "decode_stacktrace.sh"), str(vmlinux), str(srctree)]


def symbolize(excerpt: str, srctree: Path | None, vmlinux: Path | None,
              timeout: float = 120.0) -> str:
    """The excerpt with file:line for each frame, or "" when that is not possible (no
    vmlinux, no source tree, the script failed)."""
    if srctree is None or vmlinux is None or not vmlinux.is_file():
        return ""
    cmd = decode_command(srctree, vmlinux)
    if not Path(cmd[0]).is_file():
        return ""
    try:
        proc = subprocess.run(cmd, input=excerpt, text=True, capture_output=True,
                              timeout=timeout, check=False, errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout if proc.returncode == 0 else ""
