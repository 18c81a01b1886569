"""A series' ABI facts (``[abi]`` of its series.toml), for the guest and the decoder.

The guest backend and the decoder take the record layout, the syscall number, the
subtypes and the flags from here, so a second version of a series is a second table.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnh_guest import decode

from harness import paths
from harness.build.artifact import BuildMetadata
from harness.errors import ConfigError

DEFAULT_SERIES = "mount-notify-v5"
REQUIRED = ("syscall_watch_mount", "watch_type", "record_size", "subtypes", "flags", "record")


def series_dir(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.is_dir():
        return p
    d = paths.data_dir("patches") / name_or_path
    if d.is_dir():
        return d
    raise ConfigError(f"No series {name_or_path!r}: neither a directory nor a name under "
                      f"{paths.data_dir('patches')}. Use --series NAME|PATH.")


def load(name_or_path: str) -> dict[str, Any]:
    """The ``[abi]`` table of a series, checked for the keys the harness needs."""
    toml = series_dir(name_or_path) / "series.toml"
    try:
        data = tomllib.loads(toml.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read {toml}: {exc}. A watch-queue run needs the series' "
                          "metadata with an [abi] table.") from exc
    abi = data.get("abi")
    missing = [k for k in REQUIRED if not isinstance(abi, dict) or k not in abi]
    if missing:
        raise ConfigError(f"{toml} [abi] lacks {', '.join(missing)}; the guest and the decoder "
                          "need them (see patches/mount-notify-v5/series.toml for the shape).")
    assert isinstance(abi, dict)
    decode.WatchLayout.from_abi(abi)  # fails early on a malformed layout
    return abi


@dataclass(frozen=True)
class Posted:
    """The series as posted (its ``[posted]`` table): the first ``patches`` patches, and
    the scenarios that the harness found failing on them (the later patches fix those)."""

    patches: int
    kernel_failures: tuple[str, ...]
    crashes: tuple[str, ...]


def posted(name_or_path: str) -> Posted:
    toml = series_dir(name_or_path) / "series.toml"
    try:
        table = tomllib.loads(toml.read_text()).get("posted")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"Cannot read {toml}: {exc}.") from exc
    if not isinstance(table, dict) or not isinstance(table.get("patches"), int):
        raise ConfigError(f"{toml} has no [posted] table with patches = K, so '@posted' has "
                          "no meaning for this series; give @K (the first K patches).")
    return Posted(table["patches"], tuple(table.get("kernel_failures", ())),
                  tuple(table.get("crashes", ())))


def series_of_kernel(metadata: Path | None) -> str | None:
    """The series a build artifact was built with, from its metadata.json."""
    meta = BuildMetadata.load(metadata)
    if meta is None:
        return None
    source, name = meta.series_source, meta.series_name
    # The directory it was built from, while it exists; else the bundled series of that
    # name (a copy in a temporary directory, as the bisect tests and benches make).
    if source and Path(source).is_dir():
        return source
    if name and (paths.data_dir("patches") / name / "series.toml").is_file():
        return name
    return source or name or None


def layouts_near(log: Path) -> tuple[decode.WatchLayout, ...]:
    """Layouts for decoding a log: the abi.json a run left beside it, else the default."""
    for d in (log if log.is_dir() else log.parent, *log.parents):
        f = d / "abi.json"
        if f.exists():
            return (decode.WatchLayout.from_abi(json.loads(f.read_text())),)
    try:
        return (decode.WatchLayout.from_abi(load(DEFAULT_SERIES)),)
    except ConfigError:
        return ()
