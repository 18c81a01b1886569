"""Scenarios that exist to prove the harness's own failure handling."""

from __future__ import annotations

import time

from ..context import Context


def panic(ctx: Context) -> None:
    with open("/proc/sys/kernel/sysrq", "w") as f:
        f.write("1\n")
    with open("/proc/sysrq-trigger", "w") as f:
        f.write("c\n")
    time.sleep(60)  # not reached: the kernel panics


def hang(ctx: Context) -> None:
    while True:
        time.sleep(3600)


def fail(ctx: Context) -> None:
    d = ctx.mkdir("d")
    ctx.op("mkdir only (no mount)", lambda: None)
    ctx.check(False, f"selftest-fail: deliberately failing after touching {d}")
