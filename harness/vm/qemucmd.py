"""The QEMU command line of image mode, built by a pure function (tested without a VM).

Image mode boots QEMU directly, not through virtme-ng: the guest's root is the image
(a virtio disk, opened with snapshot=on so the cached image is never written), its
console is the first serial port on QEMU's stdio (driven with pexpect), and its only
network is QEMU's user-mode stack with one forward, from 127.0.0.1 on the host to the
guest's sshd. ``restrict=on`` keeps the guest from reaching anything else.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from dataclasses import dataclass
from pathlib import Path

from harness.errors import BootError
from harness.vm.vngcmd import BASE_APPEND, FAST_APPEND

LOOPBACK = "127.0.0.1"
GUEST_SSH_PORT = 22


@dataclass(frozen=True)
class QemuSpec:
    """Everything that decides how an image-mode guest is started."""

    kernel: Path
    image: Path
    accel: str                          # "kvm" or "tcg"
    ssh_port: int                       # host port forwarded to the guest's sshd
    initrd: Path | None = None          # the module initramfs of a modular kernel
    cpus: int = 1
    memory: str = "1G"
    append: tuple[str, ...] = ()
    gdb_port: int | None = None         # QEMU's gdb stub on 127.0.0.1, when asked for
    qemu: str = "qemu-system-x86_64"


def kernel_cmdline(spec: QemuSpec) -> str:
    """The guest kernel's command line: the console, the root, the init, the harness's
    usual panic behaviour, then the user's extra arguments (last wins)."""
    args = [
        "console=ttyS0,115200",     # the serial port pexpect reads; no VGA console
        "root=/dev/vda",            # the image (read by the kernel, or by the initramfs)
        "rootfstype=ext4",
        "rw",
        "init=/sbin/mnh-init",      # the image's own small init (images/init), not systemd
        "mnh.root=/dev/vda",        # for images/initramfs-init on modular kernels
        "net.ifnames=0",            # keep the name eth0 the init configures
        *BASE_APPEND,               # panic=-1 (QEMU exits, -no-reboot), devkmsg markers
        *FAST_APPEND,               # mitigations=off init_on_alloc=0 (a test guest)
        *spec.append,
    ]
    return " ".join(args)


def qemu_command(spec: QemuSpec) -> list[str]:
    """``qemu-system-x86_64`` argv for ``spec``; the serial console is QEMU's stdio."""
    cmd = [
        spec.qemu,
        "-nodefaults",                          # no default NIC, VGA, floppy, CD-ROM
        "-no-user-config",                      # ignore any host-wide QEMU configuration
        "-machine", f"q35,accel={spec.accel}",  # PCIe machine; TCG or (working) KVM
        # TCG: -cpu max has every feature QEMU emulates; KVM: the host's own CPU.
        "-cpu", "host" if spec.accel == "kvm" else "max",
        "-smp", str(spec.cpus),
        "-m", spec.memory,
        "-display", "none",                     # headless: nothing needs a window
        "-vga", "none",
        # The first serial port on stdio (pexpect's end). signal=off: ^C goes to the guest.
        "-chardev", "stdio,id=console,signal=off",
        "-serial", "chardev:console",
        "-monitor", "none",                     # no monitor muxed into the console
        "-no-reboot",                           # panic=-1 reboots, which ends QEMU
        "-kernel", str(spec.kernel),
        "-append", kernel_cmdline(spec),
        # The image as a virtio disk; snapshot=on sends writes to a temporary overlay, so
        # the cached image stays pristine and every run starts from the same state.
        "-drive", f"file={spec.image},format=raw,if=virtio,snapshot=on,cache=unsafe",
        # User-mode networking, reachable only through one forward bound to loopback;
        # restrict=on cuts the guest off from the host and every other address.
        "-netdev", f"user,id=net0,restrict=on,"
                   f"hostfwd=tcp:{LOOPBACK}:{spec.ssh_port}-:{GUEST_SSH_PORT}",
        "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",            # entropy: sshd does not wait for crng init
    ]
    if spec.initrd is not None:
        cmd += ["-initrd", str(spec.initrd)]    # loads virtio_blk/ext4/virtio_net first
    if spec.gdb_port is not None:
        cmd += ["-gdb", f"tcp:{LOOPBACK}:{spec.gdb_port}"]  # gdb stub, loopback only
    return cmd


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        port: int = s.getsockname()[1]
        return port


def check_port(port: int, what: str = "SSH forward") -> int:
    """``port`` if it can be bound on 127.0.0.1, else a BootError naming a free one."""
    if not 1 <= port <= 65535:
        raise BootError(f"Port {port} for the {what} is out of range (1-65535).")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError as exc:
            reason = ("is already in use" if exc.errno == errno.EADDRINUSE
                      else f"cannot be bound ({exc.strerror})")
            raise BootError(f"Port {port} on {LOOPBACK} for the {what} {reason}. Pick "
                            f"another (e.g. {free_port()}, free right now) or leave the "
                            "option out and the harness picks a free one.") from None
    return port


def gdb_command(vmlinux: Path | None, port: int) -> list[str]:
    """How to attach gdb to the stub (printed for the user, never run)."""
    cmd = ["gdb"]
    if vmlinux is not None:
        cmd.append(str(vmlinux))
    cmd += ["-ex", f"target remote {LOOPBACK}:{port}"]
    return cmd


def port_is_free(port: int) -> bool:
    with contextlib.suppress(BootError):
        check_port(port)
        return True
    return False
