"""mnh_guest.nfsd: what the loopback NFS server checks before it starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest
from mnh_guest import nfsd


def test_missing_mtab_is_named_before_anything_starts(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nfsd, "find_tool", lambda name: "/bin/false")
    monkeypatch.setattr(nfsd, "MTAB", str(tmp_path / "mtab"))
    server = nfsd.Server(exports=[nfsd.Export("/srv", "rw")], log_dir=str(tmp_path / "log"))
    with pytest.raises(nfsd.NfsServerError, match=r"mtab is missing .* /proc/self/mounts"):
        server.start()
    assert server.transcript == [] and server.stop() == []


def test_missing_tool_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(nfsd, "SBIN", ())
    with pytest.raises(nfsd.NfsServerError, match="nfs-kernel-server"):
        nfsd.find_tool("rpc.mountd")
