"""``harness compare DIR...``: the same scenarios across runs (designs, kernels) side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import HarnessError


def load(d: Path) -> dict[str, Any]:
    f = d / "results.json"
    try:
        data: dict[str, Any] = json.loads(f.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HarnessError(f"{f} is missing or unreadable ({exc}); give directories written "
                           "by `harness run --results DIR`.") from exc
    return data


def matrix(runs: list[tuple[str, dict[str, Any]]]) -> str:
    names: list[str] = []
    for _, data in runs:
        for s in data.get("scenarios", []):
            if s["name"] not in names:
                names.append(s["name"])
    heads = [label for label, _ in runs]
    w = max([len(n) for n in names] + [8])
    cw = max([len(h) for h in heads] + [14])
    rows = [f"{'scenario':<{w}}  " + "  ".join(f"{h:<{cw}}" for h in heads)]
    for n in names:
        cells = []
        for _, data in runs:
            s = next((x for x in data.get("scenarios", []) if x["name"] == n), None)
            if s is None:
                cells.append("-")
            else:
                tag = " [kernel]" if s.get("blame") == "kernel" else ""
                cells.append(f"{s['outcome']}{tag} ({s['events']})")
        rows.append(f"{n:<{w}}  " + "  ".join(f"{c:<{cw}}" for c in cells))
    return "\n".join(rows)


def label(data: dict[str, Any]) -> str:
    """A column head: backend@series:patches for a series build, backend@release else."""
    backend = data.get("backend", "?")
    build = data.get("build") or {}
    if build.get("series"):
        return f"{backend}@{build['series']}:{build.get('patches_applied', '?')}"[:40]
    kernel = (data.get("kernel") or {}).get("release", "") or "?"
    return f"{backend}@{kernel}"[:40]


def print_table(dirs: list[Path]) -> int:
    runs = []
    for d in dirs:
        data = load(d)
        runs.append((label(data), data))
    print(matrix(runs))
    print("\ncells: outcome (records received); [kernel]: the kernel under test disagreed "
          "with the oracle or crashed\ncolumns: backend@series:patches applied, or "
          "backend@kernel release")
    return 0
