"""The main job: boot a kernel, run scenarios in the guest, collect verdicts, write reports."""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mnh_guest.scenarios import BY_NAME, default_names

from harness import paths, signals
from harness.build.artifact import BuildMetadata
from harness.errors import BootError, LostVMError, signal_name
from harness.kernel import resolve
from harness.kernel.image import Kernel
from harness.results import report
from harness.results.verdict import Outcome, ScenarioResult, assign
from harness.vm import accel, guest, transport
from harness.vm.guest import default_cpus
from harness.vm.supervise import BootResult, Timeouts
from harness.vm.transport import Machine

log = logging.getLogger("harness")


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


def machine_for(opts: RunOptions, kernel: Kernel, chosen: accel.Accel) -> Machine:
    return Machine(kernel=kernel, accel=chosen.name,
                   cpus=opts.cpus or default_cpus(chosen.name), memory=opts.memory,
                   append=opts.append, gdb_port=opts.gdb_port)


def run(opts: RunOptions) -> RunResult:
    names = scenario_names(opts.backend, opts.scenarios)
    kernel = resolve.kernel(opts.kernel)
    chosen = accel.choose(kernel.image)
    log.info("accelerator: %s (%s)", chosen.name, chosen.reason)
    machine = machine_for(opts, kernel, chosen)
    # Checked before anything boots: a bad image, a taken port or no vng fails in seconds.
    tp = transport.get(machine, image=opts.image, ssh_port=opts.ssh_port,
                       hardware_modules=opts.hardware_modules)
    res = _new_results_dir(opts.results)
    guest_out = res / "guest"
    guest_out.mkdir()
    guest_results = tp.guest_results(guest_out)
    argv = guest.python_argv(opts.guest_python, "mnh_guest.run", "--results", guest_results,
                             "--backend", opts.backend, "--timeout", str(opts.guest_timeout))
    abi_local = guest.abi_file(opts.backend, kernel, opts.series, guest_out)
    if abi_local is not None:
        argv += ["--abi", f"{guest_results}/{abi_local.name}"]
    # The list goes in a file: vng passes the guest command on the kernel command line
    # (2048 bytes on x86), which thirty scenario names and a long results path overflow
    # ("Requested init / failed"), and every scenario would read as a crash.
    plan_local = guest_out / "scenarios.txt"
    plan_local.write_text("".join(f"{n}\n" for n in names))
    argv += ["--scenario-file", f"{guest_results}/{plan_local.name}"]
    argv += tp.runner_args()
    console_path = res / "console.log"
    run_info = _run_info(kernel, chosen, opts, tp.command(argv, guest_out))
    run_info.update(tp.describe())
    (res / "command.json").write_text(json.dumps(run_info, indent=2, default=str) + "\n")
    transport.announce_gdb(machine)
    boot = BootResult(returncode=None, duration=0.0)
    interrupted: BaseException | None = None
    try:
        boot, details = tp.run(argv, guest_out, console_path, opts.timeouts,
                               [f for f in (abi_local, plan_local) if f is not None])
        if details:
            run_info[f"{tp.mode}_mode"] = details
    except KeyboardInterrupt as exc:   # SIGINT, and SIGTERM/SIGHUP as Interrupted
        # The transport stopped the guest on its way out; what was decided is kept.
        interrupted = exc
        boot.interrupted = signal_name(exc)
        boot.notes.append(f"the run was interrupted ({boot.interrupted}); the guest was "
                          "stopped and the scenarios without a verdict are marked error")
    with signals.deferred():   # a second signal must not cost the reports
        results = _finish(res, names, opts, boot, console_path, run_info)
    if interrupted is not None:
        raise interrupted
    return RunResult(res, kernel, chosen, boot, results)


def _finish(res: Path, names: list[str], opts: RunOptions, boot: BootResult,
            console_path: Path, run_info: dict[str, Any]) -> list[ScenarioResult]:
    """Verdicts from what the guest wrote and the console showed; every report written."""
    guest_out = res / "guest"
    verdicts = _read_verdicts(guest_out / "scenarios")
    lines = (console_path.read_text(errors="replace").splitlines()
             if console_path.exists() else [])
    results = assign(names, opts.backend, verdicts, lines, boot, opts.timeouts,
                     console_path=str(console_path))
    for r in results:
        lp = guest_out / "scenarios" / f"{r.name}.jsonl"
        r.log = str(lp) if lp.exists() else ""
    run_info.update(boot={"returncode": boot.returncode, "duration": boot.duration,
                          "booted_at": boot.booted_at, "timed_out": boot.timed_out,
                          "interrupted": boot.interrupted, "notes": boot.notes},
                    console=str(console_path))
    report.write_json(res / "results.json", run_info, results)
    report.write_junit(res / "junit.xml", f"mount-notify.{opts.backend}", results)
    (res / "results.ktap").write_text(report.ktap(f"mount-notify.{opts.backend}", results))
    return results


def build_info(kernel: Kernel) -> dict[str, Any] | None:
    """What a built kernel carries (series, how many of its patches), from its metadata."""
    meta = BuildMetadata.load(kernel.metadata)
    return meta.summary() if meta is not None else None


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
