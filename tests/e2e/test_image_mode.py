"""End to end in image mode: QEMU booted directly with the Debian guest image.

The same scenarios must give the same outcomes as virtme-ng mode (the fanotify suite
on the prebuilt kernel, the watch_queue suite on the patched kernel); a panic on the
serial console is a crash with its excerpt; a guest that never gets ready is a
timeout; a changed host key, a missing or corrupt image and a taken port are clear
errors, each in bounded time. The image is built once (cached across sessions).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import cli
from harness.errors import BootError, HostKeyError, ImageError
from harness.results.verdict import Outcome
from harness.vm import image
from harness.vm.supervise import Timeouts
from harness.workflows import shell
from harness.workflows.run import RunOptions, RunResult, exit_code, run

pytestmark = pytest.mark.vm

ImageRun = Callable[..., RunResult]


@pytest.fixture(scope="session")
def guest_image() -> image.Image:
    """The recipe's image: built on the first use (a few minutes), then from the cache."""
    return image.build()


@pytest.fixture(scope="session")
def image_run(guest_image: image.Image, mnh_results_root: Path) -> ImageRun:
    cache: dict[tuple[object, ...], RunResult] = {}

    def _run(kernel: str, scenarios: tuple[str, ...] = (), backend: str = "fanotify",
             timeouts: Timeouts | None = None, append: tuple[str, ...] = (),
             tag: str = "", img: str | None = None) -> RunResult:
        key = (kernel, scenarios, backend, timeouts, append, img)
        if key not in cache:
            cache[key] = run(RunOptions(
                kernel=kernel, backend=backend, scenarios=scenarios, append=append,
                image=img or str(guest_image.directory),
                results=mnh_results_root / f"image-{tag or len(cache)}",
                timeouts=timeouts or Timeouts()))
        return cache[key]

    return _run


def outcomes(r: RunResult) -> dict[str, str]:
    return {s.name: str(s.outcome) for s in r.scenarios}


def assert_same_outcomes(image: RunResult, vng: RunResult) -> None:
    """The same outcome per scenario, automount-expiry's NFS server included (the
    image's own nfs-utils serve it)."""
    got, want = outcomes(image), outcomes(vng)
    assert got == want, (image.results_dir, {
        n: image.scenario(n).message for n, o in got.items() if o != want.get(n)})


def test_fanotify_suite_same_outcomes_as_vng(image_run: ImageRun, mnh_kernel: str,
                                             fanotify_suite: RunResult) -> None:
    r = image_run(mnh_kernel, tag="fanotify-suite")
    assert_same_outcomes(r, fanotify_suite)
    assert all(s.outcome is Outcome.PASS for s in r.scenarios), outcomes(r)
    assert "automount-expiry" in outcomes(r)
    # Same result files as virtme-ng mode, same event counts per scenario.
    for f in ("results.json", "junit.xml", "results.ktap", "console.log", "command.json",
              "guest/runner.stdout", "guest/runner.stderr", "guest/runner.json"):
        assert (r.results_dir / f).exists(), f
    assert {s.name: s.events for s in r.scenarios} == {
        s.name: s.events for s in fanotify_suite.scenarios}
    for s in r.scenarios:
        assert Path(s.log).is_file() and Path(s.log).parent == r.results_dir / "guest/scenarios"
    data = json.loads((r.results_dir / "results.json").read_text())
    assert data["mode"] == "image" and data["command"][0].startswith("qemu-system")
    assert "mnh: runner start" in (r.results_dir / "console.log").read_text()
    info = data["image_mode"]
    assert info["console_shell"]["status"] == 0          # the root shell on the console
    assert info["ssh_s"] >= info["ready_s"] > 0
    assert "restrict=on,hostfwd=tcp:127.0.0.1:" in " ".join(data["command"])


@pytest.mark.build
def test_watch_queue_suite_same_outcomes_as_vng(image_run: ImageRun, mnh_patched_kernel: str,
                                                watch_queue_suite: RunResult) -> None:
    r = image_run(mnh_patched_kernel, backend="watch-queue", tag="watch-queue-suite")
    assert_same_outcomes(r, watch_queue_suite)
    assert (r.results_dir / "guest" / "abi.json").exists()
    data = json.loads((r.results_dir / "results.json").read_text())
    assert data["image_mode"]["initrd"] == ""   # no modules: the image boots directly


def test_panic_during_a_scenario_is_a_crash_with_excerpt(image_run: ImageRun,
                                                         mnh_kernel: str) -> None:
    r = image_run(mnh_kernel, ("mount", "selftest-panic", "move"), tag="panic",
                  timeouts=Timeouts(boot=240, scenario=60, run=400))
    assert r.boot.duration < 400
    assert r.scenario("mount").outcome is Outcome.PASS   # fetched before the panic
    crash = r.scenario("selftest-panic")
    assert crash.outcome is Outcome.CRASH, crash.message
    assert crash.splats[0]["kind"] == "panic"
    assert "sysrq triggered crash" in crash.splats[0]["excerpt"]
    assert r.scenario("move").outcome is Outcome.ERROR
    assert exit_code(r.scenarios) == 1


