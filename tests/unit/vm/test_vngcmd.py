"""harness.vm.vngcmd: the virtme-ng command line, pure."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from harness.vm.vngcmd import (
    BASE_APPEND,
    FAST_APPEND,
    HARDWARE_MODULES,
    VmSpec,
    guest_shell,
    hardware_blacklist,
    vng_command,
)


def spec(**kw: object) -> VmSpec:
    base: dict[str, object] = dict(
        kernel=Path("/k/bzImage"), accel="kvm",
        guest_command=("python3", "-m", "mnh_guest.run", "--results", "/r/out dir",
                       "--scenario", "it's \"quoted\" $HOME `x`;rm -rf /"),
        cwd=Path("/repo/guest-tests"), rwdirs=(Path("/r/out dir"), Path("/tmp/b")),
        append=("mnh.extra=1",), qemu_opts=("-device virtio-rng-pci",),
        stdout_file=Path("/r/out dir/runner.stdout"), stderr_file=Path("/r/runner's.stderr"),
        env=(("PYTHONPATH", "/repo/guest tests"), ("MNH_X", "a'b")))
    base.update(kw)
    return VmSpec(**base)  # type: ignore[arg-type]


def pairs(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, a in enumerate(cmd) if a == flag]


def test_kvm_and_tcg() -> None:
    assert "--disable-kvm" not in vng_command(spec(accel="kvm"))
    assert "--disable-kvm" in vng_command(spec(accel="tcg"))


def test_fixed_options() -> None:
    cmd = vng_command(spec(cpus=4, memory="2G"), vng="/opt/vng")
    assert cmd[0] == "/opt/vng"
    assert pairs(cmd, "--run") == ["/k/bzImage"]
    assert pairs(cmd, "--cpus") == ["4"]
    assert pairs(cmd, "--memory") == ["2G"]
    assert pairs(cmd, "--cwd") == ["/repo/guest-tests"]
    assert "--verbose" in cmd
    assert "--force-9p" in cmd
    assert "--force-9p" not in vng_command(spec(force_9p=False))


def test_rwdirs_appends_and_qemu_opts_each_get_their_flag() -> None:
    cmd = vng_command(spec())
    assert pairs(cmd, "--rwdir") == ["/r/out dir", "/tmp/b"]
    assert pairs(cmd, "--append") == [*BASE_APPEND, *FAST_APPEND, hardware_blacklist(),
                                          "mnh.extra=1"]
    assert {"panic=-1", "printk.devkmsg=on"} <= set(BASE_APPEND)
    assert pairs(cmd, "--qemu-opts") == ["-device virtio-rng-pci"]
    assert pairs(cmd, "--exec") == [guest_shell(spec())]
    assert cmd[-2] == "--exec"


def test_hardware_drivers_are_blacklisted_unless_asked_for() -> None:
    arg = hardware_blacklist()
    names = arg.removeprefix("modprobe.blacklist=").split(",")
    assert names == [n for n, _ in HARDWARE_MODULES] and len(set(names)) == len(names)
    # never the modules the guest needs: 9p root, virtio transport, overlays, NFS
    assert not {"9p", "9pnet_virtio", "virtio_mmio", "overlay", "nfsd", "nfsv4"} & set(names)
    assert arg in pairs(vng_command(spec()), "--append")
    assert arg not in pairs(vng_command(spec(hardware_modules=True)), "--append")


def test_plain_is_vng_with_the_harness_essentials_only() -> None:
    appended = pairs(vng_command(spec(plain=True)), "--append")
    assert appended == [*BASE_APPEND, "mnh.extra=1"]
    # the user's arguments come after the speed-ups, so they win
    full = pairs(vng_command(spec(append=("mitigations=auto",))), "--append")
    assert full.index("mitigations=auto") > full.index("mitigations=off")


def test_guest_shell_round_trips_through_a_shell_lexer() -> None:
    s = spec()
    words = shlex.split(guest_shell(s))
    i = words.index("exec")
    argv = words[i + 1:words.index(">")]
    assert tuple(argv) == s.guest_command
    assert words[words.index(">") + 1] == "/r/out dir/runner.stdout"
    assert words[words.index("2>") + 1] == "/r/runner's.stderr"
    assert words[:i] == ["export", "PYTHONPATH=/repo/guest tests;", "export", "MNH_X=a'b;"]


def test_guest_shell_without_redirections_or_env() -> None:
    s = spec(stdout_file=None, stderr_file=None, env=())
    assert guest_shell(s) == "exec " + shlex.join(s.guest_command)
    assert ">" not in shlex.split(guest_shell(s))


@pytest.mark.parametrize("accel", ["kvm", "tcg"])
def test_command_is_a_list_of_strings(accel: str) -> None:
    cmd = vng_command(spec(accel=accel))
    assert all(isinstance(a, str) for a in cmd)
