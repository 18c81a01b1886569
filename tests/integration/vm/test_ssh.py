"""harness.vm.ssh: the recorded host key or nothing, against a real SSH server on loopback.

A paramiko server in a thread plays a guest whose host key changed: the client must
refuse it with HostKeyError (a clear message, both fingerprints), in bounded time.
"""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest

from harness.errors import BootError, HostKeyError
from harness.vm import image
from harness.vm.ssh import GuestSSH, known_hosts_line


def _image(tmp_path: Path, host_pub: str) -> image.Image:
    client_priv, _ = image._new_key()
    (tmp_path / "id").write_bytes(client_priv)
    return image.Image(directory=tmp_path, path=tmp_path / image.IMAGE_FILE, suite="bookworm",
                       key="k", host_key=host_pub, host_fingerprint=image.fingerprint(host_pub),
                       client_key=tmp_path / "id")


@pytest.fixture
def impostor() -> Iterator[tuple[int, str]]:
    """An SSH server on 127.0.0.1 with a host key of its own: (port, its public key)."""
    priv, pub = image._new_key()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(priv.decode()))
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    lsock.settimeout(30)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = lsock.accept()
            except OSError:
                return
            t = paramiko.Transport(conn)
            t.add_server_key(key)
            with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
                t.start_server(server=paramiko.ServerInterface())
            time.sleep(0.5)
            t.close()

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield lsock.getsockname()[1], pub
    stop.set()
    lsock.close()
    th.join(timeout=10)


def test_changed_host_key_is_refused(tmp_path: Path, impostor: tuple[int, str]) -> None:
    port, impostor_pub = impostor
    _, recorded = image._new_key()
    img = _image(tmp_path, recorded)
    t0 = time.monotonic()
    with pytest.raises(HostKeyError) as err:
        GuestSSH.connect(img, port, deadline=time.monotonic() + 60)
    msg = str(err.value)
    assert image.fingerprint(impostor_pub) in msg and img.host_fingerprint in msg
    assert "refused" in msg and "harness image build --force" in msg
    assert time.monotonic() - t0 < 60


def test_nobody_listening_is_a_boot_error_at_the_deadline(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, recorded = image._new_key()
    with pytest.raises(BootError, match="Could not log in to the guest over SSH"):
        GuestSSH.connect(_image(tmp_path, recorded), port, deadline=time.monotonic() + 2)


def test_known_hosts_line_names_the_port() -> None:
    _, pub = image._new_key()
    line = known_hosts_line(2222, pub)
    assert line.startswith("[127.0.0.1]:2222 ssh-ed25519 ") and line.split()[2] == pub.split()[1]
