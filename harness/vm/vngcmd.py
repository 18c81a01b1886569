"""The virtme-ng command line, built by pure functions (tested without a VM)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class VmSpec:
    """Everything that decides how a guest is started."""

    kernel: Path
    accel: str                          # "kvm" or "tcg"
    guest_command: tuple[str, ...]      # argv run inside the guest
    cwd: Path                           # guest working directory (shared read-only)
    rwdirs: tuple[Path, ...] = ()       # host directories the guest may write
    cpus: int = 2
    memory: str = "1G"
    force_9p: bool = True
    append: tuple[str, ...] = ()
    qemu_opts: tuple[str, ...] = ()
    stdout_file: Path | None = None     # where the guest command's stdout goes (in the guest)
    stderr_file: Path | None = None
    env: tuple[tuple[str, str], ...] = field(default=())
    hardware_modules: bool = False      # let udev load the drivers in HARDWARE_MODULES
    plain: bool = False                 # none of the harness's speed-ups (a benchmark floor)


# Kernel command line the harness always adds, and why.
BASE_APPEND = (
    "panic=-1",              # a panic ends QEMU (-no-reboot) instead of sitting there
    "softlockup_panic=0",    # report soft lockups on the console, keep running
    "printk.devkmsg=on",     # the runner's /dev/kmsg markers are never rate-limited away
)

# Kernel arguments for a throwaway test guest under TCG, where every instruction is
# emulated. They matter on a distribution kernel (bench/results.json key vng_speedups,
# fast_append against plain); the harness's own builds have CPU_MITIGATIONS unset and
# INIT_ON_ALLOC_DEFAULT_ON off already.
# A user's --append comes later and wins (both are parsed on every occurrence), e.g.
# --append mitigations=auto to time a race on a distribution kernel as shipped.
FAST_APPEND = (
    "mitigations=off",       # no retpolines, RSB filling or usercopy barriers
    "init_on_alloc=0",       # Debian zeroes every allocation by default
)

# Drivers that virtme-ng's udev coldplug loads in a guest of a modular kernel (Debian's)
# for the devices of QEMU's emulated PC and for CPU features. No scenario uses one; under
# TCG, loading them is a third of a bare vng boot of Debian's kernel (bench/results.json
# key vng_speedups, fast_and_blacklist against fast_append). kmod reads
# modprobe.blacklist from the kernel command line and applies it to loads by alias (what
# udev does), never to an explicit `modprobe NAME`. A kernel without modules ignores it.
HARDWARE_MODULES: tuple[tuple[str, str], ...] = (
    ("ahci", "the q35 SATA controller (the root is 9p)"),
    ("ata_piix", "the i440fx IDE controller"),
    ("sr_mod", "QEMU's CD-ROM drive"),
    ("sg", "SCSI generic nodes for that drive"),
    ("lpc_ich", "the q35 LPC bridge"),
    ("i2c_i801", "the q35 SMBus"),
    ("iTCO_wdt", "the ICH9 watchdog"),
    ("i6300esb", "the watchdog virtme-ng adds"),
    ("intel_pmc_bxt", "the ICH9 power management controller"),
    ("qemu_fw_cfg", "the fw_cfg device, as sysfs files"),
    ("psmouse", "the PS/2 mouse"),
    ("serio_raw", "raw PS/2 access"),
    ("evdev", "input event nodes"),
    ("pcspkr", "the PC speaker"),
    ("button", "the ACPI power button (power-off does not use it)"),
    ("kvm_amd", "nested KVM, loaded for -cpu max's SVM flag"),
    ("kvm_intel", "nested KVM, for VMX"),
    ("aesni_intel", "AES instructions (no scenario encrypts)"),
    ("ccp", "the AMD crypto co-processor driver, loaded for a CPU feature"),
)


def hardware_blacklist() -> str:
    """The kernel argument that keeps udev from loading HARDWARE_MODULES."""
    return "modprobe.blacklist=" + ",".join(name for name, _ in HARDWARE_MODULES)


def guest_shell(spec: VmSpec) -> str:
    """The shell string vng's --exec runs in the guest (argv quoted, output redirected)."""
    parts = [f"export {k}={shlex.quote(v)};" for k, v in spec.env]
    parts.append("exec " + shlex.join(spec.guest_command))
    if spec.stdout_file is not None:
        parts.append(f"> {shlex.quote(str(spec.stdout_file))}")
    if spec.stderr_file is not None:
        parts.append(f"2> {shlex.quote(str(spec.stderr_file))}")
    return " ".join(parts)


def vng_command(spec: VmSpec, vng: str = "vng") -> list[str]:
    """``vng --run`` argv for ``spec``; the kernel console goes to vng's stderr."""
    cmd = [
        vng,
        "--run", str(spec.kernel),
        "--verbose",                       # kernel console on stderr: captured to its own file
        "--cpus", str(spec.cpus),
        "--memory", spec.memory,
        "--cwd", str(spec.cwd),
    ]
    if spec.accel != "kvm":
        cmd.append("--disable-kvm")        # TCG; vng picks -cpu max
    if spec.force_9p:
        cmd.append("--force-9p")           # skip the virtiofsd start-up wait when it is absent
    for d in spec.rwdirs:
        cmd += ["--rwdir", str(d)]
    fast = () if spec.plain else FAST_APPEND
    lean = () if spec.hardware_modules or spec.plain else (hardware_blacklist(),)
    for a in (*BASE_APPEND, *fast, *lean, *spec.append):
        cmd += ["--append", a]
    for o in spec.qemu_opts:
        cmd += ["--qemu-opts", o]
    cmd += ["--exec", guest_shell(spec)]
    return cmd
