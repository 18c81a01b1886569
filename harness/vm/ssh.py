"""SSH into an image-mode guest with paramiko: the recorded host key or nothing.

The guest's host key is generated on the host when the image is built and recorded
beside it; the client key pair is generated per image too. The client knows only that
host key, for exactly the forwarded address, and its policy for any other key is
``RejectPolicy``: a changed key is refused with ``HostKeyError``, never accepted.
Files go in and out over SFTP. Every network wait has a timeout.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import posixpath
import shlex
import socket
import stat
import time
from collections.abc import Iterable
from pathlib import Path

import paramiko

from harness.errors import BootError, HostKeyError
from harness.vm.image import Image, fingerprint
from harness.vm.qemucmd import LOOPBACK

log = logging.getLogger("harness")
# paramiko logs every refused early connection (QEMU's forward accepts before sshd is up)
# as an ERROR with a traceback; the retry loop below reports what matters.
logging.getLogger("paramiko").setLevel(logging.CRITICAL)

CONNECT_TIMEOUT = 10.0     # one TCP connect / banner / auth attempt
IO_TIMEOUT = 120.0         # one SFTP or channel operation
RETRY_PAUSE = 1.0
SESSION_FILE = "ssh.json"     # beside a running guest's console.log: how to get in


def host_key_entry(host: str, port: int, public_line: str) -> tuple[str, paramiko.PKey]:
    """The known-hosts name and key object for ``public_line`` at host:port."""
    kind, b64 = public_line.split()[:2]
    key = paramiko.PKey.from_type_string(kind, base64.b64decode(b64))
    name = host if port == 22 else f"[{host}]:{port}"
    return name, key


def known_hosts_line(port: int, public_line: str, host: str = LOOPBACK) -> str:
    name, key = host_key_entry(host, port, public_line)
    return f"{name} {key.get_name()} {key.get_base64()}\n"


class GuestSSH:
    """An SSH connection to the guest as root, with SFTP."""

    def __init__(self, client: paramiko.SSHClient, port: int) -> None:
        self.client = client
        self.port = port
        self._sftp: paramiko.SFTPClient | None = None

    @classmethod
    def connect(cls, image: Image, port: int, deadline: float,
                host: str = LOOPBACK) -> GuestSSH:
        """Connect, retrying while sshd is not up yet, until ``deadline`` (monotonic)."""
        pkey = paramiko.Ed25519Key.from_private_key_file(str(image.client_key))
        last = ""
        while True:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            name, key = host_key_entry(host, port, image.host_key)
            client.get_host_keys().add(name, key.get_name(), key)
            left = deadline - time.monotonic()
            try:
                client.connect(host, port, username="root", pkey=pkey, allow_agent=False,
                               look_for_keys=False, timeout=min(CONNECT_TIMEOUT, max(left, 1)),
                               banner_timeout=min(CONNECT_TIMEOUT * 2, max(left, 1)),
                               auth_timeout=min(CONNECT_TIMEOUT * 2, max(left, 1)))
                transport = client.get_transport()
                assert transport is not None
                transport.set_keepalive(5)
                return cls(client, port)
            except paramiko.BadHostKeyException as exc:
                client.close()
                got = fingerprint(f"{exc.key.get_name()} {exc.key.get_base64()}")
                raise HostKeyError(
                    f"The guest at {host}:{port} presented SSH host key {got}, but the key "
                    f"recorded for image {image.directory} is {image.host_fingerprint}. The "
                    "connection was refused: the image was altered or something else answers "
                    "on that port. Rebuild the image with `harness image build --force` if "
                    "you changed it on purpose.") from None
            except paramiko.SSHException as exc:
                if "not found in known_hosts" in str(exc):
                    client.close()
                    raise HostKeyError(
                        f"The guest at {host}:{port} presented an unknown SSH host key type "
                        f"({exc}); only the recorded {image.host_fingerprint} is accepted. "
                        "Rebuild the image with `harness image build --force`.") from None
                last = f"{type(exc).__name__}: {exc}"
            except (OSError, EOFError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            client.close()
            if time.monotonic() + RETRY_PAUSE >= deadline:
                raise BootError(f"Could not log in to the guest over SSH on {host}:{port} "
                                f"before the deadline (last attempt: {last}). Look at the "
                                "console log for sshd's state; raise --boot-timeout on a "
                                "slow machine.")
            time.sleep(RETRY_PAUSE)

    # --- commands -----------------------------------------------------------------

    def start(self, argv: Iterable[str], cwd: str = "/", stdout: str | None = None,
              stderr: str | None = None) -> paramiko.Channel:
        """Start ``argv`` in the guest (quoted for the remote shell); the open channel."""
        cmd = f"cd {shlex.quote(cwd)} && exec {shlex.join(list(argv))}"
        if stdout:
            cmd += f" > {shlex.quote(stdout)}"
        if stderr:
            cmd += f" 2> {shlex.quote(stderr)}"
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise BootError("The SSH connection to the guest is gone; see the console log.")
        chan = transport.open_session(timeout=IO_TIMEOUT)
        chan.settimeout(IO_TIMEOUT)
        chan.exec_command(cmd)
        return chan

    def run(self, argv: Iterable[str], timeout: float = IO_TIMEOUT) -> tuple[int, str]:
        """Run ``argv`` to completion: (exit status, stdout+stderr)."""
        chan = self.start(argv)
        chan.set_combine_stderr(True)
        deadline = time.monotonic() + timeout
        out = b""
        while not chan.exit_status_ready() or chan.recv_ready():
            if time.monotonic() > deadline:
                chan.close()
                raise BootError(f"{shlex.join(list(argv))!r} did not finish in the guest "
                                f"within {timeout:.0f} s.")
            if chan.recv_ready():
                out += chan.recv(65536)
            else:
                time.sleep(0.05)
        return chan.recv_exit_status(), out.decode(errors="replace")

    # --- files --------------------------------------------------------------------

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
            self._sftp.get_channel().settimeout(IO_TIMEOUT)  # type: ignore[union-attr]
        return self._sftp

    def makedirs(self, remote: str) -> None:
        parts = remote.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            try:
                self.sftp.stat(d)
            except OSError:
                self.sftp.mkdir(d)

    def put_tree(self, local: Path, remote: str, skip: tuple[str, ...] = ("__pycache__",)
                 ) -> int:
        """Copy a directory tree into the guest; the number of files."""
        count = 0
        self.makedirs(remote)
        for path in sorted(local.rglob("*")):
            rel = path.relative_to(local)
            if any(part in skip for part in rel.parts):
                continue
            target = posixpath.join(remote, *rel.parts)
            if path.is_dir():
                self.makedirs(target)
            elif path.is_file():
                self.sftp.put(str(path), target)
                count += 1
        return count

    def put(self, local: Path, remote: str) -> None:
        self.makedirs(posixpath.dirname(remote))
        self.sftp.put(str(local), remote)

    def get_tree(self, remote: str, local: Path, skip_suffixes: tuple[str, ...] = ()) -> int:
        """Copy a directory tree out of the guest; the number of files."""
        count = 0
        local.mkdir(parents=True, exist_ok=True)
        for entry in self.sftp.listdir_attr(remote):
            if entry.filename.endswith(skip_suffixes) and skip_suffixes:
                continue
            src = posixpath.join(remote, entry.filename)
            dst = local / entry.filename
            if entry.st_mode is not None and stat.S_ISDIR(entry.st_mode):
                count += self.get_tree(src, dst, skip_suffixes)
            else:
                self.get(src, dst)
                count += 1
        return count

    def get(self, remote: str, local: Path) -> bool:
        """Copy one file out (atomically on the host); False if it does not exist."""
        tmp = local.with_name(local.name + ".part")
        try:
            self.sftp.get(remote, str(tmp))
        except FileNotFoundError:
            return False
        tmp.replace(local)
        return True

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._sftp is not None:
                self._sftp.close()
        with contextlib.suppress(Exception):
            self.client.close()


def write_session(directory: Path, img: Image, port: int) -> Path:
    """``ssh.json`` and ``known_hosts`` in ``directory``: how to get a second shell."""
    kh = directory / "known_hosts"
    kh.write_text(known_hosts_line(port, img.host_key))
    data = {"port": port, "image": str(img.directory), "host_fingerprint": img.host_fingerprint,
            "ssh": ssh_argv(img, port, kh)}
    path = directory / SESSION_FILE
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def ssh_argv(img: Image, port: int, known_hosts: Path) -> list[str]:
    """An OpenSSH command line equivalent to the harness's own connection."""
    return ["ssh", "-i", str(img.client_key), "-p", str(port),
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", f"root@{LOOPBACK}"]


def probe_port_open(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False
