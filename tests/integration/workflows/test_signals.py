"""SIGTERM, SIGINT and SIGHUP stop a command cleanly: the guest's (or make's) process
group is stopped, every output is written with what was already decided, and the exit
status is 128 + the signal. Real harness processes, real subprocesses; the guest is
tests/fakes/bin/vng and the kernel tree tests/fakelinux."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

FAKES = Path(__file__).resolve().parents[2] / "fakes" / "bin"
SIGNALS = [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
IDS = ["SIGTERM", "SIGINT", "SIGHUP"]
# Nine fanotify scenarios; the fake guest hangs in the ninth, after eight verdicts.
SCENARIOS = ["mount", "unmount", "move", "propagation", "fsmount", "namespaces",
             "remount-ro", "setattr", "expire"]
DEADLINE = 60.0


def fake_bzimage(path: Path) -> Path:
    head = bytearray(0x1000)
    head[0x202:0x206] = b"HdrS"
    path.write_bytes(bytes(head))
    return path


def harness(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    code = "import sys; from harness.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_for(what: str, cond: Callable[[], bool], proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not cond():
        if proc.poll() is not None:
            _, err = proc.communicate()
            raise AssertionError(f"harness exited ({proc.returncode}) before {what}:\n{err}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def group_gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def stop(proc: subprocess.Popen[str], sig: int) -> str:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("harness did not stop after the signal") from None
    return err


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "PATH": f"{FAKES}:{os.environ['PATH']}", "MNH_ACCEL": "tcg",
            "FAKE_VNG_PIDFILE": str(tmp_path / "vng.pid"), "FAKE_VNG_HANG_AT": "expire"}


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=IDS)
def test_run_stops_the_guest_and_writes_every_verdict(tmp_path: Path, env: dict[str, str],
                                                      sig: int, code: int) -> None:
    res = tmp_path / "results"
    args = ["run", "--kernel", str(fake_bzimage(tmp_path / "bzImage")), "--backend",
            "fanotify", "--results", str(res)]
    for s in SCENARIOS:
        args += ["--scenario", s]
    proc = harness(args, env, tmp_path)
    verdicts = res / "guest" / "scenarios"
    wait_for("eight verdicts", lambda: len(list(verdicts.glob("*.verdict.json"))) == 8, proc)
    time.sleep(0.3)   # the supervisor has seen the ninth start marker
    err = stop(proc, sig)
    assert proc.returncode == code, err
    assert f"stopped by {signal.Signals(sig).name}" in err
    pid = int((tmp_path / "vng.pid").read_text())
    assert group_gone(pid), "the guest's process group outlived the harness"
    data = json.loads((res / "results.json").read_text())
    outcomes = {s["name"]: (s["outcome"], s["message"]) for s in data["scenarios"]}
    assert [outcomes[s][0] for s in SCENARIOS[:8]] == ["pass"] * 8
    assert outcomes["expire"][0] == "error"
    assert f"interrupted: the run was stopped by {signal.Signals(sig).name}" in \
        outcomes["expire"][1]
    assert data["boot"]["interrupted"] == signal.Signals(sig).name
    assert "not ok 9 expire" in (res / "results.ktap").read_text()
    assert 'tests="9"' in (res / "junit.xml").read_text()


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=IDS)
def test_build_stops_make_and_publishes_nothing(tree: Path, tmp_path: Path, sig: int,
                                                code: int) -> None:
    frag = tmp_path / "fake.config"
    frag.write_text("CONFIG_64BIT=y\n")
    env = {**os.environ, "FAKELINUX_SLOW": "300"}
    proc = harness(["build", "--tree", str(tree), "--config", str(frag), "--no-ccache"],
                   env, tmp_path)
    cache = Path(os.environ["MNH_CACHE_DIR"])
    pidfiles = lambda: list(cache.glob("work/**/fake-make.pid"))  # noqa: E731
    wait_for("the slow compile step", lambda: bool(pidfiles()), proc)
    make_pid = int(pidfiles()[0].read_text())
    err = stop(proc, sig)
    assert proc.returncode == code, err
    with pytest.raises(ProcessLookupError):
        for _ in range(100):   # the compile step dies with its process group
            os.kill(make_pid, 0)
            time.sleep(0.05)
    builds = cache / "builds"
    assert not any(builds.iterdir()) if builds.exists() else True, "nothing half-built"


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=IDS)
def test_bisect_keeps_its_steps_and_resumes(tree: Path, tmp_path: Path, env: dict[str, str],
                                            sig: int, code: int) -> None:
    from conftest import git

    (tree / "README").write_text("notes\n")
    git(tree, "add", "README")
    git(tree, "commit", "-q", "-m", "docs")
    frag = tmp_path / "fake.config"
    frag.write_text("CONFIG_64BIT=y\n")
    res = tmp_path / "bisect"
    env = {**env, "FAKE_VNG_HANG_AT": "move-never", "FAKE_VNG_HANG_AFTER_BOOTS": "1"}
    proc = harness(["bisect", "--tree", str(tree), "--good", "HEAD~1", "--bad", "HEAD",
                    "--config", str(frag), "--backend", "fanotify", "--scenario", "mount",
                    "--results", str(res)], env, tmp_path)
    log = res / "bisect.jsonl"
    wait_for("the first step", lambda: log.exists() and len(log.read_text().splitlines()) >= 2,
             proc)
    err = stop(proc, sig)
    assert proc.returncode == code, err
    report = json.loads((res / "report.json").read_text())
    assert report["summary"].startswith(f"Interrupted by {signal.Signals(sig).name}")
    assert len(report["steps"]) >= 1
    assert (tree / ".git").exists() and "nothing to commit" in git(tree, "status")


@pytest.mark.parametrize(("sig", "code"), SIGNALS, ids=IDS)
def test_repro_writes_its_report(tmp_path: Path, env: dict[str, str], sig: int,
                                 code: int) -> None:
    res = tmp_path / "repro"
    env = {**env, "FAKE_VNG_HANG_AFTER_BOOTS": "0"}
    proc = harness(["repro", "--kernel", str(fake_bzimage(tmp_path / "bzImage")),
                    "--scenario", "stress-race", "--runs", "2", "--results", str(res)],
                   env, tmp_path)
    wait_for("the first boot", lambda: (tmp_path / "vng.pid").exists(), proc)
    time.sleep(0.3)
    err = stop(proc, sig)
    assert proc.returncode == code, err
    assert group_gone(int((tmp_path / "vng.pid").read_text()))
    summary = json.loads((res / "repro.json").read_text())
    assert summary["interrupted"] == signal.Signals(sig).name
    assert (res / "repro.txt").exists()


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    code = "import sys; from harness.cli import main; sys.exit(main())"
    out = subprocess.run(f"{sys.executable} -c '{code}' run --list-scenarios | head -1",
                         shell=True, capture_output=True, text=True, timeout=60, check=False)
    assert out.stdout.count("\n") == 1
    assert out.stderr == "", out.stderr
