#!/usr/bin/env python3
"""The fake kernel tree's build logic, run by its Makefile (see the Makefile's header).

allnoconfig: every symbol the fake Kconfig defines is off unless KCONFIG_ALLCONFIG sets
it; a symbol whose "depends on" symbols (and enclosing "if") are not all set is dropped,
as Kconfig does; a symbol the Kconfig does not define is ignored.  build: writes
vmlinux and bzImage and appends a line to O/fake-builds.log per build.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path


def definitions(srctree: Path) -> dict[str, list[str]]:
    """symbol -> the symbols it depends on (flattened "&&" terms and enclosing ifs)."""
    deps: dict[str, list[str]] = {}
    for path in sorted(srctree.rglob("Kconfig")):
        ifs: list[str] = []
        current = None
        for line in path.read_text().splitlines():
            words = line.split()
            if not words or line[:1] in (" ",) or line.startswith("\t  "):
                continue
            if words[0] == "if":
                ifs.append(words[1])
            elif words[0] == "endif":
                ifs.pop()
            elif words[0] in ("config", "menuconfig"):
                current = words[1]
                deps[current] = list(ifs)
            elif line.startswith("\tdepends on") and current:
                deps[current] += re.findall(r"[A-Z0-9_]+", line[len("\tdepends on"):])
    return deps


def allnoconfig(srctree: Path, objtree: Path, allconfig: str) -> None:
    if os.environ.get("FAKELINUX_FAIL") == "config":
        sys.exit("fakelinux: allnoconfig failed (FAKELINUX_FAIL=config)")
    wanted = {}
    if allconfig:
        for line in Path(allconfig).read_text().splitlines():
            if m := re.match(r"CONFIG_(\w+)=(.*)", line):
                wanted[m.group(1)] = m.group(2)
    deps = definitions(srctree)
    final: dict[str, str] = {}
    changed = True
    while changed:  # settle dependencies on dependencies
        changed = False
        for symbol in deps:
            value = wanted.get(symbol, "n")
            if value != "n" and any(final.get(d, "n") == "n" for d in deps[symbol]):
                value = "n"
            if final.get(symbol) != value:
                final[symbol], changed = value, True
    final["X86"] = final["HAVE_FAKE"] = "y"
    objtree.mkdir(parents=True, exist_ok=True)
    lines = [f"CONFIG_{s}={v}" if v != "n" else f"# CONFIG_{s} is not set"
             for s, v in final.items()]
    (objtree / ".config").write_text("\n".join(["# fakelinux", *lines]) + "\n")
    print("#\n# configuration written to .config\n#")


def build(srctree: Path, objtree: Path) -> None:
    fail = os.environ.get("FAKELINUX_FAIL")
    config = (objtree / ".config").read_text()
    for obj in ("init/main.o", "fs/namespace.o", "kernel/fork.o"):
        print(f"  CC      {obj}", flush=True)
        if os.environ.get("FAKELINUX_SLOW") and obj == "fs/namespace.o":
            (objtree / "fake-make.pid").write_text(str(os.getpid()))
            time.sleep(float(os.environ["FAKELINUX_SLOW"]))   # a long compile step
        if fail == "compile" and obj == "fs/namespace.o":
            src = srctree / "fs" / "namespace.c"
            print(f"{src}: In function 'do_mount':", file=sys.stderr)
            print(f"{src}:6:17: error: expected ';' before '}}' token", file=sys.stderr)
            print("make[4]: *** [scripts/Makefile.build:229: fs/namespace.o] Error 1",
                  file=sys.stderr)
            sys.exit(2)
    print("  LD      vmlinux", flush=True)
    if fail == "link":
        print("ld: fs/namespace.o: undefined reference to `do_umount'", file=sys.stderr)
        sys.exit(2)
    body = f"fake vmlinux\n{(srctree / 'fs' / 'namespace.c').read_text()}\n{config}"
    (objtree / "vmlinux").write_text(body)
    boot = objtree / "arch" / "x86" / "boot"
    boot.mkdir(parents=True, exist_ok=True)
    # A real bzImage has the boot protocol's "HdrS" at 0x202; so does this one.
    header = bytearray(0x400)
    header[0x202:0x206] = b"HdrS"
    (boot / "bzImage").write_bytes(bytes(header) + ("fake bzImage\n" + body).encode())
    print("Kernel: arch/x86/boot/bzImage is ready  (#1)")
    with (objtree / "fake-builds.log").open("a") as f:
        f.write(f"build CC={os.environ.get('CC', '')}\n")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--srctree", type=Path, required=True)
    p.add_argument("--objtree", type=Path, required=True)
    p.add_argument("step", choices=("allnoconfig", "olddefconfig", "build"))
    p.add_argument("--allconfig", default="")
    a = p.parse_args()
    if a.step == "allnoconfig":
        allnoconfig(a.srctree, a.objtree, a.allconfig)
    elif a.step == "build":
        build(a.srctree, a.objtree)


if __name__ == "__main__":
    main()
