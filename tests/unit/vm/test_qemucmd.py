"""harness.vm.qemucmd: image mode's QEMU command line, pure; ports on loopback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.errors import BootError
from harness.vm.qemucmd import (
    QemuSpec,
    check_port,
    free_port,
    gdb_command,
    kernel_cmdline,
    qemu_command,
)
from harness.vm.vngcmd import BASE_APPEND


def spec(**kw: object) -> QemuSpec:
    base: dict[str, object] = dict(kernel=Path("/k/vmlinuz"), image=Path("/c/img dir/rootfs.ext4"),
                                   accel="tcg", ssh_port=40022)
    base.update(kw)
    return QemuSpec(**base)  # type: ignore[arg-type]


def value(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == flag]


def test_tcg_and_kvm() -> None:
    assert value(qemu_command(spec()), "-machine") == ["q35,accel=tcg"]
    assert value(qemu_command(spec()), "-cpu") == ["max"]
    kvm = qemu_command(spec(accel="kvm"))
    assert value(kvm, "-machine") == ["q35,accel=kvm"] and value(kvm, "-cpu") == ["host"]


def test_network_is_one_loopback_forward_and_nothing_else() -> None:
    cmd = qemu_command(spec())
    (netdev,) = value(cmd, "-netdev")
    assert netdev == "user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22"
    assert "-nodefaults" in cmd          # no default NIC besides ours
    assert value(cmd, "-device").count("virtio-net-pci,netdev=net0") == 1


def test_image_is_never_written() -> None:
    (drive,) = value(qemu_command(spec()), "-drive")
    assert drive.startswith("file=/c/img dir/rootfs.ext4,format=raw,if=virtio")
    assert "snapshot=on" in drive.split(",")


def test_console_and_panic_behaviour() -> None:
    cmd = qemu_command(spec())
    assert value(cmd, "-serial") == ["chardev:console"]
    assert value(cmd, "-chardev") == ["stdio,id=console,signal=off"]
    assert value(cmd, "-monitor") == ["none"]
    assert "-no-reboot" in cmd
    line = kernel_cmdline(spec(append=("mnh.extra=1",)))
    words = line.split()
    assert "console=ttyS0,115200" in words and "init=/sbin/mnh-init" in words
    assert all(a in words for a in BASE_APPEND)
    assert words[-1] == "mnh.extra=1"   # the user's arguments come last, so they win
    assert value(cmd, "-append") == [kernel_cmdline(spec())]


def test_initrd_and_gdb_only_when_asked() -> None:
    cmd = qemu_command(spec())
    assert "-initrd" not in cmd and "-gdb" not in cmd
    cmd = qemu_command(spec(initrd=Path("/c/i.cpio"), gdb_port=1234, cpus=2, memory="2G"))
    assert value(cmd, "-initrd") == ["/c/i.cpio"]
    assert value(cmd, "-gdb") == ["tcp:127.0.0.1:1234"]
    assert value(cmd, "-smp") == ["2"] and value(cmd, "-m") == ["2G"]
    assert all(isinstance(a, str) for a in cmd)


def test_gdb_command() -> None:
    assert gdb_command(Path("/b/vmlinux"), 1234) == ["gdb", "/b/vmlinux", "-ex",
                                                      "target remote 127.0.0.1:1234"]
    assert gdb_command(None, 99) == ["gdb", "-ex", "target remote 127.0.0.1:99"]


def test_a_taken_port_is_refused_with_a_free_one_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        with pytest.raises(BootError, match=rf"Port {taken} .* already in use\. Pick another"):
            check_port(taken)
    port = free_port()
    assert check_port(port) == port
    with pytest.raises(BootError, match="out of range"):
        check_port(70000)
