"""Loading series and applying them to a small git repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import git

from harness.build import patch
from harness.build.patch import PatchFile, Series
from harness.errors import PatchError


@pytest.fixture()
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with fs/namespace.c, and a series of two patches made from it."""
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path / "cache"))
    r = tmp_path / "repo"
    (r / "fs").mkdir(parents=True)
    (r / "fs" / "namespace.c").write_text("int a;\nint b;\nint c;\n")
    git(r, "init", "-q")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "base")
    git(r, "tag", "base")
    (r / "fs" / "namespace.c").write_text("int a;\nint b2;\nint c;\n")
    git(r, "commit", "-q", "-am", "fs: rename b")
    (r / "fs" / "notify.c").write_text("int notify;\n")
    git(r, "add", "-A")
    git(r, "commit", "-q", "-m", "fs: add notify.c")
    out = tmp_path / "series"
    git(r, "format-patch", "-q", "-o", str(out), "base..HEAD")
    git(r, "reset", "-q", "--hard", "base")
    return r


def series_dir(repo: Path) -> Path:
    return repo.parent / "series"


def test_load_format_patch_directory_in_name_order(repo: Path) -> None:
    s = patch.load(series_dir(repo))
    assert s.format == "format-patch" and s.name == "series"
    assert [p.path.name for p in s.patches] == ["0001-fs-rename-b.patch",
                                                "0002-fs-add-notify.c.patch"]


def test_apply_then_reapply_is_idempotent(repo: Path) -> None:
    s = patch.load(series_dir(repo))
    assert patch.apply_series(repo, s) == ["0001-fs-rename-b.patch",
                                           "0002-fs-add-notify.c.patch"]
    assert (repo / "fs" / "notify.c").exists()
    assert "fs: add notify.c" in git(repo, "log", "--oneline", "-1")
    head = git(repo, "rev-parse", "HEAD")
    assert patch.apply_series(repo, s) == []
    assert git(repo, "rev-parse", "HEAD") == head


def test_partly_applied_series_applies_the_rest(repo: Path) -> None:
    s = patch.load(series_dir(repo))
    git(repo, "am", "-q", str(s.patches[0].path))
    assert patch.apply_series(repo, s) == ["0002-fs-add-notify.c.patch"]


def test_corrupted_patch_names_the_file_and_keeps_log(repo: Path) -> None:
    d = series_dir(repo)
    first = d / "0001-fs-rename-b.patch"
    first.write_text(first.read_text().replace("@@ -1,3 +1,3 @@", "@@ -1,3 +1,9 @@"))
    with pytest.raises(PatchError) as info:
        patch.apply_series(repo, patch.load(d))
    message = str(info.value)
    assert "0001-fs-rename-b.patch" in message and "corrupt patch at line" in message
    assert "run the build again" in message
    log = info.value.artifacts
    assert log is not None and log.is_file() and "corrupt patch" in log.read_text()
    assert not (repo / ".git" / "rebase-apply").exists(), "git am was not aborted"


def test_patch_that_does_not_apply_names_file_and_line(repo: Path) -> None:
    (repo / "fs" / "namespace.c").write_text("int a;\nint other;\nint c;\n")
    git(repo, "commit", "-q", "-am", "diverge")
    with pytest.raises(PatchError) as info:
        patch.apply_series(repo, patch.load(series_dir(repo)))
    message = str(info.value)
    assert "Patch 0001-fs-rename-b.patch" in message
    assert "fs/namespace.c:1" in message and "0 patch(es) before it applied" in message
    assert "Rebase the series" in message


def test_series_toml(repo: Path) -> None:
    d = series_dir(repo)
    (d / "series.toml").write_text(
        'name = "mount-notify-v5"\n'
        '[base]\npackage = "linux-source-6.12"\nversion = "6.12.117"\n'
        '[series]\nformat = "format-patch"\npatches = ["0002-fs-add-notify.c.patch"]\n'
        '[config]\nrequire = ["CONFIG_MOUNT_NOTIFICATIONS=y"]\n[abi]\nwhatever = 1\n')
    s = patch.load(d)
    assert s.name == "mount-notify-v5"
    assert [p.path.name for p in s.patches] == ["0002-fs-add-notify.c.patch"]
    assert s.base.package == "linux-source-6.12" and s.base.version == "6.12.117"
    assert s.require == ("CONFIG_MOUNT_NOTIFICATIONS=y",)


def test_series_toml_missing_patch(repo: Path) -> None:
    d = series_dir(repo)
    (d / "series.toml").write_text('[series]\npatches = ["nope.patch"]\n')
    with pytest.raises(PatchError, match=r"nope\.patch"):
        patch.load(d)


def test_quilt_series(repo: Path, tmp_path: Path) -> None:
    q = tmp_path / "quilt"
    q.mkdir()
    diff = git(repo, "diff", "base", "HEAD")  # empty: HEAD is base
    assert diff == ""
    (repo / "fs" / "namespace.c").write_text("int a;\nint b;\nint c;\nint d;\n")
    (q / "add-d.diff").write_text(git(repo, "diff"))
    git(repo, "checkout", "-q", "--", ".")
    (q / "series").write_text("# quilt series\nadd-d.diff -p1\n\n")
    s = patch.load(q)
    assert s.format == "quilt" and s.patches == (PatchFile(q / "add-d.diff", 1, False),)
    assert patch.apply_series(repo, s) == ["add-d.diff"]
    assert git(repo, "log", "-1", "--format=%s").strip() == "add-d.diff"
    assert patch.apply_series(repo, s) == []


def test_mbox_with_cover_letter(repo: Path, tmp_path: Path) -> None:
    d = series_dir(repo)
    cover = ("From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
             "From: A <a@example.org>\nSubject: [PATCH 0/2] cover\n\nThe cover letter.\n")
    mbox = tmp_path / "v5.mbx"
    mbox.write_text(cover + "".join(p.read_text() for p in sorted(d.glob("*.patch"))))
    s = patch.load(mbox)
    assert s.format == "mbox" and s.name == "v5"
    assert patch.apply_series(repo, s) == ["v5.mbx (message 1)", "v5.mbx (message 2)"]
    assert patch.apply_series(repo, s) == []


def test_content_hash_follows_patch_content(repo: Path) -> None:
    s = patch.load(series_dir(repo))
    h = s.content_hash()
    assert h == patch.load(series_dir(repo)).content_hash()
    p = s.patches[1].path
    p.write_text(p.read_text().replace("int notify;", "int notify2;"))
    assert patch.load(series_dir(repo)).content_hash() != h
    assert Series("x", p, "format-patch", s.patches, require=("A",)).content_hash() != \
        Series("x", p, "format-patch", s.patches).content_hash()


def test_resolve_unknown_name() -> None:
    with pytest.raises(PatchError, match="No series named 'no-such-series'"):
        patch.resolve("no-such-series")


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(PatchError, match=r"no series\.toml"):
        patch.load(tmp_path)


def test_first_failure() -> None:
    assert patch.first_failure("error: patch failed: fs/a.c:12\nerror: fs/a.c: patch does "
                               "not apply\n") == "fs/a.c:12"
    assert patch.first_failure("error: corrupt patch at line 9\n") == "corrupt patch at line 9"
    assert patch.first_failure("") == "no output from git"
