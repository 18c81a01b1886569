"""The whole build stage against tests/fakelinux: real git, real make, no kernel."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import git

from harness import cli
from harness.build import patch, pipeline, source
from harness.build.pipeline import BuildRequest
from harness.errors import BuildError, ConfigError, HarnessError, PatchError


@pytest.fixture()
def fragment(tmp_path: Path) -> Path:
    f = tmp_path / "fake.config"
    f.write_text("# fragment for fakelinux\nCONFIG_64BIT=y\nCONFIG_WATCH_QUEUE=y\n"
                 "CONFIG_KEYS=y\nCONFIG_KEY_NOTIFICATIONS=y\n")
    return f


def request(tree: Path, *configs: Path, **kw: object) -> BuildRequest:
    return BuildRequest(tree=tree, configs=tuple(str(c) for c in configs), jobs=2,
                        **kw)  # type: ignore[arg-type]


def builds(objdir: str) -> int:
    log = Path(objdir) / "fake-builds.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_build_then_cached(tree: Path, fragment: Path) -> None:
    art = pipeline.build(request(tree, fragment))
    for name in ("bzImage", "vmlinux", "config", "build.log", "metadata.json"):
        assert (art.directory / name).is_file(), name
    meta = json.loads((art.directory / "metadata.json").read_text())
    assert meta["base"] == "git:" + git(tree, "rev-parse", "HEAD").strip()
    assert meta["series"] is None and meta["digest"] == art.directory.name
    assert meta["reproducer"] == f"harness build --tree {tree} --config {fragment}"
    assert "CONFIG_KEY_NOTIFICATIONS=y" in art.config.read_text()
    assert "  CC      fs/namespace.o" in art.log.read_text()
    assert builds(meta["objdir"]) == 1
    assert not (tree / ".config").exists(), "built in the source tree, not O="

    started = time.monotonic()
    again = pipeline.build(request(tree, fragment))
    assert time.monotonic() - started < 5
    assert again.directory == art.directory and builds(meta["objdir"]) == 1

    forced = pipeline.build(request(tree, fragment, force=True))
    assert forced.directory == art.directory and builds(meta["objdir"]) == 2
    assert forced.metadata["built_at"] >= meta["built_at"]
    assert forced.log.read_text().count("$ nice") == 1


def test_next_commit_reuses_the_object_directory(tree: Path, fragment: Path) -> None:
    first = pipeline.build(request(tree, fragment))
    (tree / "fs" / "namespace.c").write_text("int do_mount(void) { return 7; }\n")
    git(tree, "commit", "-q", "-am", "next")
    second = pipeline.build(request(tree, fragment))
    assert second.directory != first.directory
    assert second.metadata["objdir"] == first.metadata["objdir"]
    assert "return 7;" in second.vmlinux.read_text()


def test_config_change_is_a_new_artifact(tree: Path, fragment: Path, tmp_path: Path) -> None:
    first = pipeline.build(request(tree, fragment))
    extra = tmp_path / "extra.config"
    extra.write_text("CONFIG_SECURITY=y\n")
    second = pipeline.build(request(tree, fragment, extra))
    assert second.directory != first.directory
    assert "CONFIG_SECURITY=y" in second.config.read_text()


def test_dropped_option_names_symbol_and_dependency(tree: Path, tmp_path: Path) -> None:
    f = tmp_path / "bad.config"
    f.write_text("CONFIG_KEYS=y\nCONFIG_KEY_NOTIFICATIONS=y\nCONFIG_NFS_FS=y\n")
    with pytest.raises(ConfigError) as info:
        pipeline.build(request(tree, f))
    message = str(info.value)
    assert "CONFIG_KEY_NOTIFICATIONS (wanted =y, got not set): unmet dependency " \
           "WATCH_QUEUE [WATCH_QUEUE=n]" in message
    assert "CONFIG_NFS_FS (wanted =y, got not set): unmet dependency NET [NET=n]" in message
    assert not list((tmp_path / "cache" / "builds").glob("*"))


def test_compile_error_names_file_line_and_keeps_log(
        tree: Path, fragment: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKELINUX_FAIL", "compile")
    with pytest.raises(BuildError) as info:
        pipeline.build(request(tree, fragment))
    err = info.value
    assert "fs/namespace.c:6:17: error: expected ';'" in str(err)
    assert err.artifacts is not None and err.artifacts.name.startswith("failed-")
    assert "error: expected ';'" in (err.artifacts / "build.log").read_text()
    published = [p for p in (tmp_path / "cache" / "builds").iterdir()
                 if not p.name.startswith("failed-")]
    assert published == [], "a failed build must not leave an artifact"

    monkeypatch.setenv("FAKELINUX_FAIL", "link")
    with pytest.raises(BuildError, match="undefined reference to `do_umount'"):
        pipeline.build(request(tree, fragment))

    monkeypatch.delenv("FAKELINUX_FAIL")
    assert pipeline.build(request(tree, fragment)).bzimage.is_file()


def make_series(tree: Path, tmp_path: Path, new_line: str) -> Path:
    """A one-patch format-patch series against the tree's HEAD."""
    ns = tree / "fs" / "namespace.c"
    ns.write_text(ns.read_text().replace("return 0;", new_line))
    git(tree, "commit", "-q", "-am", "fs: change do_mount")
    out = tmp_path / "series"
    shutil.rmtree(out, ignore_errors=True)
    git(tree, "format-patch", "-q", "-o", str(out), "HEAD~1..HEAD")
    git(tree, "reset", "-q", "--hard", "HEAD~1")
    return out