def test_panic_at_boot_seen_on_the_serial_console(image_run: ImageRun, mnh_kernel: str) -> None:
    # No initramfs init: the kernel cannot load virtio_blk and panics looking for root.
    r = image_run(mnh_kernel, ("mount",), append=("rdinit=/nonexistent",), tag="boot-panic",
                  timeouts=Timeouts(boot=240, scenario=60, run=400))
    res = r.scenario("mount")
    assert res.outcome is Outcome.CRASH, res.message
    assert "before the runner started" in res.message
    assert "Unable to mount root fs" in res.splats[0]["excerpt"]
    assert r.boot.duration < 240


def test_guest_that_never_gets_ready_times_out(image_run: ImageRun, mnh_kernel: str) -> None:
    t0 = time.monotonic()
    r = image_run(mnh_kernel, ("mount",), tag="boot-timeout",
                  timeouts=Timeouts(boot=3, scenario=60, run=400))
    res = r.scenario("mount")
    assert res.outcome is Outcome.TIMEOUT, res.message
    assert r.boot.timed_out == "boot" and time.monotonic() - t0 < 60
    assert (r.results_dir / "console.log").stat().st_size > 0


def test_changed_host_key_is_refused(guest_image: image.Image, mnh_kernel: str,
                                     tmp_path: Path) -> None:
    # The same disk, but the key recorded beside it is another one.
    fake = tmp_path / "altered"
    fake.mkdir()
    os.link(guest_image.path, fake / image.IMAGE_FILE)
    shutil.copy(guest_image.client_key, fake / image.CLIENT_KEY)
    meta = json.loads((guest_image.directory / image.META_FILE).read_text())
    meta["host_key"] = image._new_key()[1]
    (fake / image.META_FILE).write_text(json.dumps(meta))
    t0 = time.monotonic()
    with pytest.raises(HostKeyError, match=r"presented SSH host key .* connection was refused"):
        run(RunOptions(kernel=mnh_kernel, image=str(fake), scenarios=("mount",),
                       results=tmp_path / "r", timeouts=Timeouts(boot=240)))
    assert time.monotonic() - t0 < 240


def test_bad_images_and_a_taken_port_fail_before_booting(guest_image: image.Image,
                                                         mnh_kernel: str,
                                                         tmp_path: Path) -> None:
    t0 = time.monotonic()
    with pytest.raises(ImageError, match="does not exist"):
        run(RunOptions(kernel=mnh_kernel, image=str(tmp_path / "no" / "such-image"),
                       results=tmp_path / "r1"))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    shutil.copy(guest_image.directory / image.META_FILE, corrupt / image.META_FILE)
    (corrupt / image.IMAGE_FILE).write_bytes(os.urandom(1 << 20))
    with pytest.raises(ImageError, match="not an ext4 file system"):
        run(RunOptions(kernel=mnh_kernel, image=str(corrupt), results=tmp_path / "r2"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(BootError, match=f"Port {port} .* already in use"):
            run(RunOptions(kernel=mnh_kernel, image=str(guest_image.directory),
                           ssh_port=port, results=tmp_path / "r3"))
    assert time.monotonic() - t0 < 120
    assert not (tmp_path / "r1").exists()    # nothing booted, no results directory


def test_second_shell_into_a_running_scenario(guest_image: image.Image, mnh_kernel: str,
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    results = tmp_path / "hang"
    box: dict[str, RunResult | BaseException] = {}

    def background() -> None:
        try:
            box["r"] = run(RunOptions(kernel=mnh_kernel, image=str(guest_image.directory),
                                      scenarios=("selftest-hang",), guest_timeout=30,
                                      results=results, timeouts=Timeouts(boot=240, run=400)))
        except BaseException as exc:  # reported by the assertion below
            box["r"] = exc

    th = threading.Thread(target=background, daemon=True)
    th.start()
    deadline = time.monotonic() + 300
    while not (results / "ssh.json").exists() and time.monotonic() < deadline and th.is_alive():
        time.sleep(0.5)
    # The runner starts right after ssh.json is written; wait for its start marker.
    while ("mnh: scenario selftest-hang start" not in _read(results / "console.log")
           and time.monotonic() < deadline and th.is_alive()):
        time.sleep(0.5)
    capsys.readouterr()
    rc = shell.attach(results, ["ls /root/mnh/results/scenarios", "pgrep -f mnh_guest.run"])
    out = capsys.readouterr().out
    th.join(timeout=400)
    assert rc == 0 and "selftest-hang.jsonl" in out, out
    r = box["r"]
    assert isinstance(r, RunResult), r
    assert r.scenario("selftest-hang").outcome is Outcome.TIMEOUT


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def test_shell_prints_records_live(guest_image: image.Image, mnh_kernel: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli.main(["shell", "--kernel", mnh_kernel, "--image", str(guest_image.directory),
                   "--command", "mkdir -p /mnt/a /mnt/b",
                   "--command", "mount -t tmpfs t /mnt/a",
                   "--command", "mount --move /mnt/a /mnt/b",
                   "--command", "umount /mnt/b"])
    out = capsys.readouterr().out
    assert rc == 0, out
    watch = [ln.split()[1] for ln in out.splitlines() if ln.startswith("mnh-watch: ")
             and "mnt_id=" in ln]
    assert watch == ["ATTACH", "ATTACH|DETACH", "DETACH"], out
