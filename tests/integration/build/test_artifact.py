"""The artifact cache: input hashing and atomic publication."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from harness.build import artifact
from harness.build.artifact import BuildInputs

INPUTS = BuildInputs(base="debian:linux-source-6.12=6.12.117-1~deb12u1",
                     series_name="mount-notify-v5", series_hash="ab" * 32,
                     config="CONFIG_A=y\n", compiler="gcc 12.2.0; GNU ld 2.40")


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_same_inputs_same_digest() -> None:
    again = BuildInputs(**dataclasses.asdict(INPUTS))
    assert again.digest() == INPUTS.digest()
    assert len(INPUTS.digest()) == 64


@pytest.mark.parametrize(("field", "value"), [
    ("base", "git:0123456789abcdef"), ("series_name", "other"), ("series_hash", "cd" * 32),
    ("series_hash", None), ("config", "CONFIG_A=y\nCONFIG_B=y\n"), ("compiler", "gcc 13"),
    ("recipe", artifact.RECIPE_VERSION + 1),
])
def test_any_input_change_changes_digest(field: str, value: object) -> None:
    changes: dict[str, Any] = {field: value}
    changed = dataclasses.replace(INPUTS, **changes)
    assert changed.digest() != INPUTS.digest()


def test_config_hash_only_follows_config() -> None:
    assert dataclasses.replace(INPUTS, compiler="x").config_hash() == INPUTS.config_hash()
    assert dataclasses.replace(INPUTS, config="").config_hash() != INPUTS.config_hash()


def staged(digest: str) -> Path:
    s = artifact.staging_dir(digest)
    for name in ("bzImage", "vmlinux", "config", "build.log"):
        (s / name).write_text(name)
    return s


def test_publish_then_lookup() -> None:
    digest = INPUTS.digest()
    assert artifact.lookup(digest) is None
    found = artifact.publish(staged(digest), digest, {"digest": digest})
    assert found.directory == artifact.builds_dir() / digest
    assert found.bzimage.read_text() == "bzImage" and found.metadata == {"digest": digest}
    assert artifact.lookup(digest) == found
    assert not list(artifact.builds_dir().glob(".tmp-*"))


def test_incomplete_directory_is_not_an_artifact() -> None:
    digest = INPUTS.digest()
    d = artifact.builds_dir() / digest
    d.mkdir()
    (d / "bzImage").write_text("half")
    assert artifact.lookup(digest) is None
    found = artifact.publish(staged(digest), digest, {})
    assert found.vmlinux.read_text() == "vmlinux"


def test_publish_race_keeps_first() -> None:
    digest = INPUTS.digest()
    first = artifact.publish(staged(digest), digest, {"n": 1})
    second = artifact.publish(staged(digest), digest, {"n": 2})
    assert second.metadata == {"n": 1} and first.directory == second.directory
    assert not list(artifact.builds_dir().glob(".tmp-*"))


def test_compiler_identity_names_gcc_and_ld() -> None:
    ident = artifact.compiler_identity()
    assert "gcc" in ident.lower() and "ld" in ident.lower()


def test_publish_replace_for_forced_rebuild() -> None:
    digest = INPUTS.digest()
    artifact.publish(staged(digest), digest, {"n": 1})
    again = artifact.publish(staged(digest), digest, {"n": 2}, replace=True)
    assert again.metadata == {"n": 2}
    assert [p.name for p in artifact.builds_dir().iterdir()] == [digest]