def test_series_is_applied_in_a_work_tree(tree: Path, fragment: Path,
                                          tmp_path: Path) -> None:
    series = make_series(tree, tmp_path, "return 42;")
    req = BuildRequest(tree=tree, series=str(series), configs=(str(fragment),), jobs=2)
    art = pipeline.build(req)
    assert "return 42;" in art.vmlinux.read_text()
    assert "return 42;" not in (tree / "fs" / "namespace.c").read_text(), \
        "the user's tree must stay untouched"
    meta = art.metadata
    assert meta["series"]["name"] == "series" and meta["series"]["applied_now"] == [
        "0001-fs-change-do_mount.patch"]
    assert pipeline.build(req).directory == art.directory

    # Editing the patch gives a new artifact, built in the same work tree.
    p = next(series.glob("*.patch"))
    p.write_text(p.read_text().replace("return 42;", "return 43;"))
    second = pipeline.build(req)
    assert second.directory != art.directory and "return 43;" in second.vmlinux.read_text()
    assert second.metadata["srctree"] == meta["srctree"]


def test_edited_work_tree_is_refused(tree: Path, fragment: Path, tmp_path: Path) -> None:
    series = make_series(tree, tmp_path, "return 42;")
    req = BuildRequest(tree=tree, series=str(series), configs=(str(fragment),), jobs=2)
    src = Path(pipeline.build(req).metadata["srctree"])
    (src / "fs" / "namespace.c").write_text("edited\n")
    with pytest.raises(HarnessError, match=r"local edits \(M fs/namespace.c\)"):
        pipeline.build(BuildRequest(tree=tree, series=str(series),
                                    configs=(str(fragment),), force=True))
    git(src, "checkout", ".")
    (src / "fs" / "namespace.c").touch()
    assert pipeline.build(BuildRequest(tree=tree, series=str(series),
                                       configs=(str(fragment),), force=True))


def test_series_that_does_not_apply(tree: Path, fragment: Path, tmp_path: Path) -> None:
    series = make_series(tree, tmp_path, "return 42;")
    ns = tree / "fs" / "namespace.c"
    ns.write_text(ns.read_text().replace("return 0;", "return -1;"))
    git(tree, "commit", "-q", "-am", "diverge")
    req = BuildRequest(tree=tree, series=str(series), configs=(str(fragment),), jobs=2)
    with pytest.raises(PatchError, match=r"0001-fs-change-do_mount.patch.*fs/namespace.c"):
        pipeline.build(req)


def test_dirty_tree_is_refused(tree: Path, fragment: Path) -> None:
    (tree / "fs" / "namespace.c").write_text("dirty\n")
    with pytest.raises(HarnessError, match=r"uncommitted changes: M fs/namespace.c.*stash"):
        pipeline.build(request(tree, fragment))


def test_not_a_kernel_tree(tmp_path: Path, fragment: Path) -> None:
    with pytest.raises(HarnessError, match=r"not a kernel source tree .*Kconfig, arch/x86"):
        source.user_base(tmp_path)


def test_configured_in_place_tree_is_refused(tree: Path) -> None:
    (tree / ".config").write_text("CONFIG_X=y\n")
    with pytest.raises(HarnessError, match="make mrproper"):
        source.user_base(tree)


def test_cli_prints_artifact_directory(tree: Path, fragment: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["build", "--tree", str(tree), "--config", str(fragment), "-j", "2"]) == 0
    out = capsys.readouterr()
    path = Path(out.out.strip())
    assert (path / "bzImage").is_file()
    assert out.err == "", "progress must stay silent when stderr is not a terminal"


