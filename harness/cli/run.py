"""``harness run``: the command line of a run, turned into RunOptions at this edge."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.errors import BootError
from harness.vm.supervise import Timeouts
from harness.workflows.run import RunOptions, exit_code, print_summary, run_or_raise_lost


def _list() -> int:
    from mnh_guest.scenarios import TABLE

    for s in TABLE:
        tag = " (selftest)" if s.selftest else " (stress)" if s.stress else ""
        print(f"{s.name:<16} {','.join(s.backends):<20} {s.description}{tag}")
    return 0


def _main(a: argparse.Namespace) -> int:
    if a.list_scenarios:
        return _list()
    if not a.kernel:
        raise BootError("--kernel is required: a kernel image, a build artifact directory, or "
                        "debian[:VERSION].")
    result = run_or_raise_lost(from_args(a))
    print_summary(result)
    return exit_code(result.scenarios)


def from_args(a: argparse.Namespace) -> RunOptions:
    """The frozen options of a run; the Namespace stops here."""
    return RunOptions(kernel=a.kernel, backend=a.backend, scenarios=tuple(a.scenario),
                      results=a.results, cpus=a.cpus, memory=a.memory,
                      append=tuple(a.append), hardware_modules=a.hardware_modules,
                      series=a.series,
                      timeouts=Timeouts(boot=a.boot_timeout, scenario=a.scenario_timeout,
                                        run=a.run_timeout),
                      guest_timeout=a.guest_timeout, image=a.image, ssh_port=a.ssh_port,
                      gdb_port=a.gdb_port)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="boot a kernel and run scenarios in it",
                       description="Exit status: 0 every scenario passed; 1 a fail, crash or "
                       "timeout; 2 an infrastructure error; 4 some scenarios were skipped.")
    p.add_argument("--kernel", help="image path, build artifact dir, kernel tree, or "
                   "debian[:VERSION]")
    p.add_argument("--backend", default="fanotify", choices=("fanotify", "watch-queue"))
    p.add_argument("--series", help="watch-queue: the series whose ABI the kernel has "
                   "(default: the one the kernel was built with)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME",
                   help="run only this scenario (repeatable); default: all of the backend")
    p.add_argument("--results", type=Path, help="results directory (default: in the cache)")
    p.add_argument("--cpus", type=int, default=None,
                   help="guest vCPUs (default: 2 with KVM, 1 under TCG)")
    p.add_argument("--append", action="append", default=[], metavar="ARG",
                   help="extra kernel command-line argument (repeatable)")
    p.add_argument("--hardware-modules", action="store_true",
                   help="let udev load the drivers of QEMU's emulated PC, which the harness "
                   "blacklists on virtme-ng boots (about 10 s of a TCG boot of a modular "
                   "kernel; the list is vmcmd.HARDWARE_MODULES)")
    p.add_argument("--memory", default="1G")
    p.add_argument("--boot-timeout", type=float, default=Timeouts.boot)
    p.add_argument("--scenario-timeout", type=float, default=Timeouts.scenario,
                   help="host watchdog per scenario (seconds)")
    p.add_argument("--run-timeout", type=float, default=Timeouts.run)
    p.add_argument("--guest-timeout", type=float, default=60.0,
                   help="per-scenario timeout enforced inside the guest (0: none)")
    p.add_argument("--image", metavar="IMAGE", help="image mode: boot QEMU directly with this "
                   "guest image (a directory from `harness image build`, or a suite name) "
                   "instead of virtme-ng")
    p.add_argument("--ssh-port", type=int, default=None, help="image mode: host port on "
                   "127.0.0.1 forwarded to the guest's sshd (default: a free one)")
    p.add_argument("--gdb-port", type=int, default=None, help="expose QEMU's gdb stub on this "
                   "127.0.0.1 port (both modes)")
    p.add_argument("--list-scenarios", action="store_true")
    p.set_defaults(func=_main)
