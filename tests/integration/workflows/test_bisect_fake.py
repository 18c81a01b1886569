"""harness bisect end to end against tests/fakelinux: real git, real make, a fake boot
(the step's runner reads the fake kernel image instead of booting it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import git

from harness import cli
from harness.build.artifact import Artifact
from harness.errors import BisectError, HarnessError
from harness.workflows import bisect
from harness.workflows.bisect import BisectOptions
from harness.workflows.bisect_search import Verdict


@pytest.fixture()
def fragment(tmp_path: Path) -> Path:
    f = tmp_path / "fake.config"
    f.write_text("CONFIG_64BIT=y\n")
    return f


def commit_three(tree: Path) -> None:
    """A README-only change (same image), the regression, a harmless change."""
    (tree / "README").write_text("notes\n")
    git(tree, "add", "README")
    git(tree, "commit", "-q", "-m", "docs: add a README")
    ns = tree / "fs" / "namespace.c"
    ns.write_text(ns.read_text() + "/* BROKEN */\n")
    git(tree, "commit", "-q", "-am", "fs: break do_mount")
    ns.write_text(ns.read_text() + "/* later */\n")
    git(tree, "commit", "-q", "-am", "fs: a later change")


def series_of_three(tree: Path, tmp_path: Path) -> Path:
    commit_three(tree)
    out = tmp_path / "series3"
    git(tree, "format-patch", "-q", "-o", str(out), "HEAD~3..HEAD")
    git(tree, "reset", "-q", "--hard", "HEAD~3")
    return out


class FakeBoot:
    """Fails when the fake image carries the regression; counts the boots."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.boots: list[str] = []
        self.interrupt_after = interrupt_after

    def __call__(self, art: Artifact, where: Path) -> str:
        if self.interrupt_after is not None and len(self.boots) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.boots.append(art.directory.name)
        return "fail" if "BROKEN" in art.vmlinux.read_text() else "pass"


def test_series_bisect_names_the_culprit(tree: Path, fragment: Path, tmp_path: Path) -> None:
    series = series_of_three(tree, tmp_path)
    boot = FakeBoot()
    opts = BisectOptions(series=str(series), base=tree, configs=(str(fragment),),
                         results=tmp_path / "r", confirm=2)
    res = bisect.bisect(opts, boot)
    assert res.outcome is not None and res.outcome.culprit == 2 and res.confirmed
    assert res.summary.startswith("Culprit: k=2 0002-fs-break-do_mount.patch (confirmed")
    by = {(s.phase, s.rev): s for s in res.steps}
    assert by[("endpoint", "0")].verdict is Verdict.GOOD
    assert by[("endpoint", "3")].verdict is Verdict.BAD
    # k=1 only adds a README: its image is k=0's, so it is not booted again.
    assert by[("bisect", "1")].same_image_as == "0"
    assert by[("confirm", "2")].runs == ["fail", "fail"]
    assert by[("confirm", "1")].runs == ["pass", "pass"]
    assert len(boot.boots) == 2 + 1 + 4
    report = (tmp_path / "r" / "report.txt").read_text()
    assert "image identical to 0" in report and "Culprit: k=2" in report
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["culprit_index"] == 2 and len(data["steps"]) == len(res.steps)


def test_series_bisect_resumes_from_its_log(tree: Path, fragment: Path,
                                             tmp_path: Path) -> None:
    series = series_of_three(tree, tmp_path)
    opts = BisectOptions(series=str(series), base=tree, configs=(str(fragment),),
                         results=tmp_path / "r", confirm=1)
    with pytest.raises(KeyboardInterrupt):
        bisect.bisect(opts, FakeBoot(interrupt_after=2))
    again = FakeBoot()
    res = bisect.bisect(opts, again)
    assert res.outcome is not None and res.outcome.culprit == 2
    assert len(again.boots) == 1 + 2, "the two endpoints came from the step log"


def test_tree_bisect_and_the_tree_is_restored(tree: Path, fragment: Path,
                                              tmp_path: Path) -> None:
    commit_three(tree)
    head = git(tree, "rev-parse", "HEAD").strip()
    res = bisect.bisect(BisectOptions(tree=tree, good="HEAD~3", bad="HEAD",
                                          configs=(str(fragment),), results=tmp_path / "r"),
                            FakeBoot())
    assert res.outcome is not None and res.confirmed
    culprit = git(tree, "rev-parse", "HEAD~1").strip()
    assert res.summary.startswith(f"Culprit: {culprit[:12]} fs: break do_mount")
    assert git(tree, "symbolic-ref", "--short", "HEAD").strip() == "main"
    assert git(tree, "rev-parse", "HEAD").strip() == head


