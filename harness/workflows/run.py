"""The main job: boot a kernel, run scenarios in the guest, collect verdicts, write reports."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mnh_guest
from mnh_guest.scenarios import BY_NAME, default_names

from harness import paths
from harness.errors import BootError, LostVMError
from harness.kernel import abi, resolve
from harness.kernel.image import Kernel
from harness.results import report
from harness.results.verdict import Outcome, ScenarioResult, assign
from harness.vm import accel, image, image_boot, qemucmd
from harness.vm.supervise import BootResult, Timeouts, supervise
from harness.vm.vngcmd import VmSpec, vng_command

log = logging.getLogger("harness")
GUEST_DIR = Path(mnh_guest.__file__).resolve().parent.parent
# How the guest starts Python: -B writes no bytecode into the tree it shares with the
# host; -S skips site, which the stdlib-only guest code does not need (0.47 -> 0.33 s for
# a bare interpreter under TCG, measured in the guest).
GUEST_PYTHON_FLAGS = ("-B", "-S")


@dataclass(frozen=True)
class RunOptions:
    kernel: str
    backend: str = "fanotify"
    scenarios: tuple[str, ...] = ()
    results: Path | None = None
    cpus: int | None = None           # default: 2 with KVM, 1 under TCG (see default_cpus)
    memory: str = "1G"
    timeouts: Timeouts = field(default_factory=Timeouts)
    append: tuple[str, ...] = ()      # extra kernel command-line arguments
    hardware_modules: bool = False    # vng: let udev load QEMU's chipset drivers (vmcmd)
    guest_timeout: float = 60.0       # per scenario, enforced by the guest runner (0: none)
    guest_python: str = "python3"
    series: str | None = None         # watch-queue: whose [abi] (default: the kernel's own)
    image: str | None = None          # image mode: a guest image (directory or suite name)
    ssh_port: int | None = None       # image mode: host port of the SSH forward (default: free)
    gdb_port: int | None = None       # image mode: QEMU's gdb stub on this loopback port


@dataclass
class RunResult:
    results_dir: Path
    kernel: Kernel
    accel: accel.Accel
    boot: BootResult
    scenarios: list[ScenarioResult]

    @property
    def passed(self) -> bool:
        return bool(self.scenarios) and all(r.outcome is Outcome.PASS for r in self.scenarios)

    def scenario(self, name: str) -> ScenarioResult:
        return next(r for r in self.scenarios if r.name == name)

    def log_path(self, name: str) -> Path:
        return self.results_dir / "guest" / "scenarios" / f"{name}.jsonl"


def exit_code(results: list[ScenarioResult]) -> int:
    """0 all passed; 1 a kernel problem (fail, crash, timeout); 2 infrastructure; 4 skips."""
    outcomes = {r.outcome for r in results}
    if outcomes & {Outcome.FAIL, Outcome.CRASH, Outcome.TIMEOUT}:
        return 1
    if Outcome.ERROR in outcomes or not results:
        return 2
    if Outcome.SKIP in outcomes:
        return 4
    return 0


def _new_results_dir(given: Path | None) -> Path:
    if given is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        given = paths.cache_dir("runs") / stamp
    given = given.resolve()
    if given.exists() and any(given.iterdir()):
        # Keep old artifacts: never delete what a user may still want.
        old = given.with_name(given.name + time.strftime(".old-%Y%m%d-%H%M%S"))
        given.rename(old)
    given.mkdir(parents=True, exist_ok=True)
    return given


def scenario_names(backend: str, asked: tuple[str, ...]) -> list[str]:
    names = list(asked) or default_names(backend)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise BootError(f"Unknown scenario(s) {', '.join(unknown)}. Known: "
                        f"{', '.join(sorted(BY_NAME))} (`harness run --list-scenarios`).")
    wrong = [n for n in names if backend not in BY_NAME[n].backends]
    if wrong:
        raise BootError(f"Scenario(s) {', '.join(wrong)} have no {backend} variant; choose "
                        f"another --backend or drop them.")
    return names


def default_cpus(accel_name: str) -> int:
    """One vCPU under TCG: with several, QEMU's multi-threaded TCG and the kernel's
    boot-time text patching race now and then (seen here: "Oops: int3" in
    sched_clock_cpu during boot of Debian's 7.3.4), which is not the kernel under
    test's fault. Races are studied with an explicit --cpus."""
    return 2 if accel_name == "kvm" else 1


def run(opts: RunOptions) -> RunResult:
    names = scenario_names(opts.backend, opts.scenarios)
    kernel = resolve.kernel(opts.kernel)
    img = None
    if opts.image:
        # Checked before anything boots: a bad image or a taken port fails in seconds.
        img = image.resolve(opts.image)
        image.check(img.path)
        ssh_port, gdb_port = image_boot.check_ports(opts.ssh_port, opts.gdb_port)
    chosen = accel.choose(kernel.image)
    log.info("accelerator: %s (%s)", chosen.name, chosen.reason)
    if img is None and shutil.which("vng") is None:
        raise BootError("virtme-ng (vng) is not installed. Run `harness doctor --install`.")
    res = _new_results_dir(opts.results)
    guest_out = res / "guest"
    guest_out.mkdir()
    # Where the runner writes in the guest: the shared results directory under vng, a
    # directory of the guest's own disk in image mode (copied back over SFTP).
    guest_results = image_boot.GUEST_RESULTS if img is not None else str(guest_out)
    guest_cmd = [opts.guest_python, *GUEST_PYTHON_FLAGS, "-m", "mnh_guest.run",
                 "--results", guest_results,
                 "--backend", opts.backend, "--timeout", str(opts.guest_timeout)]
    if opts.backend == "watch-queue":
        series = opts.series or abi.series_of_kernel(kernel.metadata) or abi.DEFAULT_SERIES
        (guest_out / "abi.json").write_text(json.dumps(abi.load(series), indent=2) + "\n")
        guest_cmd += ["--abi", f"{guest_results}/abi.json"]
    for n in names:
        guest_cmd += ["--scenario", n]
    if img is not None:
        # Each verdict leaves the guest before the next scenario may crash it.
        guest_cmd += ["--ack-timeout", str(image_boot.ACK_TIMEOUT)]
    cpus = opts.cpus or default_cpus(chosen.name)
    console_path = res / "console.log"
    if img is None:
        spec = VmSpec(kernel=kernel.image, accel=chosen.name, guest_command=tuple(guest_cmd),
                      cwd=GUEST_DIR, rwdirs=(guest_out,), memory=opts.memory,
                      cpus=cpus, append=opts.append, hardware_modules=opts.hardware_modules,
                      stdout_file=guest_out / "runner.stdout",
                      stderr_file=guest_out / "runner.stderr")
        cmd = vng_command(spec)
        run_info = _run_info(kernel, chosen, opts, cmd)
        (res / "command.json").write_text(json.dumps(run_info, indent=2, default=str) + "\n")
        boot = supervise(cmd, console_path, res / "vng.stdout", opts.timeouts)
    else:
        ib = image_boot.ImageBoot(kernel=kernel, image=img, accel=chosen.name, cpus=cpus,
                                 memory=opts.memory, append=opts.append, ssh_port=ssh_port,
                                 gdb_port=gdb_port)
        qspec = image_boot.spec_for(ib)
        run_info = _run_info(kernel, chosen, opts, qemucmd.qemu_command(qspec))
        run_info["mode"] = "image"
        run_info["image"] = img.to_json()
        if gdb_port is not None:
            print(f"harness: gdb stub on {qemucmd.LOOPBACK}:{gdb_port}; attach with: "
                  f"{image_boot.gdb_hint(ib)}", file=sys.stderr)
        (res / "command.json").write_text(json.dumps(run_info, indent=2, default=str) + "\n")
        upload = ([(guest_out / "abi.json", f"{guest_results}/abi.json")]
                  if opts.backend == "watch-queue" else [])
        boot, run_info["image_mode"] = image_boot.boot_and_run(
            ib, qspec, guest_cmd, guest_out, console_path, opts.timeouts, upload)
    verdicts = _read_verdicts(guest_out / "scenarios")
    lines = console_path.read_text(errors="replace").splitlines()
    results = assign(names, opts.backend, verdicts, lines, boot, opts.timeouts,
                     console_path=str(console_path))
    for r in results:
        lp = guest_out / "scenarios" / f"{r.name}.jsonl"
        r.log = str(lp) if lp.exists() else ""
    run_info.update(boot={"returncode": boot.returncode, "duration": boot.duration,
                          "booted_at": boot.booted_at, "timed_out": boot.timed_out,
                          "notes": boot.notes},
                    console=str(console_path))
    report.write_json(res / "results.json", run_info, results)
    report.write_junit(res / "junit.xml", f"mount-notify.{opts.backend}", results)
    (res / "results.ktap").write_text(report.ktap(f"mount-notify.{opts.backend}", results))
    return RunResult(res, kernel, chosen, boot, results)


def build_info(kernel: Kernel) -> dict[str, Any] | None:
    """What a built kernel carries (series, how many of its patches), from its metadata."""
    if kernel.metadata is None:
        return None
    try:
        meta = json.loads(kernel.metadata.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    series = meta.get("series") or {}
    patches = list(series.get("patches") or [])
    return {"digest": str(meta.get("digest", ""))[:12], "base": meta.get("base"),
            "series": series.get("name"), "patches_applied": len(patches),
            "last_patch": patches[-1] if patches else None, "upto": series.get("upto"),
            "fragments": meta.get("fragments"), "reproducer": meta.get("reproducer")}


def _run_info(kernel: Kernel, chosen: accel.Accel, opts: RunOptions,
              cmd: list[str]) -> dict[str, Any]:
    """command.json (written now, before the boot) and the head of results.json."""
    info: dict[str, Any] = {
        "kernel": kernel.to_json(), "build": build_info(kernel), "accel": chosen.to_json(),
        "backend": opts.backend,
        "command": cmd, "timeouts": asdict(opts.timeouts),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return info


def _read_verdicts(d: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not d.is_dir():
        return out
    for f in d.glob("*.verdict.json"):
        try:
            out[f.name.removesuffix(".verdict.json")] = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("unreadable verdict %s: %s", f, exc)
    return out


def run_or_raise_lost(opts: RunOptions) -> RunResult:
    """``run``, raising LostVMError when the guest produced no verdict at all."""
    result = run(opts)
    if all(r.outcome is Outcome.ERROR for r in result.scenarios) and not result.boot.timed_out:
        raise LostVMError(
            f"The guest produced no verdict for any scenario (vng exit status "
            f"{result.boot.returncode}). {result.scenarios[0].message}",
            artifacts=result.results_dir)
    return result


def print_summary(result: RunResult) -> None:
    print(report.table(result.scenarios))
    print(f"kernel: {result.kernel.image} ({result.kernel.release or 'release unknown'}); "
          f"accel: {result.accel.name} ({result.accel.reason}); "
          f"boot-to-runner {result.boot.booted_at} s, total {result.boot.duration} s",
          file=sys.stderr)
    for note in result.boot.notes:
        print(f"note: {note}", file=sys.stderr)
    blamed = [r.name for r in result.scenarios if r.blame == "kernel"]
    if blamed:
        what = "the kernel under test"
        b = build_info(result.kernel)
        if b and b.get("series"):
            what = (f"the series ({b['series']}, {b['patches_applied']} patches applied, "
                    f"up to {b['last_patch']})")
        print(f"note: {len(blamed)} scenario(s) failed because {what} disagrees with the "
              f"oracle or crashed, not because of the harness: {', '.join(blamed)}",
              file=sys.stderr)
    print(f"results: {result.results_dir}", file=sys.stderr)
