"""mnh_guest.scenarios: the table names real functions, and reading it imports none of them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mnh_guest.scenarios import BY_NAME, TABLE, default_names, stress_names

GUEST_DIR = Path(__file__).resolve().parents[3] / "guest-tests"


def test_every_entry_names_a_function() -> None:
    for s in TABLE:
        assert callable(s.func), s.target
        assert s.func.__name__ == s.target.partition(":")[2]
    assert len(BY_NAME) == len(TABLE)


def test_defaults_exclude_selftests_and_stress() -> None:
    for backend in ("fanotify", "watch-queue"):
        names = default_names(backend)
        assert "mount" in names and "automount-expiry" in names
        assert not any(BY_NAME[n].selftest or BY_NAME[n].stress for n in names)
    assert "keys" not in default_names("fanotify") and "keys" in default_names("watch-queue")
    assert "dir-watch" in default_names("watch-queue")
    assert "dir-watch" not in default_names("fanotify")      # fanotify has no subtree watch
    assert stress_names() == ["stress-race", "stress-lazy", "stress-watches"]


def test_reading_the_table_imports_no_scenario_module() -> None:
    # A fresh interpreter: the guest's runner reads the table at start and imports a
    # scenario's module only when that scenario runs.
    code = ("import sys; import mnh_guest.run; "
            "print(sorted(m for m in sys.modules if m.startswith('mnh_guest.scenarios.')))")
    out = subprocess.run([sys.executable, "-B", "-S", "-c", code], cwd=GUEST_DIR, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_a_module_that_does_not_import_is_that_scenarios_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mnh_guest import run
    from mnh_guest.scenarios import Scenario

    broken = Scenario("broken", "no_such_module:f", ("fanotify",), "cannot be imported")
    monkeypatch.setitem(run.BY_NAME, "broken", broken)
    verdict = run.run_one("broken", "fanotify", str(tmp_path), timeout=10)
    assert verdict["outcome"] == "error"
    assert "cannot load no_such_module:f: ModuleNotFoundError" in verdict["message"]
    assert json.loads((tmp_path / "broken.verdict.json").read_text()) == verdict
