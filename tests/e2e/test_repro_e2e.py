"""End to end: ``harness repro`` on the patched kernel (the default build, as in CI; the
debug kernel's figures are in the README): the stress scenarios run their rounds in one
boot on 2 vCPUs, and a crash is fingerprinted, symbolized and given a reproducer."""

from __future__ import annotations

from pathlib import Path

import pytest
from mnh_guest.scenarios import stress_names

from harness.workflows.repro import ReproOptions, report_text, repro

pytestmark = [pytest.mark.vm, pytest.mark.build]


def test_stress_rounds_in_one_boot_on_two_vcpus(tmp_path: Path,
                                                mnh_patched_kernel: str) -> None:
    res = repro(ReproOptions(kernel=mnh_patched_kernel, runs=2, seconds=2.0, cpus=2,
                             results=tmp_path / "repro"))
    text = report_text(res.summary)
    assert res.boots == 1, text
    scenarios = res.summary["scenarios"]
    assert set(scenarios) == set(stress_names()), text
    for name, s in scenarios.items():
        assert s["runs"] == 2 and s["ops"] > 0, (name, text)
    assert not res.failures, text
    assert (tmp_path / "repro" / "repro.json").is_file()


def test_a_crash_is_fingerprinted_symbolized_and_reproducible(
        tmp_path: Path, mnh_patched_kernel: str) -> None:
    res = repro(ReproOptions(kernel=mnh_patched_kernel, scenarios=("selftest-panic",),
                             runs=3, until_fail=True, fresh_boot=True, cpus=1, seconds=1.0,
                             results=tmp_path / "repro"))
    assert res.boots == 1, "--until-fail stops at the first failure"
    (failure,) = res.failures.values()
    assert failure.fingerprint.startswith("panic: Kernel panic - not syncing: sysrq"), \
        failure.fingerprint
    assert "sysrq_handle_crash" in failure.fingerprint
    assert "drivers/tty/sysrq.c" in failure.symbolized, failure.symbolized[:2000]
    assert failure.reproducer.startswith("harness repro --kernel ")
    assert "--scenario selftest-panic" in failure.reproducer
    (fp,) = res.summary["fingerprints"].values()
    assert fp["text"] == "1/1 = 100.0% (95% CI 20.7-100.0%)"
    d = next((tmp_path / "repro" / "failures").iterdir())
    assert {p.name for p in d.iterdir()} >= {"fingerprint.txt", "excerpt.txt", "reproduce.sh",
                                            "symbolized.txt", "run"}
