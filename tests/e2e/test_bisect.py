"""End to end: ``harness bisect`` finds a regression (a dropped MOVE_TO) among test-only
patches on top of the real series, both as patches of a series and as commits of a git
tree, on real kernels booted under QEMU.

The range only touches fs/ files, so each step is an incremental build; the first four
patches of the test series are the real series, whose artifact is in the cache.  Cold
(a fresh cache) the tree test also builds its tree once from ccache.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.testing.history import (
    CULPRIT_SUBJECT,
    extra_patches,
    make_history,
    make_series,
    real_count,
)
from harness.vm.supervise import Timeouts
from harness.workflows.bisect import BisectOptions, bisect
from harness.workflows.bisect_search import Verdict

pytestmark = [pytest.mark.vm, pytest.mark.build]

TIMEOUTS = Timeouts(boot=300, scenario=120, run=600)


def test_series_bisect_names_the_dropped_move_to(tmp_path: Path) -> None:
    series = make_series(tmp_path / "series")
    n = real_count()  # good: the real series; then a comment, the regression, a comment
    culprit = next(p.name for p in extra_patches() if "MOVE_TO" in p.name)
    res = bisect(BisectOptions(series=str(series), good=str(n), bad=str(n + 3),
                               scenarios=("move",), confirm=2, results=tmp_path / "bisect",
                               timeouts=TIMEOUTS))
    assert res.outcome is not None and res.confirmed, (res.results / "report.txt").read_text()
    assert res.summary.startswith(f"Culprit: k={n + 2} {culprit} (confirmed"), res.summary
    by = {(s.phase, s.rev): s for s in res.steps}
    # The comment-only patch after the real series gives the same image: not booted.
    comment = by[("bisect", str(n + 1))]
    assert comment.same_image_as == str(n) and comment.verdict is Verdict.GOOD
    assert by[("confirm", str(n + 2))].runs == ["fail", "fail"]
    assert by[("confirm", str(n + 1))].runs == ["pass", "pass"]
    text = (res.results / "report.txt").read_text()
    assert f"k={n + 2}" in text and "confirmed" in text


def test_tree_bisect_names_the_same_commit(tmp_path: Path) -> None:
    tree, good, bad = make_history()
    res = bisect(BisectOptions(tree=tree, good=good, bad=bad, scenarios=("move",),
                               confirm=1, results=tmp_path / "bisect", timeouts=TIMEOUTS))
    assert res.outcome is not None and res.confirmed, (res.results / "report.txt").read_text()
    assert CULPRIT_SUBJECT in res.summary.split(". Last good")[0], res.summary
    assert any(s.same_image_as for s in res.steps), "the comment-only commit was not reused"
