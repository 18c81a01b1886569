"""The bench entry point parses its own options (a merge once gave it one option twice)."""

from __future__ import annotations

import pytest

from harness import bench


def test_bench_options_parse() -> None:
    with pytest.raises(SystemExit) as exc:
        bench.main(["--help"])
    assert exc.value.code == 0


def test_every_bench_is_selectable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--only", "no-such-bench"])
    err = capsys.readouterr().err
    for name in bench.BENCHES:
        assert name in err
