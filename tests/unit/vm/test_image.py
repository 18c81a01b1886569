"""harness.vm.image: the recipe's cache key, the build commands, and the checks a bad image
fails in bounded time (missing, corrupt, without python3), without booting anything."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.errors import ImageError
from harness.vm import image

needs_e2fs = pytest.mark.skipif(shutil.which("mke2fs") is None or shutil.which("debugfs") is None,
                                reason="needs e2fsprogs (harness doctor --install)")


def recipe_copy(tmp_path: Path) -> Path:
    d = tmp_path / "images"
    shutil.copytree(image.RECIPE_DIR, d)
    return d


def test_recipe_key_follows_content_and_suite(tmp_path: Path) -> None:
    d = recipe_copy(tmp_path)
    a = image.load_recipe(None, d)
    assert a.suite == "bookworm" and "python3" in a.packages and "openssh-server" in a.packages
    # rpc.mountd segfaults without /etc/mtab (automount-expiry in image mode).
    assert ("etc/mtab", "../proc/self/mounts") in a.links
    assert image.load_recipe("trixie", d).key != a.key
    assert image.load_recipe(None, d).key == a.key
    (d / "init").write_text((d / "init").read_text() + "# edited\n")
    assert image.load_recipe(None, d).key != a.key


def test_broken_recipe_is_a_clear_error(tmp_path: Path) -> None:
    d = recipe_copy(tmp_path)
    (d / "recipe.toml").write_text("[image]\n")
    with pytest.raises(ImageError, match="unreadable or incomplete"):
        image.load_recipe(None, d)


def test_build_commands_are_lists() -> None:
    r = image.load_recipe(None)
    cmd = image.mmdebstrap_command(r, Path("/t/root"), "http://mirror.invalid/debian", True)
    assert cmd[0] == "mmdebstrap" and cmd[-3:] == ["bookworm", "/t/root",
                                                   "http://mirror.invalid/debian"]
    assert "--mode=root" in cmd and "--variant=essential" in cmd and "--quiet" in cmd
    assert any(a.startswith("--include=python3,") for a in cmd)
    mk = image.mke2fs_command(Path("/t/root"), Path("/t/img"), 700, "mnhroot")
    assert mk[-2:] == ["/t/img", "700M"] and mk[mk.index("-d"):][:2] == ["-d", "/t/root"]


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    _, pub = image._new_key()
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen not installed")
    (tmp_path / "k.pub").write_text(pub + "\n")
    out = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "k.pub")], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    assert image.fingerprint(pub) == out.split()[1]


def test_missing_image_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"does not exist\. Build one with"):
        image.resolve(str(tmp_path / "nowhere" / "img"))
    with pytest.raises(ImageError, match="not a guest image built by"):
        image.resolve(str(tmp_path))
    with pytest.raises(ImageError, match="No guest image for suite 'nosuchsuite'"):
        image.resolve("nosuchsuite")


def test_corrupt_image_is_refused(tmp_path: Path) -> None:
    raw = tmp_path / image.IMAGE_FILE
    raw.write_bytes(b"\0" * 8192)
    with pytest.raises(ImageError, match="not an ext4 file system"):
        image.check(raw)


def _fake_image(tmp_path: Path, with_python: bool) -> Path:
    tree = tmp_path / "tree"
    for rel in image.REQUIRED_FILES:
        if rel == "/usr/bin/python3" and not with_python:
            continue
        p = tree / rel.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x\n")
    if with_python:  # as in Debian: a relative symlink
        (tree / "usr/bin/python3").unlink()
        (tree / "usr/bin/python3.11").write_text("x\n")
        (tree / "usr/bin/python3").symlink_to("python3.11")
    raw = tmp_path / image.IMAGE_FILE
    subprocess.run(image.mke2fs_command(tree, raw, 16, "mnhroot"), check=True, timeout=60)
    return raw


@needs_e2fs
def test_image_without_python3_is_refused_before_boot(tmp_path: Path) -> None:
    raw = _fake_image(tmp_path, with_python=False)
    with pytest.raises(ImageError, match=r"lacks python3 \(the scenario runner needs it\)"):
        image.check(raw)


@needs_e2fs
def test_good_image_passes_and_damage_is_caught(tmp_path: Path) -> None:
    raw = _fake_image(tmp_path, with_python=True)
    image.check(raw)
    # Damage the group descriptors and the inode tables, keep the superblock's magic.
    data = bytearray(raw.read_bytes())
    data[4096:4096 * 64] = b"\xff" * (4096 * 63)
    raw.write_bytes(bytes(data))
    with pytest.raises(ImageError, match="corrupt"):
        image.check(raw)


def test_load_reads_the_recorded_host_key(tmp_path: Path) -> None:
    _, pub = image._new_key()
    (tmp_path / image.META_FILE).write_text(json.dumps({"suite": "bookworm", "key": "k",
                                                         "host_key": pub}))
    img = image.load(tmp_path)
    assert img.host_fingerprint == image.fingerprint(pub)
    assert img.path == tmp_path / image.IMAGE_FILE