def test_step_for_git_bisect_run(tree: Path, fragment: Path, tmp_path: Path) -> None:
    commit_three(tree)
    opts = BisectOptions(tree=tree, configs=(str(fragment),), results=tmp_path / "r",
                         step_only=True)
    assert bisect.step_once(opts, FakeBoot()) == 1
    git(tree, "checkout", "-q", "HEAD~2")
    assert bisect.step_once(opts, FakeBoot()) == 0


def test_endpoints_that_contradict(tree: Path, fragment: Path, tmp_path: Path) -> None:
    commit_three(tree)
    base = dict(tree=tree, configs=(str(fragment),))
    with pytest.raises(BisectError, match=r"The good end .* fails .*Pick an older --good"):
        bisect.bisect(BisectOptions(good="HEAD~1", bad="HEAD", results=tmp_path / "a",
                                        **base), FakeBoot())  # type: ignore[arg-type]
    with pytest.raises(BisectError, match=r"The bad end .* passes"):
        bisect.bisect(BisectOptions(good="HEAD~3", bad="HEAD~2", results=tmp_path / "b",
                                        **base), FakeBoot())  # type: ignore[arg-type]


def test_every_commit_fails_to_build(tree: Path, fragment: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    commit_three(tree)
    monkeypatch.setenv("FAKELINUX_FAIL", "compile")
    with pytest.raises(BisectError, match=r"both ends of the range fail to build.*BuildError"):
        bisect.bisect(BisectOptions(tree=tree, good="HEAD~3", bad="HEAD",
                                        configs=(str(fragment),), results=tmp_path / "r"),
                          FakeBoot())


@pytest.mark.parametrize(("args", "message"), [
    (["--good", "nosuchrev", "--bad", "HEAD"], "The good revision 'nosuchrev' is not a commit"),
    (["--good", "HEAD", "--bad", "HEAD~3"], "is not an ancestor of the bad revision"),
    (["--good", "HEAD"], "--tree needs --good REV and --bad REV"),
])
def test_bad_revisions_give_a_message_not_a_traceback(
        tree: Path, fragment: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        args: list[str], message: str) -> None:
    commit_three(tree)
    rc = cli.main(["bisect", "--tree", str(tree), "--config", str(fragment),
                   "--results", str(tmp_path / "r"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err


def test_dirty_tree_and_not_a_kernel(tree: Path, fragment: Path, tmp_path: Path) -> None:
    commit_three(tree)
    (tree / "fs" / "namespace.c").write_text("dirty\n")
    with pytest.raises(BisectError, match=r"uncommitted changes .*git stash"):
        bisect.bisect(BisectOptions(tree=tree, good="HEAD~3", bad="HEAD"), FakeBoot())
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(HarnessError, match=r"not a kernel source tree"):
        bisect.bisect(BisectOptions(tree=plain, good="a", bad="b"), FakeBoot())


def test_series_counts_out_of_range(tree: Path, fragment: Path, tmp_path: Path) -> None:
    series = series_of_three(tree, tmp_path)
    with pytest.raises(BisectError, match=r"--bad 9 is outside the series series3 \(3 patches"):
        bisect.bisect(BisectOptions(series=str(series), base=tree, bad="9"), FakeBoot())
    with pytest.raises(BisectError, match=r"--good 2 must be fewer patches than --bad 1"):
        bisect.bisect(BisectOptions(series=str(series), base=tree, good="2", bad="1"),
                          FakeBoot())


def test_a_pytest_selection_decides_each_step(tree: Path, fragment: Path,
                                              tmp_path: Path) -> None:
    """--pytest: a real pytest run per step, the step's kernel in MNH_PATCHED_KERNEL."""
    commit_three(tree)
    check = tmp_path / "check_kernel.py"
    check.write_text(
        "import os, pathlib\n\n\n"
        "def test_not_broken():\n"
        "    art = pathlib.Path(os.environ['MNH_PATCHED_KERNEL'])\n"
        "    assert 'BROKEN' not in (art / 'vmlinux').read_text()\n")
    res = bisect.bisect(BisectOptions(tree=tree, good="HEAD~3", bad="HEAD",
                                          pytest_args=(str(check),), confirm=1,
                                          configs=(str(fragment),), results=tmp_path / "r"))
    assert res.outcome is not None and res.confirmed
    assert "fs: break do_mount" in res.summary.split(". Last good")[0]
    logs = [Path(log) / "pytest.log" for s in res.steps for log in s.logs]
    assert logs and all(p.is_file() for p in logs)
