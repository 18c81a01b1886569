"""The bench entry point parses its own options (a merge once gave it one option twice)."""

from __future__ import annotations

import pytest

from bench import suites


def test_bench_options_parse() -> None:
    with pytest.raises(SystemExit) as exc:
        suites.main(["--help"])
    assert exc.value.code == 0


def test_every_bench_is_selectable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        suites.main(["--only", "no-such-bench"])
    err = capsys.readouterr().err
    for name in suites.BENCHES:
        assert name in err
