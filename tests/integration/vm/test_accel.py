"""harness.vm.accel: the KVM probe against a fake QEMU (tests/fakes/fake-qemu), and choose()."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.vm import accel

FAKE_QEMU = str(Path(__file__).resolve().parents[2] / "fakes" / "fake-qemu")


def probe(monkeypatch: pytest.MonkeyPatch, mode: str, timeout: float = 2.0
          ) -> tuple[bool, str, float]:
    monkeypatch.setenv("FAKE_QEMU_MODE", mode)
    start = time.monotonic()
    works, evidence = accel.probe_boot(Path("/k/bzImage"), qemu=FAKE_QEMU, timeout=timeout)
    return works, evidence, time.monotonic() - start


def test_probe_command() -> None:
    cmd = accel.probe_command("/usr/bin/qemu-system-x86_64", Path("/k/bz Image"))
    assert cmd[0] == "/usr/bin/qemu-system-x86_64"
    assert cmd[cmd.index("-accel") + 1] == "kvm"
    assert cmd[cmd.index("-cpu") + 1] == "host"
    assert cmd[cmd.index("-kernel") + 1] == "/k/bz Image"
    assert "-no-reboot" in cmd
    append = cmd[cmd.index("-append") + 1]
    assert "panic=-1" in append.split() and "console=ttyS0" in append.split()


def test_kvm_internal_error_is_broken(monkeypatch: pytest.MonkeyPatch) -> None:
    works, evidence, took = probe(monkeypatch, "kvm-error", timeout=10)
    assert works is False
    assert "KVM internal error" in evidence
    assert took < 5      # it does not wait for the timeout


def test_reaching_root_mount_works(monkeypatch: pytest.MonkeyPatch) -> None:
    works, evidence, took = probe(monkeypatch, "reach", timeout=10)
    assert works is True
    assert "VFS: Unable to mount root fs" in evidence
    assert took < 5


def test_silent_guest_is_a_hang_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    works, evidence, took = probe(monkeypatch, "silent", timeout=1)
    assert works is False
    assert "hang" in evidence
    assert took < 5


def test_qemu_that_exits_reports_its_status_and_last_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    works, evidence, _ = probe(monkeypatch, "fail")
    assert works is False
    assert "status 1" in evidence
    assert "could not load kernel" in evidence


def test_qemu_closing_output_before_exiting_is_not_a_hang(
        monkeypatch: pytest.MonkeyPatch) -> None:
    works, evidence, _ = probe(monkeypatch, "close-then-exit", timeout=5)
    assert works is False
    assert "hang" not in evidence
    assert "status 1" in evidence and "could not load kernel" in evidence


@pytest.mark.parametrize("forced", ["tcg", "TCG", "kvm"])
def test_choose_honours_mnh_accel(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                  forced: str) -> None:
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("MNH_ACCEL", forced)
    a = accel.choose(None, qemu=FAKE_QEMU)
    assert a.name == forced.lower()
    assert a.probed is False
    assert "MNH_ACCEL" in a.reason
    assert list(tmp_path.iterdir()) == []    # nothing probed, nothing cached


def test_choose_without_qemu_is_tcg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MNH_ACCEL", raising=False)
    a = accel.choose(None, qemu=str(tmp_path / "no-such-qemu"))
    assert a.name == "tcg" and a.probed is False


@pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK),
                    reason="choose() only probes when /dev/kvm is usable")
def test_choose_probes_once_then_uses_the_cache(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MNH_ACCEL", raising=False)
    monkeypatch.setenv("FAKE_QEMU_MODE", "reach")
    first = accel.choose(Path("/k/bzImage"), qemu=FAKE_QEMU)
    assert (first.name, first.probed) == ("kvm", True)
    cached = list((tmp_path / "accel").glob("*.json"))
    assert len(cached) == 1
    assert json.loads(cached[0].read_text())["name"] == "kvm"
    # The verdict is cached: even a now-broken QEMU does not change it.
    monkeypatch.setenv("FAKE_QEMU_MODE", "kvm-error")
    second = accel.choose(Path("/k/bzImage"), qemu=FAKE_QEMU)
    assert second.name == "kvm"
    assert second.reason.endswith("(cached probe)")


@pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK),
                    reason="choose() only probes when /dev/kvm is usable")
def test_choose_falls_back_to_tcg_when_kvm_is_broken(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("MNH_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MNH_ACCEL", raising=False)
    monkeypatch.setenv("FAKE_QEMU_MODE", "kvm-error")
    a = accel.choose(Path("/k/bzImage"), qemu=FAKE_QEMU)
    assert (a.name, a.probed) == ("tcg", True)
    assert "KVM does not work" in a.reason and "KVM internal error" in a.reason
