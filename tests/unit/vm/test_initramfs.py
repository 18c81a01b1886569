"""harness.vm.initramfs: module load order from modules.dep, and the newc archive."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.vm import initramfs

DEP = """\
kernel/fs/ext4/ext4.ko.xz: kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz \
kernel/lib/crc/crc16.ko.xz
kernel/fs/mbcache.ko.xz:
kernel/fs/jbd2/jbd2.ko.xz:
kernel/lib/crc/crc16.ko.xz:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/fs/nfsd/nfsd.ko.xz: kernel/fs/lockd/lockd.ko.xz kernel/net/sunrpc/sunrpc.ko.xz
kernel/fs/lockd/lockd.ko.xz: kernel/net/sunrpc/sunrpc.ko.xz
kernel/net/sunrpc/sunrpc.ko.xz:
kernel/drivers/net/net-failover.ko.xz:
"""


def test_load_order_puts_dependencies_first_once() -> None:
    dep = initramfs.parse_modules_dep(DEP)
    order = initramfs.load_order(dep, ["virtio_blk", "ext4", "nfsd", "no_such_module"])
    assert order[0] == "kernel/drivers/block/virtio_blk.ko.xz"
    assert order.index("kernel/fs/jbd2/jbd2.ko.xz") < order.index("kernel/fs/ext4/ext4.ko.xz")
    assert order.index("kernel/net/sunrpc/sunrpc.ko.xz") < order.index(
        "kernel/fs/lockd/lockd.ko.xz") < order.index("kernel/fs/nfsd/nfsd.ko.xz")
    assert len(order) == len(set(order)) == 8
    assert initramfs.module_name("kernel/drivers/net/net-failover.ko.xz") == "net_failover"


@pytest.mark.skipif(shutil.which("cpio") is None, reason="needs cpio(1) to read the archive")
def test_cpio_archive_unpacks_with_cpio(tmp_path: Path) -> None:
    data = initramfs.cpio([("bin", 0o040755, b""), ("bin/hello", 0o100755, b"#!/bin/sh\n"),
                           ("bin/sh", 0o120777, b"busybox"), ("odd", 0o100644, b"x" * 3)])
    (tmp_path / "a.cpio").write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["cpio", "-idm", "--quiet", "-F", str(tmp_path / "a.cpio")], cwd=out,
                   check=True, timeout=60)
    assert (out / "bin/hello").read_bytes() == b"#!/bin/sh\n"
    assert (out / "bin/sh").is_symlink() and str((out / "bin/sh").readlink()) == "busybox"
    assert (out / "odd").read_bytes() == b"xxx"


def test_no_module_tree_means_no_initramfs(tmp_path: Path) -> None:
    (tmp_path / "bzImage").write_bytes(b"kernel")
    assert initramfs.build(tmp_path / "bzImage", "6.12.0") is None