def test_cli_reports_errors(tree: Path, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "bad.config"
    f.write_text("CONFIG_MOUNT_NOTIFICATIONS=y\n")
    assert cli.main(["build", "--tree", str(tree), "--config", str(f)]) == 2
    err = capsys.readouterr().err
    assert "harness: error: 1 option(s)" in err and "CONFIG_MOUNT_NOTIFICATIONS" in err


def make_three_patches(tree: Path, tmp_path: Path) -> Path:
    """Three format-patch patches against the tree's HEAD, each changing fs/namespace.c."""
    ns = tree / "fs" / "namespace.c"
    for n in (1, 2, 3):
        ns.write_text(ns.read_text() + f"/* step {n} */\n")
        git(tree, "commit", "-q", "-am", f"fs: step {n}")
    out = tmp_path / "three"
    git(tree, "format-patch", "-q", "-o", str(out), "HEAD~3..HEAD")
    git(tree, "reset", "-q", "--hard", "HEAD~3")
    return out


def test_upto_builds_a_prefix_in_the_same_work_tree(tree: Path, fragment: Path,
                                                    tmp_path: Path) -> None:
    series = str(make_three_patches(tree, tmp_path))

    def build(upto: int | None) -> pipeline.Artifact:
        return pipeline.build(BuildRequest(tree=tree, series=series, upto=upto,
                                           configs=(str(fragment),), jobs=2))

    full = build(None)
    assert "/* step 3 */" in full.vmlinux.read_text()
    assert build(3).directory == full.directory, "all k patches is the full series"
    one = build(1)
    text = one.vmlinux.read_text()
    assert "/* step 1 */" in text and "/* step 2 */" not in text
    assert one.metadata["srctree"] == full.metadata["srctree"]
    assert one.metadata["objdir"] == full.metadata["objdir"]
    assert one.metadata["series"]["patches"] == ["0001-fs-step-1.patch"]
    assert one.metadata["reproducer"].endswith(f"--series {series} --upto 1 --config "
                                               f"{fragment}")
    # Forward from one patch applies only the second; nothing is reset to the base.
    two = build(2)
    assert two.metadata["series"]["applied_now"] == ["0002-fs-step-2.patch"]
    assert len({full.directory, one.directory, two.directory}) == 3
    none = build(0)
    assert "/* step" not in none.vmlinux.read_text()


def test_upto_outside_the_series(tree: Path, fragment: Path, tmp_path: Path) -> None:
    series = str(make_three_patches(tree, tmp_path))
    with pytest.raises(PatchError, match=r"--upto 4 is outside the series three, which has 3"):
        pipeline.build(BuildRequest(tree=tree, series=series, upto=4,
                                    configs=(str(fragment),)))
    with pytest.raises(PatchError, match=r"give --series too"):
        pipeline.build(BuildRequest(tree=tree, upto=1, configs=(str(fragment),)))


def test_old_marker_of_a_prefix_is_understood(tree: Path, fragment: Path,
                                             tmp_path: Path) -> None:
    """A work tree marked the old way ("<base> <series hash>") by a build of the first
    patches is extended, not rebuilt from the base."""
    series = str(make_three_patches(tree, tmp_path))
    two = pipeline.build(BuildRequest(tree=tree, series=series, upto=2,
                                      configs=(str(fragment),), jobs=2))
    workdir = Path(two.metadata["srctree"]).parent
    base = git(tree, "rev-parse", "HEAD").strip()
    prefix = patch.load(Path(series)).prefix(2)
    (workdir / "applied").write_text(f"{base} {prefix.content_hash()}\n")
    full = pipeline.build(BuildRequest(tree=tree, series=series, configs=(str(fragment),),
                                       jobs=2))
    assert full.metadata["series"]["applied_now"] == ["0003-fs-step-3.patch"]


@pytest.mark.parametrize("change", ["commit", "config"])
def test_a_tree_changed_under_the_build_is_never_published(
        tree: Path, fragment: Path, monkeypatch: pytest.MonkeyPatch, change: str) -> None:
    """Another process moving the work tree, or rewriting .config, while make runs: the
    kernel is not what the hash says, so nothing is published under it."""
    from harness.build import artifact, make

    real = make.build

    def build_then_change(settings: make.MakeSettings, *a: object, **kw: object) -> object:
        result = real(settings, *a, **kw)  # type: ignore[arg-type]
        if change == "commit":
            (settings.srctree / "README").write_text("moved\n")
            git(settings.srctree, "add", "README")
            git(settings.srctree, "commit", "-q", "-m", "moved under the build")
        else:
            cfg = settings.objdir / ".config"
            cfg.write_text(cfg.read_text().replace("CONFIG_KEY_NOTIFICATIONS=y",
                                                   "# CONFIG_KEY_NOTIFICATIONS is not set"))
        return result

    monkeypatch.setattr(make, "build", build_then_change)
    with pytest.raises((BuildError, ConfigError)):
        pipeline.build(request(tree, fragment))
    builds = artifact.builds_dir()
    assert [d.name for d in builds.iterdir() if not d.name.startswith("failed-")] == []
