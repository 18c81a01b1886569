"""harness.doctor: the prerequisite table, checks, and install commands."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import doctor
from harness.doctor import Prereq


def test_install_commands_dedup_and_sort() -> None:
    missing = [
        Prereq("QEMU", "exe", "qemu-system-x86_64", apt="qemu-system-x86"),
        Prereq("gcc", "exe", "gcc", apt="gcc"),
        Prereq("cc", "exe", "cc", apt="gcc"),
        Prereq("virtme-ng", "exe", "vng", pip="virtme-ng"),
        Prereq("thing", "file", "/x", apt="bc", pip="virtme-ng"),
    ]
    assert doctor.install_commands(missing) == [
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "bc", "gcc", "qemu-system-x86"],
        [sys.executable, "-m", "pip", "install", "virtme-ng"],
    ]


def test_install_commands_nothing_missing_or_pip_only() -> None:
    assert doctor.install_commands([]) == []
    assert doctor.install_commands([Prereq("v", "exe", "vng", pip="virtme-ng")]) == [
        [sys.executable, "-m", "pip", "install", "virtme-ng"]]


def test_table_is_complete() -> None:
    names = [p.name for p in doctor.PREREQS]
    assert len(names) == len(set(names))
    for p in doctor.PREREQS:
        assert p.apt or p.pip, f"{p.name} has no way to be installed"
        assert p.needed_for in ("run", "build")
        assert doctor.check(p).prereq is p           # every kind in the table is checkable


def test_check_exe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "mnh-fake-tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    ok = doctor.check(Prereq("t", "exe", "mnh-fake-tool"))
    assert ok.ok and ok.detail == str(exe)
    bad = doctor.check(Prereq("t", "exe", "mnh-no-such-tool"))
    assert (bad.ok, bad.detail) == (False, "not on PATH")


def test_check_file(tmp_path: Path) -> None:
    f = tmp_path / "gelf.h"
    f.write_text("")
    assert doctor.check(Prereq("h", "file", str(f))).ok
    c = doctor.check(Prereq("h", "file", str(tmp_path / "nope.h")))
    assert not c.ok and c.detail.endswith("nope.h missing")


def test_check_python_module() -> None:
    assert doctor.check(Prereq("json", "python", "json")).ok
    assert doctor.check(Prereq("xml", "python", "xml.etree.ElementTree")).ok
    assert not doctor.check(Prereq("x", "python", "mnh_no_such_module")).ok
    assert not doctor.check(Prereq("x", "python", "mnh_no_such_pkg.sub")).ok


def test_doctor_reports_missing_and_prints_the_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNH_ACCEL", "tcg")            # no KVM probe
    present = tmp_path / "present.h"
    present.write_text("")
    monkeypatch.setattr(doctor, "PREREQS", (
        Prereq("present", "file", str(present), apt="libfoo-dev"),
        Prereq("absent", "file", str(tmp_path / "absent.h"), apt="libbar-dev", why="tests"),
    ))
    assert doctor.doctor(install=False) == 1
    out, err = capsys.readouterr()
    assert "[ok  ] present" in out
    assert "[MISS] absent" in out and "(tests)" in out
    assert "apt-get install -y --no-install-recommends libbar-dev" in err
    assert "libfoo-dev" not in err


def test_doctor_all_present(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MNH_ACCEL", "tcg")
    monkeypatch.setattr(doctor, "PREREQS", (Prereq("sh", "exe", "sh", apt="dash"),))
    assert doctor.doctor(install=False) == 0
    assert "free disk" in capsys.readouterr().out


def test_no_service_starts_writes_and_removes_a_denying_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    with doctor.no_service_starts(policy) as written:
        assert written
        assert policy.read_text().rstrip().endswith("exit 101")
        assert policy.stat().st_mode & 0o111
    assert not policy.exists()


def test_no_service_starts_keeps_the_machines_own_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    with doctor.no_service_starts(policy) as written:
        assert not written
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"
